"""The delivery loop: ledger → batches → rate limit → provider → retries → ledger.

``run`` sends every pending row of a frozen issue, in batches of one audience variant each
(so that a batch is one provider request). Worker threads (``sending.concurrency``) share
one send rate (``sending.rate``, ``ratelimit.SendRate``); for every request an adapter makes,
the worker commits exactly its readers' ``in_flight`` mark right before it goes out and its
outcome as soon as it answers (``wire.BatchWire``), which is what lets a rerun after a crash
know exactly who got the issue (see ``pressroom.ledger``). The retry policy lives here, once:

- ``Outcome.RETRY``: the recipient goes back to ``pending`` and is retried after an
  exponential backoff with jitter (at least the provider's ``Retry-After``, which also holds
  the whole bucket). When ``sending.max_attempts`` or ``sending.max_retry_time`` is used up
  the recipient is *deferred*: it stays ``pending`` with its last error and the run stops
  (exit 1), so a relay that is down for an hour loses nobody; the next run starts each
  pending row's attempts and retry window afresh;
- ``Outcome.UNCERTAIN`` (the request may have reached the provider, no answer came back: a
  read timeout, a connection dropped mid-request): the row becomes ``uncertain``, like a row
  left in flight by a crash: reported and listed, sent again only with ``--resend-uncertain``,
  so nobody is mailed twice. ``sending.retry_uncertain`` treats it as ``RETRY`` instead;
- ``Outcome.PERMANENT``: that recipient fails with the provider's reason; the run goes on
  (``SendResult.suppress`` adds it to the suppression list as bounced, once per batch);
- ``ProviderAuthError`` (or any ``ProviderError`` an adapter raises, which promises that
  nothing of the request that raised it went out): that request's readers go back to
  ``pending``, those of earlier requests of the batch keep their recorded outcome, and the
  run stops;
- ``sending.max_consecutive_failures`` requests in a row with nothing accepted (retried,
  failed or uncertain alike) pause the run; what is left stays ``pending`` for the next run.
  ``sending.max_consecutive_uncertain`` (3) requests in a row that got no answer pause it much
  sooner, counted per request as each answers (also within a batch): a provider that stops
  answering must not turn the whole list uncertain.

``only`` narrows the run to a segment (``--list``/``--tag``): rows outside it stay
``pending`` and the issue stays open until a later run sends them.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import requests

from pressroom.config import Config
from pressroom.delivery import ledger as L
from pressroom.delivery.freeze import RunLock as RunLock  # send_mod.RunLock, send_mod.freeze
from pressroom.delivery.freeze import freeze as freeze
from pressroom.delivery.ledger import FrozenIssue, Ledger, Row, Update
from pressroom.delivery.message import RecipientFactory
from pressroom.delivery.providers.base import (
    Cancelled,
    Outcome,
    Provider,
    Recipient,
    SendResult,
)
from pressroom.delivery.ratelimit import SendRate
from pressroom.delivery.wire import Answer, BatchWire, Done
from pressroom.errors import LedgerError, ProviderError


def make_provider(
    config: Config,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> Provider:
    """The provider ``name`` (default ``sending.provider``) with its settings and secrets."""
    from pressroom.delivery import providers

    name = name or config.sending.provider
    cls = providers.get(name, where="--provider" if name != config.sending.provider else "")
    settings = config.provider_settings(name)
    # a provider that writes files and has no folder of its own uses the top-level outbox:
    if dataclasses.is_dataclass(settings) and getattr(settings, "outbox", "") is None:
        settings = dataclasses.replace(settings, outbox=config.outbox)  # type: ignore[type-var]
    # and one that reads a bounce mailbox (smtp) reads the one bounces.imap names:
    if getattr(settings, "bounce_mailbox", "") is None and config.bounces.imap is not None:
        settings = dataclasses.replace(settings, bounce_mailbox=config.bounces.imap)
    return cls.from_env(settings, os.environ if env is None else env, session)


# --- options, progress, summary ----------------------------------------------------------


@dataclass(frozen=True)
class SendOptions:
    """How one run sends; ``from_config`` reads ``sending.*``."""

    rate: float = 0.0  # recipients per second; 0 = unlimited
    concurrency: int = 4
    batch_size: int = 100
    max_attempts: int = 5
    max_retry_time: float = 600.0
    max_consecutive_failures: int = 50
    max_consecutive_uncertain: int = 3
    limit: int | None = None  # at most this many new recipients in this run
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    retry_uncertain: bool = False  # UNCERTAIN is retried like RETRY (risking a duplicate)

    @classmethod
    def from_config(
        cls, config: Config, provider: Provider, *, limit: int | None = None, **overrides: Any
    ) -> SendOptions:
        """The run's options from ``sending.*`` and the provider's batch limit."""
        s = config.sending
        values: dict[str, Any] = {
            "rate": s.rate.per_second,
            "concurrency": s.concurrency,
            "batch_size": max(1, provider.batch_limit),
            "max_attempts": s.max_attempts,
            "max_retry_time": s.max_retry_time.total_seconds(),
            "max_consecutive_failures": s.max_consecutive_failures,
            "max_consecutive_uncertain": s.max_consecutive_uncertain,
            "retry_uncertain": s.retry_uncertain,
            "limit": limit,
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for the progress display."""

    done: int  # sent + failed + uncertain + skipped in this run
    sent: int
    failed: int
    todo: int  # recipients this run set out to send
    elapsed: float
    rate: float  # sent per second
    eta: float | None  # seconds
    uncertain: int = 0  # no answer: held, not resent


@dataclass
class Summary:
    """What one run did; the report is written from it."""

    issue: int
    provider: str
    todo: int = 0
    sent: int = 0
    failed: int = 0
    uncertain: int = 0  # no answer from the provider: held as uncertain, not resent
    dropped: int = 0  # uncertain readers settled unsent by this run's --drop-uncertain
    skipped: int = 0  # unsubscribed after the freeze
    retried: int = 0  # attempts that ended in RETRY
    requests: int = 0
    elapsed: float = 0.0
    waited: float = 0.0  # seconds the rate limit held workers back
    paused: str | None = None
    deferred: list[tuple[str, str]] = field(default_factory=list)  # retries used up: pending
    outside: int = 0  # pending rows outside this run's segment (--list/--tag), left pending
    stopped: str | None = None
    interrupted: bool = False  # Ctrl-C or SIGTERM: stopped cleanly, resumable
    error: ProviderError | None = None  # what stopped the run, when a provider did
    failures: list[tuple[str, str]] = field(default_factory=list)
    uncertainties: list[tuple[str, str]] = field(default_factory=list)  # (email, reason)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


# --- the loop ---------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        ledger: Ledger,
        frozen: FrozenIssue,
        provider: Provider,
        factory: RecipientFactory,
        options: SendOptions,
        *,
        is_suppressed: Callable[[str], bool],
        only: Callable[[str], bool] | None,
        on_suppress: Callable[[list[tuple[str, str]]], None] | None,
        progress: Callable[[Progress], None] | None,
        clock: Callable[[], float],
        wall: Callable[[], float],
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        self.ledger = ledger
        self.frozen = frozen
        self.provider = provider
        self.factory = factory
        self.o = options
        self.is_suppressed = is_suppressed
        self.only = only
        self.on_suppress = on_suppress
        self.progress = progress
        self.clock = clock
        self.wall = wall
        self.stopping = threading.Event()
        # the real clock's waits (a send-rate slot an hour away at 1/h, a Retry-After) end as
        # soon as the run stops: Ctrl-C or a cron timeout's SIGTERM must not wait them out
        self.sleep: Callable[[float], None] = self._nap if sleep is time.sleep else sleep
        self.rng = rng
        self.bucket = SendRate(options.rate, options.batch_size, clock=clock, sleep=self.sleep)
        self.summary = Summary(frozen.number, provider.name)
        self.retries: list[tuple[float, int, list[Row]]] = []  # (due, seq, rows) heap
        self.seq = 0
        self.consecutive = 0
        self.consecutive_uncertain = 0
        self.counting = threading.Lock()

    def _nap(self, seconds: float) -> None:
        """``time.sleep`` that ends when the run is stopping."""
        self.stopping.wait(seconds)

    # runs in a worker thread
    def work(self, rows: list[Row]) -> Done:
        done = Done(rows, [], [], [], 0, [], 0.0, None)
        if self.stopping.is_set():
            done.cancelled = True
            return done
        wire = BatchWire(self, rows, done)
        try:
            recipients = [self.factory.make(r.email, r.name, r.variant) for r in rows]
            try:
                results = self.provider.send(recipients, wire)
            except Cancelled:
                # stopping: requests already answered are recorded; the rest never went out
                done.cancelled = not done.answers
                return done
            except ProviderError as e:
                # the request that raised went out and was refused: its rows stay pending,
                # and so do those the adapter never sent; earlier answers are recorded already
                wire.abandon(L.PENDING, e.message)
                done.provider_error = e
                self.stopping.set()
                return done
            except Exception as e:
                # an adapter bug: what was on the wire may have gone out, so it is uncertain
                reason = self.provider.redact(f"{type(e).__name__}: {e}")[:300]
                for row, _ in list(wire.on_wire.values()):
                    done.uncertain.append((row.email, reason))
                wire.abandon(L.UNCERTAIN, reason)
                done.crash = e
                self.stopping.set()
                return done
            wire.finish(results)
        except LedgerError as e:
            done.crash = e
            self.stopping.set()
        return done

    def classify(
        self,
        rows: list[Row],
        results: Sequence[SendResult],
        started: float,
        now: float,
        done: Done,
    ) -> list[Update]:
        o = self.o
        by_email: dict[str, SendResult] | None = None  # only when results are out of order
        updates = []
        hold = None
        n = len(results)
        for i, row in enumerate(rows):
            res = results[i] if i < n and results[i].email == row.email else None
            if res is None:
                if by_email is None:
                    by_email = {r.email.lower(): r for r in results}
                # the request went out and the adapter said nothing about this recipient
                res = by_email.get(row.email.lower()) or SendResult(
                    row.email,
                    Outcome.UNCERTAIN,
                    error="the provider adapter gave no result for this recipient",
                )
            attempts = row.attempts + 1
            first = row.first_try if row.first_try is not None else started
            outcome = res.outcome
            if outcome is Outcome.UNCERTAIN and o.retry_uncertain:
                outcome = Outcome.RETRY  # the publisher accepts the risk of a duplicate
            if outcome is Outcome.SENT:
                updates.append(Update(row.id, L.SENT, res.message_id, None))
                done.sent += 1
            elif outcome is Outcome.UNCERTAIN:
                reason = f"possibly delivered, not resent: {res.error or 'no answer'}"
                updates.append(Update(row.id, L.UNCERTAIN, None, reason))
                done.uncertain.append((row.email, reason))
            elif outcome is Outcome.RETRY:
                reason = res.error or "temporary failure"
                # a provider that said when to come back (429 + Retry-After) is throttling, not
                # failing: that costs time (max_retry_time), not attempts
                throttled = res.retry_after is not None
                # a Retry-After that ends past the retry window (a day, 10^29 s) would keep the
                # run asleep for nothing: the next run is when this reader is tried again
                waited = now + (res.retry_after or 0.0) - first
                if waited >= o.max_retry_time or (attempts >= o.max_attempts and not throttled):
                    # a temporary failure stays temporary: the row stays pending for a later
                    # run (never settled as failed: nothing could resend it then)
                    why = f"deferred after {attempts} attempts: {reason}"
                    updates.append(Update(row.id, L.PENDING, None, why))
                    done.deferred.append((row.email, reason))
                else:
                    updates.append(Update(row.id, L.PENDING, None, reason))
                    delay = min(o.backoff_cap, o.backoff_base * 2 ** (attempts - 1))
                    delay = delay * (0.5 + self.rng.random() / 2)  # jitter
                    if res.retry_after is not None:
                        delay = max(delay, res.retry_after)
                        hold = max(hold or 0.0, res.retry_after)
                    done.retry.append(
                        (Row(row.id, row.email, row.name, row.variant, attempts, first), delay)
                    )
            else:  # PERMANENT (FATAL is raised as ProviderAuthError by adapters)
                reason = res.error or "rejected by the provider"
                updates.append(Update(row.id, L.FAILED, None, reason))
                done.failed.append((row.email, reason))
                if res.suppress:
                    done.suppress.append(row.email)
        if hold:
            done.hold = max(done.hold or 0.0, hold)
            self.bucket.hold(hold)
        return updates

    # main thread
    def batches(self) -> Iterator[list[Row]]:
        """Fresh batches from the ledger, one audience variant each (so that a batch is one
        provider request), skipping recipients who unsubscribed meanwhile."""
        taken = 0
        limit = self.o.limit
        by_variant: dict[str, list[Row]] = {}
        skipped: list[Update] = []
        for row in self.ledger.iter_pending(self.frozen.number):
            if self.only is not None and not self.only(row.email):
                self.summary.outside += 1  # not in this run's segment: stays pending
                continue
            if self.is_suppressed(row.email):
                skipped.append(
                    Update(row.id, L.SKIPPED, error="unsubscribed after the issue was frozen")
                )
                if len(skipped) >= 1000:
                    self._skip(skipped)
                    skipped = []
                continue
            if limit is not None and taken >= limit:
                break
            taken += 1
            # attempts and the retry window count from this run: a row deferred by an
            # earlier run (a relay down for hours) gets its full allowance again
            batch = by_variant.setdefault(row.variant, [])
            batch.append(Row(row.id, row.email, row.name, row.variant, 0, None))
            if len(batch) >= self.o.batch_size:
                if skipped:
                    self._skip(skipped)
                    skipped = []
                del by_variant[row.variant]
                yield batch
        if skipped:
            self._skip(skipped)
        yield from by_variant.values()

    def _skip(self, updates: list[Update]) -> None:
        self.ledger.record(updates, self.wall())
        self.summary.skipped += len(updates)

    def todo(self) -> int:
        if self.only is not None:
            n = sum(1 for e in self.ledger.emails_in(self.frozen.number, L.PENDING) if self.only(e))
        else:
            n = self.ledger.counts(self.frozen.number)[L.PENDING]
        return min(n, self.o.limit) if self.o.limit is not None else n

    def execute(self) -> Summary:
        s = self.summary
        s.todo = self.todo()
        start = self.clock()
        fresh = self.batches()
        fresh_left = True
        outstanding: set[Future[Done]] = set()
        stop = False
        pool = ThreadPoolExecutor(self.o.concurrency, thread_name_prefix="send")
        try:
            try:
                while True:
                    while not stop and len(outstanding) < self.o.concurrency * 2:
                        rows = self._due_retry()
                        if rows is None and fresh_left:
                            rows = next(fresh, None)
                            fresh_left = rows is not None
                        if rows is None:
                            break
                        outstanding.add(pool.submit(self.work, rows))
                    if not outstanding:
                        if stop or not self.retries:
                            break
                        self.sleep(min(0.5, max(0.0, self.retries[0][0] - self.clock())))
                        continue
                    timeout = 0.5
                    if self.retries:
                        timeout = min(timeout, max(0.01, self.retries[0][0] - self.clock()))
                    finished, outstanding = wait(
                        outstanding, timeout=timeout, return_when=FIRST_COMPLETED
                    )
                    for fut in finished:
                        stop = self._absorb(fut.result()) or stop
                    self._tick(start)
            except KeyboardInterrupt:
                # Ctrl-C / SIGTERM: batches not yet started stay pending; those in flight
                # finish and record their results before the pool closes
                self.stopping.set()
                s.interrupted = True
            except BaseException:
                self.stopping.set()
                raise
        finally:
            self._drain(pool)
        if s.interrupted:
            for fut in outstanding:
                if fut.done() and fut.exception() is None:
                    self._absorb(fut.result())
        s.elapsed = self.clock() - start
        if self.retries and (s.paused or s.stopped or s.interrupted or s.deferred):
            self.retries.clear()  # their rows are pending in the ledger: the next run takes them
        self._tick(start)
        return s

    def _drain(self, pool: ThreadPoolExecutor) -> None:
        """Wait for the requests in flight to be answered and recorded, whatever happens.

        A second Ctrl-C (or SIGTERM) while they finish does not cut the wait short: the
        worker threads would finish their requests anyway (the interpreter joins them at
        exit) but with the ledger closed under them, so answers would be lost and the report
        never written. The wait goes on (SIGKILL still ends it: the ledger then holds those
        readers as uncertain)."""
        while True:
            try:
                pool.shutdown(wait=True)
                return
            except KeyboardInterrupt:
                self.stopping.set()
                self.summary.interrupted = True

    def _absorb(self, done: Done) -> bool:
        """Account for one finished batch; True when the run must stop dispatching."""
        s = self.summary
        if done.cancelled:
            return True
        s.requests += len(done.answers)
        s.waited += done.waited
        # what the batch's answered requests did counts even when a later one stopped the run
        s.sent += done.sent
        s.failed += len(done.failed)
        s.failures.extend(done.failed)
        s.uncertain += len(done.uncertain)
        s.uncertainties.extend(done.uncertain)
        s.retried += len(done.retry)
        s.deferred.extend(done.deferred)
        if done.suppress and self.on_suppress is not None:
            # one rewrite of the suppression file per batch, not per bounce
            self.on_suppress([(email, "bounced") for email in done.suppress])
        now = self.clock()
        # retries of one batch go out together as one (smaller) batch after their delay
        if done.retry and done.provider_error is None and done.crash is None:
            due = now + max(d for _, d in done.retry)
            self.seq += 1
            heapq.heappush(self.retries, (due, self.seq, [r for r, _ in done.retry]))
        if done.provider_error is not None:
            s.stopped = done.provider_error.message
            s.error = done.provider_error
            return True
        if done.crash is not None:
            s.stopped = f"{type(done.crash).__name__}: {done.crash}"
            return True
        if done.deferred:
            # out of attempts or time: the provider is not coming back within this run
            self.stopping.set()
            return True
        return self.summary.paused is not None

    # any thread, as each request is answered
    def count(self, answer: Answer) -> None:
        """Count requests in a row with nothing accepted; pause the run at a limit."""
        with self.counting:
            if self.summary.paused is not None:
                return
            if answer.sent:
                self.consecutive = 0
                self.consecutive_uncertain = 0
                return
            paused = None
            if answer.uncertain:
                self.consecutive_uncertain += 1
                if self.consecutive_uncertain >= self.o.max_consecutive_uncertain:
                    paused = (
                        f"{self.consecutive_uncertain} requests in a row got no answer "
                        f"(sending.max_consecutive_uncertain); last: {answer.error or '?'}"
                    )
            self.consecutive += 1
            if paused is None and self.consecutive >= self.o.max_consecutive_failures:
                paused = (
                    f"{self.consecutive} requests in a row failed "
                    f"(sending.max_consecutive_failures); last error: {answer.error or '?'}"
                )
            if paused is not None:
                self.summary.paused = paused
                self.stopping.set()

    def _due_retry(self) -> list[Row] | None:
        if self.retries and self.retries[0][0] <= self.clock():
            return heapq.heappop(self.retries)[2]
        return None

    def _tick(self, start: float) -> None:
        if self.progress is None:
            return
        s = self.summary
        elapsed = self.clock() - start
        done = s.sent + s.failed + s.uncertain
        rate = s.sent / elapsed if elapsed > 0 else 0.0
        left = max(0, s.todo - done - s.skipped)
        # the first batches go out in the bucket's initial burst, far above the configured
        # rate: the rest cannot go faster than sending.rate
        pace = min(rate, self.o.rate) if self.o.rate > 0 else rate
        eta = left / pace if pace > 0 else None
        self.progress(
            Progress(done + s.skipped, s.sent, s.failed, s.todo, elapsed, rate, eta, s.uncertain)
        )


def run(
    ledger: Ledger,
    frozen: FrozenIssue,
    provider: Provider,
    factory: RecipientFactory,
    options: SendOptions,
    *,
    is_suppressed: Callable[[str], bool] = lambda email: False,
    only: Callable[[str], bool] | None = None,
    on_suppress: Callable[[list[tuple[str, str]]], None] | None = None,
    progress: Callable[[Progress], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    seed: int | None = None,
) -> Summary:
    """Send every pending recipient of ``frozen`` through ``provider``; returns the summary.

    ``on_suppress`` gets the (email, reason) pairs a batch's bounces add to the suppression
    list, once per batch. ``only`` (a segment: ``--list``/``--tag``) picks who is sent in this
    run; the other pending rows are left for a later run.
    """
    return _Run(
        ledger,
        frozen,
        provider,
        factory,
        options,
        is_suppressed=is_suppressed,
        only=only,
        on_suppress=on_suppress,
        progress=progress,
        clock=clock,
        wall=wall,
        sleep=sleep,
        rng=random.Random(seed),
    ).execute()


def send_one(provider: Provider, recipient: Recipient) -> SendResult:
    """One message outside the ledger (``--test-to``)."""
    results = provider.send([recipient])
    return results[0] if results else SendResult(recipient.email, Outcome.RETRY, error="no result")
