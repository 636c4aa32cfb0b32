"""The send rate (``sending.rate``): a sliding one-second window shared by every worker.

A token bucket that starts full lets its whole capacity out at once and then the rate on top
of it: with ``rate: 100/s`` and room for one batch per worker, 4,000 readers left in the first
second. A provider account with a send-rate cap (SES starts at 14/s) throttles or pauses such
a burst. Here every request reserves its recipients in a window instead: over any one second
at most ``rate`` recipients go out, from the first second on.

A request larger than ``rate`` (a Mailgun batch of 1,000 at 100/s) cannot fit in one second.
The window then stretches to ``batch / rate`` seconds and holds one such request: over any
second at most one batch goes out, and over any longer span no more than ``rate`` per second.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable


class SendRate:
    """At most ``rate`` recipients per second (``batch`` per ``batch / rate`` seconds when a
    batch is larger than ``rate``); ``hold`` pauses everyone (Retry-After)."""

    def __init__(
        self,
        rate: float,
        batch: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.window = max(1.0, batch / rate) if rate > 0 else 0.0
        self.capacity = rate * self.window
        self.clock = clock
        self.sleep = sleep
        self.sent: collections.deque[tuple[float, int]] = collections.deque()  # (when, n)
        self.in_window = 0  # recipients in ``sent``
        self.hold_until = 0.0
        self.next_free = 0.0  # the last request's departure + its recipients / rate
        self.lock = threading.Lock()  # held while a request waits for its slot: one at a time
        self.holding = threading.Lock()

    def acquire(
        self,
        n: int,
        then: Callable[[], None] | None = None,
        first: Callable[[], None] | None = None,
    ) -> float:
        """Wait until ``n`` recipients may go out, run ``then`` (the in-flight mark), and count
        them as gone out at that moment; returns the seconds waited.

        Callers go one at a time, so every request is counted when it really leaves (after
        the ``then`` that precedes it, an fsync whose time varies), not when it was allowed
        to: a slow mark cannot let two requests out closer together than the window allows.
        ``first`` runs once this caller's turn has come, before it waits (a check that may
        raise, so that a stopping run does not wait out every queued slot).
        """
        with self.lock:
            if first is not None:
                first()
            now = self.clock()
            at = max(now, self.hold_until)
            if self.rate > 0:
                at = self._slot(max(at, self.next_free), min(n, self.capacity), now)
            waited = max(0.0, at - now)
            if waited > 0:
                self.sleep(waited)
            if then is not None:
                then()
            if self.rate > 0:
                left = max(at, self.clock())
                self.sent.append((left, n))
                self.in_window += n
                self.next_free = left + n / self.rate
        return waited

    def _slot(self, at: float, n: float, now: float) -> float:
        """The earliest time from ``at`` when ``n`` more fit in the window (lock held)."""
        sent, window = self.sent, self.window
        while sent and sent[0][0] <= now - window:  # left the window for good
            self.in_window -= sent.popleft()[1]
        if sent:
            at = max(at, sent[-1][0])  # reservations stay in time order
        inside = self.in_window
        for when, k in sent:
            if when > at - window and inside + n <= self.capacity + 1e-9:
                break
            if when > at - window:
                at = when + window  # wait until this reservation leaves the window
            inside -= k
        return at

    def hold(self, seconds: float) -> None:
        """Nobody sends for ``seconds`` (the provider said when to come back)."""
        with self.holding:  # not ``lock``: a worker may be waiting for its slot in there
            self.hold_until = max(self.hold_until, self.clock() + seconds)
