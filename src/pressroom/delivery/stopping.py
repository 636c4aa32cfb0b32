"""Stopping a send cleanly on a signal: Ctrl-C, SIGTERM (cron timeouts, systemd stop) and
SIGHUP (the SSH session or terminal closed) all end the send loop the same way."""

from __future__ import annotations

import contextlib
import os
import signal
import threading


class GracefulStop:
    """Make SIGTERM (cron timeouts, systemd stop) and SIGHUP (the SSH session or terminal
    closed) stop a send like Ctrl-C: cleanly, the answers in flight recorded.

    The first Ctrl-C or SIGTERM raises KeyboardInterrupt in the send loop, which stops
    dispatching and waits for the requests in flight. Another one while they finish, or
    once ``hold()`` says the requests are over, is only acknowledged: raised there it would
    close the ledger under the workers still recording answers and skip the report, while
    the process waits for those requests anyway. SIGKILL still ends it at once (the ledger
    then holds the readers in flight as uncertain).
    """

    def __init__(self) -> None:
        self.raised = False
        self.held = False
        self.previous: dict[int, object] = {}

    def hold(self) -> None:
        self.held = True

    def _handler(self, signum: int, frame: object) -> None:
        if not self.raised and not self.held:
            self.raised = True
            raise KeyboardInterrupt
        # no print() here: a signal handler must not re-enter a buffered stream
        with contextlib.suppress(OSError):
            os.write(
                2,
                b"\nstill finishing: waiting for the requests in flight, then recording them "
                b"and writing the report (kill -9 would leave those readers uncertain)\n",
            )

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                # an ignored signal stays ignored: `nohup pressroom weekly` must survive the
                # terminal closing (SIGHUP), as a background job ignores SIGINT
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self.previous.clear()
