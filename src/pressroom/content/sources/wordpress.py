"""The ``wordpress`` source: posts from a WordPress site's REST API (v2).

Requests ``GET <url>/wp-json/wp/v2/posts?_embed=1&per_page=N&page=K`` (plus ``after=`` for
the window) and follows ``X-WP-TotalPages``. ``_embed`` brings the author, the terms
(categories and tags) and the featured media in the same response, so one request per page
is enough. Reference: https://developer.wordpress.org/rest-api/reference/posts/
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from pressroom.config import PositiveFloat, PositiveInt
from pressroom.content import articles as norm
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
from pressroom.models import Article, Image
from pressroom.textpolicy import media_type

WP_MAX_PER_PAGE = 100  # the REST API rejects larger pages with rest_invalid_param


@dataclass(frozen=True)
class WordPressSettings:
    url: str
    per_page: PositiveInt = PositiveInt(100)
    max_pages: PositiveInt = PositiveInt(10)
    timeout: PositiveFloat = PositiveFloat(20.0)  # seconds, per request

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f'url: expected the site address like "https://example.org", got "{self.url}"'
            )
        if self.per_page > WP_MAX_PER_PAGE:
            raise ValueError(
                f"per_page: WordPress allows at most {WP_MAX_PER_PAGE}, got {self.per_page}"
            )


@register
class WordPressSource(Source):
    """Published posts of one WordPress site, newest first, page by page."""

    name = "wordpress"
    Settings = WordPressSettings

    @property
    def endpoint(self) -> str:
        return str(self.settings.url).rstrip("/") + "/wp-json/wp/v2/posts"

    def articles(self, since: datetime | None) -> Iterator[Article | ArticleError]:
        # newest first, so the page limit drops only the oldest posts of a large archive
        page, total = 1, 1
        while page <= min(total, self.settings.max_pages):
            posts, total = self._page(page, since)
            for post in posts:
                yield self._article(post)
            page += 1

    def _page(self, page: int, since: datetime | None) -> tuple[list[dict[str, Any]], int]:
        params: dict[str, Any] = {"_embed": 1, "per_page": self.settings.per_page, "page": page}
        if since is not None:
            params["after"] = since.astimezone(UTC).isoformat(timespec="seconds")
        response = norm.http_get(
            self.context.session,
            self.endpoint,
            what="wordpress source",
            params=params,
            timeout=self.settings.timeout,
        )
        try:
            posts = response.json()
        except (json.JSONDecodeError, ValueError):
            raise SourceError(
                f"wordpress source {response.url}: the response is not JSON; is "
                f"{self.settings.url} a WordPress site with the REST API enabled?"
            ) from None
        if not isinstance(posts, list):
            raise SourceError(
                f"wordpress source {response.url}: expected a JSON list of posts, got "
                f"{type(posts).__name__}"
            )
        try:
            total = int(response.headers.get("X-WP-TotalPages", "1"))
        except ValueError:
            total = 1
        return [p for p in posts if isinstance(p, dict)], total

    def _article(self, post: dict[str, Any]) -> Article | ArticleError:
        where = f"{self.endpoint}/{post.get('id', '?')}"
        try:
            return self._map(post, where)
        except _Broken as e:
            return ArticleError(where, e.field, e.problem)

    def _map(self, post: dict[str, Any], where: str) -> Article:
        tz = self.context.publication.tz
        link = post.get("link")
        if not isinstance(link, str) or not link:
            raise _Broken("link", "missing")
        try:
            link = public_url(link, self.settings.url.rstrip("/") + "/")
        except BadURL as e:
            raise _Broken("link", str(e)) from None
        title = plain_text(_rendered(post, "title"))
        if not title:
            raise _Broken("title", "missing")
        published = _date(post, "date_gmt", "date", tz)
        if published is None:
            raise _Broken("date_gmt", "missing")
        updated = _date(post, "modified_gmt", "modified", tz)
        embedded = _dict(post.get("_embedded"))

        def warn(problem: str) -> None:
            self.context.warn(f"wordpress source {where}: {problem}")

        found = (
            norm.author(html.unescape(a["name"]), None, a.get("link"), base=link, warn=warn)
            for a in _list(embedded.get("author"))
            if isinstance(a, dict) and isinstance(a.get("name"), str)
        )
        authors = tuple(dict.fromkeys(a for a in found if a is not None))
        categories: list[str] = []
        tags: list[str] = []
        for group in _list(embedded.get("wp:term")):
            for term in group if isinstance(group, list) else []:
                if not isinstance(term, dict) or not term.get("name"):
                    continue
                bucket = {"category": categories, "post_tag": tags}.get(term.get("taxonomy", ""))
                name = html.unescape(str(term["name"]))
                if bucket is not None and name not in bucket:
                    bucket.append(name)

        body = _rendered(post, "content")
        excerpt = plain_text(_rendered(post, "excerpt"))
        summary = truncate(excerpt) if excerpt else summary_from_body(body, "html")
        guid = html.unescape(_rendered(post, "guid")) or link
        slug = str(post.get("slug") or "") or urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]
        slug = slugify(unquote(slug)) if slug else ""
        return Article(
            id=guid,
            url=link,
            slug=slug or slugify(title),
            title=title,
            published=published,
            updated=updated if updated and updated != published else None,
            authors=authors,
            categories=tuple(categories),
            tags=tuple(tags),
            summary=summary,
            image=_featured(embedded, link, warn),
            body=body,
            body_format="html",
            base_url=link,
            source=where,
            renderer=render_body,
        )


class _Broken(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _rendered(post: dict[str, Any], key: str) -> str:
    value = post.get(key)
    if isinstance(value, dict):
        value = value.get("rendered")
    return value if isinstance(value, str) else ""


def _date(post: dict[str, Any], gmt_key: str, local_key: str, tz: Any) -> datetime | None:
    # *_gmt fields are UTC without an offset; the plain ones are in the site's timezone,
    # which we take to be the publication's.
    for key, zone in ((gmt_key, UTC), (local_key, tz)):
        value = post.get(key)
        if value:
            try:
                return norm.parse_date(str(value), zone)
            except ValueError:
                raise _Broken(key, f'cannot parse "{value}"') from None
    return None


def _featured(embedded: dict[str, Any], base: str, warn: Callable[[str], None]) -> Image | None:
    for media in _list(embedded.get("wp:featuredmedia")):
        if not isinstance(media, dict) or not media.get("source_url"):
            continue  # a media item the API could not embed ({"code": "rest_forbidden"…})
        try:
            url = public_url(str(media["source_url"]), base)
        except BadURL as e:
            warn(f"featured media: {e}; left out")
            continue
        details = _dict(media.get("media_details"))
        mime_type = media.get("mime_type")
        return Image(
            url=url,
            alt=" ".join(str(media.get("alt_text") or "").split()),
            mime_type=media_type(mime_type),
            length=_int(details.get("filesize")),
            width=_int(details.get("width")),
            height=_int(details.get("height")),
        )
    return None


# A plugin or a proxy can put anything where the API documents a list or an object: what is
# not one counts as none.
def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
