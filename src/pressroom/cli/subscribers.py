"""`pressroom subscribers` commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pressroom.cli.app import App, now_option, pass_app
from pressroom.errors import UsageError

if TYPE_CHECKING:
    from pressroom.config import Config

# Literal here so `pressroom --help` does not load the audience stage (tests/test_startup.py
# checks they match audience.subscribers.REASONS and audience.imports.READERS).
REASONS = ("unsubscribed", "bounced", "complained")
IMPORT_FORMATS = ("csv", "mailchimp", "patreon", "substack")  # sorted


def _segment_options(f: Any) -> Any:
    f = click.option("--tag", "tag", metavar="T", help="Only subscribers with tag T.")(f)
    return click.option("--list", "list_", metavar="L", help="Only subscribers of list L.")(f)


@click.group("subscribers")
def subscribers_group() -> None:
    """Read, check and change the subscriber lists in subscribers/*.csv.

    Each CSV has the header email,name,lists,tags,status,subscribed_at (lists and tags
    separated by ";"); subscribers/suppressed.csv (unsubscribed, bounced, complained)
    always wins.

    \b
    Example:
        pressroom subscribers count --tag patron
        pressroom subscribers import patreon-members.csv --format patreon
    """


@subscribers_group.command("list")
@_segment_options
@pass_app
def list_(app: App, list_: str | None, tag: str | None) -> None:
    """Print every subscriber who would be mailed (email, name, tags; tab-separated).

    Unsubscribed, suppressed, duplicate and invalid rows are left out; invalid rows are
    reported on stderr and the command exits 1.

    \b
    Example:
        pressroom subscribers list --tag patron
    """
    from pressroom.audience import subscribers

    n = 0
    subs = subscribers.iter_subscribers(
        app.config, list_=list_, tag=tag, on_problem=app.problem, on_warning=app.warn
    )
    for s in subs:
        app.out(f"{s.email}\t{s.name}\t{subscribers.join_values(s.tags)}")
        n += 1
    app.info(f"{n} subscriber{'' if n == 1 else 's'}")
    app.finish()


@subscribers_group.command("count")
@_segment_options
@pass_app
def count(app: App, list_: str | None, tag: str | None) -> None:
    """Print how many subscribers would be mailed.

    \b
    Example:
        pressroom subscribers count --list weekly
    """
    from pressroom.audience import subscribers

    n = sum(
        1
        for _ in subscribers.iter_subscribers(
            app.config, list_=list_, tag=tag, on_problem=app.problem, on_warning=app.warn
        )
    )
    app.out(str(n))
    app.finish()


@subscribers_group.command("validate")
@pass_app
def validate(app: App) -> None:
    """Check every subscriber file: bad addresses, bad rows, duplicates, bad suppressions.

    Reports each problem as FILE:LINE and exits 1 if there is any.

    \b
    Example:
        pressroom subscribers validate
    """
    from pressroom.audience import subscribers

    config = app.config
    for message in subscribers.validate(config, on_warning=app.warn):
        app.problem(message)
    # the digest goes to sending.list only: say how many of the usable readers are on it
    chosen = config.sending.list
    usable = mailed = 0
    for sub in subscribers.iter_subscribers(config, on_problem=lambda _: None):  # said above
        usable += 1
        mailed += chosen in sub.lists
    where = f"{mailed} on list {chosen!r}, which the digest goes to"
    if app.problems:
        plural = "" if app.problems == 1 else "s"
        app.info(f"{app.problems} problem{plural}; {usable} subscribers usable ({where})")
    else:
        app.info(f"all subscriber files are valid; {usable} subscribers usable ({where})")
    app.finish()


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name (used in the greeting).")
@click.option("--tag", "tags", multiple=True, metavar="T", help="Add tag T (repeatable).")
@click.option("--list", "lists", multiple=True, metavar="L", help="Add to list L (repeatable).")
@click.option(
    "--into",
    metavar="FILE",
    help="Subscriber file inside subscribers/ to write [default: subscribers.csv].",
)
@now_option
@pass_app
def add(
    app: App,
    email: str,
    name: str,
    tags: tuple[str, ...],
    lists: tuple[str, ...],
    into: str | None,
    now: str | None,
) -> None:
    """Add one subscriber (the file is streamed and replaced atomically, under a lock).

    \b
    Example:
        pressroom subscribers add ada@example.com --name "Ada Lovelace" --tag patron
    """
    from pressroom.audience import imports as subscriber_import
    from pressroom.audience import subscribers

    config = app.config
    for value in (*tags, *lists):
        if subscribers.SEP in value or "," in value:
            raise UsageError(f'--tag/--list: one value per option, got "{value}"')
    try:
        address = subscribers.normalise_email(email)
    except ValueError as e:
        raise UsageError(f'invalid email "{email}" ({e})') from None
    target = subscriber_import.target_file(config, into)
    found = subscribers.find(config, address)
    if found:
        where, line, status = found
        hint = "" if status == "active" else f" with status {status}; edit that row to re-subscribe"
        raise UsageError(f"{address} is already in {where}:{line}{hint}")
    item = subscriber_import.Incoming(
        line=0,
        email=address,
        name=name,
        lists=frozenset(lists),
        add_tags=frozenset(tags),
    )
    subscriber_import.merge(
        config,
        [item],
        into=target,
        when=app.now(now),
        source="EMAIL",
        problem=app.problem,
        add_only=True,
    )
    app.out(f"added {address} to {subscribers.shown_path(config, target)}")
    if subscribers.is_suppressed(config, address):
        app.warn(
            f"{address} is in {subscribers.shown_path(config, config.subscribers.suppressed)} and "
            "will not be mailed until removed from it"
        )


@subscribers_group.command("unsubscribe")
@click.argument("email", required=False)
@click.option("--token", metavar="TOKEN", help="Unsubscribe whoever this token (t=…) names.")
@click.option(
    "--reason",
    type=click.Choice(REASONS),
    default="unsubscribed",
    show_default=True,
    help="Why the address is suppressed.",
)
@now_option
@pass_app
def unsubscribe_cmd(
    app: App, email: str | None, token: str | None, reason: str, now: str | None
) -> None:
    """Suppress EMAIL (or the address in an unsubscribe --token): it is never mailed again.

    Records it in subscribers/suppressed.csv (atomic, idempotent).

    \b
    Example:
        pressroom subscribers unsubscribe bob@example.com
        pressroom subscribers unsubscribe --token 'Ym9i…'
        pressroom subscribers unsubscribe bob@example.com --reason bounced
    """
    from pressroom.audience import subscribers
    from pressroom.audience import tokens as unsubscribe

    if bool(email) == bool(token):
        raise UsageError("give either EMAIL or --token TOKEN (one of them)")
    config = app.config
    list_name: str | None = None
    if token:
        secret = unsubscribe.load_secret(config, os.environ, app.info)
        email, list_name = unsubscribe.Signer(secret).verify(token.strip())
    assert email is not None
    stamp = app.now(now).isoformat(timespec="seconds")
    added = subscribers.suppress(
        config, email, reason=reason, when=stamp, list_=list_name, signed=bool(token)
    )
    where = subscribers.shown_path(config, config.subscribers.suppressed)
    if added:
        app.out(f"{email} suppressed ({reason}); recorded in {where}")
    else:
        app.out(f"{email} was already in {where}; nothing changed")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "format_",
    type=click.Choice(IMPORT_FORMATS),
    required=True,
    help="The export's format: csv (pressroom's own), mailchimp, substack or patreon.",
)
@click.option(
    "--into",
    metavar="FILE",
    help="Subscriber file inside subscribers/ to merge into [default: subscribers.csv].",
)
@click.option(
    "--encoding",
    metavar="NAME",
    help="The file's text encoding (cp1252, latin-1, utf-16…) [default: UTF-8, else detected].",
)
@now_option
@pass_app
def import_(
    app: App, file: Path, format_: str, into: str | None, encoding: str | None, now: str | None
) -> None:
    """Merge a CSV export (or a .zip of them) from another service into the subscriber files.

    New addresses are added, known ones get the new tags; Patreon active patrons are tagged
    patron (former patrons lose it), Substack paying subscribers are tagged paid, and
    Mailchimp unsubscribed/cleaned members and Substack readers with email turned off go to
    suppressed.csv. Status words of other tools (subscribed, confirmed, enabled, cleaned,
    blocklisted) map to pressroom's. A file that is not UTF-8 is read with --encoding, or
    with a detected encoding (a warning names it). Invalid rows are reported and skipped
    (exit 1).

    \b
    Example:
        pressroom subscribers import members.csv --format patreon
        pressroom subscribers import audience_export.zip --format mailchimp
        pressroom subscribers import old-list.csv --format csv --encoding cp1252
    """
    from pressroom.audience import imports as subscriber_import
    from pressroom.audience import subscribers

    config = app.config
    target = subscriber_import.target_file(config, into)
    rows = subscriber_import.read(file, format_, encoding=encoding, warn=app.warn)
    s = subscriber_import.merge(
        config, rows, into=target, when=app.now(now), source=str(file), problem=app.problem
    )
    also = f" (and readers' own rows in {', '.join(s.elsewhere)})" if s.elsewhere else ""
    app.out(
        f"{file}: {s.added} added, {s.updated} updated, {s.unchanged} unchanged, "
        f"{s.suppressed} suppressed, {s.skipped} skipped → {subscribers.shown_path(config, target)}"
        + also
    )
    app.finish()


@subscribers_group.group("sync")
def sync_group() -> None:
    """Bring subscriber tags in line with a membership service (Patreon).

    \b
    Example:
        pressroom subscribers sync patreon --dry-run
    """


@sync_group.command("patreon")
@click.option(
    "--add",
    is_flag=True,
    help="Also subscribe active patrons who are on no list (consent_source=patreon).",
)
@click.option("--dry-run", is_flag=True, help="Print the changes; write nothing.")
@now_option
@pass_app
def sync_patreon(app: App, add: bool, dry_run: bool, now: str | None) -> None:
    """Tag subscribers who are active Patreon patrons; untag former and declined ones.

    Reads every member of patreon.campaign from the Patreon API v2 with the creator access
    token in $PATREON_TOKEN (patreon.token_env), then gives existing subscribers who are
    active patrons the tag patreon.tag (patron: what a support block's hide_for_tags names)
    and takes it from former and declined patrons. Nobody is subscribed unless --add. Every
    page is read before any file is written: a failure changes no tag.

    \b
    Example:
        export PATREON_TOKEN=...
        pressroom subscribers sync patreon --dry-run
        pressroom subscribers sync patreon --add
    """
    from pressroom.audience import patreon

    config = app.config
    moment = app.now(now)
    result = patreon.run(
        config, os.environ, now=moment, add=add, dry_run=dry_run, problem=app.problem
    )
    tag = config.patreon.tag
    if dry_run:
        for address in result.tagged:
            app.out(f"+{tag} {address}")
        for address in result.untagged:
            app.out(f"-{tag} {address}")
        for address in result.added:
            app.out(f"add {address}")
    app.out(result.summary(dry_run=dry_run, tag=tag))
    app.finish()


@subscribers_group.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (atomically) instead of standard output.",
)
@pass_app
def export(app: App, out: Path | None) -> None:
    """Write every subscriber who would be mailed as one clean, de-duplicated CSV.

    \b
    Example:
        pressroom subscribers export --out backup.csv
    """
    from pressroom.audience import imports as subscriber_import
    from pressroom.audience import subscribers

    if out is None:
        n = subscriber_import.export(app.config, sys.stdout, problem=app.problem, warn=app.warn)
    else:
        _refuse_an_audience_file(app.config, out)
        with subscribers.atomic_writer(out) as f:
            n = subscriber_import.export(app.config, f, problem=app.problem, warn=app.warn)
    app.info(f"exported {n} subscriber{'' if n == 1 else 's'}" + (f" to {out}" if out else ""))
    app.finish()


def _refuse_an_audience_file(config: Config, out: Path) -> None:
    """An export written over the suppressed file would lose every suppression (and
    suppress everyone mailed); into ``subscribers/`` it would be read as one more list (every
    ``*.csv`` there is), its copies of readers outliving their own rows' changes."""
    from pressroom.audience import subscribers

    folder = config.subscribers.path
    target = out.resolve()
    shown = subscribers.shown_path(config, out)
    if target == config.subscribers.suppressed.resolve():
        raise UsageError(
            f"--out: {shown} is the suppressed file; exporting over it would lose every "
            "suppression. Write the export elsewhere"
        )
    inside = folder.resolve()
    if target.suffix.lower() == ".csv" and target.parent == inside:
        raise UsageError(
            f"--out: {shown} is inside {subscribers.shown_path(config, folder)}, where every "
            "*.csv is read as a subscriber list; write the export outside it"
        )
    lists = {p.resolve() for p in folder.glob("*.csv")} if folder.is_dir() else set()
    if target in lists or (
        # a symlink in subscribers/ is written where it points: judge where it sits too
        out.suffix.lower() == ".csv" and out.absolute().parent.resolve() == inside
    ):
        raise UsageError(
            f"--out: {shown} is a subscriber list (in {subscribers.shown_path(config, folder)}, "
            "or linked from there); exporting over it would lose its readers' statuses. "
            "Write the export elsewhere"
        )


COMMANDS: list[click.Command] = [subscribers_group]
