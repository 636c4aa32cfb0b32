"""Deliver one issue: freeze (or resume) it, send it through the ledger, settle and report.

``deliver`` is the one core function behind ``digest send`` and ``weekly``: it builds or
resumes the issue, freezes everyone on ``sending.list`` into the ledger, sends the pending
rows of this run's segment (``--list``/``--tag``/``--limit`` narrow who is sent *now*; the
rest stay pending), settles the issue and writes the report. Messages about the work as it
happens go through ``Notes``; the outcome comes back as a ``Delivery`` the CLI prints.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from pressroom.audience import events
from pressroom.audience import subscribers as subs_mod
from pressroom.audience.tokens import Signer, load_secret
from pressroom.config import Config
from pressroom.delivery import ledger as L
from pressroom.delivery import message, report
from pressroom.delivery.freeze import RunLock, freeze
from pressroom.delivery.ledger import FrozenIssue, Ledger
from pressroom.delivery.providers.base import Content, Provider
from pressroom.delivery.reconcile import Reconciled, reconcile
from pressroom.delivery.request import Request as Request
from pressroom.delivery.request import check as check
from pressroom.delivery.request import test_address as test_address
from pressroom.delivery.schedule import failed_hint
from pressroom.delivery.send import Progress, SendOptions, Summary, make_provider, run
from pressroom.delivery.stopping import GracefulStop
from pressroom.digest import archive, preflight
from pressroom.errors import (
    ConfigError,
    DigestError,
    NothingToSend,
    PreflightError,
    ProviderError,
    ReportError,
    StateLostError,
    UsageError,
)
from pressroom.models import RenderedIssue


class Notes(Protocol):
    """Where ``deliver`` says what it is doing (the CLI's App fits)."""

    def out(self, message: str = "") -> None: ...
    def info(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def problem(self, message: str) -> None: ...


@dataclass
class Delivery:
    """What one ``deliver`` call did; the CLI prints it."""

    status: int  # the exit status: see ``exit_status``
    number: int | None = None
    total: int = 0  # recipients frozen for the issue
    summary: Summary | None = None
    outcome: report.Outcome | None = None
    report: Path | None = None
    error: ProviderError | None = None  # what stopped the run, raised by the CLI after printing
    segment: str = ""  # "list 'breaking'" when the run sent to a segment only
    said: list[str] = field(default_factory=list)  # result lines of a dry run or a test copy
    rows_skipped: int = 0  # bad subscriber rows reported (and not mailed) while freezing
    reconciled: Reconciled | None = None  # what --reconcile settled, and how


class Counted:
    """The caller's Notes, counting the problems said through them (each makes the exit 1)."""

    def __init__(self, notes: Notes) -> None:
        self.notes = notes
        self.problems = 0
        self.rows = 0  # of which bad subscriber rows

    def out(self, message: str = "") -> None:
        self.notes.out(message)

    def info(self, message: str) -> None:
        self.notes.info(message)

    def warn(self, message: str) -> None:
        self.notes.warn(message)

    def problem(self, message: str) -> None:
        self.problems += 1
        self.notes.problem(message)

    def bad_row(self, message: str) -> None:
        self.rows += 1
        self.problem(message)


def exit_status(
    summary: Summary, outcome: report.Outcome, *, staged: bool, problems: int = 0
) -> int:
    """The exit status of a send: 0 done as asked, 1 otherwise.

    1 when anything failed, is uncertain or deferred, the run stopped, paused or was
    interrupted, recipients are left pending by a run that was not a staged one (``--limit``,
    ``--list``, ``--tag``), or a problem was reported on the way (bad subscriber rows).
    """
    c = outcome.counts
    if problems or c[L.FAILED] or c[L.UNCERTAIN]:
        return 1
    if summary.stopped or summary.interrupted or summary.paused or summary.deferred:
        return 1
    return 1 if c[L.PENDING] and not staged else 0


def deliver(
    config: Config,
    req: Request,
    moment: datetime,
    notes: Notes,
    *,
    confirm: Callable[[str], bool] | None = None,
    progress: Callable[[Progress], None] | None = None,
    locked: bool = False,
    articles_reported: bool = False,
    problems: int = 0,
    env: Mapping[str, str] | None = None,
) -> Delivery:
    """Freeze (or resume) the issue and send this run's part of it.

    ``confirm`` asks the user (None: no terminal, so a send above ``sending.confirm_over``
    needs ``--yes``). ``problems``: how many the caller reported already (they make the exit
    status 1, and the report says so). Raises ``NothingToSend`` when there is no new issue.
    """
    from pressroom.digest.prepare import prepare

    check(req)
    notes = counted = Counted(notes)
    counted.problems = problems
    env = os.environ if env is None else env
    provider = make_provider(config, req.provider, env)
    with contextlib.ExitStack() as stack:
        stack.callback(provider.close)
        other = req.provider is not None and req.provider != config.sending.provider
        if other and req.provider not in config.providers and not (req.dry_run or req.test_to):
            # `--provider file` "to see what would go out" recorded every reader as sent
            # with nothing mailed; `--provider smtp` mailed through whatever is on localhost
            raise UsageError(
                f"--provider {req.provider}: {config.path.name} has no providers."
                f"{req.provider} section, and the issue would be recorded as sent through it; "
                f"add the section to send with {req.provider} (to look at the issue without "
                "sending, use --dry-run or --test-to)"
            )
        if not locked and not req.dry_run and not req.test_to:
            stack.enter_context(RunLock(config.state))
        ledger: Ledger | None = None
        if config.state_db.exists() or not (req.dry_run or req.test_to):
            ledger = stack.enter_context(Ledger(config.state_db))
        frozen = ledger.unfinished() if ledger is not None else None
        refail: list[str] = []  # --resend-failed: requeued once the send is confirmed
        if req.resend_failed and ledger is not None:
            frozen, refail = _failed_to_resend(ledger, frozen, notes)
        if frozen is not None:
            rendered = frozen.rendered
            notes.info(
                f"resuming issue {frozen.number} (frozen {frozen.frozen_at:%Y-%m-%d %H:%M} UTC)"
            )
            window_end = frozen.window_end
            issue_date = frozen.frozen_at.astimezone(ZoneInfo(config.publication.timezone))
        else:
            previous = ledger.last_sent() if ledger is not None else L.last_sent(config.state_db)
            try:
                prepared = prepare(config, moment, warn=notes.warn, last_sent=previous)
            except NothingToSend as e:
                raise NothingToSend(e.message + failed_hint(config)) from None
            if not articles_reported:  # weekly has loaded (and reported) them already
                for err in prepared.articles_errors:
                    notes.problem(err.message)
            rendered = prepared.rendered
            if not req.test_to:
                check_not_sent(config, rendered.number, req.resend_issue)
            window_end = prepared.issue.window_end
            issue_date = prepared.issue.date
            findings = preflight.check(rendered, config)
            for f in findings:
                (notes.problem if f.level == "error" else notes.warn)(
                    f"preflight: {f.code}: {f.message}"
                )
            if preflight.has_errors(findings):
                raise PreflightError(
                    f"issue {rendered.number} failed its preflight checks; fix the errors above "
                    "(pressroom digest check shows them) and send again"
                )
        if req.dry_run and not has_secret(config, env):
            # a dry run writes nothing, not even the generated secret: sign with a throwaway
            signer = Signer(secrets.token_bytes(32))
        else:
            signer = Signer(load_secret(config, env, notes.info))
        prefix = "[TEST] " if req.test_to else ""
        content = message.content_for(
            config, rendered, provider=provider, now=moment, subject_prefix=prefix
        )
        # tokens name the issue's own list (frozen), which a later config change cannot move
        factory = message.RecipientFactory(
            config,
            rendered,
            signer,
            provider.manages_unsubscribe,
            list_=frozen.list if frozen is not None else config.sending.list,
        )
        from pressroom.delivery import rehearsal  # (which imports this module's types)

        if req.test_to:
            return rehearsal.test_copy(provider, content, factory, req.test_to, notes)
        segment = _segment(config, req) if req.segment else None
        if req.dry_run or ledger is None:
            return rehearsal.dry_run(
                config, provider, content, factory, rendered, frozen, ledger, req, segment, counted
            )
        return _send(
            config,
            req,
            moment,
            counted,
            ledger,
            provider,
            content,
            factory,
            rendered,
            frozen,
            segment,
            window_end=window_end,
            issue_date=issue_date,
            confirm=confirm,
            progress=progress,
            refail=refail,
        )
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _segment(config: Config, req: Request) -> frozenset[str]:
    """Addresses in this run's segment (``--list``/``--tag``), as the ledger stores them."""
    chosen = req.list_ or config.sending.list
    if req.list_ is not None:
        unknown = subs_mod.unknown_list(config, req.list_, "--list")
        if unknown is not None:
            raise UsageError(unknown)
    if req.tag is not None:
        unknown = subs_mod.unknown_tag(config, req.tag, "--tag")
        if unknown is not None:  # a typo would freeze the issue and send it to nobody
            raise UsageError(unknown)
    # bad rows were reported when the issue was frozen (or will be, by freeze): not twice
    subs = subs_mod.iter_subscribers(config, list_=chosen, tag=req.tag, on_problem=_quiet)
    return frozenset(s.email for s in subs)


def _quiet(message: str) -> None:
    """Drop a problem already reported elsewhere."""


def _send(
    config: Config,
    req: Request,
    moment: datetime,
    notes: Counted,
    ledger: Ledger,
    provider: Provider,
    content: Content,
    factory: message.RecipientFactory,
    rendered: RenderedIssue,
    frozen: FrozenIssue | None,
    segment: frozenset[str] | None,
    *,
    window_end: datetime,
    issue_date: datetime,
    confirm: Callable[[str], bool] | None,
    progress: Callable[[Progress], None] | None,
    refail: list[str] | None = None,
) -> Delivery:
    new = frozen is None
    if frozen is None:
        frozen = freeze(
            ledger,
            config,
            rendered,
            window_end=window_end,
            now=moment,
            on_problem=notes.bad_row,
            on_warning=notes.warn,
        )
        if frozen.total == 0:
            ledger.discard(frozen.number)
            unknown = subs_mod.unknown_list(
                config,
                frozen.list or config.sending.list,
                f"{config.where('sending.list')}: sending.list",
            )
            if unknown is not None:  # a typo: every run would send nothing, and exit 0
                raise ConfigError(unknown)
            notes.warn(
                f"no subscribers on list {frozen.list!r}; nothing to send (add some to "
                "subscribers/)"
            )
            return Delivery(1 if notes.problems else 0, frozen.number, rows_skipped=notes.rows)
    number = frozen.number
    where = req.segment_name()

    dropped = 0
    crashed = ledger.crashed_to_uncertain(number)
    if crashed:
        notes.warn(f"{crashed} recipients were in flight when a previous run stopped")
    reconciled = None
    if req.reconcile and ledger.counts(number)[L.UNCERTAIN]:
        reconciled = reconcile(ledger, number, provider, moment)
        for line in reconciled.lines():
            (notes.warn if reconciled.unable else notes.info)(line)
    # --resend-uncertain requeues them (--drop-uncertain settles them) only once the send is
    # confirmed (below): a send refused at its confirmation must change nothing
    resend: list[str] = list(refail or [])
    if req.resend_uncertain:
        resend += ledger.emails_in(number, L.UNCERTAIN)
    elif req.drop_uncertain:
        pass  # settled only once the send is confirmed (below), like --resend-uncertain
    else:
        uncertain = ledger.emails_in(number, L.UNCERTAIN)
        if uncertain:
            notes.warn(
                f"{len(uncertain)} uncertain recipients (may or may not have received issue "
                f"{number}): {shorten(uncertain)}; not resent. Rerun with --resend-uncertain "
                "to send them, or --drop-uncertain to settle them"
            )
            if not ledger.counts(number)[L.PENDING] and not refail:
                # nothing else to send, and the issue cannot settle by itself: every later
                # run (weekly's cron job) would stop here, so say what unblocks it
                notes.problem(
                    f"issue {number} is held open by its {len(uncertain)} uncertain recipients, "
                    "and no new issue is sent until you decide: `pressroom digest send "
                    "--resend-uncertain` sends them again (a possible duplicate), `pressroom "
                    "digest send --drop-uncertain` settles them as not sent (a possible miss)"
                )

    if segment is not None:
        pending = sum(1 for e in ledger.emails_in(number, L.PENDING) + resend if e in segment)
    else:
        pending = ledger.counts(number)[L.PENDING] + len(resend)
    to_send = min(pending, req.limit) if req.limit else pending
    if to_send > config.sending.confirm_over and not req.yes:
        question = (
            f'send issue {number} "{rendered.subject}" to {to_send} recipients via {provider.name}?'
        )
        if confirm is None:
            if new:
                ledger.discard(number)
            raise UsageError(
                f"{to_send} recipients is more than sending.confirm_over "
                f"({config.sending.confirm_over}); pass --yes to send without asking"
            )
        try:
            answer = confirm(question)
        except BaseException:  # Ctrl-C at the prompt: roll the freeze back, as for a "no"
            if new:
                ledger.discard(number)
            raise
        if not answer:
            if new:
                ledger.discard(number)
            notes.info("not sent")
            return Delivery(1, number, frozen.total, rows_skipped=notes.rows)
    if new:  # only now: a refused or declined send rolls the freeze back
        notes.info(f"froze issue {number} for {frozen.total} recipients")
    if refail:
        n = ledger.requeue_failed(number)  # reopens the issue when it was settled
        notes.info(f"resending the {n} failed recipients of issue {number} (--resend-failed)")
    if req.resend_uncertain:
        n = ledger.requeue_uncertain(number)
        if n:
            notes.info(f"resending {n} uncertain recipients (--resend-uncertain)")
    elif req.drop_uncertain:
        dropped = ledger.drop_uncertain(number)
        if dropped:
            notes.info(
                f"{dropped} uncertain recipients dropped, not resent (--drop-uncertain): "
                "recorded as dropped, not failed, since many of them were delivered"
            )
    if segment is not None and not to_send:
        notes.warn(f"none of issue {number}'s pending recipients is on {where}")

    page = config.digest.archive / str(number) / "index.html"
    if new or not page.exists():
        # the messages' "view online" link points at this page: it must exist even when
        # `digest build` was never run, and match what is sent
        listed = ledger.went_out()
        for written in archive.write_archive(config, rendered, went_out=listed, date=issue_date):
            notes.info(f"wrote {shown(written)}")

    keys = subs_mod.load_suppressed(config)

    def on_suppress(entries: list[tuple[str, str]]) -> None:
        # a refusal at send time (Postmark's inactive recipient, an SMTP 5xx) goes through the
        # one event policy like any other bounce, so `pressroom stats` counts it for the issue
        found = [
            events.Event(
                provider.name,
                _SEND_KIND.get(reason, events.HARD_BOUNCE),
                email,
                moment,
                issue=number,
                reason=f"refused when issue {number} was sent",
            )
            for email, reason in entries
        ]
        events.apply(config, found, now=moment)

    options = SendOptions.from_config(config, provider, limit=req.limit)
    provider.open(content)
    t0 = time.time()
    stop = GracefulStop()
    with stop:
        summary = run(
            ledger,
            frozen,
            provider,
            factory,
            options,
            is_suppressed=lambda e: subs_mod.key(e) in keys,
            only=segment.__contains__ if segment is not None else None,
            on_suppress=on_suppress,
            progress=progress,
        )
        stop.hold()  # the requests are over: the ledger is settled and the report written
        return _settle(
            config, req, moment, notes, ledger, frozen, summary, t0, dropped, reconciled, where
        )


def _settle(
    config: Config,
    req: Request,
    moment: datetime,
    notes: Counted,
    ledger: Ledger,
    frozen: FrozenIssue,
    summary: Summary,
    t0: float,
    dropped: int,
    reconciled: Reconciled | None,
    where: str,
) -> Delivery:
    """Settle the issue after a run and write its report (what the CLI prints comes back)."""
    number = frozen.number
    if req.drop_uncertain:
        summary.dropped = dropped
    finished = moment + timedelta(seconds=time.time() - t0)
    outcome = report.settle(ledger, number, finished)
    status = exit_status(
        summary, outcome, staged=bool(req.limit or req.segment), problems=notes.problems
    )
    path: Path | None = None
    try:
        path = report.write(
            config.reports,
            summary,
            outcome,
            started=moment,
            finished=finished,
            exit_code=status,
            rows_skipped=notes.rows,
            extra={"reconciled": reconciled.report()} if reconciled is not None else None,
        )
    except ReportError as e:  # the send is recorded in the ledger: say so, do not undo it
        notes.problem(e.message)
        status = 1
    if outcome.counts[L.SENT]:  # it went out: the archive index lists it from now on
        try:
            archive.write_index(config, ledger.went_out())
        except DigestError as e:
            notes.problem(f"{e.message} (the send itself is recorded)")
            status = 1
    result = Delivery(
        status,
        number,
        frozen.total,
        summary,
        outcome,
        path,
        segment=where,
        rows_skipped=notes.rows,
        reconciled=reconciled,
    )
    if summary.stopped:
        result.error = summary.error or ProviderError(summary.stopped)
    return result


def check_not_sent(config: Config, number: int, resend: int | None) -> None:
    """Refuse to send issue ``number`` again when the reports show it went out.

    The ledger numbers the next issue; a lost or emptied state file starts again at 1, and
    only the reports folder still knows who got what. ``resend`` (``--resend-issue N``) is
    the publisher saying the issue should go out again.
    """
    if resend is not None and resend != number:
        raise UsageError(
            f"--resend-issue {resend}: the issue to send now is issue {number}; pass "
            f"--resend-issue {number}, or leave the flag out"
        )
    evidence = report.went_out(config.reports, number)
    if evidence is None or resend == number:
        return
    path, when = evidence
    raise StateLostError(
        f"issue {number} went out on {when} ({shown(path)}); the state file "
        f"({shown(config.state_db)}) is new — restore it, or pass --resend-issue {number} to "
        "send it again"
    )


def _failed_to_resend(
    ledger: Ledger, frozen: FrozenIssue | None, notes: Notes
) -> tuple[FrozenIssue, list[str]]:
    """``--resend-failed``: the issue whose failed readers go out again (the open one, or when
    every issue is settled the last one) and their addresses. Nothing is changed yet: they
    are requeued (reopening a settled issue) only once the send is confirmed."""
    number = frozen.number if frozen is not None else ledger.last_issue()
    failed = ledger.emails_in(number, L.FAILED) if number is not None else []
    if not failed:
        if frozen is not None:
            notes.info(f"issue {frozen.number} has no failed recipients (--resend-failed)")
            return frozen, []
        what = f"issue {number} has" if number is not None else "no issue was sent, so none has"
        raise NothingToSend(f"nothing to send: {what} no failed recipients (--resend-failed)")
    assert number is not None
    issue = frozen if frozen is not None else ledger.issue(number)
    assert issue is not None
    return issue, failed


def has_secret(config: Config, env: Mapping[str, str]) -> bool:
    """Whether a signing secret exists (env var, or the one generated in the state folder)."""
    return bool(env.get(config.sending.secret_env)) or (config.state / "secret").exists()


def shorten(emails: list[str], show: int = 20) -> str:
    """The first ``show`` addresses and how many more."""
    more = f" and {len(emails) - show} more" if len(emails) > show else ""
    return ", ".join(emails[:show]) + more


def shown(path: os.PathLike[str]) -> str:
    """A path relative to the working directory when it can be."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


# the suppression reason the send loop reports -> the event it is
_SEND_KIND = {
    "bounced": events.HARD_BOUNCE,
    "complained": events.COMPLAINT,
    "unsubscribed": events.UNSUBSCRIBE,
}
