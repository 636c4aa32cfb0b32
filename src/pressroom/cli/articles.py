"""`pressroom articles`: list what the configured sources give."""

from __future__ import annotations

import json
from typing import Any

import click

from pressroom.cli.app import App, now_option, parse_since, pass_app, since_option
from pressroom.errors import UsageError
from pressroom.models import Article

_WIDTHS = {"author": 24, "categories": 24}


@click.command("articles")
@since_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--nl", "as_lines", is_flag=True, help="Print one JSON object per line (JSON Lines).")
@now_option
@pass_app
def articles(app: App, since: str | None, as_json: bool, as_lines: bool, now: str | None) -> None:
    """List the published articles of every source, newest first, with their slugs.

    Drafts and future-dated articles are left out, duplicates (same URL) shown once.
    Warnings go to stderr; a broken article is reported there with its file and line,
    skipped, and makes the exit status 1.

    \b
    Example:
        pressroom articles
        pressroom articles --since 7d
        pressroom articles --json --now 2026-11-25T09:00 | jq '.[].title'
    """
    from pressroom.content import articles as articles_mod

    if as_json and as_lines:
        raise UsageError("--json and --nl: choose one output format")
    config = app.config
    moment = app.now(now)
    loaded = articles_mod.load(config, moment, since=parse_since(moment, since), warn=app.warn)
    tz = config.publication.tz
    if as_json:
        app.out(json.dumps([_record(a) for a in loaded.articles], ensure_ascii=False, indent=2))
    elif as_lines:
        for article in loaded.articles:
            app.out(json.dumps(_record(article), ensure_ascii=False))
    else:
        _table(app, loaded.articles, tz)
    skipped = f", {len(loaded.errors)} skipped" if loaded.errors else ""
    app.info(f"{len(loaded.articles)} articles{skipped}")
    for error in loaded.errors:
        app.problem(error.message)
    app.finish()


def _record(article: Article) -> dict[str, Any]:
    image = article.image
    return {
        "id": article.id,
        "slug": article.slug,
        "url": article.url,
        "title": article.title,
        "published": article.published.isoformat(),
        "updated": article.updated.isoformat() if article.updated else None,
        "authors": [a.name for a in article.authors],
        "categories": list(article.categories),
        "tags": list(article.tags),
        "summary": article.summary,
        "image": {"url": image.url, "alt": image.alt} if image else None,
        "source": article.source,
    }


def _table(app: App, items: tuple[Article, ...], tz: Any) -> None:
    rows = [
        (
            a.published.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            a.slug,
            _cut(", ".join(x.name for x in a.authors) or "-", _WIDTHS["author"]),
            _cut(", ".join(a.categories) or "-", _WIDTHS["categories"]),
            a.title,
        )
        for a in items
    ]
    # the slug is what `digest build --pin` takes, so the table shows it whole
    header = ("DATE", "SLUG", "AUTHOR", "CATEGORIES", "TITLE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        app.out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


COMMANDS: list[click.Command] = [articles]
