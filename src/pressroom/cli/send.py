"""`pressroom digest send` and `pressroom weekly`: deliver an issue through the ledger."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from pressroom.cli.app import App, now_option, pass_app
from pressroom.cli.digest import digest
from pressroom.errors import (
    NothingToSend,
    PreflightError,
    ProviderError,
    UsageError,
)

SHOW_UNCERTAIN = 20  # addresses listed on screen; the report lists them all


@dataclass(frozen=True)
class Request:
    """What the user asked of one send."""

    provider: str | None = None
    list_: str | None = None
    tag: str | None = None
    limit: int | None = None
    dry_run: bool = False
    test_to: str | None = None
    yes: bool = False
    resend_uncertain: bool = False
    drop_uncertain: bool = False


def _check(req: Request) -> None:
    """Reject option combinations that cannot work, before any work."""
    if req.dry_run and req.test_to:
        raise UsageError("--dry-run and --test-to cannot be used together; pick one")
    if req.resend_uncertain and req.drop_uncertain:
        raise UsageError("--resend-uncertain and --drop-uncertain cannot be used together")
    if req.test_to and (req.resend_uncertain or req.drop_uncertain or req.limit):
        raise UsageError(
            "--test-to sends one copy; it cannot be combined with --limit or "
            "--resend-uncertain/--drop-uncertain"
        )


class _Display:
    """A progress line rewritten in place on a terminal; a plain line every 10 s otherwise."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.tty = sys.stderr.isatty() and not app.quiet
        self.last = 0.0
        self.shown = False

    def __call__(self, p: object) -> None:
        from pressroom.send import Progress

        assert isinstance(p, Progress)
        eta = f"{p.eta:.0f}s" if p.eta is not None else "?"
        held = f"  uncertain {p.uncertain}" if p.uncertain else ""
        line = f"sent {p.sent}/{p.todo}  failed {p.failed}{held}  {p.rate:.0f}/s  ETA {eta}"
        if self.tty:
            click.echo("\r" + line.ljust(70), nl=False, err=True)
            self.shown = True
        elif not self.app.quiet and time.monotonic() - self.last >= 10:
            self.last = time.monotonic()
            click.echo(line, err=True)

    def end(self) -> None:
        if self.shown:
            click.echo(err=True)


def deliver(
    app: App,
    req: Request,
    moment: datetime,
    *,
    locked: bool = False,
    articles_reported: bool = False,
) -> int:
    """Freeze (or resume) the issue and send it; returns the exit status."""
    from pressroom import message, preflight, preview, report
    from pressroom import send as send_mod
    from pressroom import subscribers as subs_mod
    from pressroom.digest import prepare
    from pressroom.ledger import PENDING, UNCERTAIN, Ledger
    from pressroom.unsubscribe import Signer, load_secret

    _check(req)
    config = app.config
    provider = send_mod.make_provider(config, req.provider)
    with contextlib.ExitStack() as stack:
        stack.callback(provider.close)
        if not locked and not req.dry_run and not req.test_to:
            stack.enter_context(send_mod.RunLock(config.state))
        ledger = None
        if config.state_db.exists() or not (req.dry_run or req.test_to):
            ledger = stack.enter_context(Ledger(config.state_db))
        frozen = ledger.unfinished() if ledger is not None else None
        if frozen is not None:
            rendered = frozen.rendered
            if (req.list_ and req.list_ != frozen.list) or (req.tag and req.tag != frozen.tag):
                app.warn(
                    f"issue {frozen.number} was frozen for list {frozen.list!r}, tag "
                    f"{frozen.tag!r}; resuming it with those recipients (--list/--tag ignored)"
                )
            app.info(
                f"resuming issue {frozen.number} (frozen {frozen.frozen_at:%Y-%m-%d %H:%M} UTC)"
            )
            window_end = frozen.window_end
            issue_date = frozen.frozen_at.astimezone(ZoneInfo(config.publication.timezone))
        else:
            prepared = prepare(config, moment, warn=app.warn)
            if not articles_reported:  # weekly has loaded (and reported) them already
                for err in prepared.articles_errors:
                    app.problem(err.message)
            rendered = prepared.rendered
            window_end = prepared.issue.window_end
            issue_date = prepared.issue.date
            findings = preflight.check(rendered, config)
            for f in findings:
                (app.problem if f.level == "error" else app.warn)(
                    f"preflight: {f.code}: {f.message}"
                )
            if preflight.has_errors(findings):
                raise PreflightError(
                    f"issue {rendered.number} failed its preflight checks; fix the errors above "
                    "(pressroom digest check shows them) and send again"
                )
        if req.dry_run and not _has_secret(config):
            # a dry run writes nothing, not even the generated secret: sign with a throwaway
            signer = Signer(secrets.token_bytes(32))
        else:
            signer = Signer(load_secret(config, os.environ, app.info))
        prefix = "[TEST] " if req.test_to else ""
        content = message.content_for(
            config, rendered, provider=provider, now=moment, subject_prefix=prefix
        )
        factory = message.RecipientFactory(config, rendered, signer, provider.manages_unsubscribe)

        if req.test_to:
            return _test_copy(app, provider, content, factory, rendered, req.test_to)
        if req.dry_run:
            return _dry_run(app, config, provider, content, factory, rendered, frozen, ledger, req)

        assert ledger is not None
        new = frozen is None
        if frozen is None:
            frozen = send_mod.freeze(
                ledger,
                config,
                rendered,
                window_end=window_end,
                now=moment,
                list_=req.list_,
                tag=req.tag,
                on_problem=app.problem,
            )
            if frozen.total == 0:
                ledger.discard(frozen.number)
                app.warn(
                    f"no subscribers on list {frozen.list!r}"
                    + (f" with tag {req.tag!r}" if req.tag else "")
                    + "; nothing to send (add some to subscribers/)"
                )
                return 1 if app.problems else 0
            app.info(f"froze issue {frozen.number} for {frozen.total} recipients")
        number = frozen.number

        crashed = ledger.crashed_to_uncertain(number)
        if crashed:
            app.warn(f"{crashed} recipients were in flight when a previous run stopped")
        if req.resend_uncertain:
            n = ledger.requeue_uncertain(number)
            if n:
                app.info(f"resending {n} uncertain recipients (--resend-uncertain)")
        elif req.drop_uncertain:
            n = ledger.drop_uncertain(number)
            if n:
                app.info(
                    f"{n} uncertain recipients settled as failed, not resent (--drop-uncertain)"
                )
        else:
            uncertain = ledger.emails_in(number, UNCERTAIN)
            if uncertain:
                shown = ", ".join(uncertain[:SHOW_UNCERTAIN])
                more = (
                    f" and {len(uncertain) - SHOW_UNCERTAIN} more"
                    if len(uncertain) > SHOW_UNCERTAIN
                    else ""
                )
                app.warn(
                    f"{len(uncertain)} uncertain recipients (may or may not have received issue "
                    f"{number}): {shown}{more}; not resent. Rerun with --resend-uncertain to send "
                    "them, or --drop-uncertain to settle them"
                )

        pending = ledger.counts(number)[PENDING]
        to_send = min(pending, req.limit) if req.limit else pending
        if to_send > config.sending.confirm_over and not req.yes:
            question = (
                f'send issue {number} "{rendered.subject}" to {to_send} recipients via '
                f"{provider.name}?"
            )
            if not sys.stdin.isatty():
                if new:
                    ledger.discard(number)
                raise UsageError(
                    f"{to_send} recipients is more than sending.confirm_over "
                    f"({config.sending.confirm_over}); pass --yes to send without asking"
                )
            if not click.confirm(question, err=True):
                if new:
                    ledger.discard(number)
                app.info("not sent")
                return 1

        page = config.digest.archive / str(number) / "index.html"
        if new or not page.exists():
            # the messages' "view online" link points at this page: it must exist even when
            # `digest build` was never run, and match what is sent
            for path in preview.write_archive(config, rendered, date=issue_date):
                app.info(f"wrote {_shown(path)}")

        keys = subs_mod.load_suppressed(config)

        def on_suppress(entries: list[tuple[str, str]]) -> None:
            subs_mod.suppress_many(config, entries, when=moment.date(), list_=frozen.list)

        options = send_mod.SendOptions.from_config(config, provider, limit=req.limit)
        provider.open(content)
        display = _Display(app)
        started = moment
        t0 = time.time()
        previous = _terminate_gracefully()
        try:
            summary = send_mod.run(
                ledger,
                frozen,
                provider,
                factory,
                options,
                is_suppressed=lambda e: subs_mod.key(e) in keys,
                on_suppress=on_suppress,
                progress=display,
            )
        finally:
            display.end()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        from datetime import timedelta

        finished = started + timedelta(seconds=time.time() - t0)
        outcome = report.settle(ledger, number, finished)
        for line in report.lines(summary, outcome):
            app.out(line)
        for email, reason in summary.failures[:SHOW_UNCERTAIN]:
            app.info(f"  failed: {email}: {reason}")
        if len(summary.failures) > SHOW_UNCERTAIN:
            app.info(f"  … and {len(summary.failures) - SHOW_UNCERTAIN} more (see the report)")
        if summary.uncertainties:
            app.warn(
                f"{len(summary.uncertainties)} uncertain recipients: the provider's answer was "
                f"lost (they may or may not have received issue {number}); not resent. Rerun with "
                "--resend-uncertain to send them, or --drop-uncertain to settle them"
            )
            for email, reason in summary.uncertainties[:SHOW_UNCERTAIN]:
                app.info(f"  uncertain: {email}: {reason}")
            if len(summary.uncertainties) > SHOW_UNCERTAIN:
                left = len(summary.uncertainties) - SHOW_UNCERTAIN
                app.info(f"  … and {left} more (see the report)")
        path = report.write(config.reports, summary, outcome, started=started, finished=finished)
        app.info(f"report: {_shown(path)}")
        if summary.interrupted:
            app.problem(
                "interrupted: requests in flight were finished and recorded; rerun "
                "`pressroom digest send` to resume"
            )
            return 1
        if summary.stopped:
            error = summary.error or ProviderError(summary.stopped)
            raise type(error)(f"sending stopped: {summary.stopped}")
        if summary.paused:
            app.problem(f"paused: {summary.paused}; rerun `pressroom digest send` to resume")
            return 1
        c = outcome.counts
        if c["failed"] or c["uncertain"] or app.problems:
            return 1
        if c["pending"] and not req.limit:
            return 1
        return 0
    return 0  # pragma: no cover - every path above returns


def _has_secret(config: Any) -> bool:
    """Whether a signing secret exists (env var, or the one generated in the state folder)."""
    return bool(os.environ.get(config.sending.secret_env)) or (config.state / "secret").exists()


def _terminate_gracefully() -> Any:
    """Make SIGTERM (cron timeouts, systemd stop) stop a send like Ctrl-C: cleanly."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _test_copy(
    app: App, provider: object, content: object, factory: object, rendered: object, to: str
) -> int:
    from pressroom.providers.base import Content, Outcome, Provider
    from pressroom.send import send_one
    from pressroom.subscribers import normalise_email

    assert isinstance(provider, Provider) and isinstance(content, Content)
    try:
        address = normalise_email(to)
    except ValueError as e:
        raise UsageError(f'--test-to: invalid email "{to}" ({e})') from None
    variant = next(iter(content.variants))
    recipient = factory.make(address, "", variant)  # type: ignore[attr-defined]
    # marked as a test: kept apart from the issue's deliveries (file outbox, provider tags)
    content = dataclasses.replace(content, test=True, tag=f"{content.tag}-test")
    provider.open(content)
    result = send_one(provider, recipient)
    if result.outcome is Outcome.SENT:
        app.out(
            f"sent a test copy of issue {content.issue} to {address} via {provider.name} "
            "(not recorded as a delivery)"
        )
        return 0
    if result.outcome is Outcome.UNCERTAIN:
        app.problem(
            f"test copy to {address}: no answer from {provider.name}, it may or may not have "
            f"been sent ({result.error})"
        )
        return 1
    app.problem(f"test copy to {address} not sent: {result.error or result.outcome.value}")
    return 1


def _dry_run(
    app: App,
    config: object,
    provider: object,
    content: object,
    factory: object,
    rendered: object,
    frozen: object,
    ledger: object,
    req: Request,
) -> int:
    import email
    import email.policy

    from pressroom import message
    from pressroom.config import Config
    from pressroom.ledger import FrozenIssue, Ledger
    from pressroom.models import RenderedIssue
    from pressroom.subscribers import iter_subscribers

    assert isinstance(config, Config) and isinstance(rendered, RenderedIssue)
    # every variant must build into a message that parses back
    for variant in rendered.variants:
        data = message.build(content, factory.make("preview@example.com", "Preview", variant.key))  # type: ignore[arg-type, attr-defined]
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        if parsed.get_body(("html",)) is None or parsed.get_body(("plain",)) is None:
            raise PreflightError(
                f"variant {variant.key}: the built message lacks a text or HTML part"
            )
    name = getattr(provider, "name", "?")
    if isinstance(frozen, FrozenIssue) and isinstance(ledger, Ledger):
        c = ledger.counts(frozen.number)
        app.out(
            f'dry run: would resume issue {frozen.number} "{rendered.subject}" via {name}: '
            f"{c['pending']} pending, {c['uncertain'] + c['in_flight']} uncertain, "
            f"{c['sent']} already sent; nothing was sent or recorded"
        )
        return 1 if app.problems else 0
    per_variant: dict[str, int] = {}
    chosen = req.list_ or config.sending.list
    for sub in iter_subscribers(config, list_=chosen, tag=req.tag, on_problem=app.problem):
        key = rendered.variant_for(sub.tags).key
        per_variant[key] = per_variant.get(key, 0) + 1
    total = sum(per_variant.values())
    if req.limit:
        total = min(total, req.limit)
    split = ", ".join(f"{k}: {n}" for k, n in sorted(per_variant.items()))
    app.out(
        f'dry run: would send issue {rendered.number} "{rendered.subject}" to {total} '
        f"recipients on list {chosen!r} via {name}"
        + (f" ({split})" if split else "")
        + "; nothing was sent or recorded"
    )
    return 1 if app.problems else 0


def _shown(path: os.PathLike[str]) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _nothing_is_fine(app: App) -> Iterator[None]:
    """NothingToSend is an answer, not an error: say it and exit 0."""
    try:
        yield
    except NothingToSend as e:
        app.out(e.message)
        sys.exit(1 if app.problems else 0)


# --- commands -------------------------------------------------------------------------------


def _send_options(f: click.decorators.FC) -> click.decorators.FC:
    for decorator in reversed(
        [
            click.option(
                "--provider",
                metavar="NAME",
                help="Send with this provider instead of sending.provider.",
            ),
            click.option(
                "--yes",
                "-y",
                is_flag=True,
                help="Do not ask for confirmation above sending.confirm_over.",
            ),
            click.option(
                "--resend-uncertain",
                is_flag=True,
                help="Also send recipients whose earlier request may or may not have "
                "gone out (a crash mid-request, or no answer from the provider).",
            ),
            click.option(
                "--drop-uncertain",
                is_flag=True,
                help="Settle uncertain recipients as failed without resending them.",
            ),
        ]
    ):
        f = decorator(f)
    return f


@click.command("send")
@_send_options
@click.option("--list", "list_", metavar="L", help="Send to list L [default: sending.list].")
@click.option("--tag", metavar="T", help="Only subscribers tagged T.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help="Send to at most N recipients in this run; the rest stay pending.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Render and validate everything and say what would be sent; send nothing.",
)
@click.option(
    "--test-to",
    metavar="EMAIL",
    help='Send one copy with "[TEST]" in the subject to EMAIL; not recorded.',
)
@now_option
@pass_app
def send_cmd(
    app: App,
    provider: str | None,
    yes: bool,
    resend_uncertain: bool,
    drop_uncertain: bool,
    list_: str | None,
    tag: str | None,
    limit: int | None,
    dry_run: bool,
    test_to: str | None,
    now: str | None,
) -> None:
    """Send the next issue to the subscribers, exactly once each, through the ledger.

    The issue is frozen into the state file before the first message; a rerun after a crash
    or a pause resumes it with exactly the same content and never mails anyone twice.
    Exit status: 0 all sent, 1 some failed or uncertain, 2 usage or configuration error.

    \b
    Example:
        pressroom digest send --dry-run
        pressroom digest send --test-to me@example.org
        pressroom digest send --yes
        pressroom digest send --resend-uncertain
    """
    req = Request(
        provider, list_, tag, limit, dry_run, test_to, yes, resend_uncertain, drop_uncertain
    )
    _check(req)
    with _nothing_is_fine(app):
        code = deliver(app, req, app.now(now))
    sys.exit(code)


@click.command("weekly")
@_send_options
@now_option
@pass_app
def weekly(
    app: App,
    provider: str | None,
    yes: bool,
    resend_uncertain: bool,
    drop_uncertain: bool,
    now: str | None,
) -> None:
    """The weekly cron job: build the feeds, then build, check and send the next issue.

    Holds a lock so two runs never overlap; a second run in the same week finds nothing
    new and sends nothing (exit 0). An unfinished issue is resumed before a new one is built.

    \b
    Example:
        pressroom weekly
        pressroom weekly --provider smtp --yes
        # crontab: every Monday at 07:00
        0 7 * * 1  cd /srv/site && pressroom weekly --yes >> weekly.log 2>&1
    """
    from pressroom import articles, feeds
    from pressroom import send as send_mod

    req = Request(
        provider, yes=yes, resend_uncertain=resend_uncertain, drop_uncertain=drop_uncertain
    )
    _check(req)
    config = app.config
    moment = app.now(now)
    with send_mod.RunLock(config.state):
        loaded = articles.load(config, moment, warn=app.warn)
        for err in loaded.errors:
            app.problem(err.message)
        built = feeds.build(config, loaded.articles)
        app.out(f"feeds: {len(built.written)} written, {len(built.unchanged)} unchanged")
        with _nothing_is_fine(app):
            code = deliver(app, req, moment, locked=True, articles_reported=True)
    sys.exit(code)


digest.add_command(send_cmd)

COMMANDS: list[click.Command] = [weekly]
