"""The files source: front matter, scraped .txt files, broken articles, and load()'s rules."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pressroom import config
from pressroom.content import articles
from pressroom.errors import SourceError

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "content" / "2026-11-20-no-us-boots-on-the-ground.txt"
# sha256 of the raw scrape (seed/000_7637d0e0c950d220.txt of the project brief): unchanged
SEED_SHA256 = "367ff35b955ed2d18bf09c6a8faf552fe594c1999e6632ae8fe26f1b26a0caac"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")

CONFIG = """\
publication:
  name: Test News
  url: https://news.example/
  timezone: Europe/Berlin
sources:
  - type: files
    path: content
    boilerplate:
      - "Help us grow."
      - "The statements, views and opinions expressed"
      - "What do you think?"
      - "Notify of"
"""


@dataclass
class Site:
    """A throwaway publication folder: config.yaml plus content/ files written by the test."""

    root: Path
    warnings: list[str] = field(default_factory=list)

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.root / "content" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def load(self, now: datetime = NOW, since: datetime | None = None) -> articles.LoadResult:
        cfg = config.load(self.root / "config.yaml")
        return articles.load(cfg, now, since=since, warn=self.warnings.append)

    def one(self) -> articles.Article:  # type: ignore[name-defined]
        result = self.load()
        assert not result.errors, [e.message for e in result.errors]
        assert len(result.articles) == 1
        return result.articles[0]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    (tmp_path / "config.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "content").mkdir()
    return Site(tmp_path)


def md(front: str, body: str = "Body text.\n") -> str:
    return f"---\n{front.strip()}\n---\n\n{body}"


# --- the scraped seed article ----------------------------------------------------------


def test_repo_seed_copy_is_the_raw_scrape() -> None:
    assert hashlib.sha256(SEED.read_bytes()).hexdigest() == SEED_SHA256
    assert SEED.read_text(encoding="utf-8").startswith("in ,\n\n")


def test_seed_txt_title_paragraphs_boilerplate_and_mtime_warning(site: Site) -> None:
    path = site.root / "content" / "seed.txt"
    shutil.copyfile(SEED, path)
    stamp = datetime(2026, 11, 20, 10, 0, tzinfo=BERLIN).timestamp()
    os.utime(path, (stamp, stamp))

    article = site.one()

    assert article.title == "‘No US boots on the ground’ in Syria, US military assures Russia"
    assert article.published == datetime(2026, 11, 20, 10, 0, tzinfo=BERLIN)
    assert site.warnings == [
        "content/seed.txt: no date; using the file's modification time 2026-11-20 10:00; "
        "add date: to the front matter or a YYYY-MM-DD- prefix to the file name"
    ]
    paragraphs = [p for p in article.body.split("\n\n") if p.strip()]
    assert len(paragraphs) == 10
    assert paragraphs[0].startswith("The Russian daily Kommersant has provided more information")
    assert paragraphs[1].startswith("It seems that the meeting")
    assert paragraphs[-1].startswith("The Russian military were worried about something")
    html = article.html
    assert (
        html.index("Kommersant has provided")
        < html.index("blue-sky")
        < html.index("defused at source")
    )
    assert html.count("<p>") == 10
    for junk in (
        "in ,",
        "Help us grow",
        "Patreon",
        "statements, views",
        "What do you think",
        "Notify of",
        "Inline Feedbacks",
        "View all comments",
        "Tony Blair",
        "Insane McCain",
    ):
        assert junk not in article.body
        assert junk not in html
    assert article.body_format == "text"
    assert article.summary.startswith("The Russian daily Kommersant")
    assert article.slug == "seed"
    assert article.url == "https://news.example/seed/"
    assert article.id == "https://news.example/seed/"  # not from the mtime: see below
    assert article.source == "content/seed.txt"


def test_txt_date_prefix_in_the_file_name_gives_the_date(site: Site) -> None:
    site.write("2026-11-20-no-boots.txt", "A plain title\n\nFirst paragraph.\n\nSecond one.\n")
    article = site.one()
    assert article.published == datetime(2026, 11, 20, 0, 0, tzinfo=BERLIN)
    assert article.slug == "no-boots"
    assert article.title == "A plain title"
    assert site.warnings == []


@pytest.mark.parametrize(
    "opening",
    ["In ,\n\n", "\n\n  \n", "— 12/11/2026 —\n", "By ,\n***\n\n", "in ,\n"],
    ids=["dateline", "blank-lines", "no-letters", "short-comma-lines", "no-blank-after"],
)
def test_txt_leading_junk_lines_are_skipped(site: Site, opening: str) -> None:
    site.write("2026-11-01-x.txt", f"{opening}The real title, with a comma inside\n\nBody.\n")
    assert site.one().title == "The real title, with a comma inside"


def test_txt_short_title_without_trailing_comma_is_kept(site: Site) -> None:
    site.write("2026-11-01-x.txt", "Brexit\n\nBody.\n")
    article = site.one()
    assert article.title == "Brexit"
    assert article.body == "Body."


def test_txt_boilerplate_cut_from_first_marker_to_the_end(site: Site) -> None:
    site.write(
        "2026-11-01-x.txt",
        "Title\n\nKeep this.\n\nAnd this, which mentions Patreon in passing.\n\n"
        "  What do you think? Tell us.\n\nAfter the marker.\n\nHelp us grow.\n",
    )
    article = site.one()
    assert article.body == "Keep this.\n\nAnd this, which mentions Patreon in passing."


def test_txt_front_matter_is_optional_and_wins(site: Site) -> None:
    site.write(
        "scraped.txt",
        "---\ntitle: Given title\ndate: 2026-11-02 08:15\nauthor: Ann\n---\n"
        "In ,\n\nFirst line.\n\nMore.\n",
    )
    article = site.one()
    assert article.title == "Given title"
    assert article.published == datetime(2026, 11, 2, 8, 15, tzinfo=BERLIN)
    assert article.body.startswith("In ,")  # with a title given, nothing is guessed
    assert [a.name for a in article.authors] == ["Ann"]
    assert site.warnings == []


# --- front matter ----------------------------------------------------------------------


def test_every_front_matter_field(site: Site) -> None:
    site.write(
        "whatever-name.md",
        md(
            """
title: "Q&A: Zoë's <b>guide</b>"
date: 2026-11-03T09:30:00
updated: 2026-11-04T10:00:00+00:00
author: Ann Author
categories: [Politics, Europe]
tags: [nato, "eu & uk"]
summary: A hand-written summary.
image: img/lead.jpg
image_alt: A harbour at dawn
slug: my-custom-slug
id: urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427
"""
        ),
    )
    a = site.one()
    assert a.title == "Q&A: Zoë's <b>guide</b>"  # a title is text, kept as written
    assert a.published == datetime(2026, 11, 3, 9, 30, tzinfo=BERLIN)
    assert a.updated == datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
    assert [x.name for x in a.authors] == ["Ann Author"]
    assert a.categories == ("Politics", "Europe")
    assert a.tags == ("nato", "eu & uk")
    assert a.summary == "A hand-written summary."
    assert a.image is not None
    assert a.image.url == "https://news.example/my-custom-slug/img/lead.jpg"
    assert a.image.alt == "A harbour at dawn"
    assert a.slug == "my-custom-slug"
    assert a.url == "https://news.example/my-custom-slug/"
    assert a.base_url == a.url
    assert a.id == "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert a.body_format == "markdown"
    assert a.source == "content/whatever-name.md"


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("author: Ann", [("Ann", None, None)]),
        ("authors: [Ann, Bob]", [("Ann", None, None), ("Bob", None, None)]),
        (
            "author: {name: Ann, email: ann@news.example, url: 'https://ann.example/'}",
            [("Ann", "ann@news.example", "https://ann.example/")],
        ),
        (
            "authors:\n  - {name: Ann, email: ann@news.example}\n  - Bob",
            [("Ann", "ann@news.example", None), ("Bob", None, None)],
        ),
    ],
    ids=["string", "list", "mapping", "mixed-list"],
)
def test_author_forms(
    site: Site, front: str, expected: list[tuple[str, str | None, str | None]]
) -> None:
    site.write("2026-11-01-a.md", md(f"title: T\n{front}"))
    assert [(x.name, x.email, x.url) for x in site.one().authors] == expected


def test_default_author_applies_only_without_one(site: Site) -> None:
    cfg = site.root / "config.yaml"
    cfg.write_text(CONFIG + "    default_author: The Desk\n", encoding="utf-8")
    site.write("2026-11-01-a.md", md("title: A"))
    site.write("2026-11-02-b.md", md("title: B\nauthor: Bea"))
    result = site.load()
    assert {a.title: [x.name for x in a.authors] for a in result.articles} == {
        "A": ["The Desk"],
        "B": ["Bea"],
    }


def test_comma_separated_categories(site: Site) -> None:
    site.write("2026-11-01-a.md", md("title: T\ncategories: Politics, Economy\ntags: one"))
    a = site.one()
    assert a.categories == ("Politics", "Economy")
    assert a.tags == ("one",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-03", datetime(2026, 11, 3, 0, 0, tzinfo=BERLIN)),
        ("2026-11-03T09:30:00", datetime(2026, 11, 3, 9, 30, tzinfo=BERLIN)),
        ("2026-11-03 09:30", datetime(2026, 11, 3, 9, 30, tzinfo=BERLIN)),
        ("2026-11-03T09:30:00Z", datetime(2026, 11, 3, 9, 30, tzinfo=UTC)),
        ("2026-11-03T09:30:00-05:00", datetime(2026, 11, 3, 14, 30, tzinfo=UTC)),
        ('"Tue, 03 Nov 2026 09:30:00 GMT"', datetime(2026, 11, 3, 9, 30, tzinfo=UTC)),
        ('"3 November 2026"', datetime(2026, 11, 3, 0, 0, tzinfo=BERLIN)),
    ],
)
def test_date_forms_are_aware(site: Site, value: str, expected: datetime) -> None:
    site.write("a.md", md(f"title: T\ndate: {value}"))
    published = site.one().published
    assert published.tzinfo is not None
    assert published == expected


def test_url_front_matter_relative_and_absolute(site: Site) -> None:
    site.write("2026-11-01-a.md", md("title: A\nurl: /2026/11/custom-path/"))
    site.write("2026-11-02-b.md", md("title: B\nurl: https://elsewhere.example/b.html"))
    by_title = {a.title: a for a in site.load().articles}
    assert by_title["A"].url == "https://news.example/2026/11/custom-path/"
    assert by_title["A"].slug == "custom-path"
    assert by_title["A"].id == "tag:news.example,2026-11-01:custom-path"
    assert by_title["B"].url == "https://elsewhere.example/b.html"


def test_written_slug_is_kept_but_made_url_safe(site: Site) -> None:
    # issue 10: ASCII where the name allows (the README promises it), never ".." or a leading /
    site.write("2026-11-01-a.md", md("title: A\nslug: /2026/Zoë Story/"))
    article = site.one()
    assert article.slug == "2026/Zoe-Story"
    assert article.url == "https://news.example/2026/Zoe-Story/"


def test_id_is_stable_when_the_article_is_edited(site: Site) -> None:
    path = site.write("2026-11-01-stable.md", md("title: First title\ndate: 2026-11-01T10:00"))
    before = site.one()
    path.write_text(
        md("title: A new title\ndate: 2026-11-01T10:00\nupdated: 2026-11-02", "New body."),
        encoding="utf-8",
    )
    after = site.one()
    assert before.id == after.id == "tag:news.example,2026-11-01:stable"
    assert before.url == after.url


def test_undated_article_keeps_its_id_when_the_file_is_touched(site: Site) -> None:
    path = site.write("note.txt", "An undated note\n\nText.\n")
    stamp = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    before = site.one()
    # a fresh clone or a `touch` moves the modification time, and so the date
    later = datetime(2026, 11, 24, 8, 0, tzinfo=UTC).timestamp()
    os.utime(path, (later, later))
    after = site.one()
    assert before.published != after.published
    assert before.id == after.id == "https://news.example/note/"


def test_dated_txt_keeps_a_tag_uri_id(site: Site) -> None:
    site.write("2026-11-21-dated-note.txt", "A dated note\n\nText.\n")
    assert site.one().id == "tag:news.example,2026-11-21:dated-note"


def test_markdown_heading_is_the_title_when_front_matter_has_none(site: Site) -> None:
    site.write("2026-11-01-a.md", md("date: 2026-11-01", "# A heading title\n\nThe body.\n"))
    a = site.one()
    assert a.title == "A heading title"
    assert a.body == "The body."


def test_html_article(site: Site) -> None:
    site.write(
        "2026-11-01-page.html",
        md(
            "title: An HTML page", '<p>Hello <a href="../other/">there</a>.</p><script>x()</script>'
        ),
    )
    a = site.one()
    assert a.body_format == "html"
    assert a.summary == "Hello there."
    assert a.html == '<p>Hello <a href="https://news.example/other/">there</a>.</p>'


def test_summary_comes_from_the_first_paragraph(site: Site) -> None:
    long_words = " ".join(["word"] * 120)
    site.write(
        "2026-11-01-a.md",
        md(
            "title: T",
            f"## Sub\n\n![chart](c.png)\n\nFirst *real* [paragraph](x/) here.\n\n{long_words}\n",
        ),
    )
    site.write("2026-11-02-b.md", md("title: U", long_words))
    by_title = {a.title: a for a in site.load().articles}
    assert by_title["T"].summary == "First real paragraph here."
    summary = by_title["U"].summary
    assert len(summary) <= 300
    assert summary.endswith("word…")


def test_crlf_bom_and_subfolders_hidden_files_and_other_files(site: Site) -> None:
    site.write("2026/11/2026-11-01-a.md", "\ufeff---\r\ntitle: Windows\r\n---\r\n\r\nBody.\r\n")
    site.write(".hidden.md", md("title: Hidden"))
    site.write(".git/HEAD.md", md("title: In a hidden folder"))
    site.write("images/photo.jpg", b"\xff\xd8\xff")
    site.write("notes.yaml", "not: an article\n")
    result = site.load()
    assert [a.title for a in result.articles] == ["Windows"]
    assert result.articles[0].body == "Body."
    assert result.articles[0].source == "content/2026/11/2026-11-01-a.md"
    assert not result.errors


def test_symlink_loop_is_walked_once(site: Site) -> None:
    site.write("sub/2026-11-01-a.md", md("title: A"))
    (site.root / "content" / "sub" / "loop").symlink_to(site.root / "content")
    result = site.load()
    assert [a.title for a in result.articles] == ["A"]
    assert not result.errors


def test_unknown_front_matter_key_warns_and_loads(site: Site) -> None:
    # layout: is a Jekyll/Hugo key pressroom knows and does not use: no warning for it
    site.write(
        "2026-11-01-a.md",
        md("title: T\ndate: 2026-11-01\ncatgories: [X]\ncolour: red\nlayout: post"),
    )
    a = site.one()
    assert a.categories == ()
    assert site.warnings == [
        'content/2026-11-01-a.md:4: unknown front-matter key "catgories" ignored; '
        'did you mean "categories"?',
        'content/2026-11-01-a.md:5: unknown front-matter key "colour" ignored',
    ]


def test_missing_folder_is_a_source_error(site: Site) -> None:
    shutil.rmtree(site.root / "content")
    with pytest.raises(SourceError, match=r"^content: no such folder"):
        site.load()


# --- broken articles -------------------------------------------------------------------


def test_broken_articles_are_reported_with_file_and_line_and_skipped(site: Site) -> None:
    site.write("good.md", md("title: Good\ndate: 2026-11-01"))
    site.write("bad-date.md", md("title: Bad date\nauthor: Ann\ndate: 31/02/2026"))
    site.write("feb-31.md", md("title: Impossible\ndate: 2026-02-31"))
    site.write("no-title.md", md("date: 2026-11-01\nauthor: Ann"))
    site.write("latin1.md", b"---\ntitle: Caf" + b"\xe9\n---\n")
    site.write("bad-yaml.md", "---\ntitle: ok\ndate: 2026-11-01\ntags: [a, b\n---\nBody\n")
    site.write("colon.md", "---\ntitle: Red Sea: the costs\n---\nBody\n")
    site.write("unclosed.md", "---\ntitle: never closed\n\nBody\n")
    site.write("no-front.md", "Just text.\n")
    site.write("list-front.md", "---\n- a\n- b\n---\nBody\n")
    site.write("bad-cats.md", md("title: T\ndate: 2026-11-01\n\ncategories: {a: 1}"))
    site.write("bad-draft.md", md("title: T\ndraft: maybe"))
    site.write("bad-author.md", md("title: T\nauthors:\n  - {name: A, phone: 1}"))
    site.write("empty.txt", "\n\n")
    site.write("2026-02-30-bad-name.txt", "Title\n\nBody.\n")

    result = site.load()

    assert [a.title for a in result.articles] == ["Good"]
    assert sorted(e.message for e in result.errors) == sorted(
        [
            'content/bad-date.md:4: date: cannot parse "31/02/2026"',
            'content/feb-31.md:3: date: cannot parse "2026-02-31"',
            "content/no-title.md:1: title: missing; add title: to the front matter",
            "content/latin1.md:2: not UTF-8 (byte 0xe9 at offset 14); save the file as UTF-8",
            "content/bad-yaml.md:4: front matter: invalid YAML: did not find expected ',' or ']' "
            "while parsing a flow sequence",
            "content/colon.md:2: front matter: invalid YAML: mapping values are not allowed "
            'in this context; put a value that contains ": " in quotes',
            'content/unclosed.md:1: front matter: no closing "---" line; '
            "end the front matter with one",
            'content/no-front.md:1: front matter: missing; start the file with a "---" line, '
            'then title: and date:, then "---" (or TOML between "+++" lines, a JSON object, '
            'or Pelican "Title:" lines)',
            "content/list-front.md:2: front matter: expected key: value lines (title:, date:, …)",
            "content/bad-cats.md:5: categories: expected a name or a list of names, got a mapping",
            'content/bad-draft.md:3: draft: expected true or false, got "maybe"',
            'content/bad-author.md:3: authors: unknown key "phone"; use name, email and url',
            "content/empty.txt:1: title: missing; add title: to the front matter",
            'content/2026-02-30-bad-name.txt:1: date: cannot parse "2026-02-30" in the file name',
        ]
    )


# --- load(): drafts, future, since, de-duplication, order -----------------------------------


def test_drafts_future_and_since_are_left_out(site: Site) -> None:
    site.write("old.md", md("title: Old\ndate: 2026-10-01"))
    site.write("recent.md", md("title: Recent\ndate: 2026-11-20"))
    site.write("draft.md", md("title: Draft\ndate: 2026-11-21\ndraft: true"))
    site.write("not-draft.md", md("title: Not draft\ndate: 2026-11-21\ndraft: false"))
    site.write("future.md", md("title: Future\ndate: 2026-11-25T13:00:01+00:00"))
    site.write("exactly-now.md", md("title: Now\ndate: 2026-11-25T12:00:00+00:00"))

    assert [a.title for a in site.load().articles] == ["Now", "Not draft", "Recent", "Old"]
    since = NOW - timedelta(days=7)
    assert [a.title for a in site.load(since=since).articles] == ["Now", "Not draft", "Recent"]
    later = NOW + timedelta(hours=2)
    assert site.load(now=later).articles[0].title == "Future"


def test_two_files_claiming_one_url_are_both_kept_with_distinct_ids(site: Site) -> None:
    # issue 10: today one of them is dropped; both are the publisher's work, so keep both
    site.write("a.md", md("title: Original\ndate: 2026-11-01\nurl: /same/"))
    site.write(
        "b.md", md("title: Revised\ndate: 2026-11-01\nupdated: 2026-11-03\nurl: /same/\nid: other")
    )
    site.write("c.md", md("title: Other\ndate: 2026-11-02"))
    site.write("d.md", md("title: Twin\ndate: 2026-11-01\nurl: /same/"))  # same tag: id as a.md
    result = site.load()
    assert sorted(a.title for a in result.articles) == ["Original", "Other", "Revised", "Twin"]
    ids = [a.id for a in result.articles]
    assert len(set(ids)) == 4
    same = [w for w in site.warnings if "both claim the URL" in w]
    assert same == [
        "content/b.md and content/a.md both claim the URL https://news.example/same/; "
        "keeping both (give one of them its own url: or slug:)",
        "content/d.md and content/a.md both claim the URL https://news.example/same/; "
        "keeping both (give one of them its own url: or slug:)",
    ]


def test_newest_first_with_a_stable_tie_break(site: Site) -> None:
    for name in ("c", "a", "b"):
        site.write(f"{name}.md", md(f"title: {name}\ndate: 2026-11-01T10:00"))
    site.write("z.md", md("title: newest\ndate: 2026-11-02T10:00"))
    titles = [a.title for a in site.load().articles]
    assert titles == ["newest", "a", "b", "c"]


# --- the demo publication ----------------------------------------------------------------


def test_demo_content_loads_cleanly() -> None:
    cfg = config.load(REPO / "config.yaml")
    warnings: list[str] = []
    result = articles.load(cfg, datetime(2026, 11, 25, 9, 0, tzinfo=UTC), warn=warnings.append)
    assert not result.errors, [e.message for e in result.errors]
    assert warnings == []
    items = result.articles
    assert len(items) >= 12
    assert all(datetime(2026, 10, 1, tzinfo=UTC) <= a.published for a in items)
    assert {a.body_format for a in items} == {"markdown", "html", "text"}
    assert len({x.name for a in items for x in a.authors}) >= 3
    assert len({c for a in items for c in a.categories}) >= 4
    assert not any("DRAFT" in a.title for a in items)
    assert any("internal" in a.tags for a in items)
    assert any(
        a.image and a.image.url.startswith("https://theduran.example/") and a.image.alt
        for a in items
    )
    assert any("&" in a.title for a in items) and any(not a.title.isascii() for a in items)
    seed = next(a for a in items if a.source.endswith(".txt"))
    assert seed.title == "‘No US boots on the ground’ in Syria, US military assures Russia"
    for a in items:
        for url in re.findall(r'(?:href|src)="([^"]*)"', a.html):
            assert url.startswith(("https://", "mailto:")), (a.source, url)
    fact_check = next(a for a in items if a.slug == "how-we-fact-check")
    assert 'href="https://theduran.example/about/corrections/"' in fact_check.html
    assert (
        'src="https://theduran.example/how-we-fact-check/images/fact-check-workflow.png"'
        in fact_check.html
    )


# --- the front-matter fast path agrees with PyYAML -------------------------------------------

TRICKY_VALUES = [
    "plain",
    "Q&A: x",
    '"Q&A: x"',
    "'single'",
    "'it''s'",
    '"esc \\" q"',
    "C#",
    "a #comment",
    "100%",
    "-x",
    "- x",
    "12",
    "1.5",
    "0x1f",
    "yes",
    "No",
    "ON",
    "~",
    "null",
    "Null",
    "",
    "2026-11-01",
    "2026-02-31",
    "2026-11-01 09:00",
    "2026-11-01T09:00:00+01:00",
    "[]",
    "[a, b]",
    "[a,b]",
    "[ a , b ]",
    "[a, [b]]",
    "[a:b]",
    "[a: b]",
    '["a, b", c]',
    "['x', \"y\"]",
    "[yes, 1]",
    "[a, ]",
    "[?x]",
    "?x",
    "a:b",
    "http://x.example/a?b=c#d",
    "Zoë — “quotes”",
    "trailing   ",
    "a\tb",
    "*alias",
    "&anchor x",
    "!tag x",
    "|",
    ">",
    "@at",
    "`bt",
    "%pct",
    "{a: 1}",
    "x]",
    "a, b",
    "null x",
    ".inf",
    "<<",
    "=",
    'a "quoted" middle',
    "a 'q' middle",
    '"unclosed',
    '"a" b',
    "[a, b] c",
    '[a, "b"c]',
    "ü",
    '"\\u00e9"',
    "true story",
    "   ",
    "x:",
    "[x:]",
    "[~, null, '']",
    "['']",
    '[""]',
    "[a b, c-d]",
    "[-a]",
    "[- a]",
    "[a#b]",
    "[a !b]",
    "[*a]",
    "[&a b]",
    "[|]",
    "[>]",
    "[@a]",
    "[%a]",
    "[=]",
    "[<<]",
    "[a?]",
    "[2026-11-01]",
    "[a]]",
    "[[a]",
    "[a] ",
    '"" ',
    "''",
    '""',
    "Nobody",
    "offside",
    "Tuesday",
    "fals",
    "0",
    "+1",
    "a\u2028b",
    "a\x85b",
    "x\x07",
]
TRICKY_KEYS = ["title", "yes", "on", "12", "~", "a-b", "_x", "Title", "null", "n"]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_quick_front_matter_matches_pyyaml(value: str) -> None:
    import yaml

    from pressroom.content.frontmatter import _Loader, quick_front_matter

    text = f"title: {value}\n# a comment\n\nother: 1x\n"
    quick = quick_front_matter(text)
    if quick is None:
        return  # not simple: PyYAML reads it
    expected = yaml.load(text, Loader=_Loader)
    assert quick == expected
    assert [type(v) for v in quick.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_quick_front_matter_keys_match_pyyaml(key: str) -> None:
    import yaml

    from pressroom.content.frontmatter import _Loader, quick_front_matter

    text = f"{key}: v\n"
    quick = quick_front_matter(text)
    assert quick is None or quick == yaml.load(text, Loader=_Loader)


def test_quick_front_matter_reads_the_usual_front_matter() -> None:
    from pressroom.content.frontmatter import quick_front_matter

    text = (
        'title: "Q&A: a title"\ndate: 2026-11-01T09:00:00\nauthor: Ann\n'
        "categories: [Politics, Europe]\ntags: [a, 'b c']\ndraft: false\nsummary:\n"
    )
    assert quick_front_matter(text) == {
        "title": "Q&A: a title",
        "date": "2026-11-01T09:00:00",
        "author": "Ann",
        "categories": ["Politics", "Europe"],
        "tags": ["a", "b c"],
        "draft": False,
        "summary": None,
    }


def test_a_front_matter_key_written_twice_is_refused(tmp_path: Path) -> None:
    from pressroom.config import load
    from pressroom.content import articles

    (tmp_path / "content").mkdir()
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: T\n  url: https://t.example/\n"
        "sources:\n  - type: files\n    path: content\n",
        encoding="utf-8",
    )
    (tmp_path / "content" / "dup.md").write_text(
        "---\ntitle: First\ndate: 2026-11-01\ntitle: Second\n---\nBody.\n", encoding="utf-8"
    )
    now = datetime(2026, 11, 25, tzinfo=UTC)
    result = articles.load(load(tmp_path / "config.yaml"), now)
    assert result.articles == ()
    assert [e.message for e in result.errors] == [
        'content/dup.md:4: front matter: invalid YAML: duplicate key "title" (first at line 2); '
        "keep one"
    ]


def test_a_front_matter_key_that_is_a_list_or_mapping_is_one_line(site: Site) -> None:
    # YAML's "? [a, b]" complex keys: the duplicate-key check hashed the list and a TypeError
    # traceback ended the whole run
    site.write("list-key.md", "---\n? [a, b]\n: c\ntitle: L\n---\nBody.\n")
    site.write("map-key.md", "---\ntitle: M\n? {a: 1}\n: c\n---\nBody.\n")
    site.write("good.md", md("title: Good\ndate: 2026-11-01"))

    result = site.load()

    assert [a.title for a in result.articles] == ["Good"]
    assert sorted(e.message for e in result.errors) == [
        "content/list-key.md:2: front matter: invalid YAML: found unhashable key while "
        "constructing a mapping",
        "content/map-key.md:2: front matter: invalid YAML: found unhashable key while "
        "constructing a mapping",
    ]
