"""Work split over forked worker processes, so a cold run over a large folder uses every core.

Parsing 10,000 article files (``content.cache.parse_in_processes``) and rendering a few hundred
feeds (``feeds.builder``) are pure Python and CPU-bound; threads would share one core. Workers
are forked, so they inherit the parent's settings, loaded modules and articles without
pickling them; only each part's result travels back. ``PRESSROOM_WORKERS=N`` sets the number
of processes (1: none).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_TASK: Callable[[Any], Any] | None = None  # what a forked worker runs: set before the fork


class WorkersLost(Exception):
    """A worker process died (killed, out of memory) before its part was done."""


def workers() -> int:
    """How many processes may work: ``PRESSROOM_WORKERS`` (0 or 1: none besides this one),
    else the CPUs this may use."""
    wanted = os.environ.get("PRESSROOM_WORKERS", "").strip()
    if wanted.isascii() and wanted.isdecimal():
        return max(1, int(wanted))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def forked_map(task: Callable[[T], R], parts: Sequence[T], processes: int) -> list[R] | None:
    """``[task(part) for part in parts]`` computed by ``processes`` forked workers, in order.

    None when that is not possible or not safe here (see ``forked_results``); the caller then
    does the work itself. An exception raised by ``task`` in a worker is raised here; a
    worker that dies raises ``WorkersLost`` (its part may be half done: the caller decides
    whether doing it again is safe).
    """
    results = forked_results(task, parts, processes)
    if results is None:
        return None
    with results:
        return list(results)


def forked_results(task: Callable[[T], R], parts: Sequence[T], processes: int) -> Results[R] | None:
    """Each part's ``task(part)``, computed by ``processes`` forked workers and handed out in
    order as soon as it is done, so the caller works on the first parts while the workers
    compute the next ones.

    None when that is not possible or not safe here: fewer than two processes, no ``fork``
    (Windows, macOS spawn), a process running other threads (a fork copies their locks
    mid-use), or no processes to be had. Workers die with the parent: they hold copies of its
    file locks (``feeds.lock``, ``send.lock``), which a worker left running would keep held.
    """
    global _TASK
    if (
        processes < 2
        or len(parts) < 2
        or threading.active_count() > 1
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return None
    _TASK = task
    # Ctrl-C waits until the pool has started: one between two forks left the workers
    # without the thread that stops them, and the run waited for them for ever. Workers
    # ignore it (they inherit the blocked signal): the parent stops them.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    pool: ProcessPoolExecutor | None = None
    try:
        pool = ProcessPoolExecutor(
            min(processes, len(parts)),
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )
        # With fork every worker starts at the first submit, with its own copy of _TASK.
        try:
            futures = [pool.submit(_run, part) for part in parts]
        except OSError:  # no processes to be had (fork refused)
            pool.shutdown(wait=True, cancel_futures=True)
            return None
        except BrokenProcessPool as e:  # a worker died already: some parts may have run
            pool.shutdown(wait=True, cancel_futures=True)
            raise WorkersLost(str(e) or "a worker process died") from None
    finally:
        _TASK = None
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a Ctrl-C meanwhile: raised here
        except BaseException:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            raise
    return Results(pool, futures)


class Results(Iterator[R]):
    """The workers' answers in order (``forked_results``). The pool stops at the last one, at
    ``close()`` or at the end of a ``with`` block, whichever comes first; a part not yet
    started then never runs."""

    def __init__(self, pool: ProcessPoolExecutor, futures: list[Future[R]]) -> None:
        self._pool: ProcessPoolExecutor | None = pool
        self._futures = futures
        self._next = 0

    def __next__(self) -> R:
        if self._next >= len(self._futures):
            self.close()
            raise StopIteration
        future = self._futures[self._next]
        self._next += 1
        try:
            return future.result()
        except BrokenProcessPool as e:
            self.close()
            raise WorkersLost(str(e) or "a worker process died") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Results[R]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _start_worker(parent: int) -> None:
    """In a new worker: be killed with the parent, and stop now if it is already gone;
    ignore Ctrl-C (the parent stops the workers when it is interrupted)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    with contextlib.suppress(Exception):  # Linux; elsewhere the parent check below only
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _run(part: Any) -> Any:
    task = _TASK
    assert task is not None  # set by the parent before it forked
    return task(part)
