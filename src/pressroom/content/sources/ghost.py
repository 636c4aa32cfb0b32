"""The ``ghost`` source: published posts of a Ghost site through its Content API.

Requests ``GET <url>/ghost/api/content/posts/?key=…&include=tags,authors&formats=html&limit=N
&page=K`` and follows ``meta.pagination`` (``page``, ``pages``, ``next``). The Content API key
comes from the environment variable the config names; it is a query parameter, so every
message below has it blanked out.

Incremental: the posts of the last run are kept in ``<state>/ghost-cache/<hash>.json`` with
the newest ``updated_at`` seen; the next run asks only for ``filter=updated_at:>'…'`` and
merges. One more request (``limit=1&fields=id``) reads how many posts Ghost has now: when
that differs from the merged set (a post was deleted or unpublished), everything is fetched
again. References: https://docs.ghost.org/content-api/ (posts, parameters, pagination,
filtering).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pressroom.config import PositiveFloat, PositiveInt
from pressroom.content import articles as norm
from pressroom.content.sources import register
from pressroom.content.sources.base import Source
from pressroom.content.text import render_body, summary_from_body, truncate
from pressroom.content.urls import BadURL, public_url, slugify
from pressroom.errors import ArticleError, SourceError
from pressroom.models import Article, Author, Image
from pressroom.textpolicy import one_line

GHOST_MAX_LIMIT = 100  # Ghost 6 caps limit at 100 per page
API_VERSION = "v5.0"  # Accept-Version: the oldest Ghost whose answers this code reads
CACHE_DIR = "ghost-cache"


@dataclass(frozen=True)
class GhostSettings:
    url: str
    key_env: str = "GHOST_CONTENT_API_KEY"
    per_page: PositiveInt = PositiveInt(100)
    max_pages: PositiveInt = PositiveInt(100)
    timeout: PositiveFloat = PositiveFloat(20.0)  # seconds, per request
    incremental: bool = True

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f'url: expected the site address like "https://example.ghost.io", got "{self.url}"'
            )
        if self.per_page > GHOST_MAX_LIMIT:
            raise ValueError(
                f"per_page: Ghost allows at most {GHOST_MAX_LIMIT}, got {self.per_page}"
            )


@register
class GhostSource(Source):
    """Published posts of one Ghost site (Content API), fetched incrementally."""

    name = "ghost"
    Settings = GhostSettings

    @property
    def endpoint(self) -> str:
        return str(self.settings.url).rstrip("/") + "/ghost/api/content/posts/"

    def articles(self, since: datetime | None) -> Iterator[Article | ArticleError]:
        key = os.environ.get(self.settings.key_env, "").strip()
        if not key:
            raise SourceError(
                f"ghost source {self.settings.url}: environment variable "
                f"{self.settings.key_env} is not set; export the Content API key from Ghost "
                "Admin → Settings → Integrations"
            )
        try:
            posts = self._posts(key)
        except SourceError as e:
            raise SourceError(str(e).replace(key, "*****")) from None
        for post in sorted(posts.values(), key=lambda p: str(p.get("published_at") or "")):
            yield self._article(post)

    # --- fetching --------------------------------------------------------------------------

    def _posts(self, key: str) -> dict[str, dict[str, Any]]:
        cache = self._cache_path()
        cached = _read_cache(cache) if self.settings.incremental else None
        if cached is not None:
            posts, newest = cached
            changed = self._fetch(key, newest)
            posts.update(changed)
            if self._total(key) != len(posts):  # something was deleted or unpublished
                posts = self._fetch(key, None)
        else:
            posts = self._fetch(key, None)
        if self.settings.incremental:
            _write_cache(cache, posts)
        return posts

    def _fetch(self, key: str, updated_after: str | None) -> dict[str, dict[str, Any]]:
        params: dict[str, Any] = {
            "key": key,
            "include": "tags,authors",
            "formats": "html",
            "limit": self.settings.per_page,
            "order": "published_at desc",
        }
        if updated_after:
            # >= : a post saved in the same second as the newest one kept must not be lost
            params["filter"] = f"updated_at:>='{updated_after}'"
        posts: dict[str, dict[str, Any]] = {}
        page = 1
        while page <= self.settings.max_pages:
            data = self._get({**params, "page": page})
            for post in data.get("posts") or []:
                if isinstance(post, dict) and isinstance(post.get("id"), str):
                    posts[post["id"]] = post
            following = _dict(_dict(data.get("meta")).get("pagination")).get("next")
            if not isinstance(following, int) or following <= page:
                break
            page = following
        return posts

    def _total(self, key: str) -> int | None:
        data = self._get({"key": key, "limit": 1, "fields": "id"})
        total = _dict(_dict(data.get("meta")).get("pagination")).get("total")
        return total if isinstance(total, int) else None

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        response = norm.http_get(
            self.context.session,
            self.endpoint,
            what="ghost source",
            params=params,
            headers={"Accept-Version": API_VERSION},
            timeout=self.settings.timeout,
            ok=(200, 401, 403),
        )
        if response.status_code in (401, 403):
            raise SourceError(
                f"ghost source {self.endpoint}: HTTP {response.status_code}: Ghost refused the "
                f"Content API key in {self.settings.key_env}; copy it again from Ghost Admin → "
                "Settings → Integrations (a Content API key, not an Admin API key)"
            )
        try:
            data = response.json()
        except ValueError:
            raise SourceError(
                f"ghost source {self.endpoint}: the response is not JSON; is "
                f"{self.settings.url} the Ghost site's address?"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("posts"), list):
            raise SourceError(f'ghost source {self.endpoint}: expected {{"posts": [...]}}')
        return data

    def _cache_path(self) -> Path:
        name = hashlib.sha256(self.endpoint.encode()).hexdigest()[:16]
        return Path(self.context.state) / CACHE_DIR / f"{name}.json"

    # --- mapping ---------------------------------------------------------------------------

    def _article(self, post: dict[str, Any]) -> Article | ArticleError:
        where = f"{self.endpoint}{post.get('id', '?')}/"
        try:
            return self._map(post, where)
        except _Broken as e:
            return ArticleError(where, e.field, e.problem)

    def _map(self, post: dict[str, Any], where: str) -> Article:
        link = post.get("url")
        if not isinstance(link, str) or not link:
            raise _Broken("url", "missing")
        try:
            link = public_url(link, str(self.settings.url).rstrip("/") + "/")
        except BadURL as e:
            raise _Broken("url", str(e)) from None

        def warn(problem: str) -> None:
            self.context.warn(f"ghost source {where}: {problem}")

        title = one_line(str(post.get("title") or ""))
        if not title:
            raise _Broken("title", "missing")
        published = _date(post, "published_at")
        if published is None:
            raise _Broken("published_at", "missing")
        updated = _date(post, "updated_at")
        body = post.get("html") if isinstance(post.get("html"), str) else ""
        excerpt = post.get("custom_excerpt") or post.get("excerpt") or ""
        summary = truncate(one_line(str(excerpt)))  # Ghost's excerpts are plain text
        authors = _authors(post, link, warn)
        public = [t for t in _list(post.get("tags")) if _public(t)]
        primary = post.get("primary_tag")
        categories = (
            (str(primary["name"]),) if isinstance(primary, dict) and _public(primary) else ()
        )
        image = None
        if isinstance(post.get("feature_image"), str) and post["feature_image"]:
            try:
                image = Image(
                    url=public_url(post["feature_image"], link),
                    alt=one_line(str(post.get("feature_image_alt") or "")),
                )
            except BadURL as e:
                warn(f"feature_image: {e}; left out")
        return Article(
            id=str(post["id"]),
            url=link,
            slug=slugify(str(post.get("slug") or "") or title),
            title=title,
            published=published,
            updated=updated if updated and updated > published else None,
            authors=authors,
            categories=categories,
            tags=tuple(dict.fromkeys(str(t["name"]) for t in public)),
            summary=summary or summary_from_body(str(body), "html"),
            image=image,
            body=str(body),
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


def _public(tag: Any) -> bool:
    """A tag readers see: internal tags (visibility internal, names starting "#") are not."""
    if not isinstance(tag, dict) or not isinstance(tag.get("name"), str) or not tag["name"]:
        return False
    return tag.get("visibility", "public") != "internal" and not tag["name"].startswith("#")


def _authors(post: dict[str, Any], link: str, warn: Callable[[str], None]) -> tuple[Author, ...]:
    people = _list(post.get("authors")) or [post.get("primary_author")]
    found = (
        norm.author(p["name"], None, p.get("url"), base=link, warn=warn)
        for p in people
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    )
    return tuple(dict.fromkeys(a for a in found if a is not None))


# A plugin or a proxy can put anything where the API documents a list or an object: what is
# not one counts as none.
def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _date(post: dict[str, Any], key: str) -> datetime | None:
    value = post.get(key)
    if not value:
        return None
    try:
        return norm.parse_date(str(value), UTC)  # Ghost's dates carry their offset
    except ValueError:
        raise _Broken(key, f'cannot parse "{value}"') from None


def _read_cache(path: Path) -> tuple[dict[str, dict[str, Any]], str] | None:
    """(posts by id, newest updated_at as Ghost's filter writes it), or None to fetch all."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        posts = {str(k): v for k, v in data["posts"].items() if isinstance(v, dict)}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return None  # no cache yet, or a broken one: start over
    try:
        stamps = [_date(p, "updated_at") for p in posts.values()]
    except _Broken:
        return None
    newest = max((s for s in stamps if s is not None), default=None)
    if newest is None:
        return None
    return posts, newest.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _write_cache(path: Path, posts: dict[str, dict[str, Any]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"posts": posts}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # the cache saves requests; without it the next run fetches everything
