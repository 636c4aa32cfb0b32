"""The send rate: a token bucket shared by every worker thread (``sending.rate``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Recipients per second shared by every worker; ``hold`` pauses everyone (Retry-After)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = max(burst, rate, 1.0)
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.last = clock()
        self.hold_until = 0.0
        self.lock = threading.Lock()

    def acquire(self, n: int) -> float:
        """Wait until ``n`` recipients may be sent; returns the seconds waited."""
        with self.lock:
            now = self.clock()
            wait_for = max(0.0, self.hold_until - now)
            if self.rate > 0:
                self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
                self.last = now
                self.tokens -= n  # reserve now, so later callers queue behind this batch
                if self.tokens < 0:
                    wait_for = max(wait_for, -self.tokens / self.rate)
        if wait_for > 0:
            self.sleep(wait_for)
        return wait_for

    def hold(self, seconds: float) -> None:
        """Nobody sends for ``seconds`` (the provider said when to come back)."""
        with self.lock:
            self.hold_until = max(self.hold_until, self.clock() + seconds)
