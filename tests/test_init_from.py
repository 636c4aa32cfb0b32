"""`pressroom init --from GENERATOR SITE`: a publication that reads an existing site as it is."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pressroom import config
from pressroom.cli import main
from pressroom.content import articles
from tests.test_sources_sites import NOW


def _init(generator: str, site: Path) -> config.Config:
    result = CliRunner().invoke(main, ["init", "--from", generator, str(site)])
    assert result.exit_code == 0, result.output
    return config.load(site / "pressroom" / "config.yaml")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_hugo_permalinks_sections_become_their_own_sources(tmp_path: Path) -> None:
    _write(
        tmp_path / "config.toml",
        'baseurl = "https://h.example/blog"\ntitle = "H"\n'
        '[permalinks]\nposts = "/:year/:month/:slug/"\nnotes = "/:monthname/:slug/"\n',
    )
    _write(tmp_path / "content/posts/a-post.md", '+++\ntitle = "A Post"\ndate = 2024-02-03\n+++\n')
    _write(
        tmp_path / "content/posts/b.md", '+++\ntitle = "B"\nslug = "bee"\ndate = 2024-02-03\n+++\n'
    )
    _write(tmp_path / "content/notes/n.md", '+++\ntitle = "N"\ndate = 2024-02-03\n+++\n')
    _write(tmp_path / "content/pages/p.md", '+++\ntitle = "P"\ndate = 2024-02-03\n+++\n')
    result = CliRunner().invoke(main, ["init", "--from", "hugo", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "monthname" in result.output  # cannot be written: said, and Hugo's default used
    cfg = config.load(tmp_path / "pressroom" / "config.yaml")
    assert cfg.publication.url == "https://h.example/blog/"
    urls = {a.title: a.url for a in articles.load(cfg, NOW).articles}
    assert urls == {
        "A Post": "https://h.example/blog/2024/02/a-post/",  # Hugo's :slug: else the title
        "B": "https://h.example/blog/2024/02/bee/",
        "N": "https://h.example/blog/notes/n/",
        "P": "https://h.example/blog/pages/p/",
    }


def test_jekyll_site(tmp_path: Path) -> None:
    _write(
        tmp_path / "_config.yml",
        "title: Jay\nurl: https://j.example\nbaseurl: /site\ntimezone: America/New_York\n"
        "permalink: pretty\nexcerpt_separator: <!--cut-->\n",
    )
    _write(
        tmp_path / "_posts/2023-05-06-first.md",
        "---\ntitle: First\ncategories: a b\n---\nOne.\n\nTwo.<!--cut-->\n\nThree.\n",
    )
    _write(tmp_path / "index.md", "---\nlayout: home\n---\n")
    cfg = _init("jekyll", tmp_path)
    assert (cfg.publication.name, cfg.publication.timezone) == ("Jay", "America/New_York")
    [a] = articles.load(cfg, NOW).articles
    assert a.url == "https://j.example/site/a/b/2023/05/06/first/"
    assert a.summary == "One. Two."  # the site's excerpt_separator


def test_jekyll_custom_permalink_is_converted(tmp_path: Path) -> None:
    _write(
        tmp_path / "_config.yml",
        "url: https://j.example\npermalink: /blog/:year/:title:output_ext\n",
    )
    _write(tmp_path / "_posts/2023-05-06-first.md", "---\ntitle: First\n---\nB.\n")
    [a] = articles.load(_init("jekyll", tmp_path), NOW).articles
    assert a.url == "https://j.example/blog/2023/first.html"


def test_pelican_site_reads_settings_without_running_them(tmp_path: Path) -> None:
    _write(
        tmp_path / "pelicanconf.py",
        'import os\nSITENAME = "Pel"\nSITEURL = os.environ["NEVER_SET"]\nPATH = "posts"\n'
        'TIMEZONE = "Europe/Paris"\nARTICLE_URL = "{date:%Y}/{category}/{slug}/"\n',
    )
    _write(
        tmp_path / "posts/a.md", "Title: Hello There\nDate: 2022-01-02\nCategory: Big News\n\nB.\n"
    )
    _write(tmp_path / "posts/pages/about.md", "Title: About\nDate: 2022-01-02\n\nB.\n")
    result = CliRunner().invoke(main, ["init", "--from", "pelican", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "set publication.url" in result.output  # SITEURL is not a plain string here
    cfg = config.load(tmp_path / "pressroom" / "config.yaml")
    assert cfg.publication.timezone == "Europe/Paris"
    [a] = articles.load(cfg, NOW).articles
    assert a.url == "https://example.com/2022/big-news/hello-there/"


def test_eleventy_site(tmp_path: Path) -> None:
    _write(tmp_path / "eleventy.config.js", 'export default { dir: { input: "src" } };\n')
    _write(tmp_path / "src/_data/metadata.json", '{"title": "Elf", "url": "https://e.example/"}')
    _write(tmp_path / "src/blog/post-one.md", "---\ntitle: One\ndate: 2021-01-01\n---\nB.\n")
    _write(tmp_path / "src/_includes/layout.html", "<html></html>")
    cfg = _init("eleventy", tmp_path)
    [a] = articles.load(cfg, NOW).articles
    assert a.url == "https://e.example/blog/post-one/"


def test_not_a_site_of_that_generator(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", "--from", "hugo", str(tmp_path)])
    assert result.exit_code == 2
    assert "no hugo.toml or config.toml; is this a Hugo site?" in result.output
    assert not (tmp_path / "pressroom").exists()


def test_an_existing_publication_is_not_overwritten(tmp_path: Path) -> None:
    _write(tmp_path / "hugo.toml", 'baseURL = "https://h.example/"\n')
    _write(tmp_path / "pressroom/config.yaml", "mine\n")
    result = CliRunner().invoke(main, ["init", "--from", "hugo", str(tmp_path)])
    assert result.exit_code == 2 and "--force" in result.output
    assert (tmp_path / "pressroom/config.yaml").read_text() == "mine\n"


def test_pelican_folders_are_categories_for_the_url(tmp_path: Path) -> None:
    _write(
        tmp_path / "pelicanconf.py",
        'SITEURL = "https://p.example"\nARTICLE_URL = "{category}/{slug}.html"\n',
    )
    _write(tmp_path / "content/Travel Notes/a.md", "Title: Going North\nDate: 2022-01-02\n\nB.\n")
    _write(tmp_path / "content/b.md", "Title: Named\nDate: 2022-01-02\nCategory: Food\n\nB.\n")
    cfg = _init("pelican", tmp_path)
    urls = {a.title: (a.url, a.categories) for a in articles.load(cfg, NOW).articles}
    assert urls == {
        "Going North": ("https://p.example/travel-notes/going-north.html", ("Travel Notes",)),
        "Named": ("https://p.example/food/named.html", ("Food",)),
    }
