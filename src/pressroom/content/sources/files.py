"""The ``files`` source: a folder of Markdown, HTML and plain-text articles.

Markdown and HTML files start with metadata in any form a site generator writes (YAML,
TOML or JSON front matter, Pelican ``Key: value`` lines; see ``content.frontmatter``), with
each generator's field names understood, so a Hugo, Jekyll, Pelican or Eleventy content
folder is read as it is. Where an article lives follows ``permalink`` (a pattern or a
generator's preset, ``content.permalinks``) unless the article names its own URL.

For ``.txt`` files front matter is optional, and raw scraped text works as is: leading junk
lines are skipped, the first real line is the title, and everything from the first line
that starts with a configured ``boilerplate`` marker to the end is dropped.

Loading is built for thousands of files: front matter is split with one regex search and
parsed with PyYAML's C loader (or a faster path for flat front matter), bodies stay raw
(rendered later, only when needed), and line numbers are looked up only when there is an
error to report.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pressroom.content import articles as norm
from pressroom.content import permalinks
from pressroom.content.sources import register
from pressroom.content.sources._walk import FORMATS, File, Scanned, digest, scan
from pressroom.content.sources.base import Source, SourceContext
from pressroom.content.text import (
    plain_text,
    render_body,
    summary_from_body,
    truncate,
)
from pressroom.content.urls import BadURL, public_url, slug_path, slugify
from pressroom.errors import ArticleError, SourceError
from pressroom.models import Article, Author, Image
from pressroom.textpolicy import one_line, printable, strip_controls

if TYPE_CHECKING:
    from pressroom.content.cache import Entry
    from pressroom.content.frontmatter import FrontMatter

# The parse cache and the front-matter parser load when a file must be read: a run that finds
# nothing changed (``fingerprint``) only walks the folder.

JEKYLL_POSTS = "_posts"
# the fields that can keep an article off the site
_GATES = frozenset(
    {"draft", "exclude", "published", "url", "status", "publish_date", "expiry_date"}
)
# Eleventy dates that name a file time rather than a date
FILE_TIME_DATES = frozenset({"last modified", "created", "git last modified", "git created"})

# A scraped .txt file may open with the remains of an empty dateline ("In ,") before its
# title. Such a line has no letters at all, or is short and ends with a comma.
JUNK_LINE_MAX = 20

_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})[-_]")
# the heading's whole line (its closing #s are cut in _title_from_body): a lazy (.+?) before
# "[ \t#]*" retried every length against a line padded with spaces, for minutes
_MD_TITLE = re.compile(r"\A\s*# +(.+)(?:\n|\Z)")
_HTML_TITLE = re.compile(r"\A\s*<h1[^>]*>(.*?)</h1>", re.S | re.I)
_TEMPLATE = re.compile(r"\{\{|\{%")


@dataclass(frozen=True)
class FilesSettings:
    path: Path = Path("content")
    boilerplate: tuple[str, ...] = ()
    default_author: str | None = None
    permalink: str = "default"
    excerpt_separator: str = "<!--more-->"
    exclude: tuple[str, ...] = ()
    slug_from: permalinks.SlugFrom | None = None  # default: the permalink preset's
    folder_category: bool | None = None  # default: the permalink preset's

    def __post_init__(self) -> None:
        try:
            permalinks.preset(self.permalink)
        except ValueError as e:
            raise ValueError(f"permalink: {e}") from None


class _Broken(Exception):
    """One field of one article is wrong (turned into an ArticleError with the file:line)."""

    def __init__(self, field: str, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem
        self.line = line


@register
class FilesSource(Source):
    """Articles from ``.md``, ``.html`` and ``.txt`` files below ``path`` (hidden files skipped)."""

    name = "files"
    Settings = FilesSettings

    def __init__(self, settings: FilesSettings, context: SourceContext) -> None:
        super().__init__(settings, context)
        markers = [re.escape(m) for m in settings.boilerplate if m.strip()]
        self._boilerplate = (
            re.compile(rf"^[ \t]*(?:{'|'.join(markers)})", re.M) if markers else None
        )
        self._tz = context.publication.tz
        self._pub_url: str = context.publication.url
        self._preset = permalinks.preset(settings.permalink)
        self._slug_from = settings.slug_from or self._preset.slug_from
        self._folder_category = (
            self._preset.folder_category
            if settings.folder_category is None
            else settings.folder_category
        )
        self._jekyll_root = Path(settings.path).name == JEKYLL_POSTS
        self._warn = context.warn  # read() warns here; articles() records it for the cache
        # set by read(): the publish and expiry dates its answer depends on
        self._moments: tuple[datetime, ...] = ()

    def articles(self, since: datetime | None) -> Iterator[Article | ArticleError]:
        from pressroom.content.cache import Entry, ParseCache, parse_in_processes

        scanned_at = time.time_ns()
        found = self._scan()
        folder = Path(self.settings.path)
        cache = ParseCache(
            self.context.state / "state.db",
            # messages and article sources name files relative to the config's folder: two
            # configs sharing a state folder and a content folder keep a cache each
            f"files:{folder.resolve()}\0{self.context.root}",
            (self.settings, self.context.publication),
            self.context.warn,
            write=self.context.write_cache,
            scanned_at=scanned_at,
            zone=self.context.publication.timezone,
        )
        self.context.caches.append(cache)
        entries = [cache.get(file.path, st) if st is not None else None for file, st, _ in found]
        parsed = parse_in_processes(
            [f for (f, st, _), e in zip(found, entries, strict=True) if e is None and st],
            self.read_recorded,
        )
        with contextlib.closing(parsed):  # workers still parsing stop with this loop
            for (file, info, broken), entry in zip(found, entries, strict=True):
                keep = info is not None
                if broken is not None:
                    entry = Entry(broken, ())
                elif entry is None:
                    done = parsed.get(file.path)
                    entry, moments, row = done if done else (*self.read_recorded(file), None)
                    keep = not moments  # a publish or expiry date is judged again every run
                    for moment in moments:
                        self.context.clock.note(moment)
                    if keep and info is not None:
                        cache.put(file.path, info, entry, row)
                for message in entry.warnings:
                    self.context.warn(message)
                if entry.result is not None:
                    if keep and info is not None:
                        cache.served(file.path, info, entry)
                    yield entry.result
        cache.walked()
        # a rebuilt cache said so: a later run must not skip this run's work and its warning
        self.context.inputs.append(None if cache.rebuilt else digest(found, scanned_at))

    def fingerprint(self) -> str | None:
        scanned_at = time.time_ns()
        return digest(self._scan(), scanned_at)

    def _scan(self) -> Scanned:
        folder = Path(self.settings.path)
        shown = norm.relative_source(folder, self.context.root)
        if not folder.is_dir():
            raise SourceError(
                f"{shown}: no such folder; create it or set sources[].path in config.yaml"
            )
        outputs = tuple(map(str, self.context.outputs))
        return scan(str(folder), shown, self.settings.exclude, outputs)

    def read_recorded(self, file: File) -> tuple[Entry, tuple[datetime, ...]]:
        """``read`` with the warnings it gives kept in the entry (for the cache to say again),
        and the dates that make its answer depend on the clock (then it is not cached)."""
        from pressroom.content.cache import Entry

        said: list[str] = []
        self._warn, self._moments = said.append, ()
        try:
            return Entry(self.read(file), tuple(said)), self._moments
        finally:
            self._warn = self.context.warn

    def read(self, file: File) -> Article | ArticleError | None:
        """One file as an Article, an ArticleError when broken, or None when not published."""
        rel = file.rel
        try:
            data = _read_bytes(file.path)
        except OSError as e:
            return ArticleError(rel, "", f"cannot read: {e.strerror or e}")
        except _TooBig:
            return ArticleError(
                rel,
                "",
                f"more than {norm.MAX_RESPONSE_BYTES >> 20} MB, the most an article may be "
                "(is it an article? move data, media and dumps out of the content folder)",
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            return ArticleError(
                f"{rel}:{line}",
                "",
                f"not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
                "save the file as UTF-8",
            )
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = text.removeprefix("\ufeff")
        body_format = FORMATS[os.path.splitext(file.path)[1].lower()]
        from pressroom.content import frontmatter
        from pressroom.content.frontmatter import FrontMatterError

        try:
            fm = frontmatter.split(text, headers=body_format == "markdown")
        except FrontMatterError as e:
            return ArticleError(f"{rel}:{e.line}", "front matter", e.problem)
        if not fm.style and body_format != "text":
            return ArticleError(f"{rel}:1", "front matter", frontmatter.MISSING_HINT)
        try:
            return self._article(file, fm, body_format)
        except _Broken as e:
            line = e.line if e.line is not None else _line(fm, e.field)
            return ArticleError(f"{rel}:{line}", e.field, e.problem)

    # --- mapping -----------------------------------------------------------------------

    def _article(self, file: File, fm: FrontMatter, body_format: str) -> Article | None:
        from pressroom.content import frontmatter

        rel = file.rel
        meta, unknown = frontmatter.fields(fm)
        for key in unknown:
            close = difflib.get_close_matches(key.lower(), frontmatter.KEYS, n=1, cutoff=0.6)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            shown = printable(key)  # a quoted YAML key may hold a line break
            self._warn(f'{rel}:{fm.line_of(key)}: unknown front-matter key "{shown}" ignored{hint}')
        if not self._published(meta):
            return None

        body = fm.body
        title = meta.get("title")
        if body_format == "text" and self._boilerplate is not None:
            cut = self._boilerplate.search(body)
            if cut:
                body = body[: cut.start()]
        if title is None:
            title, body = _title_from_body(body, body_format)
            if not title:
                raise _Broken("title", "missing; add title: to the front matter", 1)
        elif not isinstance(title, (str, int, float)) or not one_line(str(title)):
            raise _Broken("title", f"expected text, got {_show(title)}")
        title = one_line(str(title))
        body = body.strip("\n")

        stem = os.path.splitext(os.path.basename(file.path))[0]
        folders = file.folders
        if stem == "index" and folders:  # a Hugo leaf bundle / an Eleventy folder page
            stem, folders = folders[-1], folders[:-1]
        prefix = _DATE_PREFIX.match(stem)
        published = self._date(meta, "date")
        if published is None:
            published = self._date(meta, "publish_date")
        if published is None and prefix:
            try:
                published = norm.parse_date(prefix.group(1), self._tz)
            except ValueError:
                raise _Broken(
                    "date", f'cannot parse "{prefix.group(1)}" in the file name', 1
                ) from None
        dated_by_mtime = published is None
        if published is None:
            published = datetime.fromtimestamp(int(os.stat(file.path).st_mtime), self._tz)
            self._warn(
                f"{rel}: no date; using the file's modification time "
                f"{published:%Y-%m-%d %H:%M}; add date: to the front matter "
                f"or a YYYY-MM-DD- prefix to the file name"
            )
        updated = self._date(meta, "updated")

        jekyll = self._jekyll_root or JEKYLL_POSTS in file.folders
        categories = _names(meta, "categories", jekyll=jekyll)
        if JEKYLL_POSTS in file.folders:  # Jekyll: the folders above _posts are categories
            above = file.folders[: file.folders.index(JEKYLL_POSTS)]
            categories = tuple(dict.fromkeys((*above, *categories)))
        if jekyll:
            folders = ()  # folders below _posts are only for tidiness
        if not categories and self._folder_category and file.folders:
            categories = (file.folders[-1],)  # Pelican: the folder is the category
        tags = _names(meta, "tags", jekyll=jekyll)

        url_value = self._own_url(meta, rel)
        pattern = self._preset.pattern
        if url_value is not None and jekyll and (own := permalinks.from_jekyll(url_value)):
            pattern, url_value = own, None  # Jekyll: "permalink: /:year/:title/" in a post
        slug = self._slug(meta, url_value, stem, prefix, title)
        if url_value is not None:
            url = self._resolve(url_value, "url")
        else:
            place = permalinks.Place(
                slug, title, published, folders, stem, categories, "slug" in meta
            )
            path = permalinks.expand(pattern, place)
            if self._preset.lower_case:
                path = path.lower()
            url = self._pub_url.rstrip("/") + "/" + path

        article_id = meta.get("id")
        if article_id is None and dated_by_mtime:
            # A modification time changes with a fresh clone or a `touch`; a tag: URI built
            # from it would give the article a new GUID and readers a duplicate. The URL
            # (from the slug, i.e. the file name) survives both.
            article_id = url
        elif article_id is None:
            article_id = norm.tag_id(self._pub_url, published, slug)
        else:
            article_id = strip_controls(_text(article_id, "id")).strip()
            if not article_id:
                raise _Broken("id", "empty; remove the line, or give the article's permanent id")

        return Article(
            id=article_id,
            url=url,
            slug=slug,
            title=title,
            published=published,
            updated=updated,
            authors=self._authors(meta, fm, rel, url),
            categories=categories,
            tags=tags,
            summary=self._summary(meta, body, body_format),
            image=self._image(meta, fm, rel, url),
            body=body,
            body_format=body_format,
            base_url=url,
            source=rel,
            renderer=render_body,
        )

    def _published(self, meta: dict[str, Any]) -> bool:
        """False for what the site itself does not publish: drafts, hidden, expired, future."""
        if _GATES.isdisjoint(meta):  # the usual article: nothing to check
            return True
        for key in ("draft", "exclude"):
            value = meta.get(key, False)
            if not isinstance(value, bool):
                raise _Broken(key, f"expected true or false, got {_show(value)}")
            if value:
                return False
        if meta.get("published", True) is False:  # Jekyll
            return False
        if meta.get("url") is False:  # Eleventy: permalink: false writes no page
            return False
        status = meta.get("status")
        if isinstance(status, str) and status.strip().lower() in ("draft", "hidden"):
            return False  # Pelican
        publish = self._date(meta, "publish_date")
        expiry = self._date(meta, "expiry_date")
        self._moments = tuple(d for d in (publish, expiry) if d is not None)
        clock = self.context.clock
        if publish is not None and not clock.passed(publish):
            return False  # Hugo: not yet (buildFuture is off by default)
        return expiry is None or not clock.passed(expiry)  # Hugo: expired

    def _own_url(self, meta: dict[str, Any], rel: str) -> str | None:
        """The article's own url/permalink/URL (else Pelican's Save_as), when usable."""
        for key in ("url", "save_as"):
            value = meta.get(key)
            if value is None:
                continue
            text = _text(value, key).strip()
            if _TEMPLATE.search(text):
                self._warn(
                    f"{rel}: {key} {text!r} is a template pressroom cannot fill in; "
                    f"using the permalink pattern instead"
                )
                continue
            if text:
                return text.removesuffix("index.html")
        return None

    def _resolve(self, value: str, key: str) -> str:
        # "/2020/x/" is relative to the site (publication.url), as Hugo, Jekyll and
        # Pelican read it, not to the host: a site may live at https://host/blog/
        if value.startswith("/") and not value.startswith("//"):
            value = self._pub_url.rstrip("/") + value
        try:
            return public_url(value, self._pub_url)
        except BadURL as e:
            raise _Broken(key, f"{e}; give a path or an http(s) URL") from None

    def _slug(
        self,
        meta: dict[str, Any],
        url_value: str | None,
        stem: str,
        prefix: re.Match[str] | None,
        title: str,
    ) -> str:
        slug_value = meta.get("slug")
        if slug_value is not None:
            slug = slug_path(_text(slug_value, "slug"))  # kept as written, made URL-safe
            if not slug:
                raise _Broken("slug", "is empty; give a slug like my-article or leave it out")
            return slug
        if url_value is not None:
            tail = urlsplit(url_value).path.rstrip("/").rsplit("/", 1)[-1]
            tail = unquote(tail).removesuffix(".html")
            return slugify(tail or stem)
        if self._slug_from == "title":
            return slugify(title)
        if self._slug_from == "stem":
            return slugify(stem)
        return slugify(stem[prefix.end() :] if prefix else stem)

    def _summary(self, meta: dict[str, Any], body: str, body_format: str) -> str:
        for key in ("summary", "description"):
            value = meta.get(key)
            if value is not None:
                return one_line(_text(value, key))  # plain text: never through the tag stripper
        separator = meta.get("excerpt_separator") or self.settings.excerpt_separator
        if separator and isinstance(separator, str):
            cut = body.find(separator)
            if cut < 0 and separator == "<!--more-->":
                cut = body.lower().find(separator)  # Hugo accepts any case
            if cut >= 0:
                return truncate(plain_text(render_body(body[:cut], body_format, self._pub_url)))
        return summary_from_body(body, body_format)

    def _date(self, meta: dict[str, Any], key: str) -> datetime | None:
        value = meta.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.strip().lower() in FILE_TIME_DATES:
            return None  # Eleventy's "Last Modified": the file's own time
        if isinstance(value, (list, dict)):
            # never spelt out: YAML aliases can make a small file a list of a billion items
            raise _Broken(key, f"expected a date, got {_show(value)}")
        try:
            return norm.parse_date(value, self._tz)
        except (ValueError, OverflowError, TypeError):
            raise _Broken(key, f'cannot parse "{value}"') from None

    def _authors(
        self, meta: dict[str, Any], fm: FrontMatter, rel: str, url: str
    ) -> tuple[Author, ...]:
        authors: list[Author] = []
        for key in ("author", "authors"):
            if meta.get(key) is not None:

                def warn(problem: str, key: str = key) -> None:
                    # the line is looked up only when there is something to say
                    self._warn(f"{rel}:{_line(fm, key)}: {key}: {problem}")

                try:
                    authors.extend(norm.parse_authors(meta[key], url, warn))
                except ValueError as e:
                    raise _Broken(key, str(e)) from None
        if not authors and self.settings.default_author:
            authors.append(Author(self.settings.default_author))
        return tuple(dict.fromkeys(authors))

    def _image(self, meta: dict[str, Any], fm: FrontMatter, rel: str, url: str) -> Image | None:
        """The featured image: ``image`` (Jekyll: text or {path, alt}) or Hugo's ``images``
        list; one the URL policy refuses is left out with a warning."""
        value = meta.get("image")
        if isinstance(value, list):
            value = value[0] if value else None
        alt: Any = meta.get("image_alt", "")
        if isinstance(value, dict):  # jekyll-seo-tag's {path, alt, …}
            alt = value.get("alt", alt)
            value = value.get("path") or value.get("url") or value.get("src")
            if value is None:
                raise _Broken("image", "expected path: inside the image mapping")
        if value is None:
            return None
        try:
            found = public_url(_text(value, "image"), url)
        except BadURL as e:
            self._warn(f"{rel}:{_line(fm, 'image')}: image: {e}; left out")
            return None
        return Image(url=found, alt=one_line(_text(alt, "image_alt")) if alt is not None else "")


def _read_bytes(path: str) -> bytes:
    """The whole file, in four system calls where ``open().read()`` makes nine (a cold run
    reads 10,000 files: a tenth of a second)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        parts = [os.read(fd, _READ_SIZE)]
        size = len(parts[0])
        while parts[-1]:
            if size > norm.MAX_RESPONSE_BYTES:  # the limit remote answers have, read no further
                raise _TooBig
            parts.append(os.read(fd, _READ_SIZE))
            size += len(parts[-1])
        return parts[0] if len(parts) == 2 else b"".join(parts)
    finally:
        os.close(fd)


_READ_SIZE = 1 << 16


class _TooBig(Exception):
    """An article file over the size limit (``_read_bytes`` stops reading it)."""


def _title_from_body(body: str, body_format: str) -> tuple[str, str]:
    """(title, rest of the body) when the body itself carries the title, else ("", body)."""
    if body_format == "markdown":
        m = _MD_TITLE.match(body)
        if m is None:
            return ("", body)
        line = m.group(1)
        return ((line.rstrip(" \t#") or line[0]).strip(), body[m.end() :])
    if body_format == "html":
        m = _HTML_TITLE.match(body)
        return (plain_text(m.group(1)), body[m.end() :]) if m else ("", body)
    lines = body.split("\n")
    for i, line in enumerate(lines):
        text = line.strip()
        if text and not _is_junk(text):
            return text, "\n".join(lines[i + 1 :])
    return "", body


def _is_junk(line: str) -> bool:
    """A leading line that is not a title: no letters at all, or short and ending in a comma."""
    if not any(c.isalpha() for c in line):
        return True
    return len(line) < JUNK_LINE_MAX and line.endswith(",")


def _line(fm: FrontMatter, field: str) -> int:
    """The file line of ``field``, under pressroom's name or another generator's."""
    from pressroom.content import frontmatter

    names = [field] + [alias for alias, key in frontmatter.ALIASES.items() if key == field]
    if field == "publish_date":
        names.append("published")  # Hugo's alias, told from Jekyll's true/false in fields()
    for name in names:
        line = fm.find(name)
        if line is not None:
            return line
    return fm.line_of(field)


def _text(value: Any, key: str) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise _Broken(key, f"expected text, got {_show(value)}")
    return str(value)


def _names(meta: dict[str, Any], key: str, *, jekyll: bool = False) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    if jekyll and isinstance(value, str) and "," not in value:
        value = value.split()  # Jekyll: "categories: classic hollywood" is two categories
    try:
        return norm.parse_names(value)
    except ValueError as e:
        raise _Broken(key, str(e)) from None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else str(value)
