"""The ``feed`` source: entries of an existing RSS or Atom feed (parsed by feedparser).

The feed is fetched with a conditional GET: the ETag and Last-Modified of the previous
answer are kept, with its body, in ``<state>/feeds-cache/<hash>.json``, so a server that
answers ``304 Not Modified`` costs one small request and the cached copy is parsed again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser

from pressroom.config import PositiveFloat
from pressroom.content import articles as norm
from pressroom.content.seen import STATE_DB, FirstSeen
from pressroom.content.sources import register
from pressroom.content.sources.base import Source
from pressroom.content.text import (
    plain_text,
    render_body,
    summary_from_body,
    truncate,
)
from pressroom.content.urls import BadURL, public_url, slugify
from pressroom.errors import ArticleError, SourceError
from pressroom.models import Article, Author, Image
from pressroom.textpolicy import media_type, one_line

CACHE_DIR = "feeds-cache"
DEFAULT_TYPE = "application/xml"  # what a server that names no type is taken to send


@dataclass(frozen=True)
class FeedSettings:
    url: str
    timeout: PositiveFloat = PositiveFloat(20.0)  # seconds, per request

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f'url: expected a feed address like "https://example.org/feed/", got "{self.url}"'
            )


@register
class FeedSource(Source):
    """The entries of one RSS 2.0 / RSS 1.0 / Atom feed."""

    name = "feed"
    Settings = FeedSettings
    _undated = False
    _seen: FirstSeen | None = None

    @property
    def cache_path(self) -> Path:
        key = hashlib.sha256(self.settings.url.encode("utf-8")).hexdigest()[:20]
        return Path(self.context.state) / CACHE_DIR / f"{key}.json"

    def articles(self, since: datetime | None) -> Iterator[Article | ArticleError]:
        body, final_url, content_type = self.fetch()
        # The real Content-Type goes in, since its charset may be the only one the feed has.
        # No Content-Location: relative URLs stay relative (xml:base still applies), and the
        # URL policy resolves them against the entry's own link first, then the feed's URL.
        parsed = feedparser.parse(body, response_headers={"content-type": content_type})
        if not parsed.entries and (parsed.bozo or not parsed.get("version")):
            reason = (
                _reason(parsed.get("bozo_exception"))
                if parsed.bozo
                else "no <rss> or <feed> element"
            )
            raise SourceError(
                f"feed source {self.settings.url}: not an RSS or Atom feed ({reason})"
            )
        if parsed.bozo:
            self.context.warn(
                f"feed source {self.settings.url}: the feed is not well-formed "
                f"({_reason(parsed.get('bozo_exception'))}); reading what can be read"
            )
        feed_authors = _authors(
            parsed.feed.get("authors") or [], final_url, self._warner("the feed")
        )
        # RSS 0.9x has no item dates: such items are dated when pressroom first saw them
        self._undated = str(parsed.get("version") or "").startswith("rss09")
        try:
            for index, entry in enumerate(parsed.entries):
                ident = one_line(str(entry.get("link") or entry.get("id") or ""))[:80]
                where = f"entry {index + 1}" + (f" ({ident})" if ident else "")
                try:
                    yield self._article(entry, final_url, feed_authors, self._warner(where))
                except _Broken as e:
                    shown = ident or f"{self.settings.url}#entry-{index + 1}"
                    yield ArticleError(shown, e.field, e.problem)
        finally:
            if self._seen is not None:
                self._seen.close()
                self._seen = None

    def _first_seen(self, item: str) -> datetime:
        if self._seen is None:
            self._seen = FirstSeen(Path(self.context.state) / STATE_DB)
        return self._seen.when(self.settings.url, item, self.context.now)

    def _warner(self, where: str) -> Callable[[str], None]:
        def warn(problem: str) -> None:
            self.context.warn(f"feed source {self.settings.url} {where}: {problem}")

        return warn

    def fetch(self) -> tuple[bytes, str, str]:
        """The feed's bytes, URL and Content-Type, from the server or, on 304 Not Modified,
        from the cache."""
        cached = self._read_cache()
        headers: dict[str, str] = {}
        if cached is not None:
            if cached.get("etag"):
                headers["If-None-Match"] = cached["etag"]
            if cached.get("last_modified"):
                headers["If-Modified-Since"] = cached["last_modified"]
        response = norm.http_get(
            self.context.session,
            self.settings.url,
            what="feed source",
            headers=headers,
            timeout=self.settings.timeout,
            ok=(200, 304) if cached is not None else (200,),
        )
        if response.status_code == 304 and cached is not None:
            return (
                cached["body"],
                cached.get("final_url") or self.settings.url,
                str(cached.get("content_type") or DEFAULT_TYPE),
            )
        body = response.content
        content_type = response.headers.get("Content-Type") or DEFAULT_TYPE
        etag = response.headers.get("ETag")
        modified = response.headers.get("Last-Modified")
        if etag or modified:
            self._write_cache(etag, modified, body, response.url or self.settings.url, content_type)
        return body, response.url or self.settings.url, content_type

    def _read_cache(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if data.get("url") != self.settings.url:
                return None
            data["body"] = base64.b64decode(data["body"], validate=True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            return None  # no cache or a damaged one: fetch unconditionally and rewrite it
        return dict(data)

    def _write_cache(
        self, etag: str | None, modified: str | None, body: bytes, final_url: str, kind: str
    ) -> None:
        record = {
            "url": self.settings.url,
            "final_url": final_url,
            "content_type": kind,
            "etag": etag,
            "last_modified": modified,
            "body": base64.b64encode(body).decode("ascii"),
        }
        path = self.cache_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # write-then-rename, so an interrupted run never leaves a half-written cache
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
            os.replace(tmp, path)
        except OSError as e:
            self.context.warn(
                f"feed source {self.settings.url}: cannot cache the feed in {path.parent}: {e}"
            )

    def _article(
        self,
        entry: Any,
        feed_url: str,
        feed_authors: tuple[Author, ...],
        warn: Callable[[str], None],
    ) -> Article:
        tz = self.context.publication.tz
        link = ""
        for key in ("link", "id"):
            value = entry.get(key)
            if not value or (key == "id" and not str(value).startswith(("http:", "https:"))):
                continue
            try:
                link = public_url(str(value), feed_url)
                break
            except BadURL as e:
                warn(f"{key}: {e}; left out")
        if not link:
            raise _Broken("link", "missing or not an http(s) URL; the entry cannot be linked")
        title = _text(entry, "title")
        if not title:
            raise _Broken("title", "missing")
        published = _when(entry, "published") or _when(entry, "updated")
        if published is None and self._undated:
            published = self._first_seen(str(entry.get("id") or link))
        if published is None:
            raw = dict.get(entry, "published") or dict.get(entry, "updated")
            raise _Broken("date", f'cannot parse "{raw}"' if raw else "missing")
        updated = _when(entry, "updated")

        content = entry.get("content") or []
        if content:
            body = "".join(str(c.get("value", "")) for c in content)
            body_format = "text" if content[0].get("type") == "text/plain" else "html"
        else:
            body = entry.get("summary", "")
            body_format = (
                "text" if entry.get("summary_detail", {}).get("type") == "text/plain" else "html"
            )
        summary = (
            truncate(_text(entry, "summary"))
            if entry.get("summary")
            else summary_from_body(body, body_format)
        )

        categories: list[str] = []
        for tag in entry.get("tags") or []:
            name = (tag.get("label") or tag.get("term") or "").strip()
            if name and name not in categories:
                categories.append(name)
        slug = urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]
        return Article(
            id=str(entry.get("id") or link),
            url=link,
            slug=slugify(slug.rsplit(".", 1)[0]) if slug else slugify(title),
            title=title,
            published=published if published.tzinfo else published.replace(tzinfo=tz),
            updated=updated if updated and updated != published else None,
            authors=_authors(entry.get("authors") or [], link, warn) or feed_authors,
            categories=tuple(categories),
            tags=(),
            summary=summary,
            image=_image(entry, link, warn),
            body=body,
            body_format=body_format,
            base_url=link,
            source=self.settings.url,
            renderer=render_body,
        )


class _Broken(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _text(entry: Any, key: str) -> str:
    """A title or summary as plain text: HTML is stripped, plain text is kept as it is."""
    value = str(entry.get(key) or "")
    detail = entry.get(f"{key}_detail") or {}
    if detail.get("type") in ("text/html", "application/xhtml+xml"):
        return plain_text(value)
    return one_line(value)


def _when(entry: Any, key: str) -> datetime | None:
    # feedparser normalises every date format it knows to a UTC struct_time. dict.get skips
    # FeedParserDict's deprecated fallback from updated_parsed to published_parsed.
    parsed = dict.get(entry, f"{key}_parsed")
    if not parsed:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    try:  # the one rule for every source: a year a feed can write (four digits)
        return norm.parse_date(datetime(year, month, day, hour, minute, second, tzinfo=UTC), UTC)
    except ValueError:
        return None


def _authors(items: list[Any], base: str, warn: Callable[[str], None]) -> tuple[Author, ...]:
    authors = []
    for item in items:
        if not isinstance(item, dict):
            continue
        name, email = one_line(str(item.get("name") or "")), item.get("email")
        if not name and email:
            name = str(email).split("@")[0]

        def say(problem: str) -> None:
            warn(f"author {problem}")

        found = norm.author(name, email, item.get("href"), base=base, warn=say)
        if found is not None:
            authors.append(found)
    return tuple(dict.fromkeys(authors))


def _image(entry: Any, base: str, warn: Callable[[str], None]) -> Image | None:
    """The first usable image among enclosures, media:content and media:thumbnail."""
    for link in entry.get("links") or []:
        if (
            link.get("rel") == "enclosure"
            and str(link.get("type", "")).startswith("image/")
            and link.get("href")
        ):
            try:
                url = public_url(str(link["href"]), base)
            except BadURL as e:
                warn(f"enclosure: {e}; left out")
                continue
            return Image(
                url=url, mime_type=media_type(link.get("type")), length=_int(link.get("length"))
            )
    for media in (entry.get("media_content") or []) + (entry.get("media_thumbnail") or []):
        kind = str(media.get("type") or media.get("medium") or "image")
        if not media.get("url") or not kind.startswith("image"):
            continue
        try:
            url = public_url(str(media["url"]), base)
        except BadURL as e:
            warn(f"media: {e}; left out")
            continue
        if url:
            return Image(
                url=url,
                mime_type=media_type(media.get("type")),
                length=_int(media.get("filesize")),  # feedparser lower-cases fileSize
                width=_int(media.get("width")),
                height=_int(media.get("height")),
            )
    return None


def _int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _reason(error: Any) -> str:
    text = str(error or "unknown error")
    return getattr(error, "getMessage", lambda: text)() if error is not None else text
