"""`pressroom digest send` and `pressroom weekly`: parse options, call ``delivery.deliver``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import click

from pressroom.cli.app import App, now_option, pass_app
from pressroom.cli.digest import digest
from pressroom.errors import NothingToSend

if TYPE_CHECKING:  # the delivery stage loads with the command that runs, not with --help
    from pressroom.delivery.job import Delivery, Request
    from pressroom.delivery.send import Progress

SHOW = 20  # addresses listed on screen; the report lists them all


class _Display:
    """A progress line rewritten in place on a terminal; a plain line every 10 s otherwise."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.tty = sys.stderr.isatty() and not app.quiet
        self.last = 0.0
        self.shown = False

    def __call__(self, p: Progress) -> None:
        try:
            self._show(p)
        except OSError:
            # the terminal is gone (SSH session closed: EIO): the progress line must not stop
            # the send loop, which then could not record the answers in flight nor the report
            self.tty = self.shown = False
            self.app.quiet = True

    def _show(self, p: Progress) -> None:
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
            with contextlib.suppress(OSError):
                click.echo(err=True)


def _can_ask() -> bool:
    """Whether someone can see the question and answer it: stdin and stderr (where it is
    asked) on a terminal. `pressroom weekly >> weekly.log 2>&1` typed in a terminal would
    otherwise write the question into the log and wait, unseen, for an answer."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _confirm(question: str) -> bool:
    # the terminal closed (SIGHUP) or the process told to stop (SIGTERM) at the prompt is a
    # Ctrl-C too: the caller then rolls the new issue's freeze back (killed by the default
    # action, it stayed frozen and the next run sent that copy, whatever was fixed since)
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {
        sig: signal.signal(sig, stop)
        for sig in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(sig) is not signal.SIG_IGN  # nohup's stays ignored
    }
    try:
        return click.confirm(question, err=True)
    except click.Abort:  # Ctrl-C (or end of input) at the prompt: interrupted, exit 130
        raise KeyboardInterrupt from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(
    app: App,
    req: Request,
    now: str | None,
    *,
    locked: bool = False,
    reported: bool = False,
    problems: int = 0,
) -> int:
    """Deliver and print the outcome; returns the exit status."""
    from pressroom.delivery.job import deliver

    display = _Display(app)
    try:
        result = deliver(
            app.config,
            req,
            app.now(now),
            app,
            confirm=_confirm if _can_ask() else None,
            progress=display,
            locked=locked,
            articles_reported=reported,
            problems=problems,
        )
    finally:
        display.end()
    return _show(app, result)


def _show(app: App, result: Delivery) -> int:
    """Print what a delivery did; returns the exit status (raises what stopped the run)."""
    from pressroom.delivery.job import shorten, shown

    for line in result.said:
        app.out(line)
    summary, outcome = result.summary, result.outcome
    if summary is None or outcome is None:
        return _status(app, result)
    from pressroom.delivery import report

    for line in report.lines(summary, outcome):
        app.out(line)
    for email, reason in summary.failures[:SHOW]:
        app.info(f"  failed: {email}: {reason}")
    if len(summary.failures) > SHOW:
        app.info(f"  … and {len(summary.failures) - SHOW} more (see the report)")
    if summary.uncertainties:
        app.warn(
            f"{len(summary.uncertainties)} uncertain recipients: the provider's answer was "
            f"lost (they may or may not have received issue {summary.issue}); not resent. Rerun "
            "with --resend-uncertain to send them, or --drop-uncertain to settle them"
        )
        for email, reason in summary.uncertainties[:SHOW]:
            app.info(f"  uncertain: {email}: {reason}")
        if len(summary.uncertainties) > SHOW:
            app.info(f"  … and {len(summary.uncertainties) - SHOW} more (see the report)")
    if result.rows_skipped:
        n = result.rows_skipped
        app.out(
            f"{n} subscriber row{'' if n == 1 else 's'} skipped (see the errors above); "
            "fix them and send again to mail those readers"
        )
    if result.report is not None:
        app.info(f"report: {shown(result.report)}")
    c = outcome.counts
    if summary.interrupted:
        app.problem(
            "interrupted: requests in flight were finished and recorded; rerun "
            "`pressroom digest send` to resume"
        )
    elif result.error is not None:
        raise type(result.error)(f"sending stopped: {summary.stopped}")
    elif summary.paused and summary.uncertainties:
        # a plain rerun sends only the pending readers, none of the uncertain ones
        app.problem(
            f"paused: {summary.paused}; rerun `pressroom digest send` to send the "
            f"{c['pending']} pending recipients, and add --resend-uncertain to send the "
            f"{c['uncertain']} uncertain ones too (a possible duplicate), --reconcile to ask "
            "the provider about them first where it can answer, or --drop-uncertain to settle "
            "them unsent"
        )
    elif summary.paused:
        app.problem(f"paused: {summary.paused}; rerun `pressroom digest send` to resume")
    elif summary.deferred:
        n = len(summary.deferred)
        others = c["pending"] - n  # the deferred are pending too: not counted twice
        app.info(f"  deferred: {shorten([e for e, _ in summary.deferred], SHOW)}")
        app.problem(
            f"{n} recipients deferred after repeated temporary failures (last: "
            f"{summary.deferred[-1][1]}); they stay pending with {others} others of issue "
            f"{summary.issue}: run `pressroom digest send` again later"
        )
    elif c["pending"]:
        what = f"this run ({result.segment})" if result.segment else "this run"
        app.out(
            f"sent {c['sent']} of {result.total}; {c['pending']} still pending for issue "
            f"{summary.issue} after {what}: run `pressroom digest send` to send the rest"
        )
    return _status(app, result)


def _status(app: App, result: Delivery) -> int:
    """The exit status ``deliver`` worked out (and wrote into the report)."""
    # every problem reported on the way went through deliver's notes (or was passed in), so
    # it is counted in result.status; app.problems is only a net for the paths without a report
    return result.status or (1 if app.problems else 0)


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
                help="Settle uncertain recipients without resending them (recorded as "
                "dropped, not failed: many were delivered).",
            ),
            click.option(
                "--resend-issue",
                type=click.IntRange(min=1),
                metavar="N",
                help="Send issue N although reports/ shows it went out and the state file "
                "has no record of it (a lost or new state file); without it the send refuses.",
            ),
        ]
    ):
        f = decorator(f)
    return f


@click.command("send")
@_send_options
@click.option(
    "--list",
    "list_",
    metavar="L",
    help="In this run send only to the issue's readers who are also on list L; the rest "
    "stay pending (the issue always goes to everyone on sending.list).",
)
@click.option(
    "--tag",
    metavar="T",
    help="In this run send only to the issue's readers tagged T (a staged rollout); the "
    "rest stay pending for a later plain run.",
)
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
@click.option(
    "--reconcile",
    is_flag=True,
    help="First ask the provider whether it accepted each uncertain recipient (Mailgun, "
    "Postmark): accepted ones become sent, the others are sent now.",
)
@click.option(
    "--resend-failed",
    is_flag=True,
    help="Send again to the readers that failed for good (a 400 that named no address is as "
    "likely our payload as the reader); reopens the last issue when it was settled.",
)
@now_option
@pass_app
def send_cmd(
    app: App,
    provider: str | None,
    yes: bool,
    resend_uncertain: bool,
    drop_uncertain: bool,
    resend_issue: int | None,
    resend_failed: bool,
    list_: str | None,
    tag: str | None,
    limit: int | None,
    dry_run: bool,
    test_to: str | None,
    reconcile: bool,
    now: str | None,
) -> None:
    """Send the next issue to the subscribers, exactly once each, through the ledger.

    The issue is frozen for everyone on sending.list before the first message; a rerun after
    a crash, a pause or a partial run (--list, --tag, --limit) resumes it with exactly the same
    content, sends the rest and never mails anyone twice. Exit status: 0 done as asked, 1 some
    failed, are uncertain or deferred, bad subscriber rows were skipped, or the confirmation
    was declined; 2 usage or
    configuration error (also: confirmation needed without a terminal and no --yes).

    \b
    Example:
        pressroom digest send --dry-run
        pressroom digest send --test-to me@example.org
        pressroom digest send --tag staff --yes    # staff first; a plain run sends the rest
        pressroom digest send --yes
        pressroom digest send --reconcile         # ask the provider about uncertain ones
        pressroom digest send --resend-uncertain
        pressroom digest send --resend-failed      # after fixing what made them fail
    """
    from pressroom.delivery.job import Request, check

    req = Request(
        provider,
        list_,
        tag,
        limit,
        dry_run,
        test_to,
        yes,
        resend_uncertain,
        drop_uncertain,
        resend_issue,
        reconcile=reconcile,
        resend_failed=resend_failed,
    )
    check(req)
    with _nothing_is_fine(app):
        code = _run(app, req, now)
    sys.exit(code)


@click.command("weekly")
@_send_options
@click.option(
    "--force",
    is_flag=True,
    help=(
        "Start a new issue even if the last one went out less than digest.min_interval ago, "
        "or its bounce or complaint rate is over the limit."
    ),
)
@now_option
@pass_app
def weekly(
    app: App,
    provider: str | None,
    yes: bool,
    resend_uncertain: bool,
    drop_uncertain: bool,
    resend_issue: int | None,
    force: bool,
    now: str | None,
) -> None:
    """The weekly cron job: build the feeds, then build, check and send the next issue.

    Holds a lock so two runs never overlap. An unfinished issue is resumed before a new one
    is built; a new one starts no sooner than digest.min_interval after the last (exit 0,
    saying when it is due; --force overrides). Uncertain recipients of a resumed issue are
    first reconciled with the provider where it can answer (Mailgun, Postmark); an issue still
    held open by uncertain recipients blocks new ones until you decide (exit 1).

    \b
    Example:
        pressroom weekly
        pressroom weekly --provider smtp --yes
        pressroom weekly --force       # a second issue this week
        # crontab: every Monday at 07:00
        0 7 * * 1  cd /srv/site && pressroom weekly --yes >> weekly.log 2>&1
    """
    from pressroom.content import articles
    from pressroom.delivery import send as send_mod
    from pressroom.delivery.job import Request, check
    from pressroom.delivery.schedule import clock_behind, next_issue_held
    from pressroom.feeds import builder as feeds
    from pressroom.feeds import unchanged

    req = Request(
        provider,
        yes=yes,
        resend_uncertain=resend_uncertain,
        drop_uncertain=drop_uncertain,
        resend_issue=resend_issue,
        reconcile=True,
    )
    check(req)
    config = app.config
    moment = app.now(now)
    with send_mod.RunLock(config.state):
        with unchanged.lock(config, wait=app.info):  # no feeds run records mid-write
            loaded = articles.load(config, moment, warn=app.warn, cache=True)
            for err in loaded.errors:
                app.problem(err.message)
            try:
                built = feeds.build(config, loaded.articles)
            finally:
                loaded.save_cache()
        app.out(f"feeds: {len(built.written)} written, {len(built.unchanged)} unchanged")
        behind = clock_behind(config, moment)
        if behind is not None:  # every run would say "nothing to send", exit 0, forever
            app.problem(behind)
            sys.exit(1)
        held = None if force else next_issue_held(config, moment)
        if held is not None:
            app.out(held)
            sys.exit(1 if app.problems else 0)
        _sync_patreon(app, moment)
        _sync_suppressions(app, moment)
        _check_reputation(app, force)
        with _nothing_is_fine(app):
            code = _run(app, req, now, locked=True, reported=True, problems=app.problems)
    sys.exit(code)


def _sync_patreon(app: App, moment: datetime) -> None:
    """Tag patrons before the issue is built (patreon.sync); any failure is a warning, the
    tags stay as they were and the issue goes out."""
    from pressroom.audience import patreon
    from pressroom.errors import ConfigError, PatreonError, SubscriberError

    if not app.config.patreon.sync:
        return
    try:
        result = patreon.run(app.config, os.environ, now=moment, problem=app.problem)
    except (PatreonError, ConfigError, SubscriberError) as e:
        app.warn(f"{e.message}; the issue goes out with the tags as they were")
        return
    app.out(result.summary(tag=app.config.patreon.tag))


def _sync_suppressions(app: App, moment: datetime) -> None:
    """Pull the providers' bounces and complaints before an issue is frozen (bounces.sync);
    a provider that cannot be reached is a warning and the run goes on."""
    from pressroom.delivery import feedback

    if not feedback.sync_enabled(app.config):
        return
    report = feedback.sync(app.config, now=moment)
    for warning in report.warnings:
        app.warn(warning)
    app.out(report.summary())


def _check_reputation(app: App, force: bool) -> None:
    """Warn about the last issue's bounce and complaint rates; refuse over the limits."""
    from pressroom.delivery import stats

    for warning in stats.check_reputation(app.config, force=force):
        app.warn(warning)


digest.add_command(send_cmd)

COMMANDS: list[click.Command] = [weekly]
