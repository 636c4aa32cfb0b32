"""Files the audience keeps (subscriber lists, suppressions): rewritten whole or not at all.

A rewrite goes to a temporary file beside the old one, is flushed to disk and renamed over it,
so a crash, a full disk or a refused permission leaves the old file as it was; ``locked``
serialises read-modify-write cycles across processes (CLI runs and server workers).
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from pressroom.errors import SubscriberError


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a small CSV file (files we rewrite: main list, suppressions)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SubscriberError(f"{path}: cannot read: {e}") from e
    if not rows:
        return [], []
    return rows[0], [r for r in rows[1:] if r]


def write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write a CSV file so that a crash leaves either the old file or the new one, never half."""
    with atomic_writer(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


class Unchanged(Exception):
    """Raised inside an ``atomic_writer`` block: drop the new file and keep the old one."""


def real_path(path: Path) -> Path:
    """The file a symlink ``path`` points to (``path`` itself when it is no link): a rewrite
    renamed over the link would replace the link, not the file it shares (one suppression
    file linked into two publications would stop learning of either's unsubscribes)."""
    return path.resolve() if path.is_symlink() else path


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[IO[str]]:
    """A text file that replaces ``path`` (the file it links to, if a symlink) only when the
    block ends without an exception."""
    path = real_path(path)
    try:
        _ensure_folder(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise SubscriberError(f"{path}: cannot write: {e.strerror}") from e
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, Unchanged):
            return
        if isinstance(e, OSError):  # disk full, permissions: one clear line, old file intact
            raise SubscriberError(f"{path}: cannot write: {e.strerror}; it is unchanged") from e
        raise
    _fsync_dir(path.parent)


def _ensure_folder(path: Path) -> None:
    if path.parent.exists() and not path.parent.is_dir():
        raise SubscriberError(f"{path}: cannot write: {path.parent} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)


def _fsync_dir(folder: Path) -> None:
    # the rename itself must reach the disk, or a power cut can bring the old file back
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of ``path`` across processes (CLI runs, server workers)."""
    import fcntl

    path = real_path(path)  # beside the real file: where every link to it takes the lock
    try:
        _ensure_folder(path)
        lock = open(path.parent / f".{path.name}.lock", "a")  # noqa: SIM115 - closed below
    except OSError as e:
        raise SubscriberError(f"{path}: cannot write: {e.strerror}") from e
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
