"""Front matter and metadata headers: how each site generator writes an article's fields.

``split`` finds the metadata at the top of a file, in any of the forms site generators use:
YAML between ``---`` lines (Jekyll, Hugo, Eleventy), TOML between ``+++`` lines (Hugo), a JSON
object (Hugo) and ``Key: value`` header lines up to the first blank line (Pelican,
MultiMarkdown). ``fields`` then maps each generator's field names onto pressroom's own
(Hugo's ``lastmod``, Jekyll's ``last_modified_at`` and Pelican's ``Modified`` all become
``updated``), so a site's content folder is read as it is, without configuration.

One parser per format: YAML through PyYAML (plus a fast path for flat front matter, checked
against PyYAML in the tests), TOML through the standard library's ``tomllib``, JSON through
``json``, and the header lines here.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from typing import Any, NamedTuple

import yaml

# pressroom's own keys (see README, "files")
KEYS = (
    "title",
    "date",
    "updated",
    "author",
    "authors",
    "categories",
    "tags",
    "summary",
    "description",
    "image",
    "image_alt",
    "slug",
    "url",
    "draft",
    "id",
    "publish_date",
    "expiry_date",
    "published",
    "status",
    "save_as",
    "exclude",
    "excerpt_separator",
)
_KEY_SET = frozenset(KEYS)
# other generators' names for them (compared in lower case: Hugo and Pelican ignore case)
ALIASES = {
    "publishdate": "publish_date",  # Hugo
    "pubdate": "publish_date",  # Hugo
    "lastmod": "updated",  # Hugo
    "expirydate": "expiry_date",  # Hugo
    "unpublishdate": "expiry_date",  # Hugo
    "images": "image",  # Hugo: a list, the first is the featured image
    "last_modified_at": "updated",  # Jekyll
    "category": "categories",  # Jekyll, Pelican
    "permalink": "url",  # Jekyll, Eleventy
    "excerpt": "summary",  # Jekyll
    "modified": "updated",  # Pelican
    "eleventyexcludefromcollections": "exclude",  # Eleventy
    "headless": "exclude",  # Hugo: a headless bundle has no page
}
# keys the generators use for layout, menus and the like: known, so no warning, and unused
IGNORED = frozenset(
    {
        "aliases",
        "build",
        "cascade",
        "comments",
        "eleventycomputed",
        "eleventynavigation",
        "iscjklanguage",
        "keywords",
        "lang",
        "layout",
        "linktitle",
        "markup",
        "menu",
        "outputs",
        "pagination",
        "redirect_from",
        "resources",
        "sitemap",
        "template",
        "toc",
        "translation",
        "translationkey",
        "type",
        "weight",
    }
)


class FrontMatterError(Exception):
    """The metadata block of a file cannot be read (``line`` is the file line to fix)."""

    def __init__(self, problem: str, line: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


class FrontMatter(NamedTuple):
    """The metadata of one file, as written, and the body that follows it."""

    meta: dict[str, Any]
    text: str  # the metadata's own text, to find the line of a key for messages
    first_line: int  # file line of the first line of ``text``
    body: str
    style: str  # "yaml", "toml", "json", "headers" or "" (none)

    def find(self, key: str) -> int | None:
        """The file line where ``key`` is written (any case), or None."""
        if self.text:
            m = re.search(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*[:=]", self.text, re.M | re.I)
            if m:
                return self.text.count("\n", 0, m.start()) + self.first_line
        return None

    def line_of(self, key: str) -> int:
        """The file line where ``key`` is written (the first line when it is not found)."""
        line = self.find(key)
        return line if line is not None else max(self.first_line - 1, 1)


MISSING_HINT = (
    'missing; start the file with a "---" line, then title: and date:, then "---" '
    '(or TOML between "+++" lines, a JSON object, or Pelican "Title:" lines)'
)


def split(text: str, *, headers: bool) -> FrontMatter:
    """The metadata and body of ``text`` (newlines already ``\\n``, no BOM).

    ``headers`` allows Pelican/MultiMarkdown ``Key: value`` lines (Markdown files only: a
    scraped text file's first line may well contain a colon). A file without metadata
    comes back with style ``""``; the caller decides whether that is allowed.
    """
    try:
        return _split(text, headers=headers)
    except RecursionError:  # thousands of nested [ or { (the parsers recurse)
        raise FrontMatterError("nested too deeply to read; flatten the metadata", 1) from None
    except _TooManyDigits:
        # Python refuses int() of more than sys.get_int_max_str_digits() digits (CVE-2020-10735):
        # the JSON and TOML parsers let that ValueError out, and it ended the whole run
        limit = sys.get_int_max_str_digits()
        found = re.search(rf"\d{{{limit + 1},}}", text)
        line = text.count("\n", 0, found.start()) + 1 if found else 1
        raise FrontMatterError(
            f"a number of more than {limit} digits; put it in quotes if it is text", line
        ) from None


class _TooManyDigits(Exception):
    """A parser met an integer too long for Python to convert."""


def _digits_guard(e: ValueError) -> None:
    if "integer string conversion" in str(e):
        raise _TooManyDigits from None


def _split(text: str, *, headers: bool) -> FrontMatter:
    first_nl = text.find("\n")
    first = (text[:first_nl] if first_nl >= 0 else text).rstrip()
    if first == "---":
        return _delimited(text, first_nl, _YAML_END, "yaml", _yaml)
    if first == "+++":
        return _delimited(text, first_nl, _TOML_END, "toml", _toml)
    if first.startswith("{"):
        return _json(text)
    if headers and _HEADER.fullmatch(first) and first.split(":", 1)[0].strip():
        return _headers(text)
    return FrontMatter({}, "", 1, text, "")


_YAML_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M)
_TOML_END = re.compile(r"^\+\+\+[ \t]*$", re.M)
# a Pelican / MultiMarkdown header: a key of letters, digits, spaces, dashes or underscores
_HEADER = re.compile(r"[A-Za-z][A-Za-z0-9_ -]*:(?:[ \t].*)?")


def _delimited(
    text: str, first_nl: int, end_re: re.Pattern[str], style: str, parse: Any
) -> FrontMatter:
    fence = "---" if style == "yaml" else "+++"
    end = end_re.search(text, first_nl + 1) if first_nl >= 0 else None
    if end is None:
        raise FrontMatterError(f'no closing "{fence}" line; end the front matter with one', 1)
    fm_text = text[first_nl + 1 : end.start()]
    meta = parse(fm_text)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FrontMatterError("expected key: value lines (title:, date:, …)", 2)
    return FrontMatter(meta, fm_text, 2, text[end.end() + 1 :], style)


def _yaml(fm_text: str) -> Any:
    try:
        meta = quick_front_matter(fm_text)
        return meta if meta is not None else yaml.load(fm_text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        # the context mark is where the broken construct starts: the line to fix
        mark = e.context_mark or e.problem_mark
        line = mark.line + 2 if mark else 1  # +1 for 0-based, +1 for the opening "---"
        problem = f"invalid YAML: {e.problem or e.context}"
        if e.context and e.problem:
            problem += f" {e.context}"
        if "mapping values" in problem:
            problem += '; put a value that contains ": " in quotes'
        raise FrontMatterError(problem, line) from None
    except (yaml.YAMLError, ValueError) as e:
        if isinstance(e, ValueError):
            _digits_guard(e)
        raise FrontMatterError(f"invalid YAML: {e}", 1) from None


_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)|\s*\(at end of document\)")


def _toml(fm_text: str) -> Any:
    try:
        return tomllib.loads(fm_text)
    except ValueError as e:
        if not isinstance(e, tomllib.TOMLDecodeError):
            _digits_guard(e)
            raise
        m = _TOML_AT.search(str(e))
        line = int(m.group(1)) + 1 if m and m.group(1) else fm_text.count("\n") + 2
        problem = _TOML_AT.sub("", str(e))
        raise FrontMatterError(f"invalid TOML: {problem}", line) from None


def _json(text: str) -> FrontMatter:
    try:
        meta, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as e:
        raise FrontMatterError(f"invalid JSON front matter: {e.msg}", e.lineno) from None
    except ValueError as e:
        _digits_guard(e)
        raise
    if not isinstance(meta, dict):
        raise FrontMatterError("expected a JSON object of fields", 1)
    return FrontMatter(meta, text[:end], 1, text[end:].lstrip(" \t").removeprefix("\n"), "json")


def _headers(text: str) -> FrontMatter:
    """Pelican / MultiMarkdown ``Key: value`` lines up to the first blank line.

    Keys are compared in lower case without spaces (as Pelican and MultiMarkdown do); an
    indented line continues the value above it. The first line that is neither ends the
    block and starts the body, as in Python-Markdown's ``meta`` extension.
    """
    meta: dict[str, Any] = {}
    seen: dict[str, int] = {}
    lines = text.split("\n")
    key = ""
    end = len(lines)
    for i, line in enumerate(lines):
        if not line.strip():
            end = i + 1
            break
        if key and line[:1] in (" ", "\t"):
            meta[key] = f"{meta[key]} {line.strip()}".strip()
            continue
        if not _HEADER.fullmatch(line):
            end = i
            break
        name, _, value = line.partition(":")
        key = "".join(name.split()).lower()
        if key in seen:
            raise FrontMatterError(
                f'duplicate key "{name.strip()}" (first at line {seen[key]}); keep one', i + 1
            )
        seen[key] = i + 1
        meta[key] = value.strip()
    return FrontMatter(meta, "\n".join(lines[:end]), 1, "\n".join(lines[end:]), "headers")


def fields(fm: FrontMatter) -> tuple[dict[str, Any], list[str]]:
    """(fields under pressroom's names, keys no generator knows) of one file's metadata.

    A key written under pressroom's own name wins over another generator's name for the
    same field (``summary`` over ``excerpt``); categories from both are kept.
    """
    if _KEY_SET.issuperset(fm.meta) and "published" not in fm.meta and fm.style != "headers":
        return fm.meta, []  # written with pressroom's own names: nothing to map
    out: dict[str, Any] = {}
    aliased: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in fm.meta.items():
        name = str(key).lower()
        if name == "published" and not isinstance(value, bool):
            name = "publish_date"  # Hugo's alias for publishDate; Jekyll's is true/false
        if name in KEYS:
            out[name] = value
        elif name in ALIASES:
            target = ALIASES[name]
            if target == "categories" and target in aliased:
                aliased[target] = _as_list(aliased[target]) + _as_list(value)
            else:
                aliased.setdefault(target, value)
        elif name not in IGNORED:
            unknown.append(str(key))
    for target, value in aliased.items():
        if target == "categories" and target in out:
            out[target] = _as_list(out[target]) + _as_list(value)
        else:
            out.setdefault(target, value)
    if fm.style == "headers":
        for key in ("authors", "tags", "categories"):
            if isinstance(out.get(key), str):  # Pelican: "Alice, Bob"
                out[key] = [p.strip() for p in out[key].split(",") if p.strip()]
    return out, unknown


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


# --- YAML --------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's C loader, with dates left as text for ``parse_date``.

    PyYAML's own timestamp constructor raises a bare ValueError on "2026-02-31" and ignores
    the publication's timezone, so dates are parsed in one place, with one error message.
    A key written twice is refused: YAML would silently keep the last one.
    """

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # "? [a, b]": PyYAML refuses the unhashable key itself, with its line
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
# the value ends at its last non-space: a lazy (.*?) before " *" retried every length, so a
# line padded with 400 KB of spaces took minutes
_QUICK_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*[^ ]))? *")
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
