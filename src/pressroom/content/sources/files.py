"""The ``files`` source: a folder of Markdown, HTML and plain-text articles.

``.md``/``.markdown`` and ``.html``/``.htm`` files start with YAML front matter between
``---`` lines; for ``.txt`` files front matter is optional, and raw scraped text works as is:
leading junk lines are skipped, the first real line is the title, and everything from the
first line that starts with a configured ``boilerplate`` marker to the end is dropped.

Loading is built for thousands of files: front matter is split with one regex search and
parsed with PyYAML's C loader, bodies stay raw (rendered later, only when needed), and
line numbers are looked up only when there is an error to report.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import yaml

from pressroom.content import articles as norm
from pressroom.content.sources import register
from pressroom.content.sources.base import Source, SourceContext
from pressroom.content.text import absolute_url, plain_text, render_body, summary_from_body
from pressroom.errors import ArticleError, SourceError
from pressroom.models import Article, Author, Image

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}
KEYS = (
    "title",
    "date",
    "updated",
    "author",
    "authors",
    "categories",
    "tags",
    "summary",
    "image",
    "image_alt",
    "slug",
    "url",
    "draft",
    "id",
)

# A scraped .txt file may open with the remains of an empty dateline ("In ,") before its
# title. Such a line has no letters at all, or is short and ends with a comma.
JUNK_LINE_MAX = 20


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's C loader, with dates left as text for ``parse_date``.

    PyYAML's own timestamp constructor raises a bare ValueError on "2026-02-31" and ignores
    the publication's timezone, so dates are parsed in one place, with one error message.
    A key written twice is refused: YAML would silently keep the last one.
    """

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f'duplicate key "{key}" (first at line {seen[key] + 2}); keep one',
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)
_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M)
_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})[-_]")
_MD_TITLE = re.compile(r"\A\s*# +(.+?)[ \t#]*(?:\n|\Z)")
_HTML_TITLE = re.compile(r"\A\s*<h1[^>]*>(.*?)</h1>", re.S | re.I)


@dataclass(frozen=True)
class FilesSettings:
    path: Path = Path("content")
    boilerplate: tuple[str, ...] = ()
    default_author: str | None = None


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

    def articles(self, since: datetime | None) -> Iterator[Article | ArticleError]:
        folder = Path(self.settings.path)
        shown = norm.relative_source(folder, self.context.root)
        if not folder.is_dir():
            raise SourceError(
                f"{shown}: no such folder; create it or set sources[].path in config.yaml"
            )
        for path, rel in _walk(str(folder), shown):
            item = self.read(path, rel)
            if item is not None:
                yield item

    def read(self, path: str, rel: str) -> Article | ArticleError | None:
        """One file as an Article, an ArticleError when broken, or None for a draft.

        ``rel`` is how messages name the file (relative to the config folder).
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            return ArticleError(rel, "", f"cannot read: {e.strerror or e}")
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
        stem, suffix = os.path.splitext(os.path.basename(path))
        body_format = FORMATS[suffix.lower()]
        meta: dict[str, Any] = {}
        fm_text = ""
        try:
            meta, fm_text, body = self._split(text, body_format)
            return self._article(path, stem, rel, meta, fm_text, body, body_format)
        except _Broken as e:
            line = e.line if e.line is not None else _key_line(fm_text, e.field)
            return ArticleError(f"{rel}:{line}", e.field, e.problem)

    # --- parsing -----------------------------------------------------------------------

    def _split(self, text: str, body_format: str) -> tuple[dict[str, Any], str, str]:
        """(front matter, its text, body) of a file."""
        first_nl = text.find("\n")
        first = text[:first_nl] if first_nl >= 0 else text
        if first.rstrip() != "---":
            if body_format != "text":
                raise _Broken(
                    "front matter",
                    'missing; start the file with a "---" line, then title: and date:, then "---"',
                    1,
                )
            return {}, "", text
        end = _FRONT_MATTER_END.search(text, first_nl + 1) if first_nl >= 0 else None
        if end is None:
            raise _Broken("front matter", 'no closing "---" line; end the front matter with one', 1)
        fm_text = text[first_nl + 1 : end.start()]
        body = text[end.end() + 1 :]
        try:
            meta = quick_front_matter(fm_text)
            if meta is None:
                meta = yaml.load(fm_text, Loader=_Loader)
        except yaml.MarkedYAMLError as e:
            # the context mark is where the broken construct starts: the line to fix
            mark = e.context_mark or e.problem_mark
            line = mark.line + 2 if mark else 1  # +1 for 0-based, +1 for the opening "---"
            problem = f"invalid YAML: {e.problem or e.context}"
            if e.context and e.problem:
                problem += f" {e.context}"
            if "mapping values" in problem:
                problem += '; put a value that contains ": " in quotes'
            raise _Broken("front matter", problem, line) from None
        except (yaml.YAMLError, ValueError) as e:
            raise _Broken("front matter", f"invalid YAML: {e}", 1) from None
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise _Broken("front matter", "expected key: value lines (title:, date:, …)", 2)
        return meta, fm_text, body

    def _article(
        self,
        path: str,
        stem: str,
        rel: str,
        meta: dict[str, Any],
        fm_text: str,
        body: str,
        body_format: str,
    ) -> Article | None:
        warn = self.context.warn
        for key in meta:
            if key not in KEYS:
                close = difflib.get_close_matches(str(key), KEYS, n=1, cutoff=0.6)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                line = _key_line(fm_text, str(key))
                warn(f'{rel}:{line}: unknown front-matter key "{key}" ignored{hint}')

        draft = meta.get("draft", False)
        if not isinstance(draft, bool):
            raise _Broken("draft", f"expected true or false, got {_show(draft)}")
        if draft:
            return None

        title = meta.get("title")
        if body_format == "text" and self._boilerplate is not None:
            cut = self._boilerplate.search(body)
            if cut:
                body = body[: cut.start()]
        if title is None:
            title, body = _title_from_body(body, body_format)
            if not title:
                raise _Broken("title", "missing; add title: to the front matter", 1)
        elif not isinstance(title, (str, int, float)) or not str(title).strip():
            raise _Broken("title", f"expected text, got {_show(title)}")
        title = " ".join(str(title).split())
        body = body.strip("\n")

        prefix = _DATE_PREFIX.match(stem)
        published = self._date(meta, "date")
        if published is None and prefix:
            try:
                published = norm.parse_date(prefix.group(1), self._tz)
            except ValueError:
                raise _Broken(
                    "date", f'cannot parse "{prefix.group(1)}" in the file name', 1
                ) from None
        dated_by_mtime = published is None
        if published is None:
            published = datetime.fromtimestamp(int(os.stat(path).st_mtime), self._tz)
            warn(
                f"{rel}: no date; using the file's modification time "
                f"{published:%Y-%m-%d %H:%M}; add date: to the front matter "
                f"or a YYYY-MM-DD- prefix to the file name"
            )
        updated = self._date(meta, "updated")

        url_value = meta.get("url")
        slug_value = meta.get("slug")
        if slug_value is not None:
            slug = "-".join(_text(slug_value, "slug").strip().strip("/").split())
            slug = quote(slug, safe="/-._~") if slug else ""  # kept as written, made URL-safe
            if not slug:
                raise _Broken("slug", "is empty; give a slug like my-article or leave it out")
        elif url_value is not None:
            tail = urlsplit(_text(url_value, "url")).path.rstrip("/").rsplit("/", 1)[-1]
            slug = norm.slugify(unquote(tail) or stem)
        else:
            slug = norm.slugify(stem[prefix.end() :] if prefix else stem)
        if url_value is not None:
            url = absolute_url(_text(url_value, "url"), self._pub_url)
            if not url.startswith(("http://", "https://")):
                raise _Broken("url", f'expected a path or an http(s) URL, got "{url_value}"')
        else:
            url = norm.article_url(self._pub_url, slug)

        article_id = meta.get("id")
        if article_id is None and dated_by_mtime:
            # A modification time changes with a fresh clone or a `touch`; a tag: URI built
            # from it would give the article a new GUID and readers a duplicate. The URL
            # (from the slug, i.e. the file name) survives both.
            article_id = url
        elif article_id is None:
            article_id = norm.tag_id(self._pub_url, published, slug)
        else:
            article_id = _text(article_id, "id").strip()

        authors = self._authors(meta)
        categories = _names(meta, "categories")
        tags = _names(meta, "tags")

        image = None
        image_value = meta.get("image")
        if image_value is not None:
            alt = meta.get("image_alt", "")
            image = Image(
                url=absolute_url(_text(image_value, "image"), url),
                alt=" ".join(_text(alt, "image_alt").split()) if alt is not None else "",
            )

        summary_value = meta.get("summary")
        if summary_value is not None:
            summary = " ".join(_text(summary_value, "summary").split())
            if "<" in summary or "&" in summary:
                summary = plain_text(summary)
        else:
            summary = summary_from_body(body, body_format)

        return Article(
            id=article_id,
            url=url,
            slug=slug,
            title=title,
            published=published,
            updated=updated,
            authors=authors,
            categories=categories,
            tags=tags,
            summary=summary,
            image=image,
            body=body,
            body_format=body_format,
            base_url=url,
            source=rel,
            renderer=render_body,
        )

    def _date(self, meta: dict[str, Any], key: str) -> datetime | None:
        value = meta.get(key)
        if value is None:
            return None
        try:
            return norm.parse_date(value, self._tz)
        except (ValueError, OverflowError):
            raise _Broken(key, f'cannot parse "{value}"') from None

    def _authors(self, meta: dict[str, Any]) -> tuple[Author, ...]:
        authors: list[Author] = []
        for key in ("author", "authors"):
            if meta.get(key) is not None:
                try:
                    authors.extend(norm.parse_authors(meta[key]))
                except ValueError as e:
                    raise _Broken(key, str(e)) from None
        if not authors and self.settings.default_author:
            authors.append(Author(self.settings.default_author))
        return tuple(dict.fromkeys(authors))


# --- a fast path for the front matter almost everyone writes ---------------------------------
#
# PyYAML's C loader still builds every value in Python (~40 µs for a typical front matter,
# 0.4 s for 10,000 articles). Front matter is nearly always flat "key: value" lines with plain
# or simply quoted scalars and [flow, lists]; those are read here with the same resolver
# PyYAML uses, and anything else (nesting, block lists, escapes, anchors, multi-line text,
# numbers) goes to PyYAML. tests/test_sources_files.py checks both agree on tricky input.

_RESOLVER = yaml.resolver.Resolver()
# first characters that may start a non-string plain scalar (bool, int, null, date, …)
_RESOLVABLE = frozenset(k for k in yaml.resolver.Resolver.yaml_implicit_resolvers if k)
_STR = "tag:yaml.org,2002:str"
_TEXT_TAGS = frozenset({_STR, "tag:yaml.org,2002:timestamp"})  # dates stay text, as in _Loader
_QUICK_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*?))? *")
_QUICK_UNSAFE = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]"
)
_PLAIN_START_BAD = frozenset("-?:,[]{}#&*!|>'\"%@`")
_DOUBLE = re.compile(r'"([^"\\]*)"')
_SINGLE = re.compile(r"'([^']*)'")
_FLOW_ITEM_BAD = re.compile(r"[\[\]{}#]|: |:$")


def quick_front_matter(text: str) -> dict[str, Any] | None:
    """``text`` parsed like PyYAML would, when it is simple flat front matter; else None."""
    if _QUICK_UNSAFE.search(text):
        return None
    data: dict[str, Any] = {}
    for line in text.split("\n"):
        if not line or line[0] == "#" or line.isspace():
            continue
        parsed = _LINE_CACHE.get(line)
        if parsed is None:
            parsed = _quick_line(line)
            if len(_LINE_CACHE) >= _LINE_CACHE_SIZE:
                _LINE_CACHE.clear()
            _LINE_CACHE[line] = parsed
        if parsed is _NOT_SIMPLE:
            return None
        key, value = parsed
        if key in data:  # let PyYAML's loader report the duplicate with its line
            return None
        # the cache holds lists as tuples, so no caller can change a cached value
        data[key] = list(value) if isinstance(value, tuple) else value
    return data


_NOT_SIMPLE: Any = object()
# Lines repeat across a publication ("author: …", "categories: […]"), so parsed lines are
# kept; the bound keeps memory flat on huge folders.
_LINE_CACHE: dict[str, Any] = {}
_LINE_CACHE_SIZE = 50_000


def _quick_line(line: str) -> Any:
    """(key, value) of one front-matter line, or _NOT_SIMPLE."""
    m = _QUICK_LINE.fullmatch(line)
    if m is None:
        return _NOT_SIMPLE
    key = m.group(1)
    if key[0] in _RESOLVABLE and _resolve(key) != _STR:
        return _NOT_SIMPLE
    raw = m.group(2)
    if not raw:
        return key, None
    value = _quick_value(raw, flow=False)
    if value is _NOT_SIMPLE:
        return _NOT_SIMPLE
    return key, tuple(value) if isinstance(value, list) else value


def _resolve(plain: str) -> str:
    tag = _RESOLVER.resolve(yaml.ScalarNode, plain, (True, False))  # type: ignore[no-untyped-call]
    return str(tag)


def _quick_value(raw: str, *, flow: bool) -> Any:
    first = raw[0]
    if first == '"':
        m = _DOUBLE.fullmatch(raw)
        return m.group(1) if m else _NOT_SIMPLE
    if first == "'":
        m = _SINGLE.fullmatch(raw)
        return m.group(1) if m else _NOT_SIMPLE
    if first == "[" and not flow:
        if raw[-1] != "]":
            return _NOT_SIMPLE
        inner = raw[1:-1].strip()
        if not inner:
            return []
        items = []
        for part in inner.split(","):
            part = part.strip()
            if not part or (part[0] not in "\"'" and _FLOW_ITEM_BAD.search(part)):
                return _NOT_SIMPLE
            item = _quick_value(part, flow=True)
            if item is _NOT_SIMPLE:
                return _NOT_SIMPLE
            items.append(item)
        return items
    if first in _PLAIN_START_BAD or ": " in raw or " #" in raw or raw[-1] == ":" or "\t" in raw:
        return _NOT_SIMPLE
    if first not in _RESOLVABLE:
        return raw
    tag = _resolve(raw)
    if tag in _TEXT_TAGS:
        return raw
    if tag == "tag:yaml.org,2002:bool":
        return yaml.constructor.SafeConstructor.bool_values[raw.lower()]
    if tag == "tag:yaml.org,2002:null":
        return None
    return _NOT_SIMPLE  # numbers and the rest: PyYAML knows their corner cases


def _walk(
    folder: str, shown: str, seen: set[tuple[int, int]] | None = None
) -> Iterator[tuple[str, str]]:
    """(path, path as shown) of the article files below ``folder``, in a stable order.

    Hidden files and folders (".git", ".DS_Store") are skipped; symlinked folders are
    followed, each real folder once (a link back up the tree must not loop forever).
    """
    seen = set() if seen is None else seen
    info = os.stat(folder)
    if (info.st_dev, info.st_ino) in seen:
        return
    seen.add((info.st_dev, info.st_ino))
    dirs: list[str] = []
    files: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                dirs.append(entry.name)
            elif os.path.splitext(entry.name)[1].lower() in FORMATS:
                files.append(entry.name)
    for name in sorted(files):
        yield os.path.join(folder, name), f"{shown}/{name}"
    for name in sorted(dirs):
        yield from _walk(os.path.join(folder, name), f"{shown}/{name}", seen)


def _title_from_body(body: str, body_format: str) -> tuple[str, str]:
    """(title, rest of the body) when the body itself carries the title, else ("", body)."""
    if body_format == "markdown":
        m = _MD_TITLE.match(body)
        return (m.group(1).strip(), body[m.end() :]) if m else ("", body)
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


def _key_line(fm_text: str, key: str) -> int:
    """The file line of front-matter key ``key`` (line 1 is the opening "---")."""
    if fm_text:
        m = re.search(rf"^{re.escape(key)}[ \t]*:", fm_text, re.M)
        if m:
            return fm_text.count("\n", 0, m.start()) + 2
    return 1


def _text(value: Any, key: str) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise _Broken(key, f"expected text, got {_show(value)}")
    return str(value)


def _names(meta: dict[str, Any], key: str) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
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
