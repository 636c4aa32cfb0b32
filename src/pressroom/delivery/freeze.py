"""Before the first request of a send: the run's lock, and the issue frozen for its list.

``RunLock`` keeps two sends of one publication from running at once (two runs could mail a
reader twice); ``freeze`` writes every reader of ``sending.list`` into the ledger with the
variant they get, before anything is sent, so a run killed at any point resumes exactly.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pressroom.config import Config
from pressroom.delivery.ledger import FrozenIssue, Ledger
from pressroom.models import RenderedIssue


def freeze(
    ledger: Ledger,
    config: Config,
    rendered: RenderedIssue,
    *,
    window_end: datetime,
    now: datetime,
    on_problem: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> FrozenIssue:
    """Freeze ``rendered`` for everyone on ``sending.list``: the issue series belongs to it.

    A run may send to a segment only (``run(only=...)``); the frozen set is always the whole
    list, so the issue is complete only when every reader of the list is settled.
    """
    from pressroom.audience.subscribers import iter_subscribers

    chosen = config.sending.list
    subs = iter_subscribers(config, list_=chosen, on_problem=on_problem, on_warning=on_warning)
    recipients = ((s.email, s.name, rendered.variant_for(s.tags).key) for s in subs)
    return ledger.freeze(rendered, recipients, window_end=window_end, now=now, list_=chosen)


class RunLock:
    """An exclusive, non-blocking lock on ``<state>/send.lock`` for the whole run."""

    def __init__(self, state: Path | str) -> None:
        self.path = Path(state) / "send.lock"
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        from pressroom.errors import LockError, write_fix

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LockError(
                f"{self.path}: cannot create the send lock ({e.strerror or e}); "
                f"{write_fix(e, self.path.parent)} (the state: setting names it)"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise LockError(
                f"another pressroom send is running{who}: {self.path} is locked; wait for it "
                f"to finish (two runs at once could mail people twice)"
            ) from None
        with contextlib.suppress(OSError):  # the pid only names the holder; the flock locks
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock; a killed process releases it too
            self.fd = None
