"""One feed → bytes: RSS 2.0 and Atom 1.0 through feedgen, JSON Feed 1.1 through json.

``Renderer`` builds each article's pieces once however many feeds include it. feedgen 1.0
has traps worked around here: ``content(type='CDATA')`` makes invalid Atom (never used), an
entry link with ``rel="enclosure"`` loses its attributes in Atom and becomes a second
alternate link (``_EntryExtension`` writes enclosures and authors instead), and ``guid()``
and ``id()`` each overwrite the other format's identifier. The text fix-ups
(``_atom_text_as_html``, ``_rss_profile_text``) keep the W3C validator free of warnings.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from pressroom import __version__
from pressroom.config import Config
from pressroom.content.urls import name_key
from pressroom.feeds.spec import (  # noqa: F401  (re-exported: the feed vocabulary)
    FILES,
    GENERATOR,
    GENERATOR_URI,
    JSON_FEED_VERSION,
    MIME,
    STYLESHEET,
    URI_PATTERN,
    FeedSpec,
    feeds_url,
    slug,
    uri,
)
from pressroom.models import Article

_DC_NS = "http://purl.org/dc/elements/1.1/"


# --- rendering ---------------------------------------------------------------------------


class _FeedExtension(BaseExtension):  # type: ignore[misc]
    """Declares the dc: prefix once on the RSS root (for dc:creator)."""

    def extend_ns(self) -> dict[str, str]:
        return {"dc": _DC_NS}


class _EntryExtension(BaseEntryExtension):  # type: ignore[misc]
    """Authors and the featured-image enclosure, written right in both formats.

    feedgen 1.0's ``FeedEntry.link`` drops every attribute of entry links in Atom (it rebinds
    the loop variable), so an enclosure would come out as a bare, duplicate alternate link; and
    its RSS ``<author>`` needs an e-mail address, which most bylines do not have. Its
    ``guid()`` and ``id()`` both set both formats' identifiers, so the Atom id is set here.
    """

    def __init__(self) -> None:
        self.atom_id = ""
        self.authors: tuple[tuple[str, str | None, str | None], ...] = ()
        self.enclosure: tuple[str, str, int | None] | None = None

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        entry_id = entry.find("id")
        if entry_id is not None and self.atom_id:
            entry_id.text = self.atom_id
        for name, email, home in self.authors:
            if not name.strip():
                continue  # Atom requires a name; the feed-level author covers the entry
            author = etree.SubElement(entry, "author")
            etree.SubElement(author, "name").text = name
            if email:
                etree.SubElement(author, "email").text = email
            if home:
                etree.SubElement(author, "uri").text = home
        if self.enclosure:
            url, mime, length = self.enclosure
            link = etree.SubElement(entry, "link", rel="enclosure", href=url, type=mime)
            if length:
                link.set("length", str(length))
        return entry

    def extend_rss(self, item: etree._Element) -> etree._Element:
        for name, _email, _uri in self.authors:
            if name.strip():
                etree.SubElement(item, f"{{{_DC_NS}}}creator").text = name
        if self.enclosure:
            url, mime, length = self.enclosure
            # RSS requires length; the RSS Advisory Board and the W3C validator say 0 = unknown
            etree.SubElement(item, "enclosure", url=url, length=str(length or 0), type=mime)
        return item


class Renderer:
    """Renders feeds, building each article's entry once however many feeds include it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base = feeds_url(config)
        self.full = config.feeds.content == "full"
        self.cta: str | None = None
        if config.feeds.cta:
            from pressroom.digest.render import (
                feed_cta_html,  # digest rendering: only when asked for
            )

            self.cta = feed_cta_html(config)
        self._entries: dict[str, FeedEntry] = {}
        self._items: dict[str, dict[str, Any]] = {}
        self._content: dict[str, str | None] = {}
        self._json_texts: dict[str, str] = {}
        self._bodies: dict[str, str] = {}

    def render(self, spec: FeedSpec, fmt: str) -> bytes:
        if fmt == "json":
            return self._json(spec)
        return self._xml(spec, fmt)

    # shared per-article pieces ------------------------------------------------------

    def summary(self, article: Article) -> str:
        """The item's plain-text summary; in summary mode never empty (readers need some text)."""
        return article.summary or ("" if self.full else article.title)

    def content(self, article: Article) -> str | None:
        """The HTML a feed item carries (body or summary, plus the support block), or None."""
        if article.id not in self._content:
            if self.full:
                body: str | None = article.html
                self._bodies[article.id] = article.html
            elif self.cta:
                body = f"<p>{html.escape(self.summary(article))}</p>"
            else:
                body = None
            if body is not None and self.cta:
                body += self.cta
            self._content[article.id] = body
        return self._content[article.id]

    def atom_id(self, article: Article) -> str:
        if URI_PATTERN.match(article.id):
            return article.id
        # Atom ids must be IRIs; a name-based UUID keeps the id a pure function of Article.id
        return "urn:uuid:" + str(
            uuid.uuid5(uuid.NAMESPACE_URL, self.config.publication.url + "#" + article.id)
        )

    def entry(self, article: Article) -> FeedEntry:
        cached = self._entries.get(article.id)
        if cached is not None:
            return cached
        fe = FeedEntry()
        fe.register_extension("pressroom", _EntryExtension)
        # guid() and id() each set both the RSS guid and the Atom id; the Atom id (an IRI,
        # which Article.id need not be) is put in place by _EntryExtension.
        fe.guid(
            article.id,
            permalink=article.id == article.url and URI_PATTERN.match(article.id) is not None,
        )
        fe.title(article.title)
        fe.link(href=uri(article.url))
        fe.published(article.published)
        fe.updated(max(article.published, article.modified))
        content = self.content(article)
        if content:
            fe.content(content, type="html")
        summary = self.summary(article)
        if summary:
            # The summary is plain text but RSS <description> is HTML: escape it once for HTML
            # and say so in Atom too (type="html"), so "a < b & c" reads the same everywhere.
            fe.summary(html.escape(summary, quote=False), type="html")
        if article.categories:
            fe.category([{"term": c} for c in article.categories])
        ext: _EntryExtension = fe.pressroom
        ext.atom_id = self.atom_id(article)
        ext.authors = tuple(
            (a.name, a.email, uri(a.url) if a.url else None) for a in article.authors
        )
        if article.image:
            img = article.image
            ext.enclosure = (uri(img.url), img.mime_type or _guess_mime(img.url), img.length)
        self._entries[article.id] = fe
        return fe

    def json_item(self, article: Article) -> dict[str, Any]:
        cached = self._items.get(article.id)
        if cached is not None:
            return cached
        item: dict[str, Any] = {"id": article.id, "url": uri(article.url), "title": article.title}
        content = self.content(article)
        summary = self.summary(article)
        if content:
            item["content_html"] = content
        else:
            item["content_text"] = summary
        if summary:
            item["summary"] = summary
        if article.image:
            item["image"] = uri(article.image.url)
        item["date_published"] = _rfc3339(article.published)
        item["date_modified"] = _rfc3339(max(article.published, article.modified))
        authors = [_json_author(a.name, a.url) for a in article.authors if a.name.strip()]
        if authors:
            item["authors"] = authors
        tags = list(dict.fromkeys((*article.categories, *article.tags)))
        if tags:
            item["tags"] = tags
        self._items[article.id] = item
        return item

    def rendered_bodies(self) -> dict[str, str]:
        """{article id: HTML body} of the bodies this renderer used since the last call."""
        bodies, self._bodies = self._bodies, {}
        return bodies

    def json_text(self, article: Article) -> str:
        """``json_item`` as the JSON text of an element of a feed's ``items``, indented."""
        cached = self._json_texts.get(article.id)
        if cached is None:
            text = json.dumps(self.json_item(article), ensure_ascii=False, indent=2)
            cached = self._json_texts[article.id] = "    " + text.replace("\n", "\n    ")
        return cached

    # whole feeds ----------------------------------------------------------------------

    def meta(self, spec: FeedSpec) -> tuple[str, str]:
        pub = self.config.publication
        if spec.kind == "site":
            return pub.name, pub.description or f"The latest articles from {pub.name}"
        what = "in" if spec.kind == "category" else "by"
        return f"{pub.name}: {spec.name}", f"The latest articles {what} {spec.name} from {pub.name}"

    def url(self, spec: FeedSpec, fmt: str) -> str:
        return self.base + quote(spec.path) + FILES[fmt]

    def _xml(self, spec: FeedSpec, fmt: str) -> bytes:
        pub = self.config.publication
        title, description = self.meta(spec)
        self_url = self.url(spec, fmt)
        fg = FeedGenerator()
        fg.register_extension("pressroom", _FeedExtension, _EntryExtension, atom=False, rss=True)
        fg.id(self_url)
        fg.title(title)
        # RSS <description> is HTML, like an item's: escape the plain text once for HTML
        # (a category named "<b>" must not turn bold). Atom's subtitle is text; see below.
        fg.description(html.escape(description, quote=False) if fmt == "rss" else description)
        # feedgen takes the RSS <link> from the last link added: the home page goes last
        fg.link(href=self_url, rel="self", type=MIME[fmt])
        fg.link(href=uri(pub.url), rel="alternate", type="text/html")
        fg.language(pub.language)
        fg.author({"name": pub.name, "uri": uri(pub.url)})
        fg.generator(GENERATOR, version=__version__, uri=GENERATOR_URI)
        if pub.logo:
            fg.logo(uri(pub.logo))
        if pub.copyright:
            fg.rights(pub.copyright)
        newest = max(max(a.published, a.modified) for a in spec.articles)
        fg.updated(newest)
        fg.lastBuildDate(newest)
        for article in spec.articles:
            fg.add_entry(self.entry(article), order="append")
        root = fg._create_rss()[0] if fmt == "rss" else _atom_text_as_html(fg._create_atom()[0])
        head = b"<?xml version='1.0' encoding='UTF-8'?>\n"
        if self.config.feeds.stylesheet:
            href = "../" * spec.path.count("/") + STYLESHEET
            head += f'<?xml-stylesheet type="text/xsl" href="{href}"?>\n'.encode()
        body = etree.tostring(root, encoding="UTF-8", pretty_print=True, xml_declaration=False)
        return head + (_rss_profile_text(body) if fmt == "rss" else body)

    def _json(self, spec: FeedSpec) -> bytes:
        pub = self.config.publication
        title, description = self.meta(spec)
        feed: dict[str, Any] = {
            "version": JSON_FEED_VERSION,
            "title": title,
            "home_page_url": uri(pub.url),
            "feed_url": self.url(spec, "json"),
            "description": description,
            "language": pub.language,
        }
        if pub.logo:
            feed["icon"] = uri(pub.logo)
        if spec.kind == "author":
            key = name_key(spec.name)
            author = next(a for a in spec.articles[0].authors if name_key(a.name) == key)
            feed["authors"] = [_json_author(author.name, author.url)]
        else:
            feed["authors"] = [_json_author(pub.name, pub.url)]
        # An item reads the same in every feed that carries it: serialised once, indented
        # into place (json.dumps with indent is pure Python; this is what it would write).
        head = json.dumps(feed, ensure_ascii=False, indent=2)
        items = ",\n".join(self.json_text(a) for a in spec.articles)
        listed = f"[\n{items}\n  ]" if items else "[]"
        return (f'{head[:-2]},\n  "items": {listed}\n}}\n').encode()


_ATOM_TEXT = ("title", "subtitle", "rights")
_MARKUP_CHARS = re.compile(r"[&<]")


def _atom_text_as_html(root: etree._Element) -> etree._Element:
    """Declare text with ``&`` or ``<`` as escaped HTML (``type="html"``).

    Readers differ on whether plain-text Atom titles may hold entity-like text ("&amp;",
    "</b>"); the W3C validator warns on it. Escaped HTML means exactly the same and is read
    one way by everyone.
    """
    for element in root.iter(*_ATOM_TEXT):
        text = element.text or ""
        if element.get("type", "text") == "text" and _MARKUP_CHARS.search(text):
            element.set("type", "html")
            element.text = html.escape(text, quote=False)
    return root


_RSS_TEXT = re.compile(
    rb"(<(title|description|category|copyright|dc:creator)(?: [^>]*)?>)([^<]*)(</\2>)"
)


def _rss_profile_text(xml: bytes) -> bytes:
    """Write ``&`` and ``<`` in RSS plain-text elements as hex references (``&#x26;``, ``&#x3C;``).

    The RSS Profile (rssboard.org/rss-profile) asks for this so readers that treat a title as
    HTML cannot mistake "a <b> c" for markup; the W3C validator warns otherwise.
    """

    def fix(m: re.Match[bytes]) -> bytes:
        text = m.group(3).replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")
        return m.group(1) + text + m.group(4)

    return _RSS_TEXT.sub(fix, xml)


def _json_author(name: str, url: str | None) -> dict[str, str]:
    return {"name": name, "url": uri(url)} if url else {"name": name}


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat()


def _guess_mime(url: str) -> str:
    mime, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return mime or "application/octet-stream"
