"""Issue 10, §1–2: one URL policy and one text policy for every source.

Each source (files, feed, wordpress) is fed hostile and careless input, through the real
source code, a real HTTP server on 127.0.0.1 and the real CLI; the same rules must hold for
all three: only absolute http(s) URLs, no control characters, plain text never stripped.
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pressroom.cli import main
from pressroom.content import articles
from pressroom.content.urls import BadURL, public_url, slug_path, slugify
from pressroom.feeds.formats import Renderer
from pressroom.models import Article
from tests import test_sources_remote as remote
from tests.test_sources_remote import Server, feed_source, load, wp_post, wp_site, wp_source


@pytest.fixture
def server() -> Iterator[Server]:
    """The HTTP server on 127.0.0.1 of test_sources_remote, answering what each test sets."""
    yield from remote.server.__wrapped__()  # type: ignore[attr-defined]


NASTY = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "C:\\Users\\ann\\photo.jpg",
    "\\\\server\\share\\photo.jpg",
    "img/my photo.jpg",
    "https://news.example/a\x07b",
    "https://news.example/a\x85b",
    "mailto:ann@news.example",
]


def every_url(article: Article) -> list[str]:
    urls = [article.url, article.base_url]
    if article.image is not None:
        urls.append(article.image.url)
    urls += [a.url for a in article.authors if a.url]
    return urls


def assert_clean(result: articles.LoadResult) -> None:
    for article in result.articles:
        for url in every_url(article):
            assert url.startswith(("http://", "https://")), url
            assert " " not in url and "\\" not in url
        for text in (article.title, article.summary, article.id, *article.categories):
            assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text), repr(text)
        for author in article.authors:
            assert author.name.strip()
            assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in author.name)


# --- the policy itself ------------------------------------------------------------------------


@pytest.mark.parametrize("value", NASTY)
def test_the_url_policy_refuses_what_is_not_http(value: str) -> None:
    with pytest.raises(BadURL):
        public_url(value, "https://news.example/a/")


def test_the_url_policy_resolves_against_the_first_web_base() -> None:
    assert public_url("pic.png", "https://news.example/a/b/") == "https://news.example/a/b/pic.png"
    assert public_url("../x/", "", "https://feed.example/f/") == "https://feed.example/x/"
    assert public_url("//cdn.example/x.png", "https://a.example/") == "https://cdn.example/x.png"
    assert public_url("https://x.example/café") == "https://x.example/caf%C3%A9"
    assert public_url("mailto:ann@news.example", email=True) == "mailto:ann@news.example"
    with pytest.raises(BadURL, match="relative"):
        public_url("pic.png")
    assert (
        public_url("HTTPS://bücher.example/straße") == "https://xn--bcher-kva.example/stra%C3%9Fe"
    )
    assert public_url("https://x.example/a/../../etc/./p") == "https://x.example/etc/p"
    assert public_url("/.well-known/x", "https://x.example/") == "https://x.example/.well-known/x"
    for broken in ("https://x.example:99999/", "https://[::1/", "https:///path", "http://"):
        with pytest.raises(BadURL):
            public_url(broken)


def test_the_url_policy_gives_the_host_a_browser_would_visit() -> None:
    # IDNA 2008 as browsers apply it (UTS #46): straße.de is its own site, not strasse.de
    assert public_url("https://straße.de/") == "https://xn--strae-oqa.de/"
    assert public_url("https://faß.de/x") == "https://xn--fa-hia.de/x"
    # host names are case-blind: one spelling, so duplicates are seen as duplicates
    assert public_url("https://News.EXAMPLE:8443/A") == "https://news.example:8443/A"
    assert public_url("http://[2001:DB8::1]:8080/") == "http://[2001:db8::1]:8080/"
    assert public_url("https://ÖBB.at/") == "https://xn--bb-eka.at/"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("https://paypal.com@evil.example/login", "user name or password"),
        ("https://ann:secret@news.example/", "user name or password"),
        ("//support.example@evil.example/", "user name or password"),
        ("https://news.example:0/", "port 0"),
    ],
)
def test_the_url_policy_refuses_what_deceives_or_cannot_connect(value: str, reason: str) -> None:
    with pytest.raises(BadURL, match=reason):
        public_url(value, "https://news.example/a/")


@pytest.mark.parametrize(
    "link",
    [
        "https://paypal.com@evil.example/login",
        "//patreon.com@evil.example/",
        "HTTPS:\\\\paypal.com@evil.example/",
        "https://paypal.com&#64;evil.example/",
        "https://ann:secret@news.example/",
        " http:evil@x.example",
    ],
)
@pytest.mark.parametrize("body_format", ["markdown", "html"])
def test_a_body_link_with_a_user_name_before_the_host_loses_its_url(
    link: str, body_format: str
) -> None:
    from pressroom.content.text import render_body

    body = (
        f'<p><a href="{link}">Support us on PayPal</a> '
        '<a href="mailto:desk@news.example">desk@news.example</a> '
        '<a href="/users/@ann">Ann</a></p>'
    )
    out = render_body(body, body_format, "https://news.example/a/")
    assert "evil" not in out and "secret" not in out
    assert "Support us on PayPal" in out  # the text stays, only the link goes
    assert 'href="mailto:desk@news.example"' in out  # an address is no user name
    assert 'href="https://news.example/users/@ann"' in out  # nor an "@" in a path


# nh3 checks the scheme of href and src only: the source URL of a quotation (cite= on
# <blockquote>, <q>, <del>, <ins>, all allowed) reached every feed as written, javascript:
# and relative paths included
@pytest.mark.parametrize("tag", ["blockquote", "q", "del", "ins"])
@pytest.mark.parametrize("body_format", ["markdown", "html"])
def test_the_source_url_of_a_quotation_takes_the_url_policy(
    tmp_path: Path, tag: str, body_format: str
) -> None:
    nasty = "".join(
        f'<{tag} cite="{url}">q{i}</{tag}>\n'
        for i, url in enumerate(
            ["javascript:alert(1)", " JaVa&#x09;script:alert(1)", "data:text/html,x", "vbscript:x"]
        )
    )
    fine = (
        f'<{tag} cite="../sources/speech.html">r</{tag}>\n'
        f'<{tag} CITE="https://Other.example/page">s</{tag}>\n'
        f'<{tag} cite="https://paypal.com@evil.example/">t</{tag}>\n'
    )
    ext = "md" if body_format == "markdown" else "html"
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / f"2026-11-20-quotes.{ext}").write_text(
        f"---\ntitle: Quotes\n---\n<div>\n{nasty}{fine}</div>\n"
    )
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        "sources:\n  - type: files\n    path: content\n"
    )
    out = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "feeds", "--now", "2026-12-01"]
    )
    assert out.exit_code == 0, out.output
    item = json.loads((tmp_path / "public" / "feeds" / "feed.json").read_text())["items"][0]
    content = item["content_html"]
    assert "script" not in content.lower() and "data:" not in content, content
    assert "evil" not in content, content
    for i in range(4):
        assert f"<{tag}>q{i}</{tag}>" in content  # the quotation stays, its URL goes
    assert f'<{tag} cite="https://news.example/sources/speech.html">r' in content
    assert f'<{tag} cite="https://other.example/page">s' in content


# A file or folder name may hold a line break or a terminal escape (a careless `mv`, a
# hostile archive): each message naming it was two lines, or recoloured the terminal
def test_a_file_name_with_a_line_break_or_escape_is_named_on_one_line(tmp_path: Path) -> None:
    content = tmp_path / "content"
    (content / "drafts\nold").mkdir(parents=True)
    (content / "broken\nname.md").write_text("---\ntitle: [x\n---\nb\n")
    (content / "drafts\nold" / "c.md").write_text("---\ntitle: [x\n---\nb\n")
    (content / "2026-11-01-warn\x1b[31mred.md").write_text(
        '---\ntitle: W\n"odd\\nkey\\u202e": 1\n---\nBody.\n'
    )
    (content / "2026-11-02-fine.md").write_text("---\ntitle: Fine\n---\nBody.\n")
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        "sources:\n  - type: files\n    path: content\n"
    )
    for command in (["feeds"], ["articles"]):
        out = CliRunner().invoke(
            main, ["--config", str(tmp_path / "config.yaml"), *command, "--now", "2026-12-01"]
        )
        assert out.exit_code == 1, out.output
        lines = [line for line in out.stderr.splitlines() if "articles, " not in line]
        assert len(lines) == 3, lines  # (articles adds its count: "2 articles, 2 skipped")
        assert "\x1b" not in out.stderr and "\u202e" not in out.stderr
        assert lines[0].startswith("warning: content/2026-11-01-warn\\x1b[31mred.md:")
        assert lines[0].endswith('unknown front-matter key "odd\\x0akey\\u202e" ignored')
        assert lines[1].startswith("error: content/broken\\x0aname.md:2: front matter: ")
        assert lines[2].startswith("error: content/drafts\\x0aold/c.md:2: front matter: ")
    config = str(tmp_path / "config.yaml")
    listed = CliRunner().invoke(
        main, ["--config", config, "articles", "--json", "--now", "2026-12-01"]
    )
    assert sorted(a["title"] for a in json.loads(listed.stdout)) == ["Fine", "W"]


# Messages quote what a remote server sent (a WordPress post id, a feed's guid): a line break
# in it forged a second "error:" line in cron mail, and an escape reached the terminal
def test_a_remote_value_quoted_in_a_message_cannot_forge_or_escape_a_line(
    server: Server, tmp_path: Path
) -> None:
    forged = wp_post(1, id="7\nerror: content/fake.md:1: forged\x1b[2J\u202e", title="")
    wp_site(server, [forged, wp_post(2)], per_page=2)
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        f"sources:\n{wp_source(server)}state: state\n"
    )
    out = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "articles", "--now", "2026-12-01"]
    )
    assert out.exit_code == 1, out.output
    [error] = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert "posts/7\\x0aerror: content/fake.md:1: forged\\x1b[2J\\u202e: title: missing" in error
    assert not any(c in out.stderr for c in "\x1b\u202e\r")


# Python refuses int() of more than 4300 digits; the JSON and TOML parsers let that ValueError
# out, so one such number in one article's front matter ended the whole run in a traceback
@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("j.md", '{"title": "J", "weight": %s}\nBody.\n', 1),
        ("t.md", '+++\ntitle = "T"\nweight = %s\n+++\nBody.\n', 3),
        ("y.md", "---\ntitle: Y\nweight: %s\n---\nBody.\n", 3),
        ("h.md", "Title: H\nWeight: %s\n\nBody.\n", 0),  # headers: text, no number
    ],
)
def test_a_number_too_long_for_python_is_one_broken_article(
    tmp_path: Path, name: str, text: str, line: int
) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / f"2026-11-01-{name}").write_text(text % ("9" * 5000))
    (tmp_path / "content" / "2026-11-02-fine.md").write_text("---\ntitle: Fine\n---\nB.\n")
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        "sources:\n  - type: files\n    path: content\n"
    )
    config = ["--config", str(tmp_path / "config.yaml")]
    out = CliRunner().invoke(main, [*config, "articles", "--json", "--now", "2026-12-01"])
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    titles = sorted(a["title"] for a in json.loads(out.stdout))
    if not line:
        assert out.exit_code == 0 and titles == ["Fine", "H"]
        return
    assert out.exit_code == 1 and titles == ["Fine"]
    assert [row for row in out.stderr.splitlines() if "error" in row] == [
        f"error: content/2026-11-01-{name}:{line}: front matter: a number of more than 4300 "
        "digits; put it in quotes if it is text"
    ]


# The sanitiser's HTML parser takes time that grows with the cube of the nesting depth: a body
# of 100,000 nested <div>s (600 KB) or Markdown "> > > …" quotes (200 KB) held `pressroom feeds`
# for many minutes. Elements deeper than a browser nests them (512) lose their tags, not text.
@pytest.mark.parametrize(
    ("name", "body", "tag"),
    [
        ("deep.html", "<div>" * 100_000 + "deep text" + "</div>" * 100_000, "div"),
        ("deep.md", "> " * 100_000 + "deep text\n", "blockquote"),
    ],
)
def test_a_body_nested_without_end_renders_in_time(
    tmp_path: Path, name: str, body: str, tag: str
) -> None:
    import time

    (tmp_path / "content").mkdir()
    (tmp_path / "content" / f"2026-11-20-{name}").write_text(f"---\ntitle: Deep\n---\n{body}")
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        "sources:\n  - type: files\n    path: content\n"
    )
    started = time.monotonic()
    out = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "feeds", "--now", "2026-12-01"]
    )
    assert out.exit_code == 0, out.output
    assert time.monotonic() - started < 30  # minutes without the depth limit
    [item] = json.loads((tmp_path / "public" / "feeds" / "feed.json").read_text())["items"]
    content = item["content_html"]
    assert "deep text" in content
    assert content.count(f"<{tag}>") == 512 == content.count(f"</{tag}>")


# Summaries strip tags with patterns that end in ">": with none after it, each "<a" made them
# scan to the end of the text again. 100,000 of them (200 KB of HTML, or a feed's summary)
# held `pressroom articles` for about a minute, a 32 MB one for days.
def articles_json(tmp_path: Path, name: str, text: str) -> tuple[list[dict[str, Any]], float]:
    """``pressroom articles --json`` over one article file: the articles and the seconds taken."""
    import time

    (tmp_path / "content").mkdir()
    (tmp_path / "content" / name).write_text(text)
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        "sources:\n  - type: files\n    path: content\n"
    )
    started = time.monotonic()
    out = CliRunner().invoke(
        main,
        ["--config", str(tmp_path / "config.yaml"), "articles", "--json", "--now", "2026-12-01"],
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout), time.monotonic() - started


@pytest.mark.parametrize("junk", ["<a", "<p ", "<!", "<style ", "<h2>"])
def test_a_body_of_unclosed_tags_summarises_in_time(tmp_path: Path, junk: str) -> None:
    body = "<div>First <b>words</b>.</div><script>x()</script>" + junk * 100_000  # no <p>
    found, seconds = articles_json(tmp_path, "2026-11-20-a.html", f"---\ntitle: A\n---\n{body}")
    assert seconds < 20  # a minute or more before
    [article] = found
    assert article["summary"].startswith("First words.")
    assert len(article["summary"]) <= 300 and "x()" not in article["summary"]


# The fast path for flat YAML front matter read a value with a lazy pattern that retried every
# length against the trailing spaces: one line padded with 200 KB of spaces took minutes
def test_a_front_matter_line_padded_with_spaces_reads_in_time(tmp_path: Path) -> None:
    pad = " " * 200_000
    found, seconds = articles_json(
        tmp_path, "2026-11-20-a.md", f"---\ntitle: Padded{pad}title\nsummary: S{pad}\n---\nBody.\n"
    )
    assert seconds < 20  # minutes before
    [article] = found
    assert (article["title"], article["summary"]) == ("Padded title", "S")


# The "# Heading" that titles a Markdown file without title: had the same lazy pattern
def test_a_markdown_heading_padded_with_spaces_reads_in_time(tmp_path: Path) -> None:
    heading = "# Padded" + " " * 100_000 + "heading ##"
    found, seconds = articles_json(
        tmp_path, "2026-11-20-a.md", f"---\ndate: 2026-11-20\n---\n{heading}\n"
    )
    assert seconds < 20  # minutes before
    assert [a["title"] for a in found] == ["Padded heading"]


# Every category, tag and author name has feeds of its own that list its articles with all
# their names: one article with 3,000 categories wrote 9,000 feeds and 717 MB
def test_an_article_with_thousands_of_names_cannot_fill_the_disk(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    many = ", ".join(f"c{i}" for i in range(1000))
    authors = ", ".join(f"a{i}" for i in range(300))
    (tmp_path / "content" / "2026-11-20-a.md").write_text(
        f"---\ntitle: A\ncategories: [{many}]\ntags: [{many}]\nauthors: [{authors}]\n---\nB.\n"
    )
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        "sources:\n  - type: files\n    path: content\n"
    )
    config = ["--config", str(tmp_path / "config.yaml")]
    for _run in ("cold", "warm"):
        out = CliRunner().invoke(main, [*config, "feeds", "--now", "2026-12-01"])
        assert out.exit_code == 0, out.output
        assert out.stderr.splitlines() == [
            f"warning: content/2026-11-20-a.md: {n} {name}; only the first 100 are kept "
            "(each one has feeds of its own)"
            for n, name in ((1000, "categories"), (1000, "tags"), (300, "authors"))
        ]
    feeds = tmp_path / "public" / "feeds"
    assert len(list((feeds / "category").iterdir())) == 100
    assert len(list((feeds / "author").iterdir())) == 100
    [item] = json.loads((feeds / "feed.json").read_text())["items"]
    assert item["tags"][:2] == ["c0", "c1"] and len(item["tags"]) <= 200
    assert sum(p.stat().st_size for p in feeds.rglob("*") if p.is_file()) < 20_000_000


# YAML aliases make a 1 KB front matter a list of 387 million items ("billion laughs"): fine
# while nothing spells it out, but a date's "cannot parse" message, Pelican's status check and
# an author's e-mail did, with str(), and ate memory for minutes
LAUGHS = '---\na: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("date: *i", "date: expected a date, got a list"),
        ("updated: *i", "updated: expected a date, got a list"),
        ("publishDate: *i", "publish_date: expected a date, got a list"),
        ("status: *i", ""),
        ("author: {name: Ann, email: *i}", "author: email: expected text, got a list; dropped"),
    ],
)
def test_a_billion_laughs_in_front_matter_is_never_spelt_out(
    tmp_path: Path, line: str, said: str
) -> None:
    import time

    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "2026-11-20-a.md").write_text(f"{LAUGHS}title: A\n{line}\n---\nBody.\n")
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        "sources:\n  - type: files\n    path: content\n"
    )
    started = time.monotonic()
    out = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "articles", "--now", "2026-12-01"]
    )
    assert time.monotonic() - started < 20  # minutes and gigabytes before
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    said_lines = [row for row in out.stderr.splitlines() if "unknown front-matter" not in row]
    if said:
        assert any(said in row for row in said_lines), said_lines
    assert all(len(row) < 300 for row in out.stderr.splitlines())


def test_the_depth_limit_leaves_what_a_browser_shows_as_it_is() -> None:
    from pressroom.content.text import MAX_DEPTH, flatten_deep

    # unclosed <p> and <li> close each other, void elements hold nothing: not nesting
    flat = "<p>a" * 2000 + "<ul>" + "<li>b" * 2000 + "</ul>" + "<br><img src=x>" * 2000
    assert flatten_deep(flat) == flat
    nested = "<div>" * (MAX_DEPTH + 2) + "t" + "</div>" * (MAX_DEPTH + 2) + "<div>after</div>"
    assert flatten_deep(nested) == (
        "<div>" * MAX_DEPTH + "t" + "</div>" * MAX_DEPTH + "<div>after</div>"
    )


def test_slugs_are_ascii_where_the_name_allows_and_never_climb() -> None:
    assert slugify("søren-kierkegaard") == "soren-kierkegaard"
    assert slugify("Łódź Straße") == "lodz-strasse"
    assert slugify("Россия") == "россия"
    assert slug_path("/../../etc/passwd") == "etc/passwd"
    assert slug_path("./a/../b/") == "a/b"
    assert slug_path("søren kierkegaard") == "soren-kierkegaard"


# --- files ------------------------------------------------------------------------------------

FILES_CONFIG = """\
publication:
  name: Test
  url: https://news.example/
  timezone: UTC
sources:
  - type: files
    path: content
"""


def files_site(tmp_path: Path, files: dict[str, str]) -> tuple[articles.LoadResult, list[str]]:
    from pressroom import config

    (tmp_path / "config.yaml").write_text(FILES_CONFIG, encoding="utf-8")
    for name, text in files.items():
        path = tmp_path / "content" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    warnings: list[str] = []
    from tests.test_sources_remote import NOW

    result = articles.load(config.load(tmp_path / "config.yaml"), NOW, warn=warnings.append)
    return result, warnings


@pytest.mark.parametrize("value", NASTY)
def test_front_matter_image_and_author_url_are_dropped_naming_file_and_line(
    tmp_path: Path, value: str
) -> None:
    quoted = json.dumps(value)
    result, warnings = files_site(
        tmp_path,
        {
            "2026-11-01-a.md": "---\ntitle: A\n"
            f"image: {quoted}\n"
            f"author: {{name: Ann, url: {quoted}}}\n---\nBody.\n"
        },
    )
    assert not result.errors
    (a,) = result.articles
    assert a.image is None
    assert a.authors[0].name == "Ann" and a.authors[0].url is None
    assert any(w.startswith("content/2026-11-01-a.md:3: image: ") for w in warnings), warnings
    if value.startswith("mailto:"):  # where an e-mail address belongs, mailto: gives one
        assert a.authors[0].email == "ann@news.example"
    else:
        assert any(w.startswith("content/2026-11-01-a.md:4: author: url: ") for w in warnings)
    assert_clean(result)


@pytest.mark.parametrize("value", NASTY)
def test_front_matter_url_that_is_not_http_is_an_error_naming_file_and_line(
    tmp_path: Path, value: str
) -> None:
    result, _ = files_site(
        tmp_path, {"2026-11-01-a.md": f"---\ntitle: A\nurl: {json.dumps(value)}\n---\nBody.\n"}
    )
    assert not result.articles
    (error,) = result.errors
    assert error.message.startswith("content/2026-11-01-a.md:3: url: ")


def test_relative_image_and_author_url_resolve_against_the_article(tmp_path: Path) -> None:
    result, warnings = files_site(
        tmp_path,
        {
            "2026-11-01-a.md": "---\ntitle: A\nurl: /2026/a/\nimage: pic.png\n"
            "author: {name: Ann, url: ../about/}\n---\nBody.\n"
        },
    )
    (a,) = result.articles
    assert a.image is not None and a.image.url == "https://news.example/2026/a/pic.png"
    assert a.authors[0].url == "https://news.example/2026/about/"
    assert not warnings


# A list or mapping written as an author's url was judged by its Python spelling, and the
# warning told the publisher to percent-encode a space they never wrote
def test_an_author_url_that_is_no_text_is_named_by_its_type(tmp_path: Path) -> None:
    result, warnings = files_site(
        tmp_path,
        {
            "2026-11-01-a.md": "---\ntitle: A\nauthor: {name: Ann, url: [a, b]}\n---\nB.\n",
            "2026-11-02-b.md": "---\ntitle: B\nauthor: {name: Bo, url: mailto:bo@news.example}\n"
            "---\nB.\n",
        },
    )
    assert warnings == ["content/2026-11-01-a.md:3: author: url: dropped: expected a URL, got list"]
    b, a = result.articles
    assert (a.authors[0].name, a.authors[0].url) == ("Ann", None)
    assert (b.authors[0].email, b.authors[0].url) == ("bo@news.example", None)


def test_invalid_author_email_is_dropped_with_a_warning(tmp_path: Path) -> None:
    result, warnings = files_site(
        tmp_path,
        {
            "2026-11-01-a.md": "---\ntitle: A\nauthors:\n"
            "  - {name: Ann, email: not an address}\n"
            "  - {name: Bob, email: Bob@News.Example}\n---\nBody.\n"
        },
    )
    (a,) = result.articles
    assert [(x.name, x.email) for x in a.authors] == [("Ann", None), ("Bob", "Bob@news.example")]
    (warning,) = warnings
    assert warning.startswith('content/2026-11-01-a.md:3: authors: email: "not an address" dropped')


def test_the_file_name_slug_is_ascii_where_the_name_allows(tmp_path: Path) -> None:
    result, _ = files_site(
        tmp_path,
        {
            "2026-11-01-søren-kierkegaard.md": "---\ntitle: A\n---\nBody.\n",
            "2026-11-02-b.md": "---\ntitle: B\nslug: ../../søren/../x\n---\nBody.\n",
        },
    )
    slugs = {a.title: (a.slug, a.url) for a in result.articles}
    assert slugs["A"] == ("soren-kierkegaard", "https://news.example/soren-kierkegaard/")
    assert slugs["B"] == ("soren/x", "https://news.example/soren/x/")


CONTROLS = "\x00\x07\x08\x0b\x0c\x1b\x7f\x85\x9b"


def test_control_characters_are_removed_from_every_field_of_a_file(tmp_path: Path) -> None:
    esc = json.dumps(f"Bell{CONTROLS}ring")
    result, _ = files_site(
        tmp_path,
        {
            "2026-11-01-a.md": f"---\ntitle: {esc}\nsummary: {esc}\nauthor: {esc}\n"
            f"categories: [{esc}]\ntags: [{esc}]\nimage: pic.png\nimage_alt: {esc}\n"
            f"---\nBody{CONTROLS} text\n",
            "2026-11-02-b.txt": f"Title{CONTROLS} line\n\nBody.\n",
        },
    )
    assert not result.errors
    b, a = result.articles
    assert a.title == a.summary == "Bellring"
    assert a.authors[0].name == "Bellring"
    assert a.categories == a.tags == ("Bellring",)
    assert a.image is not None and a.image.alt == "Bellring"
    assert a.html == "<p>Body text</p>"  # the body loses them where it is rendered
    assert b.title == "Title line"
    assert_clean(result)


# Character references that decode to what XML cannot carry: nh3 and cmark decode them after
# the text policy ran on the raw body, so each one ended `pressroom feeds` in a traceback
# (lxml refuses the character; cmark even writes U+FFFE as a lone, invalid UTF-8 byte).
CONTROL_REFS = "&#1;&#x0B;&#x80;&#x9f;&#xFFFE;&#65535;&#xfffe;"


@pytest.mark.parametrize("name", ["2026-11-20-a.md", "2026-11-20-a.html"])
def test_character_references_to_control_characters_never_reach_a_feed(
    tmp_path: Path, name: str
) -> None:
    from tests.feeds_helpers import check_feeds

    (tmp_path / "config.yaml").write_text(FILES_CONFIG, encoding="utf-8")
    (tmp_path / "content").mkdir()
    body = (
        f"<p>Bell{CONTROL_REFS}ring</p>\n\nBell{CONTROL_REFS}ring "
        f'[link](https://a.example/{CONTROL_REFS} "t{CONTROL_REFS}")\n\n'
        f'<a href="https://b.example/" title="t{CONTROL_REFS}">b</a>\n'
    )
    (tmp_path / "content" / name).write_text(f"---\ntitle: A\n---\n{body}", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "feeds", "--now", "2026-11-25T09:00"]
    )
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    out = tmp_path / "public" / "feeds"
    assert check_feeds(out, "https://news.example/feeds/") == []
    written = (out / "index.xml").read_text(encoding="utf-8")
    assert "Bellring" in written or "Bell€Ÿring" in written  # HTML maps &#x80; to €
    assert not any((ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F for c in written)
    assert "\ufffe" not in written and "\uffff" not in written


RLO, PDF, RLE, RLI, PDI = "\u202e", "\u202c", "\u202b", "\u2067", "\u2069"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Invoice {RLO}fdp.exe", "Invoice fdp.exe"),  # an override: shown in another order
        (f"a {RLO}b{PDF} c", "a b c"),  # its PDF goes with it
        (f"x {RLE}שלום{PDF} y", f"x {RLE}שלום{PDF} y"),  # a closed embedding stays
        (f"x {RLI}עברית", f"x {RLI}עברית{PDI}"),  # an open isolate is closed at the end
        (f"x {RLE}{RLI}a", f"x {RLE}{RLI}a{PDI}{PDF}"),  # innermost first
        (f"{RLI}a{RLE}b{PDI}c", f"{RLI}a{RLE}b{PDI}c"),  # a PDI closes the embedding inside
        (f"{RLI}a{PDF}b{PDI}", f"{RLI}ab{PDI}"),  # a PDF never closes an isolate
        (f"y{PDF}{PDI} z", "y z"),  # closers with nothing to close
        ("mark\u200f stays", "mark\u200f stays"),  # RLM opens nothing
    ],
)
def test_bidi_controls_cannot_reach_past_a_line(text: str, expected: str) -> None:
    from pressroom.textpolicy import one_line

    assert one_line(text) == expected


def test_bidi_controls_in_titles_and_names_stay_inside_them(demo: Path) -> None:
    # an article (or a remote feed) titled with an override or an open isolate turned the rest
    # of the Subject line, and the next title in a reader's list, around
    (demo / "content" / "2026-11-24-spoof.md").write_text(
        f'---\ntitle: "Your receipt {RLO}fdp.exe"\ndate: 2026-11-25T08:00:00Z\nauthor: "{RLI}Ann"\n'
        f'categories: ["{RLE}News"]\n---\nBody.\n',
        encoding="utf-8",
    )
    config = ["--config", str(demo / "config.yaml")]
    result = CliRunner().invoke(main, [*config, "feeds", "--now", "2026-11-25T09:00"])
    assert result.exit_code == 0, result.output
    written = "".join(
        p.read_text(encoding="utf-8") for p in (demo / "public" / "feeds").rglob("*.*ml")
    )
    assert RLO not in written and "Your receipt fdp.exe" in written
    assert f"{RLI}Ann{PDI}" in written and f"{RLE}News{PDF}" in written
    out = demo / "out"
    result = CliRunner().invoke(
        main,
        [*config, "digest", "preview", "--now", "2026-11-25T09:00", "--out", str(out)],
        env={"PRESSROOM_SECRET": "test-secret-not-for-production"},
    )
    assert result.exit_code == 0, result.output
    (eml,) = out.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert str(msg["Subject"]).endswith(": Your receipt fdp.exe"), msg["Subject"]
    assert RLO not in eml.read_text(encoding="utf-8", errors="replace")


def test_a_blank_id_in_front_matter_is_one_line_naming_the_line(tmp_path: Path) -> None:
    # `id: ""` (or spaces, or only control characters) made an entry with no GUID: feedgen
    # refused it and `pressroom feeds` ended in "ValueError: Required fields not set"
    (tmp_path / "config.yaml").write_text(FILES_CONFIG, encoding="utf-8")
    (tmp_path / "content").mkdir()
    for n, value in enumerate(('""', '"   "', '"\\x07\\x1b"')):
        (tmp_path / "content" / f"2026-11-2{n}-a{n}.md").write_text(
            f"---\ntitle: A{n}\nid: {value}\n---\nBody.\n", encoding="utf-8"
        )
    (tmp_path / "content" / "2026-11-23-ok.md").write_text("---\ntitle: OK\n---\nB.\n")
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "feeds", "--now", "2026-11-25T09:00"]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output
    for n in range(3):
        assert (
            f"error: content/2026-11-2{n}-a{n}.md:3: id: empty; remove the line, or give the "
            "article's permanent id" in result.output
        )
    assert "Traceback" not in result.output
    assert "<title>OK</title>" in (tmp_path / "public/feeds/index.xml").read_text("utf-8")


def test_a_blank_guid_from_a_feed_falls_back_to_the_link(server: Server, tmp_path: Path) -> None:
    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>E</title>'
        b"<link>https://elsewhere.example/</link><description>d</description>"
        b"<item><title>Blank</title><link>https://elsewhere.example/1/</link><guid>   </guid>"
        b"<pubDate>Fri, 20 Nov 2026 11:00:00 GMT</pubDate></item>"
        b"<item><title>Bell</title><link>https://elsewhere.example/2/</link><guid>&#x7;</guid>"
        b"<pubDate>Fri, 20 Nov 2026 12:00:00 GMT</pubDate></item></channel></rss>"
    )
    server.on("/rss.xml", lambda _r: (200, {"Content-Type": "application/rss+xml"}, rss))
    result = remote.load(tmp_path, feed_source(server, "/rss.xml"))
    assert not result.errors
    assert [a.id for a in result.articles] == [
        "https://elsewhere.example/2/",
        "https://elsewhere.example/1/",
    ]


def test_an_author_name_of_only_controls_or_spaces_is_no_name(tmp_path: Path) -> None:
    result, _ = files_site(
        tmp_path,
        {
            "2026-11-01-a.md": '---\ntitle: A\nauthors: ["\\x07\\x1b", "   ", Ann]\n---\nB.\n',
            "2026-11-02-b.md": '---\ntitle: B\nauthor: "\\x1b\\x07"\n---\nB.\n',
            "2026-11-03-c.md": '---\ntitle: C\nauthors: [{name: "\\x07 "}, {name: Bo}]\n---\nC.\n',
        },
    )
    assert not result.errors
    by_title = {a.title: a for a in result.articles}
    assert [x.name for x in by_title["A"].authors] == ["Ann"]
    assert by_title["B"].authors == ()
    assert [x.name for x in by_title["C"].authors] == ["Bo"]


LESS_GREATER = "latency < 200 ms and error rate > 1%"


def test_plain_text_with_angle_brackets_survives_in_summaries(tmp_path: Path) -> None:
    result, _ = files_site(
        tmp_path,
        {
            "2026-11-01-a.md": f'---\ntitle: A\nsummary: "{LESS_GREATER}"\n---\nBody.\n',
            "2026-11-02-b.md": f"---\ntitle: B\n---\n{LESS_GREATER}, see <https://x.example/r>.\n",
            "2026-11-03-c.html": f"---\ntitle: C\n---\n<p>{LESS_GREATER}</p>\n",
            "2026-11-04-d.txt": f"D\n\n{LESS_GREATER}\n",
            "2026-11-05-e.md": "---\ntitle: E\n---\n"
            "Write <b>bold</b> as `<b>`, mail <ann@x.example>\n",
        },
    )
    summaries = {a.title: a.summary for a in result.articles}
    assert summaries == {
        "A": LESS_GREATER,
        "B": f"{LESS_GREATER}, see https://x.example/r.",
        "C": LESS_GREATER,
        "D": LESS_GREATER,
        "E": "Write bold as <b>, mail ann@x.example",
    }


# --- the feed source --------------------------------------------------------------------------

HOSTILE_RSS = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel>
  <title>Elsewhere</title>
  <link>https://elsewhere.example/</link>
  <description>d</description>
  <item>
    <title>Script link</title>
    <link>javascript:alert(document.cookie)</link>
    <guid isPermaLink="true">https://elsewhere.example/real/</guid>
    <pubDate>Mon, 23 Nov 2026 08:30:00 GMT</pubDate>
    <description>{LESS_GREATER.replace("<", "&lt;").replace(">", "&gt;")}</description>
    <enclosure url="data:image/png;base64,AAAA" length="4" type="image/png"/>
    <media:content url="javascript:alert(2)" type="image/jpeg"/>
    <media:thumbnail url="thumb.jpg"/>
  </item>
  <item>
    <title>{LESS_GREATER.replace("<", "&lt;").replace(">", "&gt;")}</title>
    <link>vbscript:msgbox(1)</link>
    <guid isPermaLink="false">not-a-url</guid>
    <pubDate>Sun, 22 Nov 2026 08:30:00 GMT</pubDate>
  </item>
  <item>
    <title>Windows</title>
    <link>/2026/11/win/</link>
    <pubDate>Sat, 21 Nov 2026 08:30:00 GMT</pubDate>
    <enclosure url="C:\\Users\\ann\\pic.jpg" length="4" type="image/jpeg"/>
    <enclosure url="../img/ok.jpg" length="4" type="image/jpeg"/>
  </item>
</channel>
</rss>
""".encode()

HOSTILE_ATOM = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2026-11-22T18:30:02Z</updated>
  <link rel="self" href="https://atom.example/feed.atom"/>
  <entry>
    <title type="text">{LESS_GREATER.replace("<", "&lt;").replace(">", "&gt;")}</title>
    <link href="https://atom.example/a/"/>
    <id>tag:atom.example,2026-11-22:a</id>
    <updated>2026-11-22T10:00:00Z</updated>
    <author><name>Zoë</name><uri>javascript:alert(1)</uri><email>zoe@@x</email></author>
    <author><name> \u0085 </name><uri>https://atom.example/nobody/</uri></author>
    <summary type="text">{LESS_GREATER.replace("<", "&lt;").replace(">", "&gt;")}</summary>
  </entry>
  <entry>
    <title>Relative</title>
    <link href="rel/b/"/>
    <id>tag:atom.example,2026-11-21:b</id>
    <updated>2026-11-21T10:00:00Z</updated>
    <author><name>Ann</name><uri>../people/ann/</uri></author>
  </entry>
</feed>
""".encode()


def test_feed_source_urls_go_through_the_policy(server: Server, tmp_path: Path) -> None:
    server.on("/rss.xml", lambda _r: (200, {"Content-Type": "application/rss+xml"}, HOSTILE_RSS))
    warnings: list[str] = []
    result = load(tmp_path, feed_source(server, "/rss.xml"), warnings=warnings)
    by_title = {a.title: a for a in result.articles}
    assert set(by_title) == {"Script link", "Windows"}
    script = by_title["Script link"]
    assert script.url == "https://elsewhere.example/real/"  # the permalink guid, not the script
    assert script.image is not None
    assert script.image.url == "https://elsewhere.example/real/thumb.jpg"
    assert script.summary == LESS_GREATER
    windows = by_title["Windows"]
    assert windows.url == f"{server.url}/2026/11/win/"  # against the feed's URL
    assert windows.image is not None
    assert windows.image.url == f"{server.url}/2026/11/img/ok.jpg"  # against the entry's
    (error,) = result.errors
    assert error.field == "link" and "not an http(s) URL" in error.problem
    src = f"feed source {server.url}/rss.xml"
    for fragment in (
        f"{src} entry 1 (javascript:alert(document.cookie)): link: ",
        f"{src} entry 1 (javascript:alert(document.cookie)): enclosure: ",
        f"{src} entry 1 (javascript:alert(document.cookie)): media: ",
        f"{src} entry 3 (/2026/11/win/): enclosure: ",
    ):
        assert any(w.startswith(fragment) for w in warnings), (fragment, warnings)
    assert_clean(result)


def test_feed_source_text_titles_and_author_uris(server: Server, tmp_path: Path) -> None:
    server.on("/a.xml", lambda _r: (200, {"Content-Type": "application/atom+xml"}, HOSTILE_ATOM))
    warnings: list[str] = []
    result = load(tmp_path, feed_source(server, "/a.xml"), warnings=warnings)
    assert not result.errors
    a, b = result.articles
    assert a.title == LESS_GREATER
    assert a.summary == LESS_GREATER
    assert [(x.name, x.email, x.url) for x in a.authors] == [("Zoë", None, None)]
    assert any("author url: dropped" in w for w in warnings), warnings
    assert any('author email: "zoe@@x" dropped' in w for w in warnings), warnings
    assert b.url == f"{server.url}/rel/b/"  # relative to the feed's own URL
    assert b.authors[0].url == f"{server.url}/rel/people/ann/"  # then to the entry's
    assert_clean(result)


def test_feed_source_titles_lose_control_characters(server: Server, tmp_path: Path) -> None:
    # XML cannot carry them, but feedparser's fallback parser hands them over all the same
    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        b"<title>Bell\x07 ESC\x1b[31m red\x81</title><link>https://a.example/x</link>"
        b"<pubDate>Mon, 23 Nov 2026 08:30:00 GMT</pubDate><author>x@a.example (A\x07nn)</author>"
        b"<category>C\x08at</category></item></channel></rss>"
    )
    server.on("/c.xml", lambda _r: (200, {"Content-Type": "application/rss+xml"}, rss))
    result = load(tmp_path, feed_source(server, "/c.xml"))
    (a,) = result.articles
    assert a.title == "Bell ESC[31m red"
    assert a.categories == ("Cat",)
    assert_clean(result)


# --- WordPress --------------------------------------------------------------------------------


def test_wordpress_urls_and_text_go_through_the_policies(server: Server, tmp_path: Path) -> None:
    bad_link = wp_post(3, link="javascript:alert(1)")
    post = wp_post(4)
    post["title"] = {"rendered": "Bell\u0007 &amp; \u009bescape"}
    post["_embedded"]["author"][0]["link"] = "data:text/html,x"
    post["_embedded"]["author"].append({"id": 8, "name": " \u0007 "})
    post["_embedded"]["wp:featuredmedia"][0]["source_url"] = "vbscript:x"
    wp_site(server, [post, bad_link], per_page=2)
    warnings: list[str] = []
    result = load(tmp_path, wp_source(server), warnings=warnings)
    (a,) = result.articles
    assert a.title == "Bell & escape"
    assert [(x.name, x.url) for x in a.authors] == [("Zoë Writer", None)]
    assert a.image is None
    (error,) = result.errors
    assert error.field == "link" and "javascript" in error.problem
    where = f"wordpress source {server.url}/blog/wp-json/wp/v2/posts/104"
    assert any(w.startswith(f"{where}: url: dropped") for w in warnings), warnings
    assert any(w.startswith(f"{where}: featured media: ") for w in warnings), warnings
    assert_clean(result)


# --- end to end: nothing hostile reaches the feeds, the archive or the e-mail -----------------


def test_a_hostile_remote_feed_reaches_no_output(server: Server, tmp_path: Path) -> None:
    server.on("/rss.xml", lambda _r: (200, {"Content-Type": "application/rss+xml"}, HOSTILE_RSS))
    pub = tmp_path / "pub"
    pub.mkdir()
    (pub / "config.yaml").write_text(
        "publication:\n  name: Test\n  url: https://news.example/\n  timezone: UTC\n"
        "  postal_address: 1 Example Street, London\n"
        f"sources:\n  - type: feed\n    url: {server.url}/rss.xml\n"
        "sending:\n  from: Test <news@news.example>\n  unsubscribe_url: https://news.example/u\n"
        "  secret_env: PRESSROOM_SECRET\n",
        encoding="utf-8",
    )
    env = {"PRESSROOM_SECRET": "s" * 32}
    runner = CliRunner()
    cfg = ["--config", str(pub / "config.yaml")]
    feeds = runner.invoke(main, [*cfg, "feeds"], env=env)
    assert "Traceback" not in feeds.output
    built = runner.invoke(main, [*cfg, "digest", "build", "--now", "2026-11-25T12:00"], env=env)
    assert "Traceback" not in built.output, built.output
    written = [p for p in pub.rglob("*") if p.is_file() and p.suffix in (".xml", ".json", ".html")]
    assert any(p.name == "index.xml" for p in written)
    assert any("issues" in p.parts for p in written), built.output
    for path in written:
        text = path.read_text(encoding="utf-8").lower()
        for scheme in ("javascript:", "vbscript:", "data:image", "c:\\users"):
            assert scheme not in text, (path, scheme)
        assert "\x85" not in text and "\x9b" not in text
    issue = pub / "public" / "issues" / "1" / "index.html"  # the view-online page
    assert LESS_GREATER in html.unescape(issue.read_text(encoding="utf-8"))  # the teaser
    preview = runner.invoke(
        main,
        [*cfg, "digest", "preview", "--now", "2026-11-25T12:00", "--out", str(tmp_path / "p")],
        env=env,
    )
    assert "Traceback" not in preview.output  # exit 1: the vbscript: entry is reported
    (eml,) = (tmp_path / "p").glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    shown = html.unescape(html_part.get_content())
    assert shown.count(LESS_GREATER) == 2  # the preheader and the teaser
    assert LESS_GREATER in text_part.get_content()


ODD_TYPES_RSS = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>
<link>https://x.example/</link>
<item><title>one</title><link>https://x.example/1</link><guid>g1</guid>
<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate><description>d</description>
<enclosure url="https://x.example/a.png" type="image/" length="10"/></item>
<item><title>two</title><link>https://x.example/2</link><guid>g2</guid>
<pubDate>Mon, 02 Nov 2026 11:00:00 GMT</pubDate><description>d</description>
<enclosure url="https://x.example/b.jpg" type="image/jpeg&#10;x: y" length="7"/></item>
<item><title>three</title><link>https://x.example/3</link><guid>g3</guid>
<pubDate>Mon, 02 Nov 2026 12:00:00 GMT</pubDate><description>d</description>
<media:content url="https://x.example/c.gif" type="IMAGE/GIF; q=&quot;&lt;b&gt;&quot;"
 fileSize="5"/></item>
</channel></rss>"""


# A feed's enclosure type went into every feed as sent: "image/" (no subtype) is no Atom media
# type (RFC 4287 atomMediaType), a line break or parameters no RSS reader expects
def test_a_remote_media_type_that_is_not_one_is_named_by_the_url(
    server: Server, tmp_path: Path
) -> None:
    server.on("/rss.xml", lambda _r: (200, {"Content-Type": "application/rss+xml"}, ODD_TYPES_RSS))
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: N\n  url: https://news.example/\n"
        f"sources:\n{feed_source(server, '/rss.xml')}state: state\n"
    )
    out = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "feeds", "--now", "2026-12-01"]
    )
    assert out.exit_code == 0, out.output
    feeds = tmp_path / "public" / "feeds"
    rss = (feeds / "index.xml").read_text()
    atom = (feeds / "atom.xml").read_text()
    types = sorted(re.findall(r'<enclosure url="[^"]*" length="\d+" type="([^"]*)"', rss))
    assert types == ["image/gif", "image/jpeg", "image/png"], rss
    assert sorted(re.findall(r'rel="enclosure" href="[^"]*" type="([^"]*)"', atom)) == types
    # media:content's fileSize is its length (feedparser reads it as "filesize")
    assert '<enclosure url="https://x.example/c.gif" length="5" type="image/gif"/>' in rss


# --- feeds: colliding slugs, channel descriptions ---------------------------------------------


def test_categories_and_authors_whose_slugs_collide_get_distinct_feeds(tmp_path: Path) -> None:
    from pressroom.feeds import builder as feeds
    from pressroom.models import Author
    from tests.feeds_helpers import article, make_config

    config = make_config(tmp_path)
    arts = [
        article(1, categories=("C++",), authors=(Author("Zoë Ångström"),)),
        article(2, categories=("C#",), authors=(Author("Zoe Angstrom"),)),  # same name, folded
        article(3, categories=("c",), authors=(Author("Ann!"),)),
        article(4, categories=("C++",), authors=(Author("Ann?"),)),
    ]
    report = feeds.build(config, arts)
    cats = {s.name: s for s in report.feeds if s.kind == "category"}
    assert set(cats) == {"C++", "C#", "c"}
    assert len({s.path for s in cats.values()}) == 3
    assert [a.url for a in cats["C++"].articles] == [
        "https://news.example/4/",
        "https://news.example/1/",
    ]
    assert [a.url for a in cats["C#"].articles] == ["https://news.example/2/"]
    authors = {s.name: s for s in report.feeds if s.kind == "author"}
    assert len(authors) == 3 and len({s.path for s in authors.values()}) == 3
    # the same slugs whatever order the articles come in
    again = feeds.build(config, list(reversed(arts)), out=tmp_path / "again")
    assert {s.name: s.path for s in again.feeds} == {s.name: s.path for s in report.feeds}
    for spec in report.feeds:
        if spec.kind == "author":
            data = json.loads((config.feeds.out / spec.path / "feed.json").read_text("utf-8"))
            assert data["authors"][0]["name"] in {a.name for a in spec.articles[0].authors}


def test_an_article_file_over_the_size_limit_is_one_line_and_the_rest_publish(
    tmp_path: Path,
) -> None:
    # a 40 MB "article" (a database dump saved as .md) took most of a gigabyte to build; it
    # is now refused like a remote answer over the same limit, and only it
    (tmp_path / "config.yaml").write_text(FILES_CONFIG, encoding="utf-8")
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "2026-11-20-fine.md").write_text(
        "---\ntitle: Fine\n---\nBody.\n", encoding="utf-8"
    )
    with (tmp_path / "content" / "2026-11-21-dump.md").open("w", encoding="utf-8") as f:
        f.write("---\ntitle: Dump\n---\n")
        for _ in range(40):
            f.write("INSERT INTO t VALUES (1);\n" * 40_000)
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "feeds", "--now", "2026-11-25T09:00"]
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if "dump.md" in x]
    assert line.startswith("error: content/2026-11-21-dump.md") and "32 MB" in line, line
    feed = (tmp_path / "public" / "feeds" / "index.xml").read_text(encoding="utf-8")
    assert "<title>Fine</title>" in feed and "Dump" not in feed


def test_a_category_or_author_name_too_long_for_a_folder_name_gets_a_feed(tmp_path: Path) -> None:
    # a 300-character category (a remote feed's sentence-long term, a pasted paragraph) made
    # a folder name longer than the file system allows: `pressroom feeds` stopped with
    # "File name too long" and wrote no category or author feed at all
    from tests.feeds_helpers import check_feeds

    long_latin, long_cjk = "x" * 300, "東京" * 60  # 360 bytes in UTF-8
    (tmp_path / "config.yaml").write_text(FILES_CONFIG, encoding="utf-8")
    (tmp_path / "content").mkdir()
    for n, (name, other) in enumerate(((long_latin, long_cjk), (long_cjk, long_latin + "y"))):
        (tmp_path / "content" / f"2026-11-2{n}-a{n}.md").write_text(
            f"---\ntitle: A{n}\ncategories: [{name}, {other}]\nauthor: {name}\n---\nBody.\n",
            encoding="utf-8",
        )
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "feeds", "--now", "2026-11-25T09:00"]
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "public" / "feeds"
    folders = [p for kind in ("category", "author") for p in (out / kind).iterdir()]
    assert len(folders) == 3 + 2  # x…, x…y and 東京… categories; two authors
    assert all(len(p.name.encode()) <= 100 for p in folders)
    assert check_feeds(out, "https://news.example/feeds/") == []


def test_channel_descriptions_are_escaped_like_item_descriptions(tmp_path: Path) -> None:
    import feedparser
    from lxml import etree

    from pressroom.feeds import builder as feeds
    from pressroom.models import Author
    from tests.feeds_helpers import article, make_config

    config = make_config(tmp_path)
    name = "<b>Bold</b> & Co"
    feeds.build(config, [article(1, categories=(name,), authors=(Author(name),), summary=name)])
    out = config.feeds.out
    for kind in ("category", "author"):
        (folder,) = (out / kind).iterdir()
        root = etree.parse(str(folder / "index.xml")).getroot()
        channel = root.find("channel")
        assert channel is not None
        description = channel.findtext("description") or ""
        item = channel.findtext("item/description") or ""
        assert item == html.escape(name, quote=False)  # HTML that shows the text as written
        assert html.escape(name, quote=False) in description
        assert "<b>" not in description
        parsed = feedparser.parse((folder / "index.xml").read_bytes())
        # readers take both as HTML and show the name as written, not bold text
        assert parsed.entries[0].description == html.escape(name, quote=False)
        assert html.escape(name, quote=False) in parsed.feed.description


def test_a_charset_given_only_by_the_http_header_decodes_cleanly(
    server: Server, tmp_path: Path
) -> None:
    rss = (
        '<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Новости</title>'
        "<link>https://ru.example/</link><description>d</description><item>"
        "<title>Привет, мир</title><link>https://ru.example/a/</link>"
        "<pubDate>Mon, 23 Nov 2026 08:30:00 GMT</pubDate></item></channel></rss>"
    ).encode("windows-1251")
    kind = {"Content-Type": "application/rss+xml; charset=windows-1251", "ETag": '"v1"'}
    server.on("/ru.xml", lambda _r: (200, kind, rss))
    for _ in range(2):  # the second run parses the cached copy after a 304
        warnings: list[str] = []
        result = load(tmp_path, feed_source(server, "/ru.xml"), warnings=warnings)
        assert [a.title for a in result.articles] == ["Привет, мир"]
        assert not warnings
        server.on("/ru.xml", lambda _r: (304, {"ETag": '"v1"'}, b""))


RSS_091 = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="0.91"><channel><title>Old</title><link>https://old.example/</link>
<description>An RSS 0.91 feed: items have no dates</description><language>en</language>
{items}</channel></rss>"""


def test_rss_09x_items_are_dated_when_first_seen(server: Server, tmp_path: Path) -> None:
    import sqlite3
    from datetime import timedelta

    from pressroom import config

    def item(n: int) -> str:
        return f"<item><title>Item {n}</title><link>https://old.example/{n}/</link></item>"

    body = {"items": item(1) + item(2)}
    server.on(
        "/old.xml",
        lambda _r: (200, {"Content-Type": "text/xml"}, RSS_091.format(**body).encode()),
    )
    first = load(tmp_path, feed_source(server, "/old.xml"))
    assert not first.errors
    assert {(a.title, a.published) for a in first.articles} == {
        ("Item 1", remote.NOW),
        ("Item 2", remote.NOW),
    }
    body["items"] = item(3) + item(1) + item(2)
    later = remote.NOW + timedelta(days=1)
    cfg = config.load(tmp_path / "config.yaml")  # the one load() wrote
    second = articles.load(cfg, later, session=articles.make_session(retries=0))
    assert [(a.title, a.published) for a in second.articles] == [
        ("Item 3", later),
        ("Item 1", remote.NOW),
        ("Item 2", remote.NOW),
    ]
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        assert db.execute("SELECT count(*) FROM first_seen").fetchone() == (3,)


# --- §4: no tracebacks ------------------------------------------------------------------------


def test_symbolic_link_loops_in_the_content_folder_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(FILES_CONFIG, encoding="utf-8")
    content = tmp_path / "content"
    content.mkdir()
    (content / "2026-11-01-a.md").write_text("---\ntitle: A\n---\nBody.\n", encoding="utf-8")
    (content / "self").symlink_to("self")
    (content / "ping").symlink_to("pong")
    (content / "pong").symlink_to("ping")
    (content / "x.md").symlink_to("x.md")
    (content / "up").symlink_to(content)  # a loop the walk follows once, quietly
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "articles", "--now", "2026-11-25"]
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    loop = "a symbolic link loop (a link that points back to itself); remove or fix the link"
    assert errors == [f"error: content/{name}: {loop}" for name in ("ping", "pong", "self", "x.md")]
    assert "A" in result.stdout


def test_two_templates_that_include_each_other_are_one_line_naming_both(demo: Path) -> None:
    (demo / "templates" / "_header.html.j2").write_text(
        'head\n{% include "_footer.html.j2" %}\n', encoding="utf-8"
    )
    (demo / "templates" / "_footer.html.j2").write_text(
        'foot\n\n{% include "_header.html.j2" %}\n', encoding="utf-8"
    )
    result = CliRunner().invoke(
        main,
        ["--config", str(demo / "config.yaml"), "digest", "build", "--now", "2026-11-25T09:00"],
        env={"PRESSROOM_SECRET": "s" * 32},
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert "_header.html.j2:2" in line and "_footer.html.j2:3" in line
    assert line.endswith(
        "these templates include each other without end; remove one of the includes"
    )


def test_a_template_that_includes_itself(demo: Path) -> None:
    (demo / "templates" / "_footer.html.j2").write_text(
        '{% include "_footer.html.j2" %}\n', encoding="utf-8"
    )
    result = CliRunner().invoke(
        main,
        ["--config", str(demo / "config.yaml"), "digest", "build", "--now", "2026-11-25T09:00"],
        env={"PRESSROOM_SECRET": "s" * 32},
    )
    assert result.exit_code == 1, result.output
    assert "_footer.html.j2:1: the template includes itself without end" in result.stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://the duran.example/", "holds a space"),
        ("https://theduran.example/my site/", "holds a space"),
        ('"https://theduran.example/a\\tb/"', "holds a space"),
        ('"https://theduran.example/a\\\\b/"', "holds the character U+005C"),
        ('"https://theduran.example/\\x07/"', "holds the character U+0007"),
        ("https://../x/", "expected an absolute http(s) URL"),
        ("https://editor:hunter2@theduran.example/", "user name or password"),
        ("https://theduran.example:0/", "expected an absolute http(s) URL"),
    ],
)
def test_a_publication_url_a_url_cannot_be_is_one_line_naming_the_key(
    tmp_path: Path, url: str, problem: str
) -> None:
    (tmp_path / "config.yaml").write_text(
        FILES_CONFIG.replace("https://news.example/", url), encoding="utf-8"
    )
    (tmp_path / "content").mkdir()
    for command in (["articles"], ["feeds"], ["digest", "build"]):
        result = CliRunner().invoke(main, ["--config", str(tmp_path / "config.yaml"), *command])
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "config.yaml:3: publication.url: " in result.stderr and problem in result.stderr


def test_ghost_urls_and_text_go_through_the_policies(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests import test_source_ghost as ghost

    monkeypatch.setenv("TEST_GHOST_KEY", ghost.KEY)
    post = ghost.ghost_post(
        2,
        title="Bell\u0007 \u009bfine",
        custom_excerpt=LESS_GREATER,
        feature_image="javascript:alert(1)",
        authors=[{"name": "Ann", "url": "data:text/html,x"}, {"name": " \u0007 "}],
    )
    ghost.Ghost(server, [post, ghost.ghost_post(1, url="vbscript:x")])
    warnings: list[str] = []
    result = load(tmp_path, ghost.source(server), warnings=warnings)
    (a,) = result.articles
    assert (a.title, a.summary, a.image) == ("Bell fine", LESS_GREATER, None)
    assert [(x.name, x.url) for x in a.authors] == [("Ann", None)]
    (error,) = result.errors
    assert error.field == "url" and "vbscript" in error.problem
    assert any("feature_image: " in w for w in warnings), warnings
    assert any("url: dropped" in w for w in warnings), warnings
    assert_clean(result)


# --- §6: the welcome article's link, the feeds page --------------------------------------------


def test_the_welcome_articles_feed_link_reaches_a_file_pressroom_writes(demo: Path) -> None:
    from lxml import html as lxml_html

    from pressroom import config
    from pressroom.feeds.builder import feeds_url

    result = CliRunner().invoke(
        main, ["--config", str(demo / "config.yaml"), "feeds", "--now", "2026-11-25T09:00"]
    )
    assert result.exit_code == 0, result.output
    cfg = config.load(demo / "config.yaml")
    loaded = articles.load(cfg, remote.NOW)
    (welcome,) = [a for a in loaded.articles if a.slug == "welcome-to-pressroom"]
    base = feeds_url(cfg)
    hrefs = [str(h) for h in lxml_html.fromstring(welcome.html).xpath("//a/@href")]
    into_feeds = [h for h in hrefs if h.startswith(base)]
    assert into_feeds, hrefs
    for href in into_feeds:
        rel = href[len(base) :]
        path = cfg.feeds.out / (rel + "index.html" if rel.endswith("/") or not rel else rel)
        assert path.is_file(), href


def test_the_feeds_page_lists_every_feed_and_how_to_subscribe(tmp_path: Path) -> None:
    from lxml import html as lxml_html

    from pressroom.feeds import builder as feeds
    from pressroom.models import Author
    from tests.feeds_helpers import article, make_config

    config = make_config(tmp_path)
    arts = [
        article(1, categories=("<b>Bold</b> & Co",), authors=(Author("Zoë"),)),
        article(2, categories=("C#",), authors=(Author("Ann"),)),
    ]
    report = feeds.build(config, arts)
    out = config.feeds.out
    page = out / "index.html"
    assert page in report.written
    assert (out / "feed.xsl").is_file()  # kept for the browsers that still apply it
    text = page.read_text(encoding="utf-8")
    doc = lxml_html.fromstring(text)
    links = {str(h) for h in doc.xpath("//a/@href")}
    renderer = Renderer(config)
    for spec in report.feeds:
        for fmt in config.feeds.formats:
            url = renderer.url(spec, fmt)
            assert url in links, url
            assert url in doc.text_content()  # shown, to copy into a reader
    assert "<b>Bold</b> & Co" in doc.text_content()  # names escaped, shown as written
    assert "feed reader" in doc.text_content() and "subscription" in doc.text_content()
    alternates = doc.xpath("//link[@rel='alternate']/@type")
    assert sorted(alternates) == sorted(feeds.MIME[f] for f in config.feeds.formats)
    again = feeds.build(config, arts)
    assert page in again.unchanged  # deterministic: written once


def test_a_site_generators_own_index_page_is_never_replaced(tmp_path: Path) -> None:
    from pressroom.feeds import builder as feeds
    from tests.feeds_helpers import article, make_config

    config = make_config(tmp_path)
    out = config.feeds.out
    out.mkdir(parents=True)
    (out / "index.html").write_text("the site's home page", encoding="utf-8")
    report = feeds.build(config, [article(1)])
    assert (out / "index.html").read_text(encoding="utf-8") == "the site's home page"
    assert out / "index.html" not in report.written + report.unchanged


def test_control_characters_never_reach_the_subject_or_the_text_part(demo: Path) -> None:
    (demo / "content" / "2026-11-24-bell.md").write_text(
        '---\ntitle: "Bell\\a and ESC\\e[31m red\\x85"\nsummary: "Tab\\tand\\x9b CSI"\n'
        'author: "\\e"\n---\nBody \x07with\x1b bell.\n',
        encoding="utf-8",
    )
    out = demo / "preview"
    result = CliRunner().invoke(
        main,
        [
            *("--config", str(demo / "config.yaml"), "digest", "preview"),
            *("--now", "2026-11-25T09:00", "--pin", "bell", "--out", str(out)),
        ],
        env={"PRESSROOM_SECRET": "s" * 32},
    )
    assert result.exit_code == 0, result.output
    (eml,) = out.glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert "Bell and ESC[31m red" in str(message["Subject"])
    parts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
    for text in [str(message["Subject"]), *parts, *(p.read_text("utf-8") for p in out.iterdir())]:
        bad = [c for c in text if (ord(c) < 32 and c not in "\t\n\r") or 0x7F <= ord(c) <= 0x9F]
        assert not bad, bad
    assert "Tab and CSI" in "".join(parts)  # the teaser


def test_the_feeds_page_follows_its_template_and_its_feeds(tmp_path: Path) -> None:
    from pressroom.feeds import builder as feeds
    from tests.feeds_helpers import article, make_config

    config = make_config(tmp_path)
    page = config.feeds.out / "index.html"
    feeds.build(config, [article(1)])
    first = page.read_text(encoding="utf-8")
    feeds.build(config, [article(1), article(2, categories=("New topic",))])
    assert "New topic" in page.read_text(encoding="utf-8") and "New topic" not in first
    config.digest.templates.mkdir(parents=True, exist_ok=True)
    (config.digest.templates / "feeds.html.j2").write_text(
        "{% for f in feeds %}{{ f.name }};{% endfor %}", encoding="utf-8"
    )
    again = feeds.build(config, [article(1), article(2, categories=("New topic",))])
    assert page in again.written
    assert page.read_text(encoding="utf-8").startswith("News &amp; Co;")  # autoescaped


def test_pressroom_feeds_with_an_author_of_only_control_characters(demo: Path) -> None:
    # today: a traceback after half the feeds are written
    (demo / "content" / "2026-11-24-x.md").write_text(
        '---\ntitle: X\nauthors: ["\\e\\a", {name: " \\x85 ", email: x@example.org}]\n---\nX.\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["--config", str(demo / "config.yaml"), "feeds", "--now", "2026-11-25T09:00"]
    )
    assert result.exit_code == 0, result.output
    assert result.exception is None
    out = demo / "public" / "feeds"
    assert {p.name for p in (out / "author").iterdir()} >= {"the-duran"}
    assert all(p.name.strip("-") for p in (out / "author").iterdir())


# Hosts Python's urlsplit takes but a browser's URL rules (which the sanitiser follows when it
# resolves a body's links against the article's URL) refuse: every render of such an article
# failed, a traceback ending the whole `pressroom feeds` run.
UNRENDERABLE = (
    "https://1.2.3.256/x/",
    "https://xn--a.example/x/",
    "https://a^b.example/x/",
    "https://a%20b.example/x/",
)


@pytest.mark.parametrize("value", UNRENDERABLE)
def test_a_url_a_browser_cannot_parse_is_refused(value: str) -> None:
    with pytest.raises(BadURL):
        public_url(value, "https://news.example/a/")


def test_a_path_with_two_leading_slashes_and_dot_segments_is_no_host() -> None:
    # urljoin read "//.[x/" as a host: a ValueError that was not a BadURL (a traceback)
    assert public_url("https://a.example//.[x/") == "https://a.example/.[x/"
    assert public_url("https://a.example//b.example/../x") == "https://a.example/x"


def test_an_article_url_a_browser_cannot_parse_is_one_line_error(tmp_path: Path) -> None:
    from tests.test_sources_remote import NOW

    (tmp_path / "config.yaml").write_text(FILES_CONFIG, encoding="utf-8")
    content = tmp_path / "content"
    content.mkdir()
    (content / "2026-11-01-good.md").write_text("---\ntitle: Good\n---\nA [link](../x/).\n")
    for i, value in enumerate(UNRENDERABLE):
        (content / f"2026-11-02-bad{i}.md").write_text(
            f"---\ntitle: Bad\nurl: {json.dumps(value)}\n---\nA [link](../x/).\n"
        )
    (content / "2026-11-03-odd.md").write_text(
        '---\ntitle: Odd\nurl: "https://news.example//.[x/"\n---\nA [link](../x/).\n'
    )
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.yaml"), "feeds", "--now", NOW.isoformat()]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output
    for i in range(len(UNRENDERABLE)):
        assert f"content/2026-11-02-bad{i}.md:3: url: " in result.output
    assert "Traceback" not in result.output
    assert "wrote 3 of 3 feeds" in result.output


def test_a_publication_url_a_browser_cannot_parse_is_refused_at_load(tmp_path: Path) -> None:
    from pressroom import config
    from pressroom.errors import ConfigError

    (tmp_path / "content").mkdir()
    for value in UNRENDERABLE:
        (tmp_path / "config.yaml").write_text(
            FILES_CONFIG.replace("https://news.example/", value), encoding="utf-8"
        )
        with pytest.raises(ConfigError, match=r"publication\.url"):
            config.load(tmp_path / "config.yaml")
