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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from pressroom import __version__, defaults
from pressroom.config import Config
from pressroom.content import articles
from pressroom.errors import FeedError

SAID = ("warning", "error")  # what a record replays, in the order the run said it
_WRITERS = ("feedgen", "lxml", "jinja2")  # the libraries that make the bytes


@dataclass(frozen=True)
class Record:
    """What the last full run reported: its messages and how many feeds it has."""

    said: tuple[tuple[str, str], ...]
    feeds: int


def replay(config: Config, now: datetime, out: Path) -> Record | None:
    """The record of the last full run when this run would do exactly the same, else None."""
    try:
        data = json.loads(_path(config, out).read_bytes())
        files: dict[str, Any] = data["files"]
        if any(_stat(Path(name)) != seen for name, seen in files.items()):
            return None  # a feed or the state changed since: the full run sees to it
        if data["stamp"] != _stamp(config, out) or not _inside(now, data["window"]):
            return None
        if data["inputs"] is None or data["inputs"] != articles.fingerprint(config, now):
            return None
        said = tuple((str(kind), str(text)) for kind, text in data["said"] if kind in SAID)
        return Record(said, int(data["feeds"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no record, or one this version cannot read: a full run


def forget(config: Config, out: Path) -> None:
    """Drop the record before a full run changes anything it describes."""
    with contextlib.suppress(OSError):
        _path(config, out).unlink(missing_ok=True)


def remember(
    config: Config,
    out: Path,
    loaded: articles.LoadResult,
    said: Sequence[tuple[str, str]],
    outputs: Sequence[Path],
    manifest: Path,
    feeds: int,
) -> None:
    """Keep the record of a full run that just finished (when every source could vouch for
    what it read); ``outputs`` are the files it wrote or found unchanged."""
    if loaded.inputs is None or not outputs:
        return
    watched = [*outputs, manifest, *_state_files(config)]
    data = {
        "stamp": _stamp(config, out),
        "inputs": loaded.inputs,
        "window": [None if t is None else t.isoformat() for t in loaded.window],
        "said": [list(item) for item in said],
        "feeds": feeds,
        "files": {str(path): _stat(path) for path in watched},
    }
    from pressroom.feeds.builder import write_if_changed

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


def _stamp(config: Config, out: Path) -> str:
    """Everything besides the articles that the run's output depends on."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((__version__, config, str(out.resolve()))).encode())
    for library in _WRITERS:  # an upgrade replaces the files: their times change
        spec = find_spec(library)
        origin = spec.origin if spec is not None else None
        h.update(f"{library}\0{origin}\0{_stat(Path(origin)) if origin else None}\n".encode())
    # the templates, and pressroom's own code (an upgrade or a local edit of the same version)
    for folder in (config.digest.templates, defaults.templates(), Path(__file__).parents[1]):
        for base, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                h.update(f"{base}/{name}\0{_stat(Path(base, name))}\n".encode())
    return h.hexdigest()


def _inside(now: datetime, window: list[str | None]) -> bool:
    """Whether ``now`` lies where the recorded run's files give the same articles."""
    last, following = (None if t is None else datetime.fromisoformat(t) for t in window)
    return (last is None or last <= now) and (following is None or now < following)
