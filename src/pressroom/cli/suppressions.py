"""`pressroom suppressions sync`: bring the providers' bounces, complaints and unsubscribes home."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from pressroom.cli.app import App, now_option, pass_app
from pressroom.errors import UsageError


@click.group()
def suppressions() -> None:
    """Provider feedback: bounces, complaints and provider-side unsubscribes.

    \b
    Example:
        pressroom suppressions sync
        pressroom suppressions sync --provider mailgun --dry-run
    """


@suppressions.command("sync")
@click.option(
    "--provider",
    metavar="NAME",
    help="Only this provider [default: sending.provider and every one under providers:].",
)
@click.option(
    "--since",
    metavar="DATE",
    help="Read entries from DATE on (2026-11-01), instead of from the last sync.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be suppressed; change nothing.")
@now_option
@pass_app
def sync_cmd(
    app: App, provider: str | None, since: str | None, dry_run: bool, now: str | None
) -> None:
    """Pull each provider's suppression lists and apply them to subscribers/suppressed.csv.

    Reads every bounce, complaint and unsubscribe list the provider keeps (Mailgun, SendGrid,
    Postmark, SES; for SMTP the bounce mailbox of bounces.imap, over IMAP), page by page to
    the end, from where the last sync stopped; hard bounces
    and complaints are suppressed at once, soft bounces after bounces.soft_limit issues in a
    row. A provider that cannot be reached is a warning (exit 1); what was already read stays
    applied, and the next sync carries on.

    \b
    Example:
        pressroom suppressions sync
        pressroom suppressions sync --provider sendgrid --since 2026-01-01
        pressroom suppressions sync --dry-run
    """
    from pressroom.delivery import feedback

    start = _since(since)
    config = app.config
    report = feedback.sync(
        config, now=app.now(now), provider=provider, since=start, dry_run=dry_run
    )
    for warning in report.warnings:
        app.warn(warning)
    for p in report.providers:
        app.info(f"{p.provider}: {p.pages} pages from {', '.join(p.lists) or 'no list'}")
    for address, reason, detail in report.applied.suppressed:
        app.debug(f"  {address}: {reason}" + (f" ({detail})" if detail else ""))
    line = report.summary()
    app.out(f"{line} (dry run: nothing written)" if dry_run else line)
    if report.warnings:
        raise SystemExit(1)


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f'--since: expected a date like "2026-11-01" (or an ISO time), got "{text}"'
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


COMMANDS: list[click.Command] = [suppressions]
