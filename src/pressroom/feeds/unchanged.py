"""A `pressroom feeds` run where nothing changed: known in a walk, without reading an article.

A git hook or a cron job runs ``pressroom feeds`` far more often than anything changes. After
each full run this module keeps a record beside the feed manifest: a digest of every input
(each article file's path, size, times and inode, from ``articles.fingerprint``); a stamp of
everything else the bytes depend on (pressroom's version and source files, the feedgen, lxml
and Jinja installs, the whole resolved config, the output folder, every template file); the
window of clock times in which the same files give the same articles (no article date,
publish or expiry date in between); the warnings and errors the run reported; and the size,
times and inode of every file it wrote or left as it was, of the feed manifest and of the
state database.

The next run compares all of that, cheapest first, and when every part holds, says the same
warnings and errors and the same summary a full run would, and stops: a full run would
render nothing (every feed's fingerprint holds) and write nothing. Any difference, a record
that cannot be read, a source that cannot be fingerprinted (a remote feed) or a file changed
within the last second makes a full run, which records afresh. ``tests/test_feeds_unchanged``
checks that both paths print and leave exactly the same.

The stamp is taken before the full run reads anything and again before the record is kept;
a run that saw a stamped file change (or one changing within the last second) keeps none.
Runs that write feeds hold ``lock`` from the check to the record, so a record never pairs one
run's inputs with another's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pressroom import __version__, defaults
from pressroom.config import Config
from pressroom.content import articles, installed
from pressroom.content.sources.base import RACY_NS
from pressroom.errors import FeedError

SAID = ("warning", "error")  # what a record replays, in the order the run said it


@dataclass(frozen=True)
class Record:
    """What the last full run reported: its messages and how many feeds it has."""

    said: tuple[tuple[str, str], ...]
    feeds: int


@dataclass(frozen=True)
class Stamp:
    """The stamp of everything besides the articles, taken before a full run reads any."""

    digest: str
    racy: bool  # a stamped file changed within RACY_NS: it may change again unseen


@contextlib.contextmanager
def lock(config: Config, wait: Any = None) -> Iterator[None]:
    """Hold ``<state>/feeds.lock`` (blocking): one run at a time writes feeds and records.

    ``wait`` is told when another run holds it. Without a state folder to lock in, the run
    goes on unlocked; it then cannot keep a record either.
    """
    import fcntl

    try:
        config.state.mkdir(parents=True, exist_ok=True)
        handle = open(config.state / "feeds.lock", "a")  # noqa: SIM115 - closed below
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait is not None:
                wait(f"waiting for another run writing feeds ({config.state / 'feeds.lock'})")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def replay(config: Config, now: datetime, out: Path) -> Record | None:
    """The record of the last full run when this run would do exactly the same, else None."""
    try:
        data = json.loads(_path(config, out).read_bytes())
        files: dict[str, Any] = data["files"]
        if any(_stat(Path(name)) != seen for name, seen in files.items()):
            return None  # a feed or the state changed since: the full run sees to it
        if data["stamp"] != begin(config, out).digest or not _inside(now, data["window"]):
            return None
        if data["inputs"] is None or data["inputs"] != articles.fingerprint(config, now, out):
            return None
        said = tuple((str(kind), str(text)) for kind, text in data["said"] if kind in SAID)
        feeds = data["feeds"]
        if not isinstance(feeds, int) or isinstance(feeds, bool) or feeds < 0:
            return None
        return Record(said, feeds)
    except Exception:  # a record is only a shortcut: any doubt about it means a full run
        return None


def forget(config: Config, out: Path) -> None:
    """Drop the record before a full run changes anything it describes."""
    with contextlib.suppress(OSError):
        _path(config, out).unlink(missing_ok=True)


def begin(config: Config, out: Path) -> Stamp:
    """The stamp of everything besides the articles that the run's output depends on."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((__version__, config, str(out.resolve()))).encode())
    racy = time.time_ns() - RACY_NS
    newest = 0

    def add(name: str, path: Path | None) -> None:
        nonlocal newest
        seen = _stat(path) if path is not None else None
        if seen is not None:
            newest = max(newest, seen[1], seen[2])
        h.update(f"{name}\0{path}\0{seen}\n".encode())

    # pressroom's own code, the libraries whose output is in the feeds and the zone rules
    h.update(repr(zoneinfo.TZPATH).encode())
    for name, path in installed.files(config.publication.timezone):
        add(name, path)
    for folder in (config.digest.templates, defaults.templates()):  # every template file
        for path in installed.tree(folder):
            add(path.name, path)
    return Stamp(h.hexdigest(), newest >= racy)


def remember(
    config: Config,
    out: Path,
    stamp: Stamp,
    loaded: articles.LoadResult,
    said: Sequence[tuple[str, str]],
    outputs: Sequence[Path],
    manifest: Path,
    feeds: int,
) -> None:
    """Keep the record of a full run that just finished, whose ``stamp`` was taken before it
    read anything (when every source could vouch for what it read and nothing stamped
    changed meanwhile); ``outputs`` are the files it wrote or found unchanged."""
    if loaded.inputs is None or not outputs or stamp.racy:
        return
    if begin(config, out).digest != stamp.digest:
        return  # a template or an install changed while this run read it
    from pressroom.feeds.builder import INDEX_PAGE, write_if_changed

    # the feeds page is written when absent (a site generator's own one is left alone):
    # watched either way, so its removal or arrival makes a full run
    watched = [*outputs, out / INDEX_PAGE, manifest, *_state_files(config)]
    data = {
        "stamp": stamp.digest,
        "inputs": loaded.inputs,
        "window": list(loaded.window),
        "said": [list(item) for item in said],
        "feeds": feeds,
        "files": {str(path): _stat(path) for path in dict.fromkeys(watched)},
    }
    with contextlib.suppress(OSError, FeedError):  # only saves time: failing costs speed
        write_if_changed(_path(config, out), json.dumps(data, indent=0).encode())


def _path(config: Config, out: Path) -> Path:
    key = hashlib.blake2b(str(out.resolve()).encode(), digest_size=8).hexdigest()
    return config.state / f"unchanged-{key}.json"


def _state_files(config: Config) -> list[Path]:
    """The state database (the parse cache lives there) and its write-ahead log."""
    db = config.state / "state.db"
    return [db, db.with_name("state.db-wal")]


def _stat(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _inside(now: datetime, window: list[float | None]) -> bool:
    """Whether ``now`` lies where the recorded run's files give the same articles (the
    window's ends are POSIX timestamps, compared as instants like ``sources.base.Clock``)."""
    last, following = window
    at = now.timestamp()
    return (last is None or float(last) <= at) and (following is None or at < float(following))
