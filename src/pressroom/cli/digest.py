"""`pressroom digest …`: build, check, preview (and ``send``, added by ``cli.send``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from pressroom.cli.app import App, Folder, now_option, parse_since, pass_app
from pressroom.cli.feeds import shown
from pressroom.errors import NothingToSend, UsageError

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def digest() -> None:
    """Build, check, preview and send the weekly email digest.

    \b
    Example:
        pressroom digest build
        pressroom digest preview --open
        pressroom digest check
        pressroom digest send --dry-run
    """


def selection_options(f: F) -> F:
    """The options that choose an issue's articles (shared by build, check and preview)."""
    options = [
        click.option(
            "--since",
            metavar="SPAN",
            help='Take the articles of the last SPAN ("7d", "36h"), not since the last issue.',
        ),
        click.option(
            "--since-last",
            is_flag=True,
            help="Take articles since the last sent issue; fails if none was sent yet.",
        ),
        click.option(
            "--pin",
            "pins",
            metavar="SLUG",
            multiple=True,
            help="Include the article SLUG (even if older); the first pin is the lead. Repeatable.",
        ),
        click.option(
            "--exclude-tag",
            "exclude_tags",
            metavar="TAG",
            multiple=True,
            help="Leave out articles tagged TAG (on top of digest.exclude_tags). Repeatable.",
        ),
        now_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _prepare(
    app: App,
    now_text: str | None,
    since: str | None,
    since_last: bool,
    pins: tuple[str, ...],
    exclude_tags: tuple[str, ...],
) -> Any:
    """Run the pipeline; None (after saying so) when there is nothing to send."""
    from pressroom.delivery.ledger import last_sent
    from pressroom.digest.prepare import prepare

    if since and since_last:
        raise UsageError("--since and --since-last cannot be used together; pick one")
    now = app.now(now_text)
    try:
        prepared = prepare(
            app.config,
            now,
            since=parse_since(now, since),
            since_last=since_last,
            pins=pins,
            exclude_tags=exclude_tags,
            warn=app.warn,
            last_sent=last_sent(app.config.state_db),
        )
    except NothingToSend as e:
        app.out(e.message)
        return None
    for error in prepared.articles_errors:
        app.problem(error.message)
    return prepared


@digest.command()
@selection_options
@pass_app
def build(
    app: App,
    since: str | None,
    since_last: bool,
    pins: tuple[str, ...],
    exclude_tags: tuple[str, ...],
    now: str | None,
) -> None:
    """Choose the next issue's articles, render it, and write its view-online copy.

    Prints the issue number, subject, articles and audience variants. With nothing new
    since the last sent issue it says so and exits 0, so a cron job can run it twice.

    \b
    Example:
        pressroom digest build
        pressroom digest build --since 14d --pin big-interview --exclude-tag sponsored
    """
    from pressroom.delivery import ledger
    from pressroom.digest import archive, preflight

    prepared = _prepare(app, now, since, since_last, pins, exclude_tags)
    if prepared is None:
        return
    issue, rendered = prepared.issue, prepared.rendered
    app.out(f"issue #{issue.number}: {issue.subject}")
    app.out(
        f"window: {issue.window_start:%Y-%m-%d %H:%M} – {issue.window_end:%Y-%m-%d %H:%M} "
        f"({issue.window_end.tzname()})"
    )
    app.out(f"articles ({len(issue.articles)}):")
    for article in issue.articles:
        lead = " (lead)" if article is issue.lead else ""
        app.out(f"  {article.published:%Y-%m-%d}  {article.slug}  {article.title}{lead}")
    app.out(f"variants: {', '.join(v.key for v in rendered.variants)}")
    # the index lists the issues that went out (the ledger's), not this one until it is sent
    sent = ledger.went_out(app.config.state_db)
    for path in archive.write_archive(app.config, rendered, went_out=sent, date=issue.date):
        app.out(f"wrote {shown(path)}")
    findings = preflight.check(rendered, app.config)
    if findings:
        errors = sum(f.level == "error" for f in findings)
        app.warn(
            f"preflight: {errors} error(s), {len(findings) - errors} warning(s); "
            "run `pressroom digest check` for details"
        )
    app.finish()


@digest.command()
@selection_options
@click.option(
    "--force",
    is_flag=True,
    help="Pass even when the last issue's bounce or complaint rate is over the limit.",
)
@pass_app
def check(
    app: App,
    since: str | None,
    since_last: bool,
    pins: tuple[str, ...],
    exclude_tags: tuple[str, ...],
    now: str | None,
    force: bool,
) -> None:
    """Run the preflight checks on the next issue; exit 1 if any error is found.

    Checks HTML size (Gmail clips over 102 KB), the text part, unfilled placeholders,
    relative URLs, images without alt text, unsubscribe link, postal address, javascript:
    links, subject length, preheader, and that every configured support block rendered.
    Then the last issue's rates (pressroom stats): a warning at a bounce rate of 2 % or a
    complaint rate of 0.1 %, a refusal (exit 1) at 5 % / 0.3 % unless --force.

    \b
    Example:
        pressroom digest check
        pressroom digest check --now 2026-11-25T09:00
    """
    from pressroom.digest import preflight

    prepared = _prepare(app, now, since, since_last, pins, exclude_tags)
    if prepared is None:
        return
    findings = preflight.check(prepared.rendered, app.config)
    for finding in findings:
        app.out(str(finding))
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    verdict = "fails" if errors else "passes"
    app.out(
        f"issue #{prepared.issue.number} {verdict} preflight: {errors} error(s), "
        f"{warnings} warning(s)"
    )
    from pressroom.delivery import stats

    # the last issue's rates: a warning at 2 % bounces / 0.1 % complaints, exit 1 at 5 % / 0.3 %
    for warning in stats.check_reputation(app.config, force=force):
        app.warn(warning)
    if errors:
        raise SystemExit(1)
    app.finish()


@digest.command(name="preview")
@click.option(
    "--as",
    "as_email",
    metavar="EMAIL",
    help="Preview as this active subscriber (name, tags, links); default: a sample reader.",
)
@click.option("--open", "open_", is_flag=True, help="Open the HTML preview in the default browser.")
@click.option(
    "--out",
    type=Folder(),
    help="Folder for issue-N.html/.txt/.eml [default: preview/ beside config.yaml].",
)
@click.option(
    "--serve", is_flag=True, help="Serve a live preview on 127.0.0.1 instead of writing files."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8025,
    show_default=True,
    help="Port for --serve (0 picks a free one).",
)
@selection_options
@pass_app
def preview_command(
    app: App,
    as_email: str | None,
    open_: bool,
    out: Path | None,
    serve: bool,
    port: int,
    since: str | None,
    since_last: bool,
    pins: tuple[str, ...],
    exclude_tags: tuple[str, ...],
    now: str | None,
) -> None:
    """Write the next issue as one subscriber gets it (HTML, text, .eml), or serve it live.

    \b
    Example:
        pressroom digest preview --open
        pressroom digest preview --as grace@example.org --out /tmp/preview
        pressroom digest preview --serve --port 8025
    """
    if serve:
        for flag, used in (
            ("--out", out is not None),
            ("--since", bool(since)),
            ("--since-last", since_last),
            ("--pin", bool(pins)),
            ("--exclude-tag", bool(exclude_tags)),
        ):
            if used:
                raise UsageError(f"{flag} cannot be used with --serve")
        from pressroom.preview import server as preview_server

        if now:
            app.now(now)  # reject a malformed --now here, before binding the port
        preview_server.serve(
            app.config_path,
            now_pinned=now,
            host="127.0.0.1",
            port=port,
            as_email=as_email,
            open_browser=open_,
            ready=lambda url: app.out(f"previewing at {url} (Ctrl-C to stop)"),
            log=app.info,
            clock=datetime.now,
        )
        return
    if port != 8025:
        raise UsageError("--port only applies with --serve")
    from pressroom.preview import files as preview

    prepared = _prepare(app, now, since, since_last, pins, exclude_tags)
    if prepared is None:
        return
    folder = out if out is not None else app.config.root / "preview"
    paths = preview.write_files(app.config, prepared, folder, as_email, info=app.info)
    for path in paths:
        app.out(shown(path))
    if open_:
        click.launch(str(paths[0]))
    app.finish()


COMMANDS: list[click.Command] = [digest]
