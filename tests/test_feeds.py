"""feeds.build and `pressroom feeds`: layout, options, determinism, write-if-changed, CLI."""

from __future__ import annotations

import html
import json
import os
import random
import shutil
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from lxml import etree

from pressroom.cli import main
from pressroom.errors import FeedError
from pressroom.feeds import builder as feeds
from pressroom.models import Author, Image
from tests.feeds_helpers import ATOM, article, check_feeds, make_config

BASE = "https://news.example/feeds/"


def snapshot(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_layout_formats_and_report(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    arts = [article(i) for i in range(6)]
    report = feeds.build(config, arts)
    out = tmp_path / "public" / "feeds"
    assert report.out == out
    files = set(snapshot(out))
    for folder in (
        "",
        "category/topic-0/",
        "category/topic-1/",
        *(f"author/writer-{i}/" for i in range(3)),
    ):
        assert {folder + "index.xml", folder + "atom.xml", folder + "feed.json"} <= files
    assert "feed.xsl" in files
    assert "index.html" in files  # the plain page listing the feeds (issue 10 §6)
    assert len(files) == 6 * 3 + 2
    assert sorted(report.written) == sorted(out / f for f in files)
    assert report.unchanged == () and report.removed == ()
    assert [(s.kind, s.name) for s in report.feeds] == [
        ("site", "News & Co"),
        ("category", "Topic 0"),
        ("category", "Topic 1"),
        ("author", "Writer 0"),
        ("author", "Writer 1"),
        ("author", "Writer 2"),
    ]
    topic1 = feedparser.parse((out / "category/topic-1/index.xml").read_bytes())
    assert topic1.feed.title == "News & Co: Topic 1"
    assert [e.link for e in topic1.entries] == [f"https://news.example/{i}/" for i in (5, 3, 1)]


def test_formats_and_groupings_follow_config(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        "  formats: [atom]\n  per_category: false\n  per_author: false\n  stylesheet: false\n",
    )
    out = tmp_path / "elsewhere"
    feeds.build(config, [article(1), article(2)], out=out)
    assert set(snapshot(out)) == {"atom.xml", "index.html"}
    assert b"xml-stylesheet" not in (out / "atom.xml").read_bytes()


def test_item_limit_and_newest_first(tmp_path: Path) -> None:
    config = make_config(tmp_path, "  items: 3\n")
    arts = [article(i) for i in range(10)]
    random.Random(1).shuffle(arts)
    feeds.build(config, arts)
    out = config.feeds.out
    newest = [f"https://news.example/{i}/" for i in (9, 8, 7)]
    for name in ("index.xml", "atom.xml"):
        assert [e.link for e in feedparser.parse((out / name).read_bytes()).entries] == newest
    items = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"]
    assert [i["url"] for i in items] == newest
    # per-category feeds are limited the same way
    assert len(feedparser.parse((out / "category/topic-0/index.xml").read_bytes()).entries) == 3


def test_same_articles_give_identical_bytes(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    first, second = tmp_path / "one", tmp_path / "two"
    arts = [
        article(i, image=Image(f"https://news.example/{i}.jpg") if i % 2 else None)
        for i in range(8)
    ]
    feeds.build(config, arts, out=first)
    shuffled = [article(i, image=a.image) for i, a in enumerate(arts)]
    random.Random(7).shuffle(shuffled)
    feeds.build(config, shuffled, out=second)
    assert snapshot(first) == snapshot(second)


def test_second_run_rewrites_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    arts = [article(i) for i in range(5)]
    first = feeds.build(config, arts)
    out = config.feeds.out
    past = 1_600_000_000
    for path in out.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))
    again = feeds.build(config, [article(i) for i in range(5)])
    assert again.written == ()
    assert sorted(again.unchanged) == sorted(first.written)
    assert {p.stat().st_mtime for p in out.rglob("*") if p.is_file()} == {past}
    assert not list(out.rglob(".*.tmp"))


def test_unchanged_run_renders_no_body(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(i) for i in range(5)])
    fresh = [article(i) for i in range(5)]
    again = feeds.build(config, fresh)
    assert again.written == ()
    assert all("html" not in a.__dict__ for a in fresh)  # nothing rendered to find no change


def test_feed_edited_or_deleted_by_hand_is_rebuilt(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(i) for i in range(3)])
    out = config.feeds.out
    good = (out / "atom.xml").read_bytes()
    (out / "atom.xml").write_bytes(b"<feed/>")
    (out / "category" / "topic-0" / "feed.json").unlink()
    report = feeds.build(config, [article(i) for i in range(3)])
    assert sorted(p.relative_to(out).as_posix() for p in report.written) == [
        "atom.xml",
        "category/topic-0/feed.json",
    ]
    assert (out / "atom.xml").read_bytes() == good


def test_changed_settings_rebuild_every_feed(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(1)])
    assert feeds.build(make_config(tmp_path), [article(1)]).written == ()
    renamed = make_config(tmp_path, publication="  copyright: 2026 News Daily\n")
    report = feeds.build(renamed, [article(1)])
    # every XML feed carries the copyright now; JSON Feed has no field for it (same bytes)
    assert sorted(p.name for p in report.written) == ["atom.xml"] * 3 + ["index.xml"] * 3
    assert (
        b"<copyright>2026 News Daily</copyright>" in (config.feeds.out / "index.xml").read_bytes()
    )


def test_editing_an_article_changes_content_not_guid(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    arts = [article(i, id=f"post-{i}") for i in range(4)]
    feeds.build(config, arts)
    out = config.feeds.out
    before = snapshot(out)
    edited = replace(
        arts[2],
        body="<p>Corrected body.</p>",
        title="Post 2 (corrected)",
        updated=arts[2].published.replace(day=20),
    )
    report = feeds.build(config, [*arts[:2], edited, arts[3]])
    after = snapshot(out)
    changed = {p.relative_to(out).as_posix() for p in report.written}
    # the site feed and the feeds of post 2's category and author, in every format
    assert changed == {
        f"{d}{n}"
        for d in ("", "category/topic-0/", "author/writer-2/")
        for n in ("index.xml", "atom.xml", "feed.json")
    }
    assert {k for k in before if before[k] != after[k]} == changed
    old, new = feedparser.parse(before["index.xml"]), feedparser.parse(after["index.xml"])
    assert [e.id for e in old.entries] == [e.id for e in new.entries]
    old_atom, new_atom = feedparser.parse(before["atom.xml"]), feedparser.parse(after["atom.xml"])
    assert [e.id for e in old_atom.entries] == [e.id for e in new_atom.entries]
    entry = next(e for e in new.entries if e.id == "post-2")
    assert "Corrected body." in entry.content[0].value
    # the feed's date is its newest item's modified date, not the clock
    assert new.feed.updated == "Tue, 20 Jan 2026 11:00:00 +0000"


def test_dates_come_from_the_newest_article(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    arts = [article(1), article(2, updated=article(2).published.replace(month=3))]
    feeds.build(config, arts)
    out = config.feeds.out
    rss = etree.parse(str(out / "index.xml")).getroot()
    assert rss.findtext("channel/lastBuildDate") == "Sun, 01 Mar 2026 11:00:00 +0000"
    atom = etree.parse(str(out / "atom.xml")).getroot()
    assert atom.findtext(f"{ATOM}updated") == "2026-03-01T11:00:00+00:00"
    items = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"]
    assert items[0]["date_modified"] == "2026-03-01T11:00:00+00:00"


def test_guids_and_ids(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    arts = [article(1), article(2, id="wp-post-2")]
    feeds.build(config, arts)
    out = config.feeds.out
    rss = etree.parse(str(out / "index.xml")).getroot()
    guids = {g.text: g.get("isPermaLink") for g in rss.iter("guid")}
    assert guids == {"https://news.example/1/": "true", "wp-post-2": "false"}
    atom_ids = [
        e.findtext(f"{ATOM}id")
        for e in etree.parse(str(out / "atom.xml")).getroot().iter(f"{ATOM}entry")
    ]
    assert atom_ids[1] == "https://news.example/1/"
    assert atom_ids[0].startswith("urn:uuid:")
    # a pure function of the article id: another build (other feed, other run) gives the same
    feeds.build(config, [article(9, id="wp-post-2")], out=tmp_path / "again")
    again = etree.parse(str(tmp_path / "again" / "atom.xml")).getroot()
    assert again.find(f"{ATOM}entry").findtext(f"{ATOM}id") == atom_ids[0]
    items = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"]
    assert [i["id"] for i in items] == ["wp-post-2", "https://news.example/1/"]


def test_featured_image_becomes_enclosure_without_duplicate_alternate(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    arts = [
        article(1, image=Image("https://news.example/a.png", alt="A")),
        article(2, image=Image("https://cdn.example/b", mime_type="image/webp", length=12345)),
    ]
    feeds.build(config, arts)
    out = config.feeds.out
    rss = etree.parse(str(out / "index.xml")).getroot()
    assert [dict(e.attrib) for e in rss.iter("enclosure")] == [
        {"url": "https://cdn.example/b", "length": "12345", "type": "image/webp"},
        {"url": "https://news.example/a.png", "length": "0", "type": "image/png"},
    ]
    atom = etree.parse(str(out / "atom.xml")).getroot()
    for entry in atom.iter(f"{ATOM}entry"):
        rels = [link.get("rel", "alternate") for link in entry.findall(f"{ATOM}link")]
        assert sorted(rels) == ["alternate", "enclosure"]
    enclosure = atom.find(f"{ATOM}entry/{ATOM}link[@rel='enclosure']")
    assert dict(enclosure.attrib) == {
        "rel": "enclosure",
        "href": "https://cdn.example/b",
        "type": "image/webp",
        "length": "12345",
    }
    items = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"]
    assert [i.get("image") for i in items] == [
        "https://cdn.example/b",
        "https://news.example/a.png",
    ]
    assert check_feeds(out, BASE) == []


def test_authors_in_every_format(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    a = article(
        1,
        authors=(
            Author("Zoë & Co", url="https://news.example/zoe"),
            Author("Bo", email="bo@news.example"),
        ),
    )
    feeds.build(config, [a])
    out = config.feeds.out
    rss = etree.parse(str(out / "index.xml")).getroot()
    assert [c.text for c in rss.iter("{http://purl.org/dc/elements/1.1/}creator")] == [
        "Zoë & Co",
        "Bo",
    ]
    assert b"<author>" not in (out / "index.xml").read_bytes()  # RSS author must be an e-mail
    atom = feedparser.parse((out / "atom.xml").read_bytes())
    assert [x.get("name") for x in atom.entries[0].authors] == ["Zoë & Co", "Bo"]
    item = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"][0]
    assert item["authors"] == [
        {"name": "Zoë & Co", "url": "https://news.example/zoe"},
        {"name": "Bo"},
    ]
    assert (out / "author" / "zoe-co" / "feed.json").is_file()
    author_feed = json.loads((out / "author" / "zoe-co" / "feed.json").read_text(encoding="utf-8"))
    assert author_feed["authors"] == [{"name": "Zoë & Co", "url": "https://news.example/zoe"}]


def test_full_content_and_titles_with_markup_characters(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(1)])
    out = config.feeds.out
    for name in ("index.xml", "atom.xml"):
        entry = feedparser.parse((out / name).read_bytes()).entries[0]
        # Atom declares the title as escaped HTML (type="html"), which feedparser hands back as is
        assert html.unescape(entry.title) == "Post 1: Q&A <draft> über alles"
        assert "Body of post 1." in entry.content[0].value
        assert "a < b & c" in entry.summary or "a &lt; b &amp; c" in entry.summary
    # the RSS Profile's hex references for & and < in plain-text elements
    assert (
        b"<title>Post 1: Q&#x26;A &#x3C;draft&gt; \xc3\xbcber alles</title>"
        in (out / "index.xml").read_bytes()
    )
    item = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"][0]
    assert item["title"] == "Post 1: Q&A <draft> über alles"
    assert item["summary"] == "Summary 1 with a < b & c."
    assert "Body of post 1." in item["content_html"]


def test_characters_xml_cannot_carry_are_dropped(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    messy = article(
        1,
        title="Scraped\x0b title\x00",
        summary="Form\x0cfeed",
        body="<p>Body\x08 text</p>",
        authors=(Author("Ann\x1f"), Author("  ")),
        categories=("News\x01",),
    )
    feeds.build(config, [messy, article(2)])
    out = config.feeds.out
    assert check_feeds(out, BASE) == []
    entry = feedparser.parse((out / "index.xml").read_bytes()).entries[1]
    assert entry.title == "Scraped title"
    assert "Body text" in entry.content[0].value
    assert [
        a.name for a in feedparser.parse((out / "atom.xml").read_bytes()).entries[1].authors
    ] == ["Ann"]
    assert messy.title == "Scraped\x0b title\x00"  # the article itself is left alone


def test_summary_mode_renders_no_bodies(tmp_path: Path) -> None:
    config = make_config(tmp_path, "  content: summary\n")
    arts = [article(i) for i in range(3)]
    feeds.build(config, arts)
    out = config.feeds.out
    assert all("html" not in a.__dict__ for a in arts)  # Article.html is lazy and never read
    assert b"content:encoded" not in (out / "index.xml").read_bytes()
    assert b"<content" not in (out / "atom.xml").read_bytes()
    item = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"][0]
    assert item["content_text"] == "Summary 2 with a < b & c." and "content_html" not in item
    assert check_feeds(out, BASE) == []


def test_only_included_articles_are_rendered(tmp_path: Path) -> None:
    config = make_config(tmp_path, "  items: 2\n  per_author: false\n")
    arts = [article(i) for i in range(10)]
    feeds.build(config, arts)
    rendered = sorted(int(a.slug.split("-")[1]) for a in arts if "html" in a.__dict__)
    assert rendered == [6, 7, 8, 9]  # two newest overall and per topic; nothing older


def test_support_block_in_feed_items(tmp_path: Path) -> None:
    cta = (
        "cta:\n  - kind: patreon\n    name: patreon\n    url: https://www.patreon.com/news\n"
        "    headline: Help us grow & thrive\n    button: Join us\n"
    )
    config = make_config(tmp_path, "  cta: true\n", cta)
    feeds.build(config, [article(1)])
    out = config.feeds.out
    for name in ("index.xml", "atom.xml"):
        content = feedparser.parse((out / name).read_bytes()).entries[0].content[0].value
        assert content.index("Body of post 1.") < content.index("pressroom-cta")
        assert "https://www.patreon.com/news" in content
    item = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"][0]
    assert "Help us grow &amp; thrive" in item["content_html"]
    assert check_feeds(out, BASE) == []


def test_stylesheet_is_copied_and_referenced(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(1)])
    out = config.feeds.out
    xsl = etree.XSLT(etree.parse(str(out / "feed.xsl")))
    for name in ("index.xml", "category/topic-1/atom.xml"):
        data = (out / name).read_bytes()
        href = "feed.xsl" if "/" not in name else "../../feed.xsl"
        assert f'<?xml-stylesheet type="text/xsl" href="{href}"?>'.encode() in data.splitlines()[1]
        assert (out / name).parent.joinpath(href).resolve() == (out / "feed.xsl").resolve()
        page = str(xsl(etree.fromstring(data)))
        assert "Post 1: Q&amp;A &lt;draft&gt; über alles" in page
        assert BASE + name in page  # tells the reader the address to subscribe to


def test_publication_stylesheet_overrides_the_default(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    (tmp_path / "templates").mkdir()
    own = b'<?xml version="1.0"?><xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>\n'
    (tmp_path / "templates" / "feed.xsl").write_bytes(own)
    feeds.build(config, [article(1)])
    assert (config.feeds.out / "feed.xsl").read_bytes() == own


def test_feeds_of_vanished_categories_are_removed(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(1), article(2, categories=("Gone",))])
    out = config.feeds.out
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    report = feeds.build(config, [article(1)])
    assert not (out / "category" / "gone").exists()
    assert sorted(p.relative_to(out).as_posix() for p in report.removed) == [
        f"{d}/{n}"
        for d in ("author/writer-2", "category/gone")
        for n in ("atom.xml", "feed.json", "index.xml")
    ]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"  # not ours: left alone


def test_prune_leaves_feed_files_it_never_wrote(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    out = config.feeds.out
    mine = out / "category" / "mine" / "index.xml"
    mine.parent.mkdir(parents=True)
    mine.write_text("<rss>hand-made</rss>", encoding="utf-8")
    # a static site generator's own listing feeds, in the folders pressroom uses
    hugo = [out / "category" / "go" / "index.xml", out / "author" / "someone" / "feed.json"]
    feeds.build(config, [article(1), article(2, categories=("Gone",))])
    for path in hugo:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("theirs", encoding="utf-8")
    report = feeds.build(config, [article(1)])
    assert mine.read_text(encoding="utf-8") == "<rss>hand-made</rss>"
    assert all(p.read_text(encoding="utf-8") == "theirs" for p in hugo)
    assert {p.relative_to(out).as_posix() for p in report.removed} == {
        f"{d}/{n}"
        for d in ("author/writer-2", "category/gone")
        for n in ("atom.xml", "feed.json", "index.xml")
    }


def test_without_the_previous_manifest_nothing_is_removed(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds.build(config, [article(1), article(2, categories=("Gone",))])
    shutil.rmtree(config.state)  # e.g. a fresh checkout that keeps public/ but not the state
    report = feeds.build(config, [article(1)])
    assert report.removed == ()
    assert (config.feeds.out / "category" / "gone" / "index.xml").is_file()


def test_feeds_out_public_keeps_the_site_generators_files(demo: Path) -> None:
    public = demo / "public"
    term = public / "category" / "go" / "index.xml"
    term.parent.mkdir(parents=True)
    term.write_text("hugo term feed", encoding="utf-8")
    args = ["--config", str(demo / "config.yaml"), "feeds", "--out", str(public)]
    for _ in range(2):
        result = CliRunner().invoke(main, [*args, "--now", "2026-11-25T09:00"])
        assert result.exit_code == 0, result.output
        assert "removed" not in result.stderr
    assert (public / "index.xml").is_file()  # the site feed is ours
    assert term.read_text(encoding="utf-8") == "hugo term feed"


def test_slugs() -> None:
    assert feeds.slug("Arts & Culture") == "arts-culture"
    assert feeds.slug("Économie") == "economie"
    assert feeds.slug("Россия") == "россия"
    assert feeds.slug("C++") == "c"
    assert feeds.slug("!!!").startswith("x") and feeds.slug("!!!") == feeds.slug("!!!")


def test_categories_differing_only_in_case_share_one_feed(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    report = feeds.build(
        config, [article(1, categories=("World",)), article(2, categories=("world",))]
    )
    cats = [s for s in report.feeds if s.kind == "category"]
    assert [(s.name, s.path, len(s.articles)) for s in cats] == [("World", "category/world/", 2)]


def test_no_articles_writes_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    report = feeds.build(config, [])
    assert report.total == 0 and not config.feeds.out.exists()


def test_unwritable_output_is_a_feed_error(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(FeedError, match=r"cannot write"):
        feeds.build(config, [article(1)], out=blocker)


# --- the command -------------------------------------------------------------------------


def run(demo: Path, *args: str) -> object:
    return CliRunner().invoke(
        main, ["--config", str(demo / "config.yaml"), "feeds", "--now", "2026-11-25T09:00", *args]
    )


def test_cli_writes_then_leaves_unchanged(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    first = run(demo, "--out", str(out))
    assert first.exit_code == 0, first.output
    total = len([p for p in out.rglob("*") if p.suffix in (".xml", ".json")])
    assert total >= 9
    assert f"wrote {total} of {total} feeds (0 unchanged) to {out}" in first.stdout
    second = run(demo, "--out", str(out))
    assert second.exit_code == 0, second.output
    assert f"wrote 0 of {total} feeds ({total} unchanged)" in second.stdout


def test_cli_default_out_is_feeds_out(demo: Path) -> None:
    result = run(demo)
    assert result.exit_code == 0, result.output
    assert (demo / "public" / "feeds" / "index.xml").is_file()


def test_cli_broken_article_is_reported_and_the_rest_written(demo: Path, tmp_path: Path) -> None:
    (demo / "content" / "broken.md").write_text(
        "---\ntitle: Broken\ndate: 31/02/2026\n---\n\nBody.\n", encoding="utf-8"
    )
    out = tmp_path / "feeds"
    result = run(demo, "--out", str(out))
    assert result.exit_code == 1
    assert "broken.md" in result.stderr and "date" in result.stderr
    assert "Traceback" not in result.output
    assert (out / "index.xml").is_file() and "Broken" not in (out / "index.xml").read_text(
        encoding="utf-8"
    )


def test_cli_bad_now_is_a_usage_error(demo: Path) -> None:
    result = CliRunner().invoke(
        main, ["--config", str(demo / "config.yaml"), "feeds", "--now", "soon"]
    )
    assert result.exit_code == 2
    assert "--now" in result.stderr


def test_cli_out_that_is_a_file_is_a_usage_error(demo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = run(demo, "--out", str(blocker))
    assert result.exit_code == 2
    assert "--out" in result.stderr and "Traceback" not in result.output


def test_cli_unwritable_feed_is_one_line(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    out.mkdir()
    (out / "category").write_text("a file where a folder must go", encoding="utf-8")
    result = run(demo, "--out", str(out))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "cannot write" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_cli_copies_nothing_outside_out(demo: Path, tmp_path: Path) -> None:
    before = sorted(p.relative_to(demo) for p in demo.rglob("*"))
    assert run(demo, "--out", str(tmp_path / "f")).exit_code == 0
    after = sorted(
        p.relative_to(demo)
        for p in demo.rglob("*")
        if not str(p.relative_to(demo)).startswith(".pressroom")
    )
    assert after == [p for p in before if not str(p).startswith(".pressroom")]
    shutil.rmtree(tmp_path / "f")


GOLDEN = Path(__file__).parent / "golden" / "feeds"


def test_golden_feeds(tmp_path: Path) -> None:
    """The exact bytes, reviewed once: regenerate with PRESSROOM_UPDATE_GOLDEN=1 (make golden)."""
    config = make_config(tmp_path, "  items: 3\n")
    arts = [
        article(1, id="wp-1", summary=""),
        article(
            2,
            authors=(Author("Zoë & Co", url="https://news.example/zoe"), Author("Bo")),
            image=Image("https://news.example/img/2 big.jpg", length=2048),
            updated=article(2).published.replace(day=3),
        ),
        article(3, categories=("Arts & Culture", "Россия"), tags=("q&a",)),
        article(0),
    ]
    feeds.build(config, arts)
    out = config.feeds.out
    update = os.environ.get("PRESSROOM_UPDATE_GOLDEN") == "1"
    names = {  # ASCII golden file names, whatever the slug
        "index.xml": "index.xml",
        "atom.xml": "atom.xml",
        "feed.json": "feed.json",
        "category/россия/atom.xml": "category-russia-atom.xml",
    }
    for name, golden_name in names.items():
        golden = GOLDEN / golden_name
        got = (out / name).read_bytes()
        if update:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_bytes(got)
        assert golden.exists(), f"{golden} missing: run `make golden` (PRESSROOM_UPDATE_GOLDEN=1)"
        assert got == golden.read_bytes(), (
            f"{name} differs from {golden}; if the change is intended, regenerate with "
            "PRESSROOM_UPDATE_GOLDEN=1 and review the diff"
        )
