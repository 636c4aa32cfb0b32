"""Where an article lives on its site: ``sources.files.permalink`` patterns and presets.

A pattern such as ``{section}/{year}/{slug}/`` is expanded per article and taken relative
to ``publication.url``; a preset names the rule a site generator applies by default, so a
feed's links are the pages the site really serves. An article's own ``url`` /
``permalink`` / ``URL`` / ``Save_as`` still wins (see the files source).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote

from pressroom.content.urls import slugify

SlugFrom = Literal["name", "stem", "title"]


@dataclass(frozen=True)
class Preset:
    """A generator's default permalink and where its slugs come from without a ``slug:``.

    ``slug_from``: ``name`` is the file name without a ``YYYY-MM-DD-`` prefix (Jekyll, and
    pressroom's own default), ``stem`` the file name as it is (Hugo, Eleventy), ``title``
    the title (Pelican's ``SLUGIFY_SOURCE``). ``folder_category``: an article without a
    category is in the one its folder names (Pelican). ``lower_case``: the whole path is
    lower case, a written slug and the folders too (Hugo).
    """

    pattern: str
    slug_from: SlugFrom = "name"
    folder_category: bool = False  # Pelican's USE_FOLDER_AS_CATEGORY
    lower_case: bool = False  # Hugo: every path in lower case (disablePathToLower is off)


# Jekyll's styles: https://jekyllrb.com/docs/permalinks/#built-in-formats (":title" is the
# file name without its date, or the front matter's slug, i.e. our {slug}).
JEKYLL_STYLES = {
    "date": "{categories}/{year}/{month}/{day}/{slug}.html",
    "pretty": "{categories}/{year}/{month}/{day}/{slug}/",
    "ordinal": "{categories}/{year}/{y_day}/{slug}.html",
    "weekdate": "{categories}/{year}/W{week}/{short_day}/{slug}.html",
    "none": "{categories}/{slug}.html",
}
# Jekyll's placeholders → ours (https://jekyllrb.com/docs/permalinks/#placeholders)
JEKYLL_TOKENS = {
    "year": "{year}",
    "month": "{month}",
    "day": "{day}",
    "y_day": "{y_day}",
    "hour": "{hour}",
    "minute": "{minute}",
    "week": "{week}",
    "short_day": "{short_day}",
    "title": "{slug}",  # Jekyll's :title is the file name's slug (or slug:)
    "slug": "{slug}",
    "categories": "{categories}",
    "output_ext": ".html",
}
_JEKYLL_PLACEHOLDER = re.compile(r":([a-z_]+)")


def from_jekyll(rule: str) -> str | None:
    """A per-post Jekyll ``permalink: /:year/:title/`` as our pattern; None when it holds no
    placeholder or one we cannot fill in."""
    names = _JEKYLL_PLACEHOLDER.findall(rule)
    if not names or any(n not in JEKYLL_TOKENS for n in names):
        return None
    return _JEKYLL_PLACEHOLDER.sub(lambda m: JEKYLL_TOKENS[m.group(1)], rule).lstrip("/")


PRESETS: dict[str, Preset] = {
    "default": Preset("{slug}/"),
    # Hugo without [permalinks]: the page's folders below content/, then its slug or file
    # name (a leaf bundle's folder name); {path} rather than {section} so that nested
    # folders (posts/2020/x.md → /posts/2020/x/) come out as Hugo builds them
    "hugo": Preset("{path}/{slug}/", "stem", lower_case=True),
    "jekyll": Preset(JEKYLL_STYLES["date"]),
    **{f"jekyll-{name}": Preset(pattern) for name, pattern in JEKYLL_STYLES.items()},
    "pelican": Preset("{slug}.html", "title", folder_category=True),  # ARTICLE_URL's default
    "eleventy": Preset("{path}/{filename}/", "stem"),  # the input path, as a folder
}
TOKENS = (
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "y_day",
    "week",
    "short_day",
    "slug",
    "slug_or_title",
    "title",
    "section",
    "path",
    "category",
    "categories",
    "filename",
)


def preset(value: str) -> Preset:
    """The preset named ``value``, or ``value`` as a pattern; ValueError when it is neither."""
    if value in PRESETS:
        return PRESETS[value]
    check(value)
    return Preset(value)


def check(pattern: str) -> None:
    """Raise ValueError naming the first unknown placeholder or stray brace in ``pattern``."""
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as e:
        raise ValueError(f'"{pattern}": {e}; write placeholders as {{year}}') from None
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        if field not in TOKENS or spec:
            names = ", ".join(f"{{{t}}}" for t in TOKENS)
            raise ValueError(
                f'"{pattern}": unknown placeholder {{{field}}}; use one of {names}, '
                f"or a preset: {', '.join(PRESETS)}"
            )
    dots = next((seg for seg in pattern.split("/") if seg.strip() in (".", "..")), None)
    if dots is not None:
        raise ValueError(
            f'"{pattern}": a "{dots.strip()}" segment points outside the article\'s place in '
            "the site; remove it (links are relative to publication.url)"
        )
    if not any(field for _, field, _, _ in parsed) and pattern not in PRESETS:
        raise ValueError(
            f'"{pattern}" has no placeholder; use a preset ({", ".join(PRESETS)}) '
            "or a pattern like {section}/{slug}/"
        )


@dataclass(frozen=True)
class Place:
    """What a pattern can say about one article."""

    slug: str
    title: str
    published: datetime
    folders: tuple[str, ...]  # folders between the source path and the article (or bundle)
    filename: str  # file name without extension (a bundle's folder name)
    categories: tuple[str, ...]
    own_slug: bool = False  # the article gives its slug (Hugo's :slug falls back to the title)


_SLASHES = re.compile(r"/{2,}")


def expand(pattern: str, place: Place) -> str:
    """``pattern`` filled in for ``place``: a path relative to ``publication.url``."""
    path = pattern.format_map(_Values(place))
    if "." in path:  # a category ".." as a folder, a post's own "/:categories/../:title/"
        path = "/".join(seg for seg in path.split("/") if seg not in (".", ".."))
    return _SLASHES.sub("/", path).lstrip("/")


class _Values(dict[str, str]):
    """The placeholders of one place, each worked out only when the pattern names it (a cold
    run expands 10,000 permalinks; most patterns use two or three of these)."""

    def __init__(self, place: Place) -> None:
        super().__init__()
        self.place = place

    def __missing__(self, key: str) -> str:
        value = self[key] = _VALUES[key](self.place)
        return value


def _categories(p: Place) -> str:
    # Jekyll: every category, lower case, in order, as folders
    return "/".join(dict.fromkeys(_segment(c.lower()) for c in p.categories if c.strip()))


_VALUES: dict[str, Callable[[Place], str]] = {
    "year": lambda p: f"{p.published.year:04d}",
    "month": lambda p: f"{p.published.month:02d}",
    "day": lambda p: f"{p.published.day:02d}",
    "hour": lambda p: f"{p.published.hour:02d}",
    "minute": lambda p: f"{p.published.minute:02d}",
    "y_day": lambda p: f"{p.published.timetuple().tm_yday:03d}",
    "week": lambda p: f"{p.published.isocalendar().week:02d}",
    "short_day": lambda p: p.published.strftime("%a"),
    "slug": lambda p: p.slug,
    "slug_or_title": lambda p: p.slug if p.own_slug else slugify(p.title),
    "title": lambda p: slugify(p.title),
    "section": lambda p: _segment(p.folders[0]) if p.folders else "",
    "path": lambda p: "/".join(_segment(f) for f in p.folders),
    "category": lambda p: slugify(p.categories[0]) if p.categories else "",
    "categories": _categories,
    "filename": lambda p: _segment(p.filename),
}


def _segment(text: str) -> str:
    """One path segment as a URL holds it (spaces and the like percent-encoded)."""
    return quote(text.strip(), safe="-._~!$&'()*+,;=:@")
