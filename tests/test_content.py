"""Bodies to safe HTML with absolute URLs, and plain-text summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pressroom.content import text as content
from pressroom.content.text import (
    SUMMARY_LIMIT,
    plain_text,
    render_body,
    sanitise,
    summary_from_body,
    text_to_html,
    truncate,
)
from pressroom.content.urls import absolute_url
from pressroom.models import Article

BASE = "https://news.example/2026/11/story/"


# --- rendering -------------------------------------------------------------------------


def test_markdown_commonmark_with_tables() -> None:
    html = render_body(
        "Intro with *emphasis* and `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~\n",
        "markdown",
        BASE,
    )
    assert "<p>Intro with <em>emphasis</em> and <code>code</code>.</p>" in html
    assert "<table>" in html and "<th>a</th>" in html and "<td>2</td>" in html
    assert "<del>gone</del>" in html  # GFM strikethrough


def test_html_is_kept_as_is_apart_from_sanitising() -> None:
    body = (
        "<h2>Sub</h2>\n<p>Text <strong>strong</strong> "
        '<img src="https://cdn.example/a.png" alt="A"></p>'
    )
    assert render_body(body, "html", BASE) == body


def test_text_becomes_escaped_paragraphs() -> None:
    html = render_body("First & <best>\nsame paragraph\n\n\nSecond.\n", "text", BASE)
    assert html == "<p>First &amp; &lt;best&gt;\nsame paragraph</p>\n<p>Second.</p>"
    assert text_to_html("") == ""


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown body format"):
        render_body("x", "rst", BASE)


@pytest.mark.parametrize(
    ("dirty", "gone"),
    [
        ("<script>alert(1)</script><p>ok</p>", ["<script", "alert(1)"]),
        ("<style>p{color:red}</style><p>ok</p>", ["<style", "color:red"]),
        ('<iframe src="https://evil.example/"></iframe><p>ok</p>', ["<iframe", "evil.example"]),
        (
            '<form action="/x"><input name="q"><button>Go</button></form><p>ok</p>',
            ["<form", "<input", "<button"],
        ),
        ('<p onclick="steal()" onmouseover="x()">ok</p>', ["onclick", "steal", "onmouseover"]),
        ('<p><a href="javascript:alert(1)">ok</a></p>', ["javascript:", "alert(1)"]),
        ('<p><a href="JaVaScRiPt:alert(1)">ok</a></p>', ["alert(1)"]),
        ('<p><img src="data:image/png;base64,AAAA" alt="x">ok</p>', ["data:"]),
        ('<p style="position:fixed">ok</p>', ["style=", "position"]),
        (
            '<object data="x.swf"></object><embed src="x.swf"><p>ok</p>',
            ["<object", "<embed", "x.swf"],
        ),
    ],
)
def test_sanitising_removes_dangerous_markup(dirty: str, gone: list[str]) -> None:
    for body_format in ("html", "markdown"):
        html = render_body(dirty, body_format, BASE)
        assert "ok" in html
        for fragment in gone:
            assert fragment not in html, (body_format, html)


@pytest.mark.parametrize(
    ("href", "absolute"),
    [
        ("../other/", "https://news.example/2026/11/other/"),
        ("img/a.png", "https://news.example/2026/11/story/img/a.png"),
        ("/about/", "https://news.example/about/"),
        ("//cdn.example/x.js", "https://cdn.example/x.js"),
        ("?page=2", "https://news.example/2026/11/story/?page=2"),
        ("#notes", "https://news.example/2026/11/story/#notes"),
        ("https://elsewhere.example/a?b=1&c=2", "https://elsewhere.example/a?b=1&amp;c=2"),
        ("mailto:editor@news.example", "mailto:editor@news.example"),
    ],
)
def test_links_and_images_become_absolute(href: str, absolute: str) -> None:
    html = render_body(f'<p><a href="{href}">a</a><img src="{href}" alt="i"></p>', "html", BASE)
    assert f'href="{absolute}"' in html
    assert f'src="{absolute}"' in html


def test_markdown_relative_links_and_images_become_absolute() -> None:
    html = render_body("See [the archive](../archive/) ![chart](chart.png)", "markdown", BASE)
    assert '<a href="https://news.example/2026/11/archive/">the archive</a>' in html
    assert '<img src="https://news.example/2026/11/story/chart.png" alt="chart">' in html


def test_markdown_bare_urls_become_links_gfm_autolink() -> None:
    html = render_body(
        "Read www.example.org/report and https://news.example/a.\n", "markdown", BASE
    )
    assert '<a href="http://www.example.org/report">www.example.org/report</a>' in html
    assert '<a href="https://news.example/a">https://news.example/a</a>.' in html


def test_markdown_unsafe_links_and_raw_html_are_sanitised_after_rendering() -> None:
    # cmark renders with CMARK_OPT_UNSAFE; nh3 is what keeps these out
    html = render_body(
        "[click](javascript:alert(1)) ![x](data:image/png;base64,AAAA)\n\n"
        '<div onclick="steal()">raw <b>bold</b></div>\n\n<script>alert(2)</script>\n',
        "markdown",
        BASE,
    )
    for gone in ("javascript:", "alert(", "data:", "onclick", "steal", "<script"):
        assert gone not in html, html
    assert "click" in html and "<b>bold</b>" in html


def test_sanitise_directly() -> None:
    assert sanitise('<p><a href="x/" onclick="y">z</a></p>', "https://a.example/") == (
        '<p><a href="https://a.example/x/">z</a></p>'
    )


def test_absolute_url() -> None:
    assert absolute_url(" images/a.png ", BASE) == "https://news.example/2026/11/story/images/a.png"
    assert absolute_url("https://x.example/a", BASE) == "https://x.example/a"
    assert absolute_url("/", "https://news.example/a/b") == "https://news.example/"


def test_render_is_cached_by_content() -> None:
    body = "Cached *once* " + "x" * 50
    first = render_body(body, "markdown", BASE)
    assert render_body("".join(["Cached *once* ", "x" * 50]), "markdown", BASE) is first
    assert render_body(body, "markdown", "https://other.example/") is not first


def test_article_html_renders_lazily_from_its_raw_body() -> None:
    article = Article(
        id="tag:news.example,2026-11-01:a",
        url=BASE,
        slug="story",
        title="T",
        published=datetime(2026, 11, 1, tzinfo=UTC),
        updated=None,
        authors=(),
        categories=(),
        tags=(),
        summary="s",
        image=None,
        body="Hello [you](../you/)<script>x</script>",
        body_format="markdown",
        base_url=BASE,
        source="content/a.md",
        renderer=render_body,
    )
    assert "html" not in article.__dict__  # nothing rendered yet
    assert article.html == '<p>Hello <a href="https://news.example/2026/11/you/">you</a></p>'
    assert "html" in article.__dict__


# --- summaries -------------------------------------------------------------------------


def test_markdown_summary_skips_headings_images_code_and_strips_markup() -> None:
    body = (
        "# Heading\n\n![lead](lead.jpg)\n\n```python\nprint('code')\n\nmore code\n```\n\n"
        "    indented code\n\n"
        "> The **first** [real](https://x.example/) paragraph, with `code`, snake_case\n"
        "> and an \\*escaped\\* star & an <abbr>HTML</abbr> tag.\n\nSecond paragraph."
    )
    assert summary_from_body(body, "markdown") == (
        "The first real paragraph, with code, snake_case and an escaped star & an HTML tag."
    )


def test_html_summary_is_the_first_paragraph() -> None:
    body = (
        "<h1>Title</h1><figure><img src=x><figcaption>Caption</figcaption></figure>"
        "<p></p><p>First <em>real</em> paragraph &amp; more.</p><p>Second.</p>"
    )
    assert summary_from_body(body, "html") == "First real paragraph & more."
    assert (
        summary_from_body("<div>No paragraphs <b>at all</b></div>", "html")
        == "No paragraphs at all"
    )


def test_text_summary_is_the_first_paragraph() -> None:
    assert summary_from_body("\n\nOne\nline two.\n\nNext.", "text") == "One line two."


def test_summary_is_cut_on_a_word_boundary() -> None:
    words = " ".join(f"word{i}" for i in range(200))
    summary = summary_from_body(words, "markdown")
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.endswith("…")
    assert words.startswith(summary[:-1])
    assert summary[-2].isdigit()  # whole word, no dangling space


def test_truncate() -> None:
    assert truncate("short") == "short"
    assert truncate("one two three four", 12) == "one two…"
    assert truncate("x" * 50, 10) == "x" * 9 + "…"
    assert truncate("alpha, beta gamma", 13) == "alpha, beta…"


def test_plain_text_of_a_wordpress_excerpt() -> None:
    assert (
        plain_text("<p>It&#8217;s <em>here</em>: the excerpt [&hellip;]</p>\n")
        == "It’s here: the excerpt…"
    )
    assert plain_text("<p>One</p><p>Two<br>Three</p>") == "One Two Three"
    assert plain_text("<script>var x = 1;</script>Text") == "Text"


def test_absolute_urls_are_valid_uris() -> None:
    """Spaces and non-ASCII in a relative link become percent-escapes; existing escapes stay."""
    base = "https://theduran.example/a/"
    assert absolute_url("media/pic 1.png", base) == "https://theduran.example/a/media/pic%201.png"
    assert absolute_url("/café?q=a b", base) == "https://theduran.example/caf%C3%A9?q=a%20b"
    assert absolute_url("x%20y.png", base) == "https://theduran.example/a/x%20y.png"


def test_summary_keeps_link_text_when_the_url_has_parentheses() -> None:
    body = "See [the wiki](https://en.wikipedia.org/wiki/Foo_(bar)) and more.\n"
    assert content.summary_from_body(body, "markdown").startswith("See the wiki and more.")
