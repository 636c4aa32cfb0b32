"""The files source on other generators' folders: every front-matter form, their field names,
drafts/future/expired, summary markers, permalink patterns and presets, and the traps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pressroom import config
from pressroom.content import articles
from pressroom.errors import ConfigError
from pressroom.models import Article

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@dataclass
class Folder:
    """A publication whose files source reads content/ with the given extra settings."""

    root: Path
    warnings: list[str] = field(default_factory=list)

    def configure(self, extra: str = "", url: str = "https://news.example/") -> None:
        (self.root / "config.yaml").write_text(
            "publication:\n  name: Test\n"
            f"  url: {url}\n  timezone: Europe/Berlin\n"
            "sources:\n  - type: files\n    path: content\n"
            + "".join(f"    {line}\n" for line in extra.splitlines()),
            encoding="utf-8",
        )

    def write(self, name: str, text: str) -> None:
        path = self.root / "content" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def load(self) -> articles.LoadResult:
        return articles.load(config.load(self.root / "config.yaml"), NOW, warn=self.warnings.append)

    def by_title(self) -> dict[str, Article]:
        result = self.load()
        assert not result.errors, [e.message for e in result.errors]
        return {a.title: a for a in result.articles}

    def one(self) -> Article:
        found = list(self.by_title().values())
        assert len(found) == 1, found
        return found[0]


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    (tmp_path / "content").mkdir()
    f = Folder(tmp_path)
    f.configure()
    return f


# --- the four forms of metadata ----------------------------------------------------------


def test_toml_front_matter_dates_without_a_zone_are_the_publications(folder: Folder) -> None:
    folder.write(
        "naive.md",
        '+++\ntitle = "Naive"\ndate = 2024-03-01T09:30:00\ntags = ["a", "b"]\n+++\nBody.\n',
    )
    folder.write("zoned.md", '+++\ntitle = "Zoned"\ndate = 2024-03-01T09:30:00-05:00\n+++\nB.\n')
    folder.write("day.md", '+++\ntitle = "Day"\ndate = 2024-03-01\n+++\nB.\n')
    got = folder.by_title()
    assert got["Naive"].published == datetime(2024, 3, 1, 9, 30, tzinfo=BERLIN)
    assert got["Naive"].tags == ("a", "b")
    assert got["Zoned"].published == datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    assert got["Day"].published == datetime(2024, 3, 1, 0, 0, tzinfo=BERLIN)


def test_broken_toml_names_the_file_line(folder: Folder) -> None:
    folder.write("bad.md", '+++\ntitle = "T"\ndate = 2024-03-01\ntags = [oops\n+++\nB.\n')
    result = folder.load()
    assert [e.message for e in result.errors] == [
        "content/bad.md:4: front matter: invalid TOML: Invalid value"
    ]


def test_json_front_matter(folder: Folder) -> None:
    folder.write(
        "j.md",
        '{\n  "title": "From JSON",\n  "date": "2024-02-02T10:00:00Z",\n'
        '  "categories": ["News"]\n}\n\nThe body.\n',
    )
    a = folder.one()
    assert (a.title, a.categories, a.body) == ("From JSON", ("News",), "The body.")
    assert a.published == datetime(2024, 2, 2, 10, 0, tzinfo=UTC)


def test_yaml_datetimes_and_strings_agree(folder: Folder) -> None:
    # PyYAML would turn the unquoted forms into datetime objects (and drop the zone of the
    # first); pressroom reads all of them as the same instant
    folder.write("a.md", "---\ntitle: A\ndate: 2024-01-05 10:00:00 +01:00\n---\nB.\n")
    folder.write("b.md", '---\ntitle: B\ndate: "2024-01-05T10:00:00+01:00"\n---\nB.\n')
    folder.write("c.md", "---\ntitle: C\ndate: 2024-01-05T09:00:00Z\n---\nB.\n")
    folder.write("d.md", "---\ntitle: D\ndate: 2024-01-05\n---\nB.\n")
    got = folder.by_title()
    instant = datetime(2024, 1, 5, 9, 0, tzinfo=UTC)
    assert got["A"].published == got["B"].published == got["C"].published == instant
    assert got["D"].published == datetime(2024, 1, 5, tzinfo=BERLIN)


PELICAN = """\
Title: My super title
Date: 2010-12-03 10:20
Modified: 2010-12-05 19:30
Category: Python
Tags: pelican, publishing
Slug: my-super-post
Authors: Alexis Metaireau, Conan Doyle
Summary: Short version for index and feeds,
    continued on a second line.

This is the content of my super blog post.
"""


def test_pelican_metadata_headers_with_a_continued_summary(folder: Folder) -> None:
    folder.configure("permalink: pelican", url="https://blog.example/")
    folder.write("my-super-post.md", PELICAN)
    a = folder.one()
    assert a.title == "My super title"
    assert a.published == datetime(2010, 12, 3, 10, 20, tzinfo=BERLIN)
    assert a.updated == datetime(2010, 12, 5, 19, 30, tzinfo=BERLIN)
    assert a.categories == ("Python",)
    assert a.tags == ("pelican", "publishing")
    assert [x.name for x in a.authors] == ["Alexis Metaireau", "Conan Doyle"]
    assert a.summary == "Short version for index and feeds, continued on a second line."
    assert a.url == "https://blog.example/my-super-post.html"
    assert a.body == "This is the content of my super blog post."


def test_pelican_slug_from_title_status_and_own_urls(folder: Folder) -> None:
    folder.configure("permalink: pelican")
    folder.write("a.md", "Title: Hello, World!\nDate: 2020-01-01\n\nB.\n")
    folder.write("b.md", "Title: Draft\nDate: 2020-01-01\nStatus: draft\n\nB.\n")
    folder.write("c.md", "Title: Hidden\nDate: 2020-01-01\nStatus: hidden\n\nB.\n")
    folder.write("d.md", "Title: Own\nDate: 2020-01-01\nURL: pages/own/\nSave_as: x.html\n\nB.\n")
    folder.write("e.md", "Title: Saved\nDate: 2020-01-01\nSave_as: special/saved.html\n\nB.\n")
    got = folder.by_title()
    assert set(got) == {"Hello, World!", "Own", "Saved"}
    assert got["Hello, World!"].url == "https://news.example/hello-world.html"
    assert got["Own"].url == "https://news.example/pages/own/"
    assert got["Saved"].url == "https://news.example/special/saved.html"


def test_a_colon_in_the_first_line_of_a_text_file_is_not_metadata(folder: Folder) -> None:
    folder.write("2024-01-01-note.txt", "Note: this is the title line\n\nAnd a body.\n")
    assert folder.one().title == "Note: this is the title line"


# --- each generator's field names --------------------------------------------------------


def test_hugo_fields(folder: Folder) -> None:
    folder.write(
        "posts/full.md",
        """+++
title = "Full"
date = 2024-05-01T08:00:00Z
publishDate = 2024-05-02T08:00:00Z
lastmod = 2024-06-01T08:00:00Z
description = "The description."
images = ["cover.jpg", "other.jpg"]
authors = ["Ann", "Bo"]
categories = ["World"]
tags = ["t1"]
aliases = ["/old/"]
weight = 3
+++
Body.
""",
    )
    folder.write(
        "posts/future.md",
        '+++\ntitle = "Future"\ndate = 2024-05-01\npublishDate = 2099-01-01\n+++\nB.\n',
    )
    folder.write(
        "posts/expired.md",
        '+++\ntitle = "Expired"\ndate = 2024-05-01\nexpiryDate = 2025-01-01\n+++\nB.\n',
    )
    folder.write(
        "posts/live.md",
        '+++\ntitle = "Live"\ndate = 2024-05-01\nexpiryDate = 2099-01-01\n+++\nB.\n',
    )
    folder.write("posts/draft.md", '+++\ntitle = "Draft"\ndate = 2024-05-01\ndraft = true\n+++\n')
    folder.write("posts/_index.md", '+++\ntitle = "Posts"\n+++\nThe section page.\n')
    got = folder.by_title()
    assert set(got) == {"Full", "Live"}
    a = got["Full"]
    assert a.published == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert a.updated == datetime(2024, 6, 1, 8, tzinfo=UTC)
    assert a.summary == "The description."
    assert a.image is not None and a.image.url == "https://news.example/full/cover.jpg"
    assert [x.name for x in a.authors] == ["Ann", "Bo"]
    assert (a.categories, a.tags) == (("World",), ("t1",))
    assert folder.warnings == []  # aliases and weight are Hugo's, not unknown


def test_jekyll_fields(folder: Folder) -> None:
    folder.write(
        "_posts/2024-03-01-hello.md",
        "---\nlayout: post\ntitle: Hello\nlast_modified_at: 2024-03-02\ncategory: News\n"
        "excerpt: The excerpt.\nimage:\n  path: /img/a.png\n  alt: An A\nauthor: Jo\n---\nB.\n",
    )
    folder.write("_posts/2024-03-02-off.md", "---\ntitle: Off\npublished: false\n---\nB.\n")
    folder.write("_drafts/a-draft.md", "---\ntitle: A draft\n---\nB.\n")
    got = folder.by_title()
    assert set(got) == {"Hello"}
    a = got["Hello"]
    assert a.published == datetime(2024, 3, 1, tzinfo=BERLIN)  # from the file name
    assert a.updated == datetime(2024, 3, 2, tzinfo=BERLIN)
    assert (a.categories, a.summary) == (("News",), "The excerpt.")
    assert a.image is not None
    assert (a.image.url, a.image.alt) == ("https://news.example/img/a.png", "An A")


def test_eleventy_fields(folder: Folder) -> None:
    folder.configure("permalink: eleventy")
    folder.write("blog/one.md", "---\ntitle: One\ndate: 2024-01-01\ntags: [posts]\n---\nB.\n")
    folder.write("blog/two.md", "---\ntitle: Two\ndate: 2024-01-01\npermalink: false\n---\nB.\n")
    folder.write(
        "blog/three.md",
        "---\ntitle: Three\ndate: 2024-01-01\neleventyExcludeFromCollections: true\n---\nB.\n",
    )
    folder.write(
        "blog/four.md", "---\ntitle: Four\ndate: 2024-01-01\npermalink: /p/four/index.html\n---\n"
    )
    folder.write(
        "blog/five.md",
        '---\ntitle: Five\ndate: 2024-01-01\npermalink: "/{{ page.fileSlug }}/"\n---\nB.\n',
    )
    got = folder.by_title()
    assert set(got) == {"One", "Four", "Five"}
    assert got["One"].url == "https://news.example/blog/one/"
    assert got["Four"].url == "https://news.example/p/four/"
    assert got["Five"].url == "https://news.example/blog/five/"
    assert any("template pressroom cannot fill in" in w for w in folder.warnings)


def test_more_marker_and_excerpt_separator_make_the_summary(folder: Folder) -> None:
    folder.write(
        "a.md",
        "---\ntitle: A\ndate: 2024-01-01\n---\nFirst *part*.\n\nSecond part.\n<!--more-->\nRest.\n",
    )
    folder.write(
        "b.md",
        "---\ntitle: B\ndate: 2024-01-01\nexcerpt_separator: <!--cut-->\n---\n"
        "Intro one.\n\nIntro two.<!--cut-->\n\nRest.\n",
    )
    folder.write("c.md", "---\ntitle: C\ndate: 2024-01-01\n---\nOnly the first.\n\nSecond.\n")
    got = folder.by_title()
    assert got["A"].summary == "First part. Second part."
    assert got["B"].summary == "Intro one. Intro two."
    assert got["C"].summary == "Only the first."


# --- permalinks ----------------------------------------------------------------------------


def test_hugo_preset_sections_bundles_and_own_url(folder: Folder) -> None:
    folder.configure("permalink: hugo", url="https://site.example/blog/")
    folder.write("posts/first-post.md", "---\ntitle: First\ndate: 2024-01-01\n---\nB.\n")
    folder.write("posts/2020/nested.md", "---\ntitle: Nested\ndate: 2020-01-01\n---\nB.\n")
    folder.write(
        "posts/my-trip/index.md",
        "---\ntitle: Trip\ndate: 2024-01-02\n---\nLook: ![the view](view.jpg)\n",
    )
    folder.write("posts/my-trip/view.jpg", "not really a JPEG")
    folder.write("about.md", "---\ntitle: About\ndate: 2024-01-01\n---\nB.\n")
    folder.write("posts/slugged.md", "---\ntitle: S\ndate: 2024-01-01\nslug: other-name\n---\n")
    folder.write("posts/moved.md", "---\ntitle: Moved\ndate: 2024-01-01\nurl: /custom/path/\n---\n")
    got = folder.by_title()
    assert got["First"].url == "https://site.example/blog/posts/first-post/"
    assert got["Nested"].url == "https://site.example/blog/posts/2020/nested/"
    trip = got["Trip"]
    assert (trip.url, trip.slug) == ("https://site.example/blog/posts/my-trip/", "my-trip")
    assert 'src="https://site.example/blog/posts/my-trip/view.jpg"' in trip.html
    assert got["About"].url == "https://site.example/blog/about/"
    assert got["S"].url == "https://site.example/blog/posts/other-name/"
    assert got["Moved"].url == "https://site.example/blog/custom/path/"


JEKYLL_POST = "---\ntitle: Hello World\ncategories: classic hollywood\n---\nB.\n"


@pytest.mark.parametrize(
    ("preset", "path"),
    [
        ("jekyll", "work/classic/hollywood/2024/03/09/hello-world.html"),
        ("jekyll-date", "work/classic/hollywood/2024/03/09/hello-world.html"),
        ("jekyll-pretty", "work/classic/hollywood/2024/03/09/hello-world/"),
        ("jekyll-ordinal", "work/classic/hollywood/2024/069/hello-world.html"),
        ("jekyll-none", "work/classic/hollywood/hello-world.html"),
        ("{year}/{title}/", "2024/hello-world/"),
        ("{category}/{month}/{day}/{filename}", "work/03/09/2024-03-09-hello-world"),
    ],
)
def test_jekyll_styles_dates_from_file_names_categories_from_folders(
    folder: Folder, preset: str, path: str
) -> None:
    folder.configure(f'permalink: "{preset}"')
    folder.write("work/_posts/2024-03-09-hello-world.md", JEKYLL_POST)
    a = folder.one()
    assert a.published == datetime(2024, 3, 9, tzinfo=BERLIN)
    assert a.categories == ("work", "classic", "hollywood")
    assert a.url == f"https://news.example/{path}"


def test_default_permalink_is_unchanged(folder: Folder) -> None:
    folder.write("posts/2024-01-01-plain.md", "---\ntitle: Plain\n---\nB.\n")
    assert folder.one().url == "https://news.example/plain/"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{yaer}/{slug}/", "unknown placeholder {yaer}"),
        ("posts/", "has no placeholder"),
        ("{slug", "write placeholders as {year}"),
    ],
)
def test_a_bad_permalink_is_a_config_error_naming_the_key(
    folder: Folder, value: str, problem: str
) -> None:
    folder.configure(f'permalink: "{value}"')
    with pytest.raises(ConfigError) as caught:
        folder.load()
    message = str(caught.value)
    assert "sources.0.permalink" in message and problem in message
    assert "config.yaml:8" in message


@pytest.mark.parametrize("value", ["../{slug}/", "{year}/../{slug}/", "./{slug}/", "{slug}/.."])
def test_a_permalink_that_climbs_is_a_config_error_naming_the_key(
    folder: Folder, value: str
) -> None:
    folder.configure(f'permalink: "{value}"')
    with pytest.raises(ConfigError) as caught:
        folder.load()
    message = str(caught.value)
    assert "config.yaml:8: sources.0.permalink" in message and "segment" in message, message


# a category ".." (a folder in Jekyll's patterns) and a post's own Jekyll permalink with a ".."
# put "/../" into the published link: feeds and issues linked a URL no reader can reach
def test_no_link_holds_a_dot_segment_whatever_a_post_says(folder: Folder) -> None:
    folder.configure('permalink: "jekyll-pretty"')
    folder.write("_posts/2024-03-09-a.md", '---\ntitle: A\ncategories: ["..", "."]\n---\nB.\n')
    folder.write(
        "_posts/2024-03-09-b.md",
        "---\ntitle: B\ncategories: [news]\npermalink: /:categories/../../:title/\n---\nB.\n",
    )
    urls = {a.title: a.url for a in folder.by_title().values()}
    assert urls == {
        "A": "https://news.example/2024/03/09/a/",
        "B": "https://news.example/news/b/",
    }


# The default id is tag:<host>,<date>:<slug>: Hugo sections with a file of the same name
# dated the same day gave two articles one id, and one of them vanished from every feed
def test_two_files_at_two_urls_with_one_id_are_both_published(folder: Folder) -> None:
    folder.configure('permalink: "hugo"')
    folder.write("news/roundup.md", "---\ntitle: News roundup\ndate: 2024-03-09\n---\nB.\n")
    folder.write("sports/roundup.md", "---\ntitle: Sports roundup\ndate: 2024-03-09\n---\nB.\n")
    folder.write("a/copied.md", "---\ntitle: A\ndate: 2024-03-08\nid: urn:x:1\n---\nB.\n")
    folder.write("b/copied.md", "---\ntitle: B\ndate: 2024-03-08\nid: urn:x:1\n---\nB.\n")
    found = folder.by_title()
    assert sorted(found) == ["A", "B", "News roundup", "Sports roundup"]
    news, sports = found["News roundup"], found["Sports roundup"]
    assert news.id == "tag:news.example,2024-03-09:roundup"  # the first keeps its id
    assert sports.id.startswith("tag:news.example,2024-03-09:roundup#")
    assert (found["A"].id, found["B"].id[:8]) == ("urn:x:1", "urn:x:1#")
    assert any(
        w.startswith("content/sports/roundup.md: same id as content/news/roundup.md")
        and "keeping both" in w
        for w in folder.warnings
    ), folder.warnings
    again = Folder(folder.root)  # the same ids on every run
    assert {a.title: a.id for a in again.by_title().values()} == {t: a.id for t, a in found.items()}


def test_a_bad_hugo_published_date_names_its_line(folder: Folder) -> None:
    folder.write("a.md", "---\ntitle: A\ndate: 2024-01-01\npublished: 31/02/2024\n---\nB.\n")
    [error] = folder.load().errors
    assert error.message == 'content/a.md:4: publish_date: cannot parse "31/02/2024"'


def test_future_publish_date_is_left_out_until_it_passes(folder: Folder) -> None:
    soon = (NOW + timedelta(hours=1)).isoformat()
    folder.write("a.md", f"---\ntitle: A\ndate: 2024-01-01\npublishDate: {soon}\n---\nB.\n")
    assert folder.load().articles == ()
    cfg = config.load(folder.root / "config.yaml")
    later = articles.load(cfg, NOW + timedelta(hours=2))
    assert [a.title for a in later.articles] == ["A"]


def test_jekyll_posts_folder_as_the_source_path(tmp_path: Path) -> None:
    f = Folder(tmp_path)
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: T\n  url: https://j.example/\n  timezone: Europe/Berlin\n"
        "sources:\n  - type: files\n    path: _posts\n    permalink: jekyll-pretty\n",
        encoding="utf-8",
    )
    post = tmp_path / "_posts" / "2019" / "2019-07-04-fireworks.md"
    post.parent.mkdir(parents=True)
    post.write_text("---\ntitle: Fireworks\ncategories: Summer Nights\n---\nB.\n", "utf-8")
    a = f.one()
    assert a.categories == ("Summer", "Nights")
    assert a.url == "https://j.example/summer/nights/2019/07/04/fireworks/"


def test_hugo_headless_bundle_is_not_an_article(folder: Folder) -> None:
    folder.write("posts/shown.md", "---\ntitle: Shown\ndate: 2024-01-01\n---\nB.\n")
    folder.write("gallery/index.md", "---\ntitle: Gallery\ndate: 2024-01-01\nheadless: true\n---\n")
    assert set(folder.by_title()) == {"Shown"}


def test_jekyll_post_permalink_with_placeholders(folder: Folder) -> None:
    folder.configure("permalink: jekyll")
    folder.write(
        "_posts/2024-03-09-hello.md",
        "---\ntitle: Hello\ncategories: [News]\npermalink: /:categories/:year/:title/\n---\nB.\n",
    )
    folder.write("_posts/2024-03-10-fixed.md", "---\ntitle: Fixed\npermalink: /about/me/\n---\n")
    got = folder.by_title()
    assert got["Hello"].url == "https://news.example/news/2024/hello/"
    assert got["Fixed"].url == "https://news.example/about/me/"


def test_hugo_paths_are_lower_case(folder: Folder) -> None:
    folder.configure("permalink: hugo")
    folder.write("Posts/Sub/a.md", "---\ntitle: A\nslug: My-Slug\ndate: 2024-01-01\n---\nB.\n")
    assert folder.one().url == "https://news.example/posts/sub/my-slug/"
