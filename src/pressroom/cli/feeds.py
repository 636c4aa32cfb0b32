"""`pressroom feeds`: write the RSS, Atom and JSON feeds."""

from __future__ import annotations

import gc
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pressroom.cli.app import App, Folder, now_option, pass_app

if TYPE_CHECKING:
    from pressroom.config import Config


def shown(path: Path) -> str:
    """A path relative to the working directory when it is below it, else absolute.

    Every command that reports files it wrote (``feeds``, ``digest build|preview``) prints
    them this way, so they can be pasted into the shell they were run from.
    """
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


@click.command("feeds")
@click.option(
    "--out",
    type=Folder(),
    default=None,
    help="Write the feeds to DIR instead of feeds.out from config.yaml.",
    metavar="DIR",
)
@now_option
@pass_app
def feeds(app: App, out: Path | None, now: str | None) -> None:
    """Write RSS 2.0, Atom 1.0 and JSON Feed 1.1 feeds for the site, each category and author.

    Only files whose content changed are rewritten, so their dates stay meaningful to static
    hosts and feed readers. Broken articles are reported and skipped; the feeds are still
    written and the exit status is 1.

    \b
    Example:
        pressroom feeds
        pressroom feeds --out public/feeds --now 2026-11-25T09:00
    """
    from pressroom.feeds import unchanged

    # A cold run allocates a million small objects and almost no reference cycles: collecting
    # less often saves a tenth of its time (gen-0 threshold 700 by default).
    gc.set_threshold(50_000, 20, 100)
    config = app.config
    moment = app.now(now)
    target = out if out is not None else config.feeds.out
    with unchanged.lock(config, wait=app.info):
        _feeds(app, config, moment, target)
    app.finish()


def _feeds(app: App, config: Config, moment: datetime, target: Path) -> None:
    """The run itself, under the feeds lock: the record's answer, or a full run."""
    from pressroom.feeds import unchanged

    # Nothing changed since the last run (a walk and a stat per file tell): say what it
    # said, touch nothing. Otherwise a full run, which leaves that record for the next.
    record = unchanged.replay(config, moment, target)
    if record is not None:
        for kind, message in record.said:
            (app.warn if kind == "warning" else app.problem)(message)
        app.debug("nothing changed since the last run: no article read, no feed rendered")
        app.out(f"wrote 0 of {record.feeds} feeds ({record.feeds} unchanged) to {shown(target)}")
        return
    unchanged.forget(config, target)
    stamp = unchanged.begin(config, target)  # before anything is read
    said: list[tuple[str, str]] = []

    def warn(message: str) -> None:
        said.append(("warning", message))
        app.warn(message)

    from pressroom.content import articles
    from pressroom.feeds import builder as feeds_mod

    loaded = articles.load(config, moment, warn=warn, cache=True, out=target)
    for error in loaded.errors:
        said.append(("error", error.message))
        app.problem(error.message)
    try:
        report = feeds_mod.build(config, loaded.articles, out=target)
    finally:
        loaded.save_cache()  # what was parsed is kept even when a feed cannot be written
    if not report.total:
        for path in report.removed:  # the last article was taken down: so are its feeds
            app.info(f"removed stale {shown(path)}")
        app.warn(f"no articles to publish: no feeds written to {shown(report.out)}")
        return
    for path in report.written:
        app.debug(f"wrote {shown(path)}")
    for path in report.removed:
        app.info(f"removed stale {shown(path)}")
    # the stylesheet and the index page are not feeds
    written = [p for p in report.written if p.suffix in (".xml", ".json")]
    unchanged_feeds = [p for p in report.unchanged if p.suffix in (".xml", ".json")]
    total = len(written) + len(unchanged_feeds)
    app.out(
        f"wrote {len(written)} of {total} feeds "
        f"({len(unchanged_feeds)} unchanged) to {shown(report.out)}"
    )
    unchanged.remember(
        config,
        target,
        stamp,
        loaded,
        said,
        [*report.written, *report.unchanged],
        feeds_mod.manifest_path(config, target),
        total,
    )


COMMANDS: list[click.Command] = [feeds]
