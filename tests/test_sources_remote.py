"""The wordpress and feed sources against a real HTTP server on 127.0.0.1.

The server answers in the documented shapes: the WordPress REST API v2 posts collection with
``_embed`` (https://developer.wordpress.org/rest-api/reference/posts/), RSS 2.0 with the
content and Dublin Core modules, and Atom 1.0 (RFC 4287); plus the failures a source meets.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pressroom import config
from pressroom.content import articles
from pressroom.errors import SourceError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Server:
    """What the test server answers (``routes``: path → handler) and what it was asked."""

    url: str = ""
    routes: dict[str, Callable[[Seen], Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, path: str, answer: Callable[[Seen], Answer]) -> None:
        self.routes[path] = answer


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            request = Seen(
                parts.path,
                {k: v[-1] for k, v in parse_qs(parts.query).items()},
                {k.lower(): v for k, v in self.headers.items()},
            )
            state.seen.append(request)
            route = state.routes.get(parts.path)
            status, headers, body = route(request) if route else (404, {}, b"not found")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)  # fails when the client gave up (the timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def load(
    tmp_path: Path,
    source: str,
    *,
    retries: int | None = 0,
    since: datetime | None = None,
    warnings: list[str] | None = None,
) -> articles.LoadResult:
    path = tmp_path / "config.yaml"
    path.write_text(
        "publication:\n  name: Test\n  url: https://news.example/\n  timezone: Europe/London\n"
        f"sources:\n{source}state: state\n",
        encoding="utf-8",
    )
    cfg = config.load(path)
    session = None if retries is None else articles.make_session(retries=retries)
    sink = warnings if warnings is not None else []
    return articles.load(cfg, NOW, since=since, session=session, warn=sink.append)


def json_answer(data: Any, status: int = 200, **headers: str) -> Answer:
    return (
        status,
        {"Content-Type": "application/json; charset=UTF-8", **headers},
        json.dumps(data).encode(),
    )


# --- WordPress -------------------------------------------------------------------------------


def wp_post(n: int, **changes: Any) -> dict[str, Any]:
    """One post as /wp-json/wp/v2/posts?_embed=1 returns it (trimmed to the fields we read)."""
    post: dict[str, Any] = {
        "id": 100 + n,
        "date": f"2026-11-{n:02d}T10:00:00",
        "date_gmt": f"2026-11-{n:02d}T09:00:00",
        "guid": {"rendered": f"https://blog.example/?p={100 + n}"},
        "modified": f"2026-11-{n:02d}T12:00:00",
        "modified_gmt": f"2026-11-{n:02d}T11:00:00",
        "slug": f"post-{n}",
        "status": "publish",
        "type": "post",
        "link": f"https://blog.example/2026/11/post-{n}/",
        "title": {"rendered": f"Post {n}: Q&#038;A &#8211; it&#8217;s here"},
        "content": {
            "rendered": f'<p>Body {n} with <a href="/about/">about</a> '
            f'<img src="../img/{n}.jpg" alt="pic"></p>\n<script>track()</script>\n',
            "protected": False,
        },
        "excerpt": {
            "rendered": f"<p>Excerpt {n} is &lt;short&gt; [&hellip;]</p>\n",
            "protected": False,
        },
        "author": 7,
        "featured_media": 55,
        "categories": [3],
        "tags": [9, 10],
        "_embedded": {
            "author": [
                {
                    "id": 7,
                    "name": "Zoë Writer",
                    "url": "",
                    "link": "https://blog.example/author/zoe/",
                    "slug": "zoe",
                    "avatar_urls": {},
                },
            ],
            "wp:featuredmedia": [
                {
                    "id": 55,
                    "type": "attachment",
                    "media_type": "image",
                    "mime_type": "image/jpeg",
                    "alt_text": "A harbour at dawn",
                    "source_url": "https://blog.example/wp-content/uploads/2026/11/harbour.jpg",
                    "media_details": {
                        "width": 1200,
                        "height": 800,
                        "filesize": 123456,
                        "file": "2026/11/harbour.jpg",
                        "sizes": {},
                    },
                }
            ],
            "wp:term": [
                [
                    {
                        "id": 3,
                        "name": "Arts &amp; Culture",
                        "slug": "arts",
                        "taxonomy": "category",
                        "link": "https://blog.example/category/arts/",
                    }
                ],
                [
                    {
                        "id": 9,
                        "name": "Europe",
                        "slug": "europe",
                        "taxonomy": "post_tag",
                        "link": "https://blog.example/tag/europe/",
                    },
                    {
                        "id": 10,
                        "name": "Energy",
                        "slug": "energy",
                        "taxonomy": "post_tag",
                        "link": "https://blog.example/tag/energy/",
                    },
                ],
            ],
        },
    }
    post.update(changes)
    return post


def wp_site(server: Server, posts: list[dict[str, Any]], per_page: int) -> None:
    pages = [posts[i : i + per_page] for i in range(0, len(posts), per_page)] or [[]]

    def answer(request: Seen) -> Answer:
        page = int(request.query.get("page", "1"))
        if page > len(pages):
            return json_answer({"code": "rest_post_invalid_page_number"}, 400)
        return json_answer(
            pages[page - 1],
            200,
            **{"X-WP-Total": str(len(posts)), "X-WP-TotalPages": str(len(pages))},
        )

    server.on("/blog/wp-json/wp/v2/posts", answer)


def wp_source(server: Server, per_page: int = 2) -> str:
    return (
        f"  - type: wordpress\n    url: {server.url}/blog/\n    per_page: {per_page}\n"
        "    timeout: 5\n"
    )


def test_wordpress_pages_and_maps_embedded_fields(server: Server, tmp_path: Path) -> None:
    wp_site(server, [wp_post(5), wp_post(4), wp_post(3)], per_page=2)

    result = load(tmp_path, wp_source(server))

    assert not result.errors
    assert [a.slug for a in result.articles] == ["post-5", "post-4", "post-3"]
    assert [(s.query["page"], s.query["per_page"], s.query["_embed"]) for s in server.seen] == [
        ("1", "2", "1"),
        ("2", "2", "1"),
    ]
    a = result.articles[0]
    assert a.id == "https://blog.example/?p=105"
    assert a.url == a.base_url == "https://blog.example/2026/11/post-5/"
    assert a.title == "Post 5: Q&A – it’s here"
    assert a.published == datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
    assert a.updated == datetime(2026, 11, 5, 11, 0, tzinfo=UTC)
    assert [(x.name, x.url) for x in a.authors] == [
        ("Zoë Writer", "https://blog.example/author/zoe/")
    ]
    assert a.categories == ("Arts & Culture",)
    assert a.tags == ("Europe", "Energy")
    assert a.summary == "Excerpt 5 is <short>…"
    assert a.image is not None
    assert (
        a.image.url,
        a.image.alt,
        a.image.mime_type,
        a.image.width,
        a.image.height,
        a.image.length,
    ) == (
        "https://blog.example/wp-content/uploads/2026/11/harbour.jpg",
        "A harbour at dawn",
        "image/jpeg",
        1200,
        800,
        123456,
    )
    assert a.body_format == "html"
    assert a.html == (
        '<p>Body 5 with <a href="https://blog.example/about/">about</a> '
        '<img src="https://blog.example/2026/11/img/5.jpg" alt="pic"></p>'
    )
    assert a.source == f"{server.url}/blog/wp-json/wp/v2/posts/105"


def test_wordpress_max_pages_stops_early(server: Server, tmp_path: Path) -> None:
    wp_site(server, [wp_post(n) for n in range(9, 0, -1)], per_page=2)
    source = wp_source(server) + "    max_pages: 2\n"
    result = load(tmp_path, source)
    assert [a.slug for a in result.articles] == ["post-9", "post-8", "post-7", "post-6"]
    assert [s.query["page"] for s in server.seen] == ["1", "2"]


def test_wordpress_since_is_sent_as_after(server: Server, tmp_path: Path) -> None:
    wp_site(server, [wp_post(20)], per_page=10)
    since = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    result = load(tmp_path, wp_source(server, per_page=10), since=since)
    assert [a.slug for a in result.articles] == ["post-20"]
    assert server.seen[0].query["after"] == "2026-11-18T12:00:00+00:00"


def test_wordpress_missing_embeds_and_broken_posts(server: Server, tmp_path: Path) -> None:
    bare = wp_post(
        2,
        _embedded={
            "author": [{"code": "rest_user_invalid_id"}],
            "wp:featuredmedia": [{"code": "rest_forbidden"}],
        },
    )
    no_title = wp_post(3, title={"rendered": ""})
    bad_date = wp_post(4, date_gmt="yesterday-ish")
    wp_site(server, [bad_date, no_title, bare], per_page=10)

    result = load(tmp_path, wp_source(server, per_page=10))

    assert [a.slug for a in result.articles] == ["post-2"]
    article = result.articles[0]
    assert article.authors == () and article.image is None and article.categories == ()
    endpoint = f"{server.url}/blog/wp-json/wp/v2/posts"
    assert [e.message for e in result.errors] == [
        f'{endpoint}/104: date_gmt: cannot parse "yesterday-ish"',
        f"{endpoint}/103: title: missing",
    ]


# What a plugin, a proxy or a broken theme can put where the REST API documents a list or an
# object: each ended `pressroom feeds` in a TypeError or AttributeError traceback.
ODD_EMBEDS: list[Any] = [
    "x",
    3,
    [None, 3, "x", {"name": ["Ann"], "link": 5}],
    {"author": 3, "wp:term": 3, "wp:featuredmedia": 3},
    {"author": {"name": "Ann"}, "wp:term": "category", "wp:featuredmedia": "x"},
    {"wp:term": [[None, 3, {"taxonomy": "category", "name": 5}], 3, "x"]},
    {"wp:featuredmedia": [{"source_url": "/pic.jpg", "mime_type": 5, "media_details": 3}]},
    {"wp:featuredmedia": [{"source_url": "/pic.jpg", "media_details": {"width": "wide"}}]},
]


@pytest.mark.parametrize("embedded", ODD_EMBEDS)
def test_wordpress_odd_shapes_where_lists_and_objects_belong(
    server: Server, tmp_path: Path, embedded: Any
) -> None:
    wp_site(server, [wp_post(2, _embedded=embedded), wp_post(1)], per_page=10)

    result = load(tmp_path, wp_source(server, per_page=10))

    assert not result.errors
    odd, plain = result.articles
    assert odd.slug == "post-2" and plain.slug == "post-1"
    assert all(isinstance(c, str) for c in odd.categories + odd.tags)
    if odd.image is not None:
        assert odd.image.mime_type is None or isinstance(odd.image.mime_type, str)


def test_wordpress_retries_a_server_error_then_succeeds(server: Server, tmp_path: Path) -> None:
    wp_site(server, [wp_post(1)], per_page=10)
    good = server.routes["/blog/wp-json/wp/v2/posts"]
    calls: list[int] = []

    def flaky(request: Seen) -> Answer:
        calls.append(1)
        return (503, {"Retry-After": "0"}, b"busy") if len(calls) == 1 else good(request)

    server.on("/blog/wp-json/wp/v2/posts", flaky)
    result = load(
        tmp_path, wp_source(server, per_page=10), retries=None
    )  # load() builds its session
    assert [a.slug for a in result.articles] == ["post-1"]
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((500, {}, b"oops"), "HTTP 500 Internal Server Error"),
        (
            (404, {"Content-Type": "application/json"}, b'{"code":"rest_no_route"}'),
            "HTTP 404 Not Found",
        ),
        (
            (200, {"Content-Type": "application/json"}, b"<html>not json</html>"),
            "the response is not JSON; is {url}/blog/ a WordPress site with the REST API enabled?",
        ),
        (
            (200, {"Content-Type": "application/json"}, b'{"posts": []}'),
            "expected a JSON list of posts, got dict",
        ),
    ],
    ids=["500", "404", "bad-json", "not-a-list"],
)
def test_wordpress_failures_name_the_url_and_cause(
    server: Server, tmp_path: Path, answer: Answer, message: str
) -> None:
    server.on("/blog/wp-json/wp/v2/posts", lambda _r: answer)
    with pytest.raises(SourceError) as info:
        load(tmp_path, wp_source(server), retries=1)
    text = info.value.message
    assert text.startswith(f"wordpress source {server.url}/blog/wp-json/wp/v2/posts?")
    assert "page=1" in text
    assert text.endswith(message.format(url=server.url))


def test_wordpress_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = f"  - type: wordpress\n    url: http://127.0.0.1:{port}\n"
    with pytest.raises(
        SourceError,
        match=rf"^wordpress source http://127\.0\.0\.1:{port}/wp-json/wp/v2/posts: "
        r"cannot connect: .*(refused|Errno)",
    ):
        load(tmp_path, source)


def test_wordpress_timeout(server: Server, tmp_path: Path) -> None:
    def slow(_request: Seen) -> Answer:
        time.sleep(1.0)
        return json_answer([])

    server.on("/wp-json/wp/v2/posts", slow)
    source = f"  - type: wordpress\n    url: {server.url}\n    timeout: 0.2\n"
    with pytest.raises(SourceError, match=r"wp-json/wp/v2/posts: timed out after 0\.2 s$"):
        load(tmp_path, source)


@contextlib.contextmanager
def dripping_server(size: int, pause: float) -> Iterator[str]:
    """A server that announces ``size`` bytes, then sends one every ``pause`` seconds."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(size):
                    if stop.wait(pause):
                        return
                    self.wfile.write(b" ")
                    self.wfile.flush()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()


def test_a_server_that_drips_its_answer_times_out(tmp_path: Path) -> None:
    # each byte came well within the timeout, so the run waited for all of them (here 20 s;
    # a hostile server: for ever)
    with dripping_server(400, 0.05) as url:
        source = f"  - type: wordpress\n    url: {url}\n    timeout: 0.5\n"
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"wp-json/wp/v2/posts: timed out after 0\.5 s$"):
            load(tmp_path, source)
    assert time.monotonic() - started < 5


def test_a_huge_or_compressed_huge_answer_is_refused(server: Server, tmp_path: Path) -> None:
    # a 40 KB gzip answer that unpacks to 40 MB: it was unpacked into memory in full
    bomb = gzip.compress(b" " * (40 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    gzipped = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
    server.on("/bomb.xml", lambda _r: (200, gzipped, bomb))
    with pytest.raises(
        SourceError, match=r"/bomb\.xml: the answer is more than 32 MB \(uncompressed\); is this"
    ):
        load(tmp_path, feed_source(server, "/bomb.xml"))
    server.on("/wp-json/wp/v2/posts", lambda _r: json_answer([" " * (33 * 1024 * 1024)]))
    with pytest.raises(
        SourceError, match=r"posts\?_embed=1\S*: the answer is more than 32 MB; is this"
    ):
        load(tmp_path, f"  - type: wordpress\n    url: {server.url}\n")


def test_wordpress_settings_are_validated(tmp_path: Path) -> None:
    from pressroom.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"config\.yaml:\d+: sources\.0\.per_page: WordPress allows at most 100"
    ):
        load(tmp_path, "  - type: wordpress\n    url: https://blog.example\n    per_page: 500\n")
    with pytest.raises(
        ConfigError, match=r"config\.yaml:\d+: sources\.0\.url: expected the site address"
    ):
        load(tmp_path, "  - type: wordpress\n    url: blog.example\n")
    with pytest.raises(
        ConfigError, match=r'sources\.0\.per_pag: unknown key; did you mean "per_page"\?'
    ):
        load(tmp_path, "  - type: wordpress\n    url: https://blog.example\n    per_pag: 2\n")


# --- RSS and Atom feeds ------------------------------------------------------------------------

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Elsewhere</title>
  <link>https://elsewhere.example/</link>
  <description>Another site</description>
  <item>
    <title>Tom &amp; Jerry: a &lt; b</title>
    <link>https://elsewhere.example/2026/11/tom-and-jerry/</link>
    <guid isPermaLink="false">elsewhere-42</guid>
    <pubDate>Mon, 23 Nov 2026 08:30:00 +0100</pubDate>
    <dc:creator>Ana Writer</dc:creator>
    <category>World</category>
    <category>Q&amp;A</category>
    <description>&lt;p&gt;The short version &amp;amp; more.&lt;/p&gt;</description>
    <content:encoded><![CDATA[<p>Full <a href="https://elsewhere.example/x/">text</a>.</p><script>evil()</script>]]></content:encoded>
    <enclosure url="https://elsewhere.example/img/lead.jpg" length="34567" type="image/jpeg"/>
  </item>
  <item>
    <title>No date here</title>
    <link>https://elsewhere.example/undated/</link>
  </item>
  <item>
    <title>Older</title>
    <link>https://elsewhere.example/older/</link>
    <pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate>
    <description>Just a description.</description>
  </item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom site</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2026-11-22T18:30:02Z</updated>
  <link rel="self" href="https://atom.example/feed.atom"/>
  <author><name>Site Author</name></author>
  <entry xml:base="https://atom.example/2026/11/zoe/">
    <title type="html">Zoë &amp;amp; the &lt;b&gt;bold&lt;/b&gt; move</title>
    <link rel="alternate" type="text/html" href="https://atom.example/2026/11/zoe/"/>
    <id>tag:atom.example,2026-11-22:zoe</id>
    <published>2026-11-22T18:30:02+02:00</published>
    <updated>2026-11-23T09:00:00Z</updated>
    <author><name>Zoë</name><email>zoe@atom.example</email></author>
    <category term="europe" label="Europe"/>
    <summary>Summary text.</summary>
    <content type="html">&lt;p&gt;See &lt;a href="../other/"&gt;other&lt;/a&gt;
      and &lt;img src="pic.png" alt="p"&gt;&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Uses the feed author</title>
    <link href="https://atom.example/2026/11/plain/"/>
    <id>tag:atom.example,2026-11-21:plain</id>
    <updated>2026-11-21T10:00:00Z</updated>
    <content type="text">Plain text body.</content>
  </entry>
</feed>
""".encode()


def feed_source(server: Server, path: str) -> str:
    return f"  - type: feed\n    url: {server.url}{path}\n"


def test_rss_items_are_mapped(server: Server, tmp_path: Path) -> None:
    server.on("/rss.xml", lambda _r: (200, {"Content-Type": "application/rss+xml"}, RSS))

    result = load(tmp_path, feed_source(server, "/rss.xml"))

    assert [a.title for a in result.articles] == ["Tom & Jerry: a < b", "Older"]
    a = result.articles[0]
    assert a.id == "elsewhere-42"
    assert a.url == "https://elsewhere.example/2026/11/tom-and-jerry/"
    assert a.slug == "tom-and-jerry"
    assert a.published == datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    assert [x.name for x in a.authors] == ["Ana Writer"]
    assert a.categories == ("World", "Q&A")
    assert a.summary == "The short version & more."
    assert a.html == '<p>Full <a href="https://elsewhere.example/x/">text</a>.</p>'
    assert a.image is not None
    assert (a.image.url, a.image.mime_type, a.image.length) == (
        "https://elsewhere.example/img/lead.jpg",
        "image/jpeg",
        34567,
    )
    assert a.source == f"{server.url}/rss.xml"
    older = result.articles[1]
    assert older.id == "https://elsewhere.example/older/"  # no guid: the link
    assert older.summary == "Just a description."
    assert [e.message for e in result.errors] == [
        "https://elsewhere.example/undated/: date: missing"
    ]


def test_atom_entries_are_mapped(server: Server, tmp_path: Path) -> None:
    server.on("/atom.xml", lambda _r: (200, {"Content-Type": "application/atom+xml"}, ATOM))

    result = load(tmp_path, feed_source(server, "/atom.xml"))

    assert not result.errors
    zoe, plain = result.articles
    assert zoe.title == "Zoë & the bold move"
    assert zoe.id == "tag:atom.example,2026-11-22:zoe"
    assert zoe.published == datetime(2026, 11, 22, 16, 30, 2, tzinfo=UTC)
    assert zoe.updated == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert [(x.name, x.email) for x in zoe.authors] == [("Zoë", "zoe@atom.example")]
    assert zoe.categories == ("Europe",)
    assert zoe.summary == "Summary text."
    assert 'href="https://atom.example/2026/11/other/"' in zoe.html
    assert 'src="https://atom.example/2026/11/zoe/pic.png"' in zoe.html
    assert [x.name for x in plain.authors] == ["Site Author"]
    assert plain.body_format == "text"
    assert plain.html == "<p>Plain text body.</p>"
    assert plain.published == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_feed_entries_dated_outside_the_years_a_feed_can_carry_are_broken(
    server: Server, tmp_path: Path
) -> None:
    # a remote "year 1" reached the RSS as "Tue, 20 Nov 1 11:00:00 +0000", no RFC 822 date;
    # files and WordPress refuse such a date (articles.parse_date), the feed source did not
    def item(n: int, date: str) -> str:
        link = f"https://elsewhere.example/{n}/"
        return f"<item><title>T{n}</title><link>{link}</link><pubDate>{date}</pubDate></item>"

    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>E</title>'
        "<link>https://elsewhere.example/</link><description>d</description>"
        + item(1, "Fri, 20 Nov 0001 11:00:00 GMT")
        + item(2, "Fri, 20 Nov 0999 11:00:00 GMT")
        + item(3, "Fri, 20 Nov 2026 11:00:00 GMT")
        + "</channel></rss>"
    ).encode()
    server.on("/rss.xml", lambda _r: (200, {"Content-Type": "application/rss+xml"}, rss))

    result = load(tmp_path, feed_source(server, "/rss.xml"))

    assert [a.title for a in result.articles] == ["T3"]
    assert [e.message for e in result.errors] == [
        'https://elsewhere.example/1/: date: cannot parse "Fri, 20 Nov 0001 11:00:00 GMT"',
        'https://elsewhere.example/2/: date: cannot parse "Fri, 20 Nov 0999 11:00:00 GMT"',
    ]


def test_feed_conditional_get_reuses_the_cached_copy(server: Server, tmp_path: Path) -> None:
    def answer(request: Seen) -> Answer:
        if request.headers.get("if-none-match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return (
            200,
            {
                "Content-Type": "application/atom+xml",
                "ETag": '"v1"',
                "Last-Modified": "Sun, 22 Nov 2026 18:30:02 GMT",
            },
            ATOM,
        )

    server.on("/atom.xml", answer)

    first = load(tmp_path, feed_source(server, "/atom.xml"))
    second = load(tmp_path, feed_source(server, "/atom.xml"))

    assert "if-none-match" not in server.seen[0].headers
    assert server.seen[1].headers["if-none-match"] == '"v1"'
    assert server.seen[1].headers["if-modified-since"] == "Sun, 22 Nov 2026 18:30:02 GMT"
    assert len(first.articles) == 2
    assert [(a.id, a.title, a.published) for a in second.articles] == [
        (a.id, a.title, a.published) for a in first.articles
    ]
    cached = list((tmp_path / "state" / "feeds-cache").glob("*.json"))
    assert len(cached) == 1
    record = json.loads(cached[0].read_text(encoding="utf-8"))
    assert record["etag"] == '"v1"' and record["url"] == f"{server.url}/atom.xml"


def test_feed_changed_on_the_server_replaces_the_cache(server: Server, tmp_path: Path) -> None:
    version = {"etag": '"v1"', "body": ATOM}

    def answer(request: Seen) -> Answer:
        if request.headers.get("if-none-match") == version["etag"]:
            return 304, {}, b""
        return 200, {"ETag": str(version["etag"])}, bytes(version["body"])  # type: ignore[arg-type]

    server.on("/feed", answer)
    assert len(load(tmp_path, feed_source(server, "/feed")).articles) == 2
    version.update(etag='"v2"', body=RSS)
    result = load(tmp_path, feed_source(server, "/feed"))
    assert [a.title for a in result.articles] == ["Tom & Jerry: a < b", "Older"]
    assert load(tmp_path, feed_source(server, "/feed")).articles[0].title == "Tom & Jerry: a < b"
    assert [s.headers.get("if-none-match") for s in server.seen] == [None, '"v1"', '"v2"']


def test_feed_rate_limited_then_served(server: Server, tmp_path: Path) -> None:
    calls: list[int] = []

    def answer(_request: Seen) -> Answer:
        calls.append(1)
        return (429, {"Retry-After": "0"}, b"slow down") if len(calls) == 1 else (200, {}, ATOM)

    server.on("/atom.xml", answer)
    result = load(tmp_path, feed_source(server, "/atom.xml"), retries=None)
    assert len(result.articles) == 2
    assert len(calls) == 2


def test_feed_damaged_cache_is_ignored(server: Server, tmp_path: Path) -> None:
    server.on("/atom.xml", lambda _r: (200, {"ETag": '"v1"'}, ATOM))
    load(tmp_path, feed_source(server, "/atom.xml"))
    for cached in (tmp_path / "state" / "feeds-cache").glob("*.json"):
        cached.write_text("{not json", encoding="utf-8")
    result = load(tmp_path, feed_source(server, "/atom.xml"))
    assert len(result.articles) == 2
    assert "if-none-match" not in server.seen[1].headers


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((404, {}, b"gone"), "feed source {url}/feed.xml: HTTP 404 Not Found"),
        ((500, {}, b"oops"), "feed source {url}/feed.xml: HTTP 500 Internal Server Error"),
        (
            (200, {"Content-Type": "text/html"}, b"<html><body><p>Not a feed</p></body></html>"),
            "feed source {url}/feed.xml: not an RSS or Atom feed (",
        ),
    ],
    ids=["404", "500", "html-page"],
)
def test_feed_failures_name_the_url_and_cause(
    server: Server, tmp_path: Path, answer: Answer, message: str
) -> None:
    server.on("/feed.xml", lambda _r: answer)
    with pytest.raises(SourceError) as info:
        load(tmp_path, feed_source(server, "/feed.xml"), retries=1)
    assert info.value.message.startswith(message.format(url=server.url))


def test_feed_with_sources_mixed_dedupes_by_url(server: Server, tmp_path: Path) -> None:
    """The same article from WordPress and from the site's feed is listed once."""
    wp_site(
        server,
        [
            wp_post(
                23,
                link="https://elsewhere.example/2026/11/tom-and-jerry/",
                modified_gmt="2026-11-24T00:00:00",
            )
        ],
        per_page=10,
    )
    server.on("/rss.xml", lambda _r: (200, {}, RSS))
    result = load(tmp_path, wp_source(server, per_page=10) + feed_source(server, "/rss.xml"))
    urls = [a.url for a in result.articles]
    assert urls.count("https://elsewhere.example/2026/11/tom-and-jerry/") == 1
    kept = next(a for a in result.articles if a.url.endswith("tom-and-jerry/"))
    assert kept.source.endswith("/posts/123")  # the more recently modified copy
