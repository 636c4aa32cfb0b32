"""Articles → feed files: which feeds exist, what each holds, and writing only what changed.

``plan`` picks the feeds (the whole site, then per category and per author when configured)
and their newest items; ``build`` renders them (``pressroom.feed_formats``) and writes each
file atomically and only when its bytes change. Every byte written is a function of the
articles and the config: no clock is read (a feed's ``lastBuildDate``/``updated`` is its
newest item's modification date) and GUIDs come from ``Article.id``, which edits never
change. A small manifest in the state folder (``_Manifest``) lets a run with nothing new
skip rendering altogether.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pressroom import defaults
from pressroom.config import Config
from pressroom.content import installed
from pressroom.content.pool import WorkersLost, forked_map, workers
from pressroom.content.urls import name_key
from pressroom.errors import FeedError
from pressroom.feeds.spec import (
    FILES,
    MIME,
    STYLESHEET,
    FeedSpec,
    Fingerprints,
    feeds_url,
    slug,
    uri,
)
from pressroom.models import Article

if TYPE_CHECKING:
    from pressroom.feeds.formats import Renderer

__all__ = [
    "FILES",
    "MIME",
    "STYLESHEET",
    "FeedReport",
    "FeedSpec",
    "build",
    "feeds_url",
    "manifest_path",
    "plan",
    "slug",
    "uri",
    "write_if_changed",
]


@dataclass(frozen=True)
class FeedReport:
    """What ``build`` did: every feed file it wrote, left unchanged or removed as stale."""

    out: Path
    written: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    removed: tuple[Path, ...] = ()
    feeds: tuple[FeedSpec, ...] = field(default=(), repr=False)

    @property
    def total(self) -> int:
        return len(self.written) + len(self.unchanged)


def plan(config: Config, articles: Iterable[Article]) -> tuple[FeedSpec, ...]:
    """The feeds to write: the site feed, then one per category and per author when enabled."""
    limit = config.feeds.items
    ordered = _newest_first(articles)
    specs = [FeedSpec("site", config.publication.name, "", tuple(ordered[:limit]))]
    if config.feeds.per_category:
        specs += _grouped("category", ordered, lambda a: a.categories, limit)
    if config.feeds.per_author:
        specs += _grouped("author", ordered, lambda a: tuple(x.name for x in a.authors), limit)
    cleaned: dict[int, Article] = {}
    return tuple(
        dataclasses.replace(
            spec,
            name=_NOT_XML.sub("", spec.name),
            articles=tuple(_xml_safe(a, cleaned) for a in spec.articles),
        )
        for spec in specs
    )


# Characters XML 1.0 forbids (lxml refuses them); scraped text sometimes carries them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(article: Article, cache: dict[int, Article]) -> Article:
    """``article`` without characters XML cannot carry (the same object when it has none)."""
    done = cache.get(id(article))
    if done is not None:
        return done
    changes: dict[str, Any] = {}
    for name in ("id", "title", "summary", "body"):
        value = getattr(article, name)
        if _NOT_XML.search(value):
            changes[name] = _NOT_XML.sub("", value)
    for name in ("categories", "tags"):
        values = getattr(article, name)
        if any(_NOT_XML.search(v) for v in values):
            changes[name] = tuple(_NOT_XML.sub("", v) for v in values)
    if any(_NOT_XML.search(a.name) for a in article.authors):
        changes["authors"] = tuple(
            dataclasses.replace(a, name=_NOT_XML.sub("", a.name)) for a in article.authors
        )
    cache[id(article)] = done = dataclasses.replace(article, **changes) if changes else article
    return done


def build(config: Config, articles: Iterable[Article], *, out: Path | None = None) -> FeedReport:
    """Write every configured feed for ``articles`` under ``out`` (default ``feeds.out``)."""
    out = Path(out) if out is not None else config.feeds.out
    specs = plan(config, articles)
    if not specs[0].articles:
        # nothing left to publish (the last article taken down): the feeds an earlier run
        # wrote go, as a cold run would leave none, or they would serve what was taken down
        manifest = _Manifest.open(config, out)
        removed = _prune(out, manifest.owned)
        if manifest.owned:
            manifest.save(out, set())
        return FeedReport(out=out, removed=tuple(removed), feeds=specs)
    hashes = Fingerprints(config)
    renderer: Renderer | None = None

    def writer() -> Renderer:
        nonlocal renderer
        if renderer is None:
            from pressroom.feeds.formats import Renderer  # feedgen, lxml: only to render

            renderer = Renderer(config)
        return renderer

    manifest = _Manifest.open(config, out)
    written: list[Path] = []
    unchanged: list[Path] = []
    keep: set[Path] = set()
    try:
        if config.feeds.stylesheet:
            keep.add(out / STYLESHEET)
            changed = write_if_changed(out / STYLESHEET, _stylesheet(config))
            (written if changed else unchanged).append(out / STYLESHEET)
        jobs: list[_Job] = []
        held: set[Path] = set()
        for spec in specs:
            for fmt in config.feeds.formats:
                path = out / spec.path / FILES[fmt]
                keep.add(path)
                fingerprint = hashes.fingerprint(spec, fmt)
                # Same inputs as when this very file was written: skip rendering bodies and XML.
                if manifest.holds(path, fingerprint):
                    held.add(path)
                else:
                    jobs.append(_Job(path, spec, fmt, fingerprint))
        changes = _write_feeds(jobs, writer) if jobs else {}
        for spec in specs:  # reported in feed order, however they were written
            for fmt in config.feeds.formats:
                path = out / spec.path / FILES[fmt]
                (written if changes.get(path) else unchanged).append(path)
        for job in jobs:
            manifest.record(job.path, job.fingerprint)
        page = out / INDEX_PAGE
        # a site generator's own index.html (feeds.out is its public/ folder) is never touched
        if page in manifest.owned or not page.exists():
            keep.add(page)
            fingerprint = _index_fingerprint(config, specs)
            if manifest.holds(page, fingerprint):  # a warm run renders no template
                unchanged.append(page)
            else:
                changed = write_if_changed(page, _index_page(config, specs, writer()))
                (written if changed else unchanged).append(page)
                manifest.record(page, fingerprint)
        removed = _prune(out, manifest.owned - keep)
    except BaseException:
        # what this run wrote before it failed is ours too: a later run removes it when
        # stale (its category gone), as it would never be in a cold run's output
        manifest.save(out, keep | manifest.owned)
        raise
    manifest.save(out, keep)
    return FeedReport(out, tuple(written), tuple(unchanged), tuple(removed), specs)


@dataclass(frozen=True)
class _Job:
    """One feed file to render and write."""

    path: Path
    spec: FeedSpec
    fmt: str
    fingerprint: str


# A cold run renders a few hundred feeds; above this many per process, forked workers share
# them out (``content.pool``).
POOL_MIN_JOBS = 24


def _write_feeds(jobs: Sequence[_Job], writer: Callable[[], Renderer]) -> dict[Path, bool]:
    """Render and write each job's file: {path: whether its bytes changed}.

    With enough jobs, forked workers take one feed (all its formats) at a time, so the work
    evens out however long each feed takes. Bodies a worker rendered come back with its
    answer and are set on the parent's articles, as if rendered here (the parse cache keeps
    them for the next run).
    """
    renderer = writer()  # feedgen and lxml load here, before any fork: workers inherit them
    by_feed: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        by_feed.setdefault(id(job.spec), []).append(i)
    n = min(workers(), len(jobs) // POOL_MIN_JOBS)

    def write_feed(part: list[int]) -> tuple[dict[Path, bool], dict[str, str]]:
        done = {jobs[i].path: _write_one(renderer, jobs[i]) for i in part}
        return done, renderer.rendered_bodies()

    try:
        answers = forked_map(write_feed, list(by_feed.values()), n) if n >= 2 else None
    except WorkersLost as e:  # some feeds may be written: doing them again would miscount
        raise FeedError(
            f"a process writing feeds was stopped ({e}); nothing is lost: run pressroom feeds again"
        ) from None
    if answers is None:
        return {job.path: _write_one(renderer, job) for job in jobs}
    changes: dict[Path, bool] = {}
    bodies: dict[str, str] = {}
    for done, rendered in answers:
        changes.update(done)
        bodies.update(rendered)
    for job in jobs:
        for article in job.spec.articles:
            html = bodies.get(article.id)
            if html is not None and "html" not in article.__dict__:
                article.__dict__["html"] = html  # the cached_property's slot: rendered
    return changes


def _write_one(renderer: Renderer, job: _Job) -> bool:
    return write_if_changed(job.path, renderer.render(job.spec, job.fmt))


def manifest_path(config: Config, out: Path) -> Path:
    """Where the manifest of the feeds written to ``out`` lives, in the state folder."""
    key = hashlib.blake2b(str(out.resolve()).encode(), digest_size=8).hexdigest()
    return config.state / f"feeds-{key}.json"


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically replace ``path`` with ``data`` unless it already holds exactly those bytes."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except (FileNotFoundError, NotADirectoryError):
        pass  # a new file (or a folder in the way, which the write below reports)
    except OSError as e:
        raise FeedError(f"{path}: cannot read: {e.strerror or e}") from e
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open honours the umask (feeds must stay world-readable for a web server),
        # unlike tempfile's private 0600 files.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise FeedError(f"{path}: cannot write: {e.strerror or e}; check --out / feeds.out") from e
    return True


class _Manifest:
    """What each feed file was last built from, kept in the state folder between runs.

    A run where nothing changed then costs a hash per article and a ``stat`` per file, instead
    of rendering every included body and serialising every feed only to find the same bytes.
    The file's size, times and inode must still match what was written, so a feed edited,
    restored or deleted by hand is rebuilt. It also lists every file the run wrote (``owned``,
    relative to the output folder): only those may later be removed as stale, so a hand-made
    feed or a static site generator's own ``index.xml`` beside ours is never touched.
    """

    def __init__(
        self, path: Path, out: str, entries: dict[str, list[Any]], owned: set[Path]
    ) -> None:
        self.path = path
        self.out = out
        self.old = entries
        self.owned = owned
        self.new: dict[str, list[Any]] = {}

    @classmethod
    def open(cls, config: Config, out: Path) -> _Manifest:
        where = str(out.resolve())
        path = manifest_path(config, out)
        owned: set[Path] = set()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data["files"] if data.get("out") == where else {}
            if data.get("out") == where:
                owned = {out / name for name in data.get("owned", []) if _inside(name)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # no manifest yet, or an unreadable one: build everything, remove nothing
            entries, owned = {}, set()
        return cls(path, where, entries if isinstance(entries, dict) else {}, owned)

    def holds(self, path: Path, fingerprint: str) -> bool:
        old = self.old.get(str(path))
        if not old or old[0] != fingerprint:
            return False
        try:
            st = path.stat()
        except OSError:
            return False
        if _file_key(st) != old[1:]:
            return False
        self.new[str(path)] = old
        return True

    def record(self, path: Path, fingerprint: str) -> None:
        self.new[str(path)] = [fingerprint, *_file_key(path.stat())]

    def save(self, out: Path, keep: set[Path]) -> None:
        files = {k: v for k, v in sorted(self.new.items()) if Path(k) in keep}
        owned = sorted(p.relative_to(out).as_posix() for p in keep)
        data = {"out": self.out, "files": files, "owned": owned}
        with contextlib.suppress(OSError, FeedError):  # a cache: failing to save costs speed only
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_if_changed(self.path, json.dumps(data, indent=0, sort_keys=True).encode())


def _file_key(st: os.stat_result) -> list[int]:
    """What tells a file was replaced: a copy restored with ``cp -p`` or ``rsync -t`` keeps
    the size and mtime, never the inode and ctime."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


# --- planning --------------------------------------------------------------------------


def _newest_first(articles: Iterable[Article]) -> list[Article]:
    seen: set[str] = set()
    unique = []
    # sorted() is stable and the id breaks ties, so equal dates still give one order
    for article in sorted(articles, key=lambda a: (a.published, a.id), reverse=True):
        if article.id not in seen:
            seen.add(article.id)
            unique.append(article)
    return unique


def _grouped(
    kind: str, ordered: Sequence[Article], keys: Callable[[Article], Iterable[str]], limit: int
) -> list[FeedSpec]:
    """One feed per category or author name; names differing only in case or accents share
    one (``name_key``), and different names whose slugs collide get distinct slugs."""
    groups: dict[str, list[Article]] = {}
    names: dict[str, set[str]] = {}
    keyed: dict[str, str] = {}  # 10,000 articles share a few dozen names
    for article in ordered:
        for name in dict.fromkeys(k for k in keys(article) if k.strip()):
            key = keyed.get(name) or keyed.setdefault(name, name_key(name))
            names.setdefault(key, set()).add(name)
            items = groups.setdefault(key, [])
            if len(items) < limit and (not items or items[-1] is not article):
                items.append(article)
    slugs = _distinct_slugs({key: min(names[key]) for key in groups})
    return sorted(
        (
            FeedSpec(kind, min(names[k]), f"{kind}/{slugs[k]}/", tuple(groups[k]), slugs[k])
            for k in groups
        ),
        key=lambda spec: spec.slug,
    )


def _distinct_slugs(shown: dict[str, str]) -> dict[str, str]:
    """A slug per name key; when several keys share one (``C++`` and ``C#``: ``c``), the first
    in sorted order keeps it and the others add a short hash of their own key, so a feed's
    address never depends on which article came first."""
    by_slug: dict[str, list[str]] = {}
    for key, name in shown.items():
        by_slug.setdefault(slug(name), []).append(key)
    out: dict[str, str] = {}
    for base, keys in by_slug.items():
        first, *others = sorted(keys)
        out[first] = base
        for key in others:
            out[key] = f"{base}-{hashlib.blake2b(key.encode(), digest_size=4).hexdigest()}"
    return out


def _inside(name: object) -> bool:
    """Whether a manifest entry is a plain relative path (a tampered one cannot reach out)."""
    return isinstance(name, str) and not Path(name).is_absolute() and ".." not in Path(name).parts


def _prune(out: Path, stale: set[Path]) -> list[Path]:
    """Remove files an earlier run wrote for a category/author/format that no longer exists."""
    removed = []
    for path in sorted(stale):
        try:
            if not path.is_file():
                continue
            path.unlink()
        except OSError as e:
            raise FeedError(f"{path}: cannot remove a stale feed: {e.strerror or e}") from e
        removed.append(path)
        folder = path.parent
        # drop the category/author folders the removal left empty, never ``out`` itself
        while folder != out and out in folder.parents and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return removed


INDEX_PAGE = "index.html"
_LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}


def _index_fingerprint(config: Config, specs: Sequence[FeedSpec]) -> str:
    """What the feeds page is made of: the feeds, the publication, the template files.

    Every file of both template folders counts (``feeds.html.j2`` may include or extend
    others), each by its size, times and inode, and the whole publication (the page is
    handed all of it)."""
    h = hashlib.blake2b(digest_size=16)
    for folder in dict.fromkeys((config.digest.templates, defaults.templates())):
        for path in installed.tree(folder):
            try:
                key = _file_key(os.stat(path))
            except OSError:
                key = []
            h.update(f"{path}:{key};".encode("utf-8", "surrogateescape"))
        h.update(b"|")
    parts: list[Any] = [installed.stamp(), config.publication, feeds_url(config)]
    parts.append(config.feeds.formats)
    parts.append([(s.kind, s.name, s.path) for s in specs])
    h.update(repr(parts).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _index_page(config: Config, specs: Sequence[FeedSpec], writer: Renderer) -> bytes:
    """The plain page listing every feed, its addresses and how to subscribe.

    Chromium is removing XSLT, so ``feed.xsl`` no longer turns a feed into a page there;
    this page works in every browser (template ``feeds.html.j2``, overridable).
    """
    from pressroom.digest.render import environment, render_template

    feeds = [
        {
            "kind": spec.kind,
            "name": config.publication.name if spec.kind == "site" else spec.name,
            "links": [
                {
                    "format": fmt,
                    "label": _LABELS[fmt],
                    "mime": MIME[fmt],
                    "url": writer.url(spec, fmt),
                }
                for fmt in config.feeds.formats
            ],
        }
        for spec in specs
    ]
    page = render_template(
        environment(config), "feeds.html.j2", {"publication": config.publication, "feeds": feeds}
    )
    return page.encode("utf-8")


def _stylesheet(config: Config) -> bytes:
    for folder in (config.digest.templates, defaults.templates()):
        if (folder / STYLESHEET).is_file():
            return (folder / STYLESHEET).read_bytes()
    raise FeedError(
        f"{STYLESHEET} not found in {config.digest.templates}; set feeds.stylesheet: false"
    )


# --- rendering -------------------------------------------------------------------------
