"""`pressroom init --from GENERATOR SITE`: a publication that reads an existing site as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
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


# --- hostile or careless site configs (read, never trusted) ---------------------------------

BROKEN_SITES = [
    # (generator, file, bytes, what the one-line error says)
    (
        "hugo",
        "hugo.toml",
        b'baseURL = "https://h.example/"\ntitle = "Caf\xe9"\n',
        "hugo.toml:2: not UTF-8",
    ),
    ("jekyll", "_config.yml", b"url: https://j.example\n\xff: 1\n", "_config.yml:2: not UTF-8"),
    ("eleventy", ".eleventy.js", b"module.exports = {\xff}\n", ".eleventy.js:1: not UTF-8"),
    (
        "eleventy",
        "_data/metadata.json",
        b'{"url": "https://e.example/",}',
        "metadata.json: cannot read",
    ),
    (
        "pelican",
        "pelicanconf.py",
        b'SITEURL = "https://p.example"\x00\n',
        "pelicanconf.py: cannot read",
    ),
    ("pelican", "pelicanconf.py", b"X = " + b"(" * 100_000 + b")" * 100_000, "pelicanconf.py"),
    ("hugo", "hugo.json", b"[" * 100_000 + b"]" * 100_000, "hugo.json: cannot read"),
]


@pytest.mark.parametrize(("generator", "name", "data", "said"), BROKEN_SITES)
def test_an_unreadable_site_config_is_one_line_naming_the_file(
    tmp_path: Path, generator: str, name: str, data: bytes, said: str
) -> None:
    if generator == "eleventy" and name != ".eleventy.js":
        _write(tmp_path / ".eleventy.js", "module.exports = {};\n")
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(data)
    result = CliRunner().invoke(main, ["init", "--from", generator, str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.output.splitlines()
    assert line.startswith("error: ") and said in line, line
    assert not (tmp_path / "pressroom").exists()


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("hugo.toml", 'baseURL = "https://h.example/"\npermalinks = ["/:slug/"]\n', "permalinks"),
        ("hugo.yaml", 'baseURL: "https://h.example/"\npermalinks:\n  2024: "/:slug/"\n', ""),
        ("hugo.toml", 'baseURL = "https://h.example/"\ntimeZone = "Mars/Olympus"\n', "Mars"),
        ("hugo.toml", 'baseURL = "https://h.example:99999/"\n', "publication.url"),
        (
            "hugo.toml",
            'baseURL = "https://h.example/"\n[permalinks]\nposts = "/../:slug/"\n',
            '".."',
        ),
    ],
)
def test_what_a_site_config_says_wrongly_is_a_check_line_and_the_config_loads(
    tmp_path: Path, name: str, text: str, said: str
) -> None:
    _write(tmp_path / name, text)
    _write(tmp_path / "content/posts/a.md", '+++\ntitle = "A"\ndate = 2024-02-03\n+++\nB.\n')
    _write(tmp_path / "content/2024/b.md", '+++\ntitle = "B"\ndate = 2024-02-03\n+++\nB.\n')
    result = CliRunner().invoke(main, ["init", "--from", "hugo", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert said in "\n".join(line for line in result.output.splitlines() if "check:" in line)
    cfg = config.load(tmp_path / "pressroom" / "config.yaml")  # what init wrote works
    urls = sorted(a.url for a in articles.load(cfg, NOW).articles)
    assert all("/../" not in url and url.startswith(cfg.publication.url) for url in urls), urls


# The content folder was written as "../" + path.strip("./"), which ate the dots of a folder
# outside the site ("../common/content" became the site's own "common/content") and of a
# hidden one (".posts" became "posts"): the publication read the wrong folder, or none
@pytest.mark.parametrize(
    ("content_dir", "folder"),
    [
        ("../common/content", "common/content"),
        (".posts", "site/.posts"),
        ("./notes/", "site/notes"),
    ],
)
def test_the_content_folder_is_the_one_the_site_config_names(
    tmp_path: Path, content_dir: str, folder: str
) -> None:
    site = tmp_path / "site"
    _write(site / "hugo.toml", f'baseURL = "https://h.example/"\ncontentDir = "{content_dir}"\n')
    _write(tmp_path / folder / "a.md", '+++\ntitle = "A"\ndate = 2024-02-03\n+++\nB.\n')
    cfg = _init("hugo", site)
    [source] = cfg.sources
    assert Path(source.settings.path).resolve() == (tmp_path / folder).resolve()
    [a] = articles.load(cfg, NOW).articles
    assert a.title == "A"


def test_an_eleventy_input_folder_outside_the_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _write(site / "eleventy.config.js", 'export default { dir: { input: "../src" } };\n')
    _write(tmp_path / "src/blog/one.md", "---\ntitle: One\ndate: 2021-01-01\n---\nB.\n")
    [a] = articles.load(_init("eleventy", site), NOW).articles
    assert a.title == "One"
