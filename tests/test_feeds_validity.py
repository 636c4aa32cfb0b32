"""Every feed pressroom writes is valid: feedparser, RFC 4287 RELAX NG, JSON Feed 1.1 schema and
the W3C validator's cheap-to-restate rules, for the demo publication and a 1,000-article corpus
with awkward content. The last tests show each check fails on the feeds it exists to reject."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from click.testing import CliRunner
from feedgen.feed import FeedGenerator
from lxml import etree

from pressroom import config as config_mod
from pressroom.cli import main
from pressroom.feeds import builder as feeds
from pressroom.models import Author, Image
from tests.feeds_helpers import (
    ATOM,
    article,
    check_atom,
    check_feeds,
    check_json,
    check_rss,
    make_config,
    write_corpus,
)


def run_feeds(config: Path, out: Path) -> None:
    result = CliRunner().invoke(
        main, ["--config", str(config), "feeds", "--out", str(out), "--now", "2026-11-25T12:00"]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def test_demo_feeds_are_valid(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    run_feeds(demo / "config.yaml", out)
    config = config_mod.load(demo / "config.yaml")
    assert check_feeds(out, feeds.feeds_url(config)) == []
    # the site feed plus at least one category and one author feed, in every format
    for folder in ("", "category", "author"):
        assert list((out / folder).rglob("index.xml")) and list((out / folder).rglob("feed.json"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("corpus")
    config = write_corpus(root, 1000)
    out = root / "feeds-out"
    run_feeds(config, out)
    return out, feeds.feeds_url(config_mod.load(config))


def test_corpus_feeds_are_valid(corpus: tuple[Path, str]) -> None:
    out, base = corpus
    problems = check_feeds(out, base)
    assert problems == [], "\n".join(problems[:40])


def test_corpus_really_is_awkward(corpus: tuple[Path, str]) -> None:
    """Guards the test above: the feeds it checks carry the content that breaks feeds."""
    out, _ = corpus
    site = feedparser.parse((out / "index.xml").read_bytes())
    assert len(site.entries) == 50
    titles = " ".join(e.title for e in site.entries)
    assert "&" in titles and "<" in titles and "Zürich" in titles and "Россия" in titles
    assert any(
        len(e.get("authors", [])) > 1
        for e in feedparser.parse((out / "atom.xml").read_bytes()).entries
    )
    assert any(e.get("enclosures") for e in site.entries)
    items = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"]
    assert any("image" in i for i in items)
    # relative links and images in the Markdown came out absolute
    assert any('href="https://corpus.example/archive/' in i.get("content_html", "") for i in items)
    assert any('src="https://corpus.example/' in i.get("content_html", "") for i in items)
    assert (out / "category" / "россия" / "atom.xml").is_file()
    assert (out / "category" / "arts-culture" / "feed.json").is_file()
    assert len(list((out / "author").iterdir())) == 12


@pytest.mark.parametrize(
    "options",
    [
        "",
        "  content: summary\n",
        "  cta: true\n",
        "  content: summary\n  cta: true\n  stylesheet: false\n",
    ],
    ids=["full", "summary", "full+cta", "summary+cta"],
)
def test_every_content_mode_is_valid(tmp_path: Path, options: str) -> None:
    cta = (
        "cta:\n  - kind: kofi\n    url: https://ko-fi.com/news?a=1&b=2\n"
        "    headline: Buy us a coffee & cake\n"
        "    text: 'Readers < 1% pay; be one'\n"
    )
    config = make_config(tmp_path, options, cta)
    arts = [
        article(
            i,
            id=f"post-{i}" if i % 2 else f"https://news.example/{i}/",
            authors=(Author("Zoë"), Author("Li & Lo", url="https://news.example/li"))
            if i % 3
            else (),
            image=Image(f"https://news.example/img/{i}.jpg", length=i * 100)
            if i % 4 == 0
            else None,
            summary="" if i == 5 else f"Summary {i}: a < b & c",
            categories=("Arts & Culture", "Россия")[: i % 3],
        )
        for i in range(12)
    ]
    feeds.build(config, arts)
    problems = check_feeds(config.feeds.out, feeds.feeds_url(config))
    assert problems == [], "\n".join(problems)


def test_custom_feeds_url(tmp_path: Path) -> None:
    config = make_config(tmp_path, "  url: https://cdn.example/f\n")
    feeds.build(config, [article(1)])
    assert feeds.feeds_url(config) == "https://cdn.example/f/"
    assert check_feeds(config.feeds.out, "https://cdn.example/f/") == []


# --- the checks fail on what they exist to reject ----------------------------------------------

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def feedgen_feed() -> FeedGenerator:
    fg = FeedGenerator()
    fg.id("https://x.example/atom.xml")
    fg.title("t")
    fg.author({"name": "A"})
    fg.link(href="https://x.example/atom.xml", rel="self")
    fg.updated(WHEN)
    entry = fg.add_entry()
    entry.id("https://x.example/1")
    entry.title("one")
    entry.link(href="https://x.example/1")
    entry.updated(WHEN)
    return fg


def test_check_catches_feedgen_enclosure_as_duplicate_alternate() -> None:
    fg = feedgen_feed()
    fg.entry()[0].enclosure("https://x.example/i.jpg", 0, "image/jpeg")
    problems = check_atom(fg.atom_str(), "https://x.example/atom.xml")
    assert any("duplicate alternate links" in p for p in problems), problems


def test_check_catches_feedgen_cdata_content() -> None:
    fg = feedgen_feed()
    fg.entry()[0].content("<p>hi</p>", type="CDATA")
    problems = check_atom(fg.atom_str(), "https://x.example/atom.xml")
    assert any(p.startswith("RELAX NG") for p in problems), problems


def test_checks_catch_broken_rss(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(1), article(2)])
    data = (config.feeds.out / "index.xml").read_bytes()
    url = "https://news.example/feeds/index.xml"
    assert check_rss(data, url) == []
    assert check_rss(data, "https://elsewhere.example/index.xml")  # self link must match
    root = etree.fromstring(data)
    root.find("channel/lastBuildDate").text = "2026-01-01T09:00:00Z"
    guids = list(root.iter("guid"))
    guids[1].text = guids[0].text
    root.find("channel/item/link").text = "/1/"
    problems = check_rss(etree.tostring(root), url)
    assert any("lastBuildDate" in p and "RFC 822" in p for p in problems)
    assert any("duplicate guid" in p for p in problems)
    assert any("is not absolute" in p for p in problems)
    assert any("bozo" in p for p in check_rss(data.replace(b"</channel>", b""), url))


def test_checks_catch_broken_atom_and_json(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(1)])
    out = config.feeds.out
    atom = etree.parse(str(out / "atom.xml")).getroot()
    atom.find(f"{ATOM}entry").remove(atom.find(f"{ATOM}entry/{ATOM}title"))
    problems = check_atom(etree.tostring(atom), "https://news.example/feeds/atom.xml")
    assert any(p.startswith("RELAX NG") for p in problems)
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    assert check_json(json.dumps(feed).encode(), feed["feed_url"]) == []
    feed["items"][0]["content_html"] = '<p><img src="pic.png"> <a href="/rel">x</a></p>'
    problems = check_json(json.dumps(feed).encode(), feed["feed_url"])
    assert any("relative href" in p for p in problems) and any(
        "relative src" in p for p in problems
    )
    feed["items"][0]["date_published"] = "1 Jan 2026"
    del feed["version"]
    problems = check_json(json.dumps(feed).encode(), feed["feed_url"])
    assert any(p.startswith("schema: items/0/date_published") for p in problems), problems
    assert any(p.startswith("schema: ") and "version" in p for p in problems), problems


# An offset with seconds has no RFC 822 or RFC 3339 spelling: one written in front matter, or a
# zone's local mean time before it took standard time (Europe/Amsterdam was +00:19:32 until
# 1937, so a digitised archive dated 1930 is in it), made every feed holding the date invalid
@pytest.mark.parametrize(
    ("zone", "date"),
    [
        ("Europe/Amsterdam", "1930-05-01"),
        ("Africa/Monrovia", "1970-03-02T09:00"),
        ("Europe/London", "2026-11-01T10:00:00+05:30:15"),
    ],
)
def test_a_date_whose_offset_has_seconds_gives_valid_feeds(
    tmp_path: Path, zone: str, date: str
) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "old.md").write_text(f"---\ntitle: Old\ndate: {date}\n---\nB.\n")
    (tmp_path / "content" / "new.md").write_text("---\ntitle: New\ndate: 2026-11-02\n---\nB.\n")
    (tmp_path / "config.yaml").write_text(
        f"publication:\n  name: N\n  url: https://news.example/\n  timezone: {zone}\n"
        "sources:\n  - type: files\n    path: content\n"
    )
    out = tmp_path / "out"
    run_feeds(tmp_path / "config.yaml", out)
    problems = check_feeds(out, "https://news.example/feeds/")
    assert problems == [], "\n".join(problems)
    # the same instant, written in UTC
    items = json.loads((out / "feed.json").read_text())["items"]
    old = next(item for item in items if item["title"] == "Old")
    written = datetime.fromisoformat(date)
    expected = written if written.tzinfo else written.replace(tzinfo=ZoneInfo(zone))
    published = datetime.fromisoformat(old["date_published"])
    assert published == expected and published.utcoffset() == timedelta(0)
