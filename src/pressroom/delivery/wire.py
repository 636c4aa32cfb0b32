"""The send loop's side of the provider ``Wire``: what happens around each request.

An adapter announces every request it makes (``providers.base`` says who owns the split);
``BatchWire`` turns each announcement into the loop's work for one batch of the ledger:
``sending`` waits for the rate limit and commits exactly that request's readers in flight,
``settled`` classifies and commits its outcome at once (so a stop error raised by a later
request of the batch never discards it), ``returned`` puts the readers of a request the
provider refused whole back to pending before the adapter splits it. ``Done`` is what the
worker hands back to the loop for the batch; ``Answer`` is one request, as the
consecutive-failure counters see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pressroom.delivery import ledger as L
from pressroom.delivery.ledger import Row, Update
from pressroom.delivery.providers.base import Cancelled, Outcome, Recipient, SendResult, Wire
from pressroom.errors import ProviderError

if TYPE_CHECKING:
    from pressroom.delivery.send import _Run


@dataclass(slots=True)
class Answer:
    """One provider request of a batch, as the consecutive-failure counters see it."""

    sent: int
    uncertain: bool
    error: str | None  # the last reason given, for the pause message


@dataclass(slots=True)
class Done:
    """What a worker reports back for one batch."""

    rows: list[Row]
    results: list[SendResult]
    retry: list[tuple[Row, float]]  # (row with its new attempt count, delay)
    failed: list[tuple[str, str]]
    sent: int
    suppress: list[str]
    waited: float
    hold: float | None
    uncertain: list[tuple[str, str]] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)  # one per provider request, in order
    provider_error: ProviderError | None = None  # the request that raised it sent nothing
    crash: BaseException | None = None
    cancelled: bool = False  # the run was stopping: nothing of the batch went out


class BatchWire(Wire):
    """The send loop's side of ``Wire`` for one batch: rate limit and ledger, per request."""

    def __init__(self, run: _Run, rows: list[Row], done: Done) -> None:
        self.run = run
        self.rows = {row.email: row for row in rows}
        self.done = done
        self.on_wire: dict[str, tuple[Row, float]] = {}  # sent, no outcome yet: (row, started)
        self.settled_emails: set[str] = set()

    def _row(self, email: str) -> Row | None:
        row = self.rows.get(email)
        if row is None:  # an adapter that changed the case of an address
            row = next((r for e, r in self.rows.items() if e.lower() == email.lower()), None)
        return row

    def sending(self, recipients: Sequence[Recipient]) -> None:
        run = self.run
        rows = [row for r in recipients if (row := self._row(r.email)) is not None]

        def check() -> None:
            if run.stopping.is_set():  # e.g. stopped while this request waited for its turn
                raise Cancelled("the run is stopping")

        check()

        def mark() -> None:
            check()
            started = run.wall()
            # committed (fsynced) after the request is built and right before it goes out:
            # after a crash, exactly the readers of requests that were on the wire are uncertain
            run.ledger.mark_in_flight(rows, started)
            for row in rows:
                self.on_wire[row.email] = (row, started)

        self.done.waited += run.bucket.acquire(len(rows), mark, check)

    def settled(self, results: Sequence[SendResult]) -> None:
        rows: list[Row] = []
        mine: list[SendResult] = []
        started = None
        for res in results:
            row = self._row(res.email)
            if row is None or row.email in self.settled_emails:
                continue
            entry = self.on_wire.pop(row.email, None)
            if entry is not None:
                started = entry[1] if started is None else min(started, entry[1])
            rows.append(row)
            mine.append(res)
            self.settled_emails.add(row.email)
        if not rows:
            return
        run = self.run
        now = run.wall()
        before = (self.done.sent, len(self.done.uncertain))
        updates = run.classify(rows, mine, started if started is not None else now, now, self.done)
        run.ledger.record(updates, now)
        self.done.results.extend(mine)
        errors = [r.error for r in mine if r.error]
        answer = Answer(
            self.done.sent - before[0],
            len(self.done.uncertain) > before[1],
            errors[-1] if errors else None,
        )
        self.done.answers.append(answer)
        run.count(answer)  # may stop the run before this batch's next request

    def returned(self, recipients: Sequence[Recipient]) -> None:
        rows = []
        for r in recipients:
            row = self._row(r.email)
            if row is not None and self.on_wire.pop(row.email, None) is not None:
                rows.append(row)
        if rows:  # refused whole: nothing went out, the adapter sends them again
            self.run.ledger.record([Update(r.id, L.PENDING) for r in rows], self.run.wall())

    def finish(self, results: Sequence[SendResult]) -> None:
        """After ``send`` returned: settle what the adapter returned but did not report."""
        self.settled(results)
        missing = [row for email, row in self.rows.items() if email not in self.settled_emails]
        if missing:
            # no result: on the wire it may have gone out; otherwise it certainly did not
            self.settled(
                [
                    SendResult(
                        row.email,
                        Outcome.UNCERTAIN if row.email in self.on_wire else Outcome.RETRY,
                        error="the provider adapter gave no result for this recipient",
                    )
                    for row in missing
                ]
            )

    def abandon(self, state: str, reason: str) -> int:
        """Requests on the wire without an outcome (the adapter raised): their rows go to
        ``state``; rows never on the wire stay pending, untouched. Returns how many."""
        rows = [row for row, _ in self.on_wire.values()]
        self.on_wire.clear()
        if rows:
            self.run.ledger.record(
                [Update(r.id, state, error=reason) for r in rows], self.run.wall()
            )
        return len(rows)
