"""The digest pipeline in one call: load articles, read the last sent issue, build, render.

``prepare`` is what ``digest build|check|preview``, the preview server and ``send`` share,
so every one of them sees exactly the same issue for the same inputs and clock reading.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pressroom.config import Config
from pressroom.digest.issue import build_issue, check_ctas, window_start
from pressroom.digest.render import render
from pressroom.errors import ArticleError, UsageError
from pressroom.models import Issue, RenderedIssue, SentIssue


@dataclass(frozen=True)
class Prepared:
    """An issue ready to preview or send, and the articles that could not be read."""

    issue: Issue
    rendered: RenderedIssue
    articles_errors: tuple[ArticleError, ...]


def prepare(
    config: Config,
    now: datetime,
    *,
    since: datetime | None = None,
    since_last: bool = False,
    pins: Sequence[str] = (),
    exclude_tags: Sequence[str] = (),
    warn: Callable[[str], None] | None = None,
    last_sent: SentIssue | None,
) -> Prepared:
    """Load, choose and render the issue after ``last_sent`` (the ledger's last sent issue,
    None before the first); raises NothingToSend when there is none."""
    from pressroom.content import articles as articles_mod

    if since is not None and since_last:
        raise UsageError("--since and --since-last cannot be used together; pick one")
    check_ctas(config)
    previous = last_sent
    if since_last and previous is None:
        raise UsageError(
            "--since-last: no issue has been sent yet; leave it out to use digest.window "
            f"({_span(config)})"
        )
    start = window_start(config, now, previous, since)
    # pinned articles may be older than the window, so then every article is loaded
    loaded = articles_mod.load(config, now, since=None if pins else start, warn=warn)
    issue = build_issue(
        config,
        loaded.articles,
        now=now,
        last_sent=previous,
        since=since,
        pins=pins,
        exclude_tags=exclude_tags,
    )
    return Prepared(issue, render(issue, config), tuple(loaded.errors))


def _span(config: Config) -> str:
    seconds = int(config.digest.window.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"
