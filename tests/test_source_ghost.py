"""The ghost source against a fake Ghost Content API on 127.0.0.1.

The fake answers as https://docs.ghost.org/content-api/ documents: ``GET
/ghost/api/content/posts/`` with ``key``, ``include``, ``formats``, ``limit``, ``page``,
``fields`` and an NQL ``filter`` on ``updated_at``; ``{"posts": [...], "meta": {"pagination":
{page, limit, pages, total, next, prev}}}``; a 401 ``UnauthorizedError`` for a wrong key.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pressroom.errors import ConfigError, SourceError
from tests.test_sources_remote import Answer, Seen, Server, json_answer, load, server

__all__ = ["server"]  # the fixture, shared with the WordPress and feed tests

KEY = "22444f78447824223cefc48062"
PATH = "/ghost/api/content/posts/"


def ghost_post(n: int, **changes: Any) -> dict[str, Any]:
    """A post as the Content API returns it with include=tags,authors&formats=html."""
    published = datetime(2026, 11, 1, 9, 0, tzinfo=UTC) + timedelta(days=n)
    ann = {"id": "a1", "name": "Ann Writer", "slug": "ann", "url": "https://g.example/author/ann/"}
    news = {"id": "t1", "name": "News", "slug": "news", "visibility": "public"}
    internal = {"id": "t2", "name": "#hero", "slug": "hash-hero", "visibility": "internal"}
    post = {
        "id": f"5ddc9141c35e77003830{n:04d}",
        "uuid": f"a5aa9bd8-ea31-415c-b452-3040dae1{n:04d}",
        "title": f"Post {n}",
        "slug": f"post-{n}",
        "html": f"<p>Body of post {n}, with <a href='/about/'>a link</a>.</p>",
        "feature_image": f"https://g.example/content/images/{n}.jpg",
        "feature_image_alt": f"Picture {n}",
        "featured": False,
        "visibility": "public",
        "created_at": published.isoformat(timespec="milliseconds"),
        "updated_at": published.isoformat(timespec="milliseconds"),
        "published_at": published.isoformat(timespec="milliseconds"),
        "custom_excerpt": None,
        "excerpt": f"Body of post {n}, with a link.",
        "url": f"https://g.example/post-{n}/",
        "authors": [ann],
        "primary_author": ann,
        "tags": [news, internal],
        "primary_tag": news,
    }
    post.update(changes)
    return post


class Ghost:
    """The posts a fake Ghost site holds, served as the Content API serves them."""

    def __init__(self, server: Server, posts: list[dict[str, Any]]) -> None:
        self.posts = posts
        self.failures: list[Answer] = []  # answered, in order, before any normal answer
        self.server = server
        server.on(PATH, self.answer)

    def answer(self, request: Seen) -> Answer:
        if self.failures:
            return self.failures.pop(0)
        if request.query.get("key") != KEY:
            return json_answer(
                {
                    "errors": [
                        {
                            "message": "Authorization failed",
                            "context": "Unable to determine the authenticated member or "
                            "integration. Check the supplied Content API Key and ensure "
                            "cookies are being passed through if making a request from the "
                            "browser.",
                            "type": "UnauthorizedError",
                        }
                    ]
                },
                401,
            )
        chosen = sorted(self.posts, key=lambda p: p["published_at"], reverse=True)
        found = re.fullmatch(r"updated_at:>='([^']+)'", request.query.get("filter", ""))
        if "filter" in request.query:
            assert found, request.query["filter"]
            after = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
            chosen = [p for p in chosen if datetime.fromisoformat(p["updated_at"]) >= after]
        limit = int(request.query.get("limit", "15"))
        page = int(request.query.get("page", "1"))
        pages = max(1, -(-len(chosen) // limit))
        items = chosen[(page - 1) * limit : page * limit]
        if request.query.get("fields") == "id":
            items = [{"id": p["id"]} for p in items]
        meta = {
            "page": page,
            "limit": limit,
            "pages": pages,
            "total": len(chosen),
            "next": page + 1 if page < pages else None,
            "prev": page - 1 if page > 1 else None,
        }
        return json_answer({"posts": items, "meta": {"pagination": meta}})

    def fetched(self) -> list[Seen]:
        """The requests that listed posts (not the count check)."""
        return [s for s in self.server.seen if s.path == PATH and "fields" not in s.query]


def source(server: Server, per_page: int = 2, extra: str = "") -> str:
    return (
        f"  - type: ghost\n    url: {server.url}\n    key_env: TEST_GHOST_KEY\n"
        f"    per_page: {per_page}\n{extra}"
    )


@pytest.fixture(autouse=True)
def ghost_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GHOST_KEY", KEY)


def test_posts_are_paged_and_mapped(server: Server, tmp_path: Path) -> None:
    ghost = Ghost(
        server,
        [
            ghost_post(1, custom_excerpt="Written by hand."),
            ghost_post(2, tags=[], primary_tag=None, authors=None, feature_image=None),
            ghost_post(3, updated_at="2026-12-01T10:00:00.000+00:00"),
            ghost_post(4),
            ghost_post(5),
        ],
    )
    result = load(tmp_path, source(server))
    assert not result.errors
    assert [a.slug for a in result.articles] == ["post-5", "post-4", "post-3", "post-2", "post-1"]
    listed = ghost.fetched()
    assert [s.query["page"] for s in listed] == ["1", "2", "3"]
    first = listed[0]
    assert first.query["include"] == "tags,authors" and first.query["formats"] == "html"
    assert first.query["limit"] == "2" and "filter" not in first.query
    assert first.headers["accept-version"].startswith("v")

    by_slug = {a.slug: a for a in result.articles}
    one = by_slug["post-1"]
    assert one.id == "5ddc9141c35e770038300001"
    assert one.url == "https://g.example/post-1/"
    assert one.published == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert one.summary == "Written by hand."
    assert (one.categories, one.tags) == (("News",), ("News",))  # "#hero" is internal
    assert [(a.name, a.url) for a in one.authors] == [
        ("Ann Writer", "https://g.example/author/ann/")
    ]
    assert one.image is not None and (one.image.url, one.image.alt) == (
        "https://g.example/content/images/1.jpg",
        "Picture 1",
    )
    assert 'href="https://g.example/about/"' in one.html
    assert by_slug["post-3"].updated == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    two = by_slug["post-2"]
    assert (two.categories, two.tags, two.image) == ((), (), None)
    assert [a.name for a in two.authors] == ["Ann Writer"]  # primary_author
    assert two.summary == "Body of post 2, with a link."


def test_second_run_fetches_only_what_changed(server: Server, tmp_path: Path) -> None:
    ghost = Ghost(server, [ghost_post(n) for n in range(1, 6)])
    load(tmp_path, source(server, per_page=10))
    first_run = len(ghost.fetched())
    edited = ghost_post(2, title="Post 2, corrected", updated_at="2026-12-02T08:00:00.000Z")
    ghost.posts[1] = edited
    ghost.posts.append(ghost_post(6, updated_at="2026-12-02T09:30:00.000Z"))
    result = load(tmp_path, source(server, per_page=10))
    later = ghost.fetched()[first_run:]
    assert len(later) == 1
    newest_before = "2026-11-06 09:00:00"  # post 5's updated_at, in Ghost's filter format
    assert later[0].query["filter"] == f"updated_at:>='{newest_before}'"
    titles = {a.slug: a.title for a in result.articles}
    assert titles["post-2"] == "Post 2, corrected" and "post-6" in titles
    assert len(titles) == 6


def test_a_deleted_post_makes_the_next_run_fetch_everything(server: Server, tmp_path: Path) -> None:
    ghost = Ghost(server, [ghost_post(n) for n in range(1, 6)])
    load(tmp_path, source(server))
    del ghost.posts[0]  # unpublished in Ghost: the cache must not keep it
    result = load(tmp_path, source(server))
    assert sorted(a.slug for a in result.articles) == ["post-2", "post-3", "post-4", "post-5"]
    assert "filter" not in ghost.fetched()[-1].query  # the full fetch came last


def test_incremental_false_always_fetches_everything(server: Server, tmp_path: Path) -> None:
    ghost = Ghost(server, [ghost_post(1)])
    for _ in range(2):
        load(tmp_path, source(server, extra="    incremental: false\n"))
    assert [("filter" in s.query) for s in ghost.fetched()] == [False, False]
    assert not (tmp_path / "state" / "ghost-cache").exists()


def test_a_refused_key_names_the_variable_and_never_shows_the_key(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Ghost(server, [ghost_post(1)])
    monkeypatch.setenv("TEST_GHOST_KEY", "0123456789abcdef0123456789")
    with pytest.raises(SourceError) as caught:
        load(tmp_path, source(server))
    message = caught.value.message
    assert "HTTP 401" in message and "TEST_GHOST_KEY" in message
    assert "0123456789abcdef" not in message


def test_a_missing_key_variable_is_named(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_GHOST_KEY")
    with pytest.raises(SourceError, match="TEST_GHOST_KEY is not set"):
        load(tmp_path, source(server))


def test_a_server_error_is_retried_then_reported_without_the_key(
    server: Server, tmp_path: Path
) -> None:
    ghost = Ghost(server, [ghost_post(1)])
    ghost.failures = [(503, {"Retry-After": "0"}, b"busy")]
    result = load(tmp_path, source(server), retries=None)  # load() builds its session
    assert [a.slug for a in result.articles] == ["post-1"]

    ghost.failures = [(502, {}, b"bad gateway")] * 3
    with pytest.raises(SourceError) as caught:
        load(tmp_path, source(server, extra="    incremental: false\n"), retries=2)
    message = caught.value.message
    assert "HTTP 502" in message and f"{server.url}{PATH}" in message
    assert KEY not in message and "key=*****" in message


def test_a_broken_post_is_reported_and_the_rest_load(server: Server, tmp_path: Path) -> None:
    Ghost(server, [ghost_post(1), ghost_post(2, published_at="yesterday"), ghost_post(3, url="")])
    result = load(tmp_path, source(server, per_page=10))
    assert [a.slug for a in result.articles] == ["post-1"]
    messages = sorted(e.message for e in result.errors)
    assert any('published_at: cannot parse "yesterday"' in m for m in messages)
    assert any(m.endswith("url: missing") for m in messages)


@pytest.mark.parametrize(
    "changes",
    [
        {"tags": 3},
        {"tags": "news"},
        {"authors": 3, "primary_author": 3},
        {"authors": "Ann", "primary_author": "Ann"},
        {"authors": [None, 3, {"name": "Ann", "url": 5}]},
        {"primary_tag": "news", "tags": [None, 3, {"name": 5}]},
    ],
)
def test_odd_shapes_where_lists_and_objects_belong(
    server: Server, tmp_path: Path, changes: dict[str, Any]
) -> None:
    # a TypeError traceback ended `pressroom feeds` for the first three
    Ghost(server, [ghost_post(1, **changes), ghost_post(2)])
    result = load(tmp_path, source(server, per_page=10))
    assert not result.errors
    assert sorted(a.slug for a in result.articles) == ["post-1", "post-2"]


@pytest.mark.parametrize("meta", ["x", 3, {"pagination": "x"}, {"pagination": [1]}])
def test_odd_pagination_is_the_last_page(server: Server, tmp_path: Path, meta: Any) -> None:
    def answer(_request: Seen) -> Answer:
        return json_answer({"posts": [ghost_post(1)], "meta": meta})

    server.on(PATH, answer)
    result = load(tmp_path, source(server, per_page=10))
    assert [a.slug for a in result.articles] == ["post-1"]


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="per_page: Ghost allows at most 100"):
        load(tmp_path, "  - type: ghost\n    url: https://g.example\n    per_page: 500\n")
    with pytest.raises(ConfigError, match="url: expected the site address"):
        load(tmp_path, "  - type: ghost\n    url: g.example\n")


def test_the_cache_holds_no_key(server: Server, tmp_path: Path) -> None:
    Ghost(server, [ghost_post(1)])
    load(tmp_path, source(server))
    [cache] = (tmp_path / "state" / "ghost-cache").iterdir()
    assert KEY not in cache.read_text() and json.loads(cache.read_text())["posts"]
