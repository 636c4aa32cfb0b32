"""The feed vocabulary, without the XML machinery: which files a feed is, where it lives, and
the fingerprint of what it is made from.

``builder`` decides with these alone whether a feed must be rendered; ``formats`` (feedgen,
lxml) is imported only when one must, so a run where nothing changed never loads it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

from pressroom.config import Config
from pressroom.content import installed
from pressroom.content.urls import name_slug
from pressroom.models import Article

GENERATOR = "pressroom"
GENERATOR_URI = "https://pypi.org/project/pressroom/"
FILES = {"rss": "index.xml", "atom": "atom.xml", "json": "feed.json"}
MIME = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
STYLESHEET = "feed.xsl"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

_URI_SAFE = ":/?#[]@!$&'()*+,;=%~"
URI_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+\Z")


@dataclass(frozen=True)
class FeedSpec:
    """One logical feed (the whole site, a category or an author) and its items."""

    kind: str  # "site" | "category" | "author"
    name: str  # category or author name; the publication name for the site feed
    path: str  # folder under the output dir: "", "category/<slug>/", "author/<slug>/"
    articles: tuple[Article, ...]
    slug: str = ""


def uri(url: str) -> str:
    """``url`` as a strict URI: spaces and non-ASCII percent-encoded, existing escapes kept.

    Feeds are read by strict parsers (JSON Feed's ``uri`` format, the W3C validator), and a
    source may hand over ``media/pic 1.png`` or an IRI.
    """
    return quote(url.strip(), safe=_URI_SAFE)


def feeds_url(config: Config) -> str:
    """The public URL of the feeds folder (``feeds.url`` or ``<publication.url>feeds/``)."""
    url = config.feeds.url or config.publication.url + "feeds/"
    return url if url.endswith("/") else url + "/"


def slug(name: str) -> str:
    """A folder name for a category or author: lower-case letters, digits and dashes.

    The one rule lives in ``content.urls.name_slug``; ``builder.plan`` gives names whose
    slugs collide (``C++`` and ``C#`` are both ``c``) distinct folders.
    """
    return name_slug(name)


class Fingerprints:
    """Hashes of everything a feed file is made from (articles, settings, versions)."""

    def __init__(self, config: Config) -> None:
        # Everything besides the articles that shapes the bytes; a change rebuilds every feed.
        # The support block is named by its settings (what feed_cta_html renders it from).
        cta = (config.cta[:1], config.digest.utm) if config.feeds.cta else None
        self._settings = (
            installed.stamp(),  # pressroom (its version too) and the libraries that render
            config.publication,
            config.feeds,
            feeds_url(config),
            cta,
        )
        self._hashes: dict[str, bytes] = {}

    def fingerprint(self, spec: FeedSpec, fmt: str) -> str:
        """The hash of one feed file's inputs."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self._settings, fmt, spec.kind, spec.name, spec.path)).encode())
        for article in spec.articles:
            h.update(self._article_hash(article))
        return h.hexdigest()

    def _article_hash(self, article: Article) -> bytes:
        cached = self._hashes.get(article.id)
        if cached is None:
            fields = (
                article.id, article.url, article.title, article.published.isoformat(),
                article.modified.isoformat(), article.authors, article.categories, article.tags,
                article.summary, article.image, article.body_format, article.base_url,
            )  # fmt: skip
            h = hashlib.blake2b(repr(fields).encode(), digest_size=16)
            h.update(article.body.encode("utf-8", "surrogatepass"))
            cached = self._hashes[article.id] = h.digest()
        return cached
