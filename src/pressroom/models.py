"""The value objects that flow between pressroom's stages (see DESIGN.md, "Data flow")."""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any

# --- articles -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Author:
    name: str
    email: str | None = None
    url: str | None = None

    def __reduce__(self) -> tuple[type[Author], tuple[str, str | None, str | None]]:
        # the parse cache unpickles thousands: the constructor is ~10x faster than the
        # generic state restore dataclasses give slotted classes
        return (Author, (self.name, self.email, self.url))


@dataclass(frozen=True, slots=True)
class Image:
    """A featured image; ``url`` is absolute."""

    url: str
    alt: str = ""
    mime_type: str | None = None  # e.g. "image/jpeg"; guessed from the URL when None
    length: int | None = None  # bytes, when the source knows it (RSS enclosures need one)
    width: int | None = None
    height: int | None = None

    def __reduce__(self) -> tuple[type[Image], tuple[Any, ...]]:
        return (
            Image,
            (self.url, self.alt, self.mime_type, self.length, self.width, self.height),
        )


@dataclass(frozen=True)
class Article:
    """One published article, normalised by ``pressroom.articles.load``.

    Dates are timezone-aware; ``url`` and every URL inside ``html`` are absolute; ``summary``
    is plain text. ``id`` is stable for the life of the article (it never changes when the
    article is edited) and is what feeds use as GUID. The body is kept raw (``body`` in
    ``body_format``) and rendered to sanitised HTML only when ``html`` is first read, so a run
    that lists 10,000 articles renders only those a feed or issue includes.
    """

    id: str
    url: str
    slug: str
    title: str
    published: datetime
    updated: datetime | None
    authors: tuple[Author, ...]
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    summary: str
    image: Image | None
    body: str
    body_format: str  # "markdown" | "html" | "text"
    base_url: str  # absolute URL that relative links in the body resolve against
    source: str  # where it came from: a file path relative to the config, or a URL
    # body, body_format, base_url -> sanitised HTML; the content stage passes its renderer in
    # (``pressroom.content.text.render_body``), so the core never imports a stage
    renderer: Callable[[str, str, str], str] = field(kw_only=True, compare=False, repr=False)

    @cached_property
    def html(self) -> str:
        """The body as sanitised HTML with absolute URLs (rendered once, cached by content)."""
        return self.renderer(self.body, self.body_format, self.base_url)

    @property
    def modified(self) -> datetime:
        return self.updated or self.published


# --- subscribers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscriber:
    email: str  # normalised: domain lower-cased
    name: str = ""
    lists: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    status: str = "active"
    subscribed_at: str = ""
    attrs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


# --- issues ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallToAction:
    """One support block as it appears in one issue (variant already chosen)."""

    name: str  # stable id, used as utm_content and in preflight ("patreon", "cta-2")
    kind: str  # patreon, kofi, paypal, buymeacoffee, liberapay, github-sponsors, substack, custom
    url: str
    headline: str
    text: str
    button: str
    position: str  # "top" | "after:N" | "bottom"
    color: str
    icon: str | None
    hide_for_tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Issue:
    """One weekly edition as chosen by ``pressroom.issue.build_issue`` (not yet rendered)."""

    number: int
    date: datetime  # the issue's own date (its build time, publication timezone)
    window_start: datetime
    window_end: datetime
    articles: tuple[Article, ...]  # display order: lead first, then section by section
    lead: Article
    # (category or "", articles) after the lead
    sections: tuple[tuple[str, tuple[Article, ...]], ...]
    ctas: tuple[CallToAction, ...]
    subject: str
    preheader: str


# Per-subscriber fields. Rendering leaves ``token(field)`` in the HTML and text; delivery fills
# them per recipient (escaped for HTML, raw for text) or hands them to the provider's own
# substitution. The token is plain ASCII that premailer and URL-escaping leave alone.
FIELDS: tuple[str, ...] = (
    "name",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "view_online_url",
)


def token(name: str) -> str:
    """The placeholder that stands for per-subscriber field ``name`` in rendered parts."""
    return f"%%PR_{name.upper()}%%"


@dataclass(frozen=True, slots=True)
class RenderedVariant:
    """One audience's rendering of an issue: final bytes apart from the field tokens."""

    key: str  # "all", or e.g. "without:patreon" when a CTA is hidden for some tags
    html: str
    text: str
    hidden_ctas: frozenset[str] = frozenset()  # CallToAction.name values left out


@dataclass(frozen=True, slots=True)
class RenderedIssue:
    """What delivery freezes and sends; preview shows exactly the same bytes."""

    number: int
    subject: str
    preheader: str
    variants: tuple[RenderedVariant, ...]
    # for each CTA name that has hide_for_tags: the tags that hide it
    cta_hide_rules: tuple[tuple[str, frozenset[str]], ...] = ()

    def variant_for(self, tags: frozenset[str]) -> RenderedVariant:
        """The variant a subscriber with ``tags`` receives."""
        hidden = frozenset(name for name, hide in self.cta_hide_rules if tags & hide)
        for variant in self.variants:
            if variant.hidden_ctas == hidden:
                return variant
        return self.variants[0]


@dataclass(frozen=True, slots=True)
class SentIssue:
    """The last issue that finished sending."""

    number: int
    sent_at: datetime
    window_end: datetime


# --- personalisation ------------------------------------------------------------------
# A rendered part (HTML or text) is split once at its ``token`` placeholders; filling it for
# one subscriber is then a join of constant pieces and escaped values, with no parsing
# (DESIGN decision 1). Digest, preview and delivery all fill parts, so it lives in the core.

_TOKEN_RE = re.compile("|".join(re.escape(token(f)) for f in FIELDS))
_FIELD_OF = {token(f): f for f in FIELDS}


class Personaliser:
    """A part compiled for repeated filling: ``fill(values)`` for each subscriber."""

    __slots__ = ("_fields", "_html", "_pieces")

    def __init__(self, part: str, *, is_html: bool) -> None:
        pieces = _TOKEN_RE.split(part)
        self._pieces = pieces
        self._fields = [_FIELD_OF[m] for m in _TOKEN_RE.findall(part)]
        self._html = is_html

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self._fields)

    def fill(self, values: Mapping[str, str]) -> str:
        """The part for one subscriber; values are HTML-escaped in HTML parts, raw in text."""
        pieces = self._pieces
        out = [pieces[0]]
        if self._html:
            for i, name in enumerate(self._fields, 1):
                out.append(html_lib.escape(values.get(name, ""), quote=True))
                out.append(pieces[i])
        else:
            for i, name in enumerate(self._fields, 1):
                out.append(values.get(name, ""))
                out.append(pieces[i])
        return "".join(out)

    def translate(self, syntax: Mapping[str, str]) -> str:
        """The part with each token replaced by a provider's own substitution syntax."""
        out = [self._pieces[0]]
        for i, name in enumerate(self._fields, 1):
            out.append(syntax[name])
            out.append(self._pieces[i])
        return "".join(out)


def unfilled(part: str) -> list[str]:
    """Tokens (or token-like leftovers) still present in a final part."""
    return sorted(set(re.findall(r"%%PR_[A-Z_]+%%|\{\{.*?\}\}|\{\{%20.*?%20\}\}", part)))


def rendered_to_json(rendered: RenderedIssue) -> str:
    """Serialise a rendered issue losslessly."""
    return json.dumps(
        {
            "number": rendered.number,
            "subject": rendered.subject,
            "preheader": rendered.preheader,
            "variants": [
                {"key": v.key, "html": v.html, "text": v.text, "hidden": sorted(v.hidden_ctas)}
                for v in rendered.variants
            ],
            "cta_hide_rules": [[n, sorted(tags)] for n, tags in rendered.cta_hide_rules],
        },
        ensure_ascii=False,
    )


def rendered_from_json(text: str) -> RenderedIssue:
    """The inverse of ``rendered_to_json``."""
    d = json.loads(text)
    return RenderedIssue(
        number=d["number"],
        subject=d["subject"],
        preheader=d["preheader"],
        variants=tuple(
            RenderedVariant(v["key"], v["html"], v["text"], frozenset(v["hidden"]))
            for v in d["variants"]
        ),
        cta_hide_rules=tuple((n, frozenset(t)) for n, t in d["cta_hide_rules"]),
    )
