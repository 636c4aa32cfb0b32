"""What ``pressroom init --from`` learns from an existing site's own configuration.

One reader per generator reads the site's config file (never runs it: ``pelicanconf.py`` is
parsed, and only plain string settings are taken) for the base URL, name, time zone,
content folder and permalink rule, and returns the ``files`` sources that read that site.
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from pressroom.content import permalinks
from pressroom.content.urls import BadURL, public_url
from pressroom.errors import UsageError
from pressroom.textpolicy import printable


@dataclass
class FilesEntry:
    """One ``files`` source for config.yaml (``path`` relative to the site folder)."""

    path: str
    permalink: str
    exclude: list[str] = field(default_factory=list)
    slug_from: str | None = None
    folder_category: bool = False
    excerpt_separator: str | None = None


@dataclass
class SiteInfo:
    """What a site's configuration says that pressroom needs."""

    generator: str
    url: str | None = None
    name: str | None = None
    timezone: str | None = None
    language: str | None = None
    description: str | None = None
    sources: list[FilesEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what to check by hand


def read_site(generator: str, site: Path) -> SiteInfo:
    """The settings of the ``generator`` site in folder ``site`` (UsageError when unreadable)."""
    if generator not in READERS:
        raise UsageError(f'unknown generator "{generator}"; use one of {", ".join(READERS)}')
    if not site.is_dir():
        raise UsageError(f"{site}: no such folder; give the folder of your {generator} site")
    info = READERS[generator](site)
    if info.url and not info.url.endswith("/"):
        info.url += "/"
    if info.url and not info.url.startswith(("http://", "https://")):
        info.notes.append(f'the site URL "{info.url}" is not absolute; set publication.url')
        info.url = None
    elif info.url:
        try:  # what config.yaml will check: a URL it refuses must not be written into it
            public_url(info.url)
        except BadURL as e:
            info.notes.append(f"the site URL {e}; set publication.url")
            info.url = None
    if not info.url:
        info.notes.append("no base URL found in the site's config; set publication.url")
    if info.timezone is not None:
        try:
            ZoneInfo(info.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            info.notes.append(
                f'the site\'s time zone "{printable(info.timezone)}" is no IANA name '
                "pressroom knows; set publication.timezone"
            )
            info.timezone = None
    return info


# --- Hugo ------------------------------------------------------------------------------

HUGO_CONFIGS = (
    "hugo.toml",
    "hugo.yaml",
    "hugo.yml",
    "hugo.json",
    "config.toml",
    "config.yaml",
    "config.yml",
    "config.json",
)
# Hugo's permalink tokens → ours (https://gohugo.io/content-management/urls/#tokens)
HUGO_TOKENS = {
    "year": "{year}",
    "month": "{month}",
    "day": "{day}",
    "title": "{title}",
    "slug": "{slug_or_title}",  # Hugo: the slug, else the title
    "filename": "{filename}",
    "contentbasename": "{filename}",
    "section": "{section}",
    "sections": "{path}",
}


def _hugo(site: Path) -> SiteInfo:
    info = SiteInfo("hugo")
    found = [site / n for n in HUGO_CONFIGS] + [
        site / "config" / "_default" / n for n in HUGO_CONFIGS
    ]
    path = next((p for p in found if p.is_file()), None)
    if path is None:
        raise UsageError(f"{site}: no hugo.toml or config.toml; is this a Hugo site?")
    raw = _load_data(path)
    conf = {str(k).lower(): v for k, v in raw.items()}
    info.url = _str(conf.get("baseurl"))
    info.name = _str(conf.get("title"))
    info.timezone = _str(conf.get("timezone"))
    language = _str(conf.get("languagecode"))
    info.language = language.split("-")[0] if language else None
    content = _str(conf.get("contentdir")) or "content"
    rules = conf.get("permalinks") or {}
    if not isinstance(rules, dict):
        info.notes.append(f"{path.name} permalinks: expected a table of section = rule; ignored")
        rules = {}
    if isinstance(rules.get("page"), dict):  # Hugo ≥ 0.123: [permalinks.page]
        rules = rules["page"]
    sections: list[FilesEntry] = []
    for key, rule in rules.items():
        section = str(key)  # a YAML or JSON config may write a section name as a number
        if not isinstance(rule, str) or not (site / content / section).is_dir():
            continue
        pattern = _convert(rule, HUGO_TOKENS, f"{path.name} permalinks.{section}", info)
        if pattern is not None:
            sections.append(FilesEntry(f"{content}/{section}", pattern))
    main = FilesEntry(content, "hugo", [Path(s.path).name for s in sections])
    info.sources = [main, *sections]
    return info


# --- Jekyll ----------------------------------------------------------------------------


def _jekyll(site: Path) -> SiteInfo:
    info = SiteInfo("jekyll")
    path = site / "_config.yml"
    if not path.is_file():
        path = site / "_config.yaml"
    if not path.is_file():
        raise UsageError(f"{site}: no _config.yml; is this a Jekyll site?")
    conf = _load_data(path)
    base = _str(conf.get("url")) or ""
    info.url = (
        (base.rstrip("/") + "/" + (_str(conf.get("baseurl")) or "").strip("/")) if base else None
    )
    info.name = _str(conf.get("title"))
    info.description = _str(conf.get("description"))
    info.timezone = _str(conf.get("timezone"))
    style = _str(conf.get("permalink")) or "date"
    if style in permalinks.JEKYLL_STYLES:
        pattern: str | None = f"jekyll-{style}" if style != "date" else "jekyll"
    else:
        pattern = _convert(style, permalinks.JEKYLL_TOKENS, f"{path.name} permalink", info)
    info.sources = [FilesEntry("_posts", pattern or "jekyll")]
    info.sources[0].excerpt_separator = _str(conf.get("excerpt_separator"))
    if any(p.name == "_posts" for p in site.glob("*/_posts")):
        info.notes.append(
            "posts in category folders (*/_posts) are not read: point a source at the "
            "site folder with exclude globs for its pages to read them with their categories"
        )
    return info


# --- Pelican ---------------------------------------------------------------------------

PELICAN_TOKENS = {
    "slug": "{slug}",
    "date:%Y": "{year}",
    "date:%m": "{month}",
    "date:%d": "{day}",
    "category": "{category}",
}


def _pelican(site: Path) -> SiteInfo:
    info = SiteInfo("pelican")
    conf_path = site / "pelicanconf.py"
    if not conf_path.is_file():
        raise UsageError(f"{site}: no pelicanconf.py; is this a Pelican site?")
    conf = _python_strings(conf_path)
    # publishconf.py holds the real SITEURL (pelicanconf.py's is usually "" for local work)
    publish = (
        _python_strings(site / "publishconf.py") if (site / "publishconf.py").is_file() else {}
    )
    info.url = publish.get("SITEURL") or conf.get("SITEURL") or None
    info.name = conf.get("SITENAME")
    info.timezone = conf.get("TIMEZONE")
    info.language = conf.get("DEFAULT_LANG")
    content = conf.get("PATH", "content")
    rule = conf.get("ARTICLE_URL")
    pattern = "pelican"
    if rule and rule != "{slug}.html":
        converted = _convert(rule, PELICAN_TOKENS, "pelicanconf.py ARTICLE_URL", info, brace=True)
        pattern = converted or "pelican"
    entry = FilesEntry(content, pattern, ["pages"])
    if pattern != "pelican":  # the preset has both; a pattern needs them said
        entry.slug_from = "title"  # Pelican's SLUGIFY_SOURCE
        entry.folder_category = conf.get("USE_FOLDER_AS_CATEGORY", "True") != "False"
    info.sources = [entry]
    return info


# --- Eleventy --------------------------------------------------------------------------

_ELEVENTY_INPUT = re.compile(r"""\binput\s*:\s*["']([^"']+)["']""")


def _eleventy(site: Path) -> SiteInfo:
    info = SiteInfo("eleventy")
    configs = [site / n for n in ("eleventy.config.js", "eleventy.config.mjs", ".eleventy.js")]
    conf = next((p for p in configs if p.is_file()), None)
    if conf is None and not (site / "package.json").is_file():
        raise UsageError(
            f"{site}: no eleventy.config.js or .eleventy.js; is this an Eleventy site?"
        )
    source = "."
    found = _ELEVENTY_INPUT.search(_read_text(conf)) if conf else None
    if found:
        source = posixpath.normpath(found.group(1))  # "./src/" is src, "../x" stays
    elif (site / "content").is_dir():
        source = "content"
    elif (site / "src").is_dir():
        source = "src"
    for data in ("metadata.json", "site.json"):
        for folder in (site / source / "_data", site / "_data"):
            if (folder / data).is_file():
                meta = _load_data(folder / data)
                if meta:
                    info.url = info.url or _str(meta.get("url"))
                    info.name = info.name or _str(meta.get("title"))
                    info.language = info.language or _str(meta.get("language"))
                    info.description = info.description or _str(meta.get("description"))
    info.sources = [FilesEntry(source, "eleventy")]
    info.notes.append(
        "Eleventy's configuration is code: check that the source folder and the links are "
        "your site's (pressroom articles --json lists them)"
    )
    return info


READERS: dict[str, Callable[[Path], SiteInfo]] = {
    "hugo": _hugo,
    "jekyll": _jekyll,
    "pelican": _pelican,
    "eleventy": _eleventy,
}


# --- reading config files --------------------------------------------------------------


# a site's config is read whole; none is near this (pressroom's limit for any file from outside)
_MAX_CONFIG_BYTES = 32 << 20


def _read_text(path: Path) -> str:
    """A site file's text, or a one-line UsageError naming it (unreadable, too big, not UTF-8)."""
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > _MAX_CONFIG_BYTES:
        limit = _MAX_CONFIG_BYTES >> 20
        raise UsageError(f"{path}: more than {limit} MB; is it the site's config?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UsageError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "save the file as UTF-8"
        ) from None


def _load_data(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
        raise UsageError(printable(f"{path}: cannot read: {e}".splitlines()[0])) from None
    except RecursionError:
        raise UsageError(f"{path}: cannot read: nested too deeply") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of settings")
    return data


def _python_strings(path: Path) -> dict[str, str]:
    """The ``NAME = "text"`` and ``NAME = True`` settings of a Python file (nothing is run)."""
    try:
        tree = ast.parse(_read_text(path), filename=str(path))
    except SyntaxError as e:  # null bytes have no line
        where = f"{path}:{e.lineno}" if e.lineno else str(path)
        raise UsageError(f"{where}: cannot read: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise UsageError(f"{path}: cannot read: nested too deeply") from None
    out: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, (str, bool))
        ):
            out[node.targets[0].id] = str(node.value.value)  # True/False as "True"/"False"
    return out


def _convert(
    rule: str, tokens: dict[str, str], where: str, info: SiteInfo, *, brace: bool = False
) -> str | None:
    """A generator's permalink rule as our pattern, or None (with a note) when it cannot be."""
    token = re.compile(r"\{([^}]+)\}" if brace else r":([a-z_]+)")
    unknown = [t for t in token.findall(rule) if t not in tokens]
    if unknown:
        info.notes.append(
            f'{where} "{rule}" uses {unknown[0]}, which pressroom cannot write; '
            "links use the generator's default rule instead: check them"
        )
        return None
    pattern = token.sub(lambda m: tokens[m.group(1)], rule).lstrip("/")
    try:
        permalinks.check(pattern)
    except ValueError as e:
        info.notes.append(f"{where}: {e}")
        return None
    return pattern


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
