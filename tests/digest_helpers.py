"""Shared builders for the digest tests: a publication config and articles, made in code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pressroom import config as config_mod
from pressroom.content.text import render_body
from pressroom.models import Article, Author, Image

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

BASE_CONFIG = """\
publication:
  name: The Example Times
  url: https://news.example/
  language: en
  timezone: UTC
  logo: https://news.example/logo.png
  postal_address: 1 Example Street, Springfield
sources: []
digest:
  window: 7d
  max_articles: 10
{digest}
cta:
{cta}
sending:
  unsubscribe_url: https://news.example/unsubscribe
state: state
"""

PATREON = """\
  - kind: patreon
    url: https://www.patreon.com/example
    headline: Help us grow.
    text: Support The Example Times on Patreon!
    button: Become a patron
    hide_for_tags: [patron]
"""


def write_config(root: Path, *, digest: str = "", cta: str = PATREON, extra: str = "") -> Path:
    """Write a config.yaml into ``root``; ``digest`` lines are indented under digest:."""
    root.mkdir(parents=True, exist_ok=True)
    base = BASE_CONFIG
    # a digest key given by the test replaces the base one (config.yaml rejects duplicates)
    for key in re.findall(r"^(\w+):", digest, re.M):
        base = re.sub(rf"^  {key}:.*\n", "", base, count=1, flags=re.M)
    body = base.format(
        digest="\n".join("  " + line for line in digest.splitlines()),
        cta=cta if cta.strip() else "  []",
    )
    if not cta.strip():
        body = body.replace("cta:\n  []", "cta: []")
    path = root / "config.yaml"
    path.write_text(body + extra, encoding="utf-8")
    return path


def load_config(root: Path, **kw: str) -> config_mod.Config:
    return config_mod.load(write_config(root, **kw))


def article(
    n: int,
    *,
    hours_ago: float | None = None,
    categories: tuple[str, ...] = ("World",),
    tags: tuple[str, ...] = (),
    image: bool = True,
    url: str | None = None,
    summary: str | None = None,
) -> Article:
    """Article number ``n``, published ``hours_ago`` (default 2 + 5n) hours before NOW."""
    published = NOW - timedelta(hours=2 + 5 * n if hours_ago is None else hours_ago)
    slug = f"story-{n}"
    return Article(
        id=f"https://news.example/{slug}/",
        url=url or f"https://news.example/{slug}/",
        slug=slug,
        title=f"Story number {n} & more",
        published=published,
        updated=None,
        authors=(Author("Jo Writer"),),
        categories=categories,
        tags=tags,
        summary=summary if summary is not None else f"What happened in story {n}.",
        image=Image(f"https://news.example/img/{n}.jpg", f"Picture {n}", width=1200, height=800)
        if image
        else None,
        body="body",
        body_format="text",
        base_url="https://news.example/",
        source=f"content/{slug}.txt",
        renderer=render_body,
    )


@dataclass(frozen=True)
class Sent:
    """What the ledger reports about the last sent issue."""

    number: int
    sent_at: datetime
    window_end: datetime
