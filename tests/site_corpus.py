"""A generated corpus of posts, written out as a Hugo site and as a Pelican site.

The same posts, with the cases a five-year-old site has: TOML, YAML and JSON front matter,
dates with and without a time zone, written slugs, leaf bundles with an image beside the
post, nested folders, upper-case file names, a page outside the posts section, an
article's own URL, drafts, future posts, expired posts (Hugo), hidden posts (Pelican),
multi-line Pelican summaries and titles that need slugifying (accents, punctuation).
Deterministic: post ``n`` is the same on every run.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

HUGO_URL = "https://hugo.example/"
PELICAN_URL = "https://pelican.example"  # Pelican's SITEURL has no trailing slash
TIMEZONE = "Europe/Berlin"

WORDS = (
    "river", "budget", "council", "harvest", "Zoë", "café", "bridge", "election",
    "Q&A:", "don't", "winter", "market", "Straße", "école", "ferry", "library",
)  # fmt: skip
CATEGORIES = ("News", "Culture", "Local Politics", "Science")


@dataclass(frozen=True)
class Post:
    n: int
    title: str
    date: datetime  # naive: the site's time zone, unless ``offset`` is set
    offset: str  # "" or "+02:00" / "Z" written after the date
    category: str
    tags: tuple[str, ...]
    slug: str | None = None
    draft: bool = False
    future: bool = False
    expired: bool = False  # Hugo only (Pelican has no expiry)
    hidden: bool = False  # Pelican only
    bundle: bool = False  # Hugo: posts/<name>/index.md with an image beside it
    nested: bool = False  # Hugo: posts/<year>/<name>.md
    upper: bool = False  # Hugo: an upper-case file name
    own_url: bool = False
    form: str = "toml"  # Hugo front matter: toml, yaml or json

    @property
    def name(self) -> str:
        base = f"post-{self.n:03d}"
        return base.upper() if self.upper else base

    @property
    def written_date(self) -> str:
        return self.date.isoformat(timespec="seconds") + self.offset


def corpus(count: int = 300, seed: int = 14) -> list[Post]:
    """``count`` posts with every case above represented several times."""
    rng = random.Random(seed)
    start = datetime(2020, 1, 3, 8, 0)
    posts = []
    for n in range(count):
        words = rng.sample(WORDS, 3)
        title = f"{words[0].capitalize()} {words[1]} {words[2]} {n}"
        date = start + timedelta(days=n * 5, hours=rng.randrange(0, 14), minutes=rng.randrange(60))
        future = n % 41 == 7
        if future:
            date = datetime(2099, 1, 1 + n % 20, 9, 0)
        posts.append(
            Post(
                n=n,
                title=title,
                date=date,
                offset=("", "", "+02:00", "Z")[n % 4] if not future else "",
                category=CATEGORIES[n % len(CATEGORIES)],
                tags=tuple(sorted({rng.choice(WORDS).strip(":'") for _ in range(2)})),
                # Hugo writes every path in lower case; Pelican keeps a written slug as it is
                slug=(f"custom-slug-{n}", f"Custom-Slug-{n}")[n % 2] if n % 13 == 5 else None,
                draft=n % 17 == 3,
                future=future,
                expired=n % 29 == 11,
                hidden=n % 31 == 9,
                bundle=n % 11 == 4,
                nested=n % 19 == 6 and n % 11 != 4,
                upper=n % 23 == 8,
                own_url=n % 37 == 10,
                form=("toml", "yaml", "json")[n % 3],
            )
        )
    return posts


def _body(post: Post) -> str:
    return (
        f"The opening paragraph of post {post.n}, about {post.title.lower()}.\n\n"
        "<!--more-->\n\nThe rest of the story, with a second paragraph.\n"
    )


# --- Hugo ------------------------------------------------------------------------------


def write_hugo(root: Path, posts: list[Post]) -> None:
    """A Hugo site in ``root``: hugo.toml and content/ (no theme: the RSS is Hugo's own)."""
    (root / "content" / "posts").mkdir(parents=True, exist_ok=True)
    (root / "hugo.toml").write_text(
        f'baseURL = "{HUGO_URL}"\ntitle = "Generated Hugo site"\nlanguageCode = "en-gb"\n'
        f'timeZone = "{TIMEZONE}"\ndisableKinds = ["taxonomy", "term"]\n'
        "[services.rss]\nlimit = -1\n",
        encoding="utf-8",
    )
    (root / "content" / "about.md").write_text(
        '+++\ntitle = "About this site"\ndate = 2020-01-01T00:00:00\n+++\nWho we are.\n',
        encoding="utf-8",
    )
    (root / "content" / "posts" / "_index.md").write_text(
        '+++\ntitle = "Posts"\n+++\n', encoding="utf-8"
    )
    for post in posts:
        fields: dict[str, object] = {
            "title": post.title,
            "date": post.written_date,
            "categories": [post.category],
            "tags": list(post.tags),
        }
        if post.slug:
            fields["slug"] = post.slug
        if post.draft:
            fields["draft"] = True
        if post.expired:
            fields["expiryDate"] = "2021-01-01T00:00:00Z"
        if post.own_url:
            fields["url"] = f"/special/{post.n}/"
        if post.bundle:
            path = root / "content" / "posts" / post.name / "index.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a real JPEG")
            fields["images"] = ["cover.jpg"]
        elif post.nested:
            path = root / "content" / "posts" / f"Y{post.date.year}" / f"{post.name}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            path = root / "content" / "posts" / f"{post.name}.md"
        path.write_text(_hugo_front(fields, post) + _body(post), encoding="utf-8")


def _hugo_front(fields: dict[str, object], post: Post) -> str:
    if post.form == "json":
        return json.dumps(fields, indent=2, ensure_ascii=False) + "\n\n"
    if post.form == "yaml":
        lines = [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items()]
        if not post.offset:  # unquoted: YAML would make it a datetime
            lines[1] = f"date: {post.written_date}"
        return "---\n" + "\n".join(lines) + "\n---\n"
    lines = []
    for key, value in fields.items():
        if key == "date" and not post.offset:
            lines.append(f"date = {post.written_date}")  # a TOML local date-time: no zone
        else:
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    return "+++\n" + "\n".join(lines) + "\n+++\n"


# --- Pelican ---------------------------------------------------------------------------


def write_pelican(root: Path, posts: list[Post]) -> None:
    """A Pelican site in ``root``: pelicanconf.py, publishconf.py and content/."""
    content = root / "content"
    (content / "pages").mkdir(parents=True, exist_ok=True)
    (root / "pelicanconf.py").write_text(
        'AUTHOR = "Generator"\nSITENAME = "Generated Pelican site"\nSITEURL = ""\n'
        f'PATH = "content"\nTIMEZONE = "{TIMEZONE}"\nDEFAULT_LANG = "en"\n'
        "WITH_FUTURE_DATES = False\nFEED_MAX_ITEMS = 10000\n"
        'FEED_ALL_ATOM = "feeds/all.atom.xml"\nCATEGORY_FEED_ATOM = None\n'
        "TRANSLATION_FEED_ATOM = None\nAUTHOR_FEED_ATOM = None\nAUTHOR_FEED_RSS = None\n"
        "DEFAULT_PAGINATION = False\n",
        encoding="utf-8",
    )
    (root / "publishconf.py").write_text(
        "import os\nimport sys\n\nsys.path.append(os.curdir)\n"
        f'from pelicanconf import *\n\nSITEURL = "{PELICAN_URL}"\nRELATIVE_URLS = False\n',
        encoding="utf-8",
    )
    (content / "pages" / "about.md").write_text(
        "Title: About\nDate: 2020-01-01\n\nA page, not an article.\n", encoding="utf-8"
    )
    for post in posts:
        if post.expired:
            continue
        lines = [
            f"Title: {post.title}",
            f"Date: {post.date:%Y-%m-%d %H:%M}",
            f"Category: {post.category}",
            f"Tags: {', '.join(post.tags)}",
            "Authors: Ann Writer, Bo Editor",
        ]
        if post.n % 5 == 0:
            lines += ["Summary: A summary written over", "    two lines for post " + str(post.n)]
        if post.slug:
            lines.append(f"Slug: {post.slug}")
        if post.draft:
            lines.append("Status: draft")
        elif post.hidden:
            lines.append("Status: hidden")
        if post.own_url:
            lines += [f"URL: special/{post.n}.html", f"Save_as: special/{post.n}.html"]
        folder = content / post.category.lower().replace(" ", "-")
        folder.mkdir(exist_ok=True)
        (folder / f"{post.name}.md").write_text(
            "\n".join(lines) + "\n\n" + _body(post).replace("<!--more-->\n\n", ""),
            encoding="utf-8",
        )
