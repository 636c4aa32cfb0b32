"""The parse cache: a file that has not changed since the last run is not read again.

A warm `pressroom feeds` on a 10,000-file folder used to re-read, re-parse and re-render every
article. This cache keeps each file's parse result (the ``Article`` with its rendered HTML once
rendered, or the ``ArticleError``, or "a draft") and the warnings it gave, in the state
database, keyed by the file's path, size, ``mtime_ns``, ``ctime_ns`` and inode (an editor's
atomic save that restores size and mtime still changes the inode and ctime); a stamp made of
the pressroom version and every setting that shapes parsing guards the whole table, so
changing one of them (or upgrading) parses everything again. Output is exactly a cold run's:
the cached value *is* the cold parse, and its warnings are replayed in order.

A run stores what it parsed and forgets files it no longer saw (a deleted file's article is
never served: lookups only happen for files the walk found). A cache that cannot be read is
rebuilt with a warning, never an error; one that cannot be written only costs speed.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar
from zoneinfo import ZoneInfo

from pressroom.content import installed
from pressroom.content.pool import Results, WorkersLost, forked_results, workers
from pressroom.content.sources.base import RACY_NS
from pressroom.content.text import render_body
from pressroom.errors import ArticleError
from pressroom.models import Article, Author, Image

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parse_cache_v2 (
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (source, path)
);
CREATE TABLE IF NOT EXISTS parse_cache_stamp (source TEXT PRIMARY KEY, stamp TEXT NOT NULL);
"""

Warn = Callable[[str], None]


class Entry(NamedTuple):
    """One file's parse: its result (Article, ArticleError or None) and its warnings."""

    result: Article | ArticleError | None
    warnings: tuple[str, ...]


# Rows are marshalled tuples of plain values, not pickles: a warm run turns 10,000 of them back
# into Articles, and marshal plus the constructor is ~3x faster than unpickling dataclasses.
# Anything the encoding does not know (another renderer, another tzinfo) is simply not cached.


def _storable(value: datetime) -> bool:
    """True when ``_undt(_dt(value))`` gives back an equal value with the same tzinfo type."""
    return isinstance(value.tzinfo, ZoneInfo | timezone)


def _dt(value: datetime | None) -> tuple[str, str, int] | None:
    if value is None:
        return None
    if not isinstance(value.tzinfo, ZoneInfo):
        return (value.isoformat(), "", value.fold)
    return (value.replace(tzinfo=None).isoformat(), value.tzinfo.key, value.fold)


def _undt(value: tuple[str, str, int] | None) -> datetime | None:
    if value is None:
        return None
    text, zone, fold = value
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=ZoneInfo(zone), fold=fold) if zone else moment


def encode(entry: Entry) -> bytes | None:
    """The row for ``entry``, or None when it cannot be stored faithfully."""
    result = entry.result
    if result is None:
        payload: tuple[Any, ...] = ("none",)
    elif isinstance(result, ArticleError):
        payload = ("error", result.location, result.field, result.problem)
    elif (
        result.renderer is render_body
        and _storable(result.published)
        and (result.updated is None or _storable(result.updated))
    ):
        a = result
        image = a.image
        payload = (
            "article", a.id, a.url, a.slug, a.title, _dt(a.published), _dt(a.updated),
            tuple((x.name, x.email, x.url) for x in a.authors), a.categories, a.tags,
            a.summary,
            None if image is None else (
                image.url, image.alt, image.mime_type, image.length, image.width, image.height
            ),
            a.body, a.body_format, a.base_url, a.source, a.__dict__.get("html"),
        )  # fmt: skip
    else:
        return None
    try:
        return marshal.dumps((payload, entry.warnings))
    except ValueError:  # a value marshal does not carry
        return None


def decode(row: bytes) -> Entry:
    payload, warnings = marshal.loads(row)
    kind = payload[0]
    if kind == "none":
        return Entry(None, warnings)
    if kind == "error":
        return Entry(ArticleError(*payload[1:]), warnings)
    (_, id_, url, slug, title, published, updated, authors, categories, tags, summary, image,
     body, body_format, base_url, source, html) = payload  # fmt: skip
    article = Article(
        id=id_,
        url=url,
        slug=slug,
        title=title,
        published=_undt(published) or datetime.min,  # never None: always stored
        updated=_undt(updated),
        authors=tuple(Author(*a) for a in authors),
        categories=categories,
        tags=tags,
        summary=summary,
        image=None if image is None else Image(*image),
        body=body,
        body_format=body_format,
        base_url=base_url,
        source=source,
        renderer=render_body,
    )
    if html is not None:
        article.__dict__["html"] = html  # the cached_property's own slot: rendered already
    return Entry(article, warnings)


def _has_tables(db: sqlite3.Connection) -> bool:
    names = {"parse_cache_v2", "parse_cache_stamp"}
    found = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN (?, ?)", tuple(names)
    ).fetchone()
    return bool(found and found[0] == len(names))


def _key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class ParseCache:
    """Cached parses of one source's files, loaded in one query and saved in one transaction."""

    def __init__(
        self,
        state_db: Path,
        source: str,
        settings: Any,
        warn: Warn,
        *,
        write: bool,
        scanned_at: int | None = None,
        zone: str | None = None,
    ) -> None:
        self.state_db = state_db
        # when the files were stat'ed (time.time_ns): a file changed within RACY_NS before
        # that may change again unseen, however long after the run stores its parse
        self.scanned_at = time.time_ns() if scanned_at is None else scanned_at
        self.write = write
        self.source = source
        # the code that parses and renders (an upgraded sanitiser or Markdown library, new
        # zone rules) parses everything again, as a cold run would
        self.stamp = f"{installed.stamp(zone)}\0{settings!r}"  # the version included
        self.warn = warn
        self._old: dict[str, tuple[tuple[int, int, int, int], bytes]] = {}
        self._new: dict[str, tuple[tuple[int, int, int, int], bytes]] = {}
        self._seen: set[str] = set()
        self._unrendered: list[tuple[str, os.stat_result, Entry]] = []
        self._gone: list[str] = []
        self.rebuilt = False  # the cache could not be read and was started again
        self._load()

    def _load(self) -> None:
        if not self.state_db.exists():
            return
        try:
            with contextlib.closing(sqlite3.connect(self.state_db, timeout=5)) as db:
                if self.write:
                    db.executescript(_SCHEMA)
                elif not _has_tables(db):
                    return  # a dry run or a preview before any cache: it creates nothing
                row = db.execute(
                    "SELECT stamp FROM parse_cache_stamp WHERE source=?", (self.source,)
                ).fetchone()
                if row is None or row[0] != self.stamp:
                    return  # other settings or another version: everything parses again
                self._old = {
                    path: ((size, mtime, ctime, inode), value)
                    for path, size, mtime, ctime, inode, value in db.execute(
                        "SELECT path, size, mtime_ns, ctime_ns, inode, value "
                        "FROM parse_cache_v2 WHERE source=?",
                        (self.source,),
                    )
                }
        except sqlite3.Error as e:
            self._old = {}
            self._reset(f"{self.state_db}: the parse cache cannot be read ({e}); rebuilding it")

    def _reset(self, message: str) -> None:
        self.rebuilt = True
        self.warn(message)
        if not self.write:
            return
        with (
            contextlib.suppress(sqlite3.Error, OSError),
            contextlib.closing(sqlite3.connect(self.state_db, timeout=5)) as db,
        ):
            db.execute("DROP TABLE IF EXISTS parse_cache_v2")
            db.execute("DROP TABLE IF EXISTS parse_cache_stamp")
            db.commit()

    def get(self, path: str, st: os.stat_result) -> Entry | None:
        """The cached parse of ``path`` if the file is unchanged, else None."""
        self._seen.add(path)
        hit = self._old.get(path)
        if hit is None or hit[0] != _key(st):
            return None
        try:
            return decode(hit[1])
        except Exception:  # a damaged row is a miss; the fresh parse replaces it
            return None

    def put(self, path: str, st: os.stat_result, entry: Entry, row: bytes | None = None) -> None:
        """Remember a fresh parse of ``path`` (saved by ``save``); ``row`` is its encoding
        when a worker made it already."""
        self._seen.add(path)
        if self.scanned_at - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
            return
        value = row if row is not None else encode(entry)
        if value is not None:
            self._new[path] = (_key(st), value)

    def served(self, path: str, st: os.stat_result, entry: Entry) -> None:
        """Note an article handed out without its HTML: ``save`` stores it again if a feed
        renders it meanwhile."""
        if "html" not in getattr(entry.result, "__dict__", {"html": None}):
            self._unrendered.append((path, st, entry))

    def walked(self) -> None:
        """The walk is over: the files it did not see are forgotten when the cache is saved."""
        self._gone = [p for p in self._old if p not in self._seen]

    def save(self) -> None:
        """Store this run's fresh parses, with the HTML rendered since loading (by a feed: the
        next run does not render it again), and forget the files the walk did not see; one
        write per run, none when nothing changed."""
        for path, st, entry in self._unrendered:
            if "html" in getattr(entry.result, "__dict__", {}):
                self.put(path, st, entry)
        self._unrendered.clear()
        gone, self._gone = self._gone, []
        if not self._new and not gone and self._old:
            return  # a warm run that changed nothing writes nothing
        self._write(gone)
        self._old.update(self._new)
        self._new = {}

    def _write(self, gone: list[str]) -> None:
        if not self.write:
            return
        try:
            self.state_db.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(self.state_db, timeout=5)) as db:
                db.executescript(_SCHEMA)
                with db:
                    db.execute(
                        "INSERT OR REPLACE INTO parse_cache_stamp(source, stamp) VALUES (?, ?)",
                        (self.source, self.stamp),
                    )
                    if not self._old:  # a new stamp: rows of the old one are stale
                        db.execute("DELETE FROM parse_cache_v2 WHERE source=?", (self.source,))
                    db.executemany(
                        "DELETE FROM parse_cache_v2 WHERE source=? AND path=?",
                        ((self.source, p) for p in gone),
                    )
                    db.executemany(
                        "INSERT OR REPLACE INTO parse_cache_v2"
                        "(source, path, size, mtime_ns, ctime_ns, inode, value)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        ((self.source, p, *key, value) for p, (key, value) in self._new.items()),
                    )
        except (sqlite3.Error, OSError, UnicodeError):  # UnicodeError: a non-UTF-8 file name
            pass  # the cache only saves time; the run's output does not depend on it


# --- parsing on every core -------------------------------------------------------------

# A cold run over a large folder parses in forked worker processes (``content.pool``), which
# send each parse back as a cache row: 10,000 files took 1.60 s on one core and 0.65 s on
# two. Below this many files to parse the pool's start-up is not worth it.
POOL_MIN_FILES = 1000
_CHUNK = 250


class _Item(Protocol):
    @property
    def path(self) -> str: ...


Item = TypeVar("Item", bound=_Item)
Read = Callable[[Any], tuple[Entry, tuple[datetime, ...]]]
Parsed = tuple[Entry, tuple[datetime, ...], bytes]


def parse_in_processes(items: Sequence[Item], read: Read) -> Parses:
    """``read(item)`` for ``items`` by worker processes, as ``Parses`` to ask for each path in
    turn; one that answers nothing when a pool is not worth it or not possible here."""
    n = min(workers(), (len(items) + _CHUNK - 1) // _CHUNK)
    if len(items) < POOL_MIN_FILES:
        return Parses([], None)
    chunks = [list(items[i : i + _CHUNK]) for i in range(0, len(items), _CHUNK)]

    def read_chunk(chunk: list[Any]) -> list[tuple[bytes | None, tuple[datetime, ...]]]:
        out: list[tuple[bytes | None, tuple[datetime, ...]]] = []
        for item in chunk:
            entry, moments = read(item)
            out.append((encode(entry), moments))
        return out

    try:
        results = forked_results(read_chunk, chunks, n)
    except WorkersLost:
        results = None  # parsing only reads: the caller parses, one by one
    return Parses(chunks if results is not None else [], results)


class Parses:
    """The workers' parses, {path: (entry, moments, cache row)}, taken in the order of the
    items: ``get`` waits for the part that holds its path, so the caller turns the first parts
    into articles while the workers parse the next. A path it cannot answer (not given, a
    parse that cannot travel as a cache row, a worker lost) is None: the caller reads that
    file itself. ``close`` stops the workers; the last answer stops them too."""

    def __init__(self, chunks: Sequence[Sequence[Item]], results: Results[Any] | None) -> None:
        self._part = {item.path: k for k, chunk in enumerate(chunks) for item in chunk}
        self._chunks = chunks
        self._results = results
        self._taken = 0  # parts received so far
        self._ready: dict[str, Parsed] = {}

    def get(self, path: str) -> Parsed | None:
        part = self._part.get(path)
        while part is not None and self._results is not None and self._taken <= part:
            try:
                rows = next(self._results)
            except (WorkersLost, StopIteration):
                self.close()  # parsing only reads: the caller parses the rest, one by one
                break
            for item, (row, moments) in zip(self._chunks[self._taken], rows, strict=True):
                if row is not None:
                    self._ready[item.path] = (decode(row), moments, row)
            self._taken += 1
        return self._ready.pop(path, None)

    def close(self) -> None:
        results, self._results = self._results, None
        if results is not None:
            results.close()
