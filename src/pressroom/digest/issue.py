"""Choosing what goes into one weekly issue: its window, articles, lead, sections and CTAs.

Pure: a function of the config, the loaded articles, the clock reading and the last sent
issue (read from the ledger by ``pressroom.digest``). Subject and preheader are Jinja
expressions from config, rendered here so that every later stage sees final text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jinja2

from pressroom.config import Config, CtaConfig, UtmConfig
from pressroom.errors import ConfigError, DigestError, NothingToSend, UsageError
from pressroom.models import Article, CallToAction, Issue, SentIssue
from pressroom.textpolicy import one_line

# Brand colour and a text glyph per kind; a glyph needs no hosted image (images would need
# absolute URLs that every publication would have to serve) and survives image blocking.
CTA_KINDS: dict[str, tuple[str, str | None]] = {
    "patreon": ("#FF424D", "♥"),
    "kofi": ("#13C3FF", "☕"),
    "paypal": ("#0070BA", "♥"),
    "buymeacoffee": ("#FFDD00", "☕"),
    "liberapay": ("#F6C915", "♥"),
    "github-sponsors": ("#BF3989", "♥"),
    "substack": ("#FF6719", "✉"),
    "custom": ("#1A73E8", None),
}


def build_issue(
    config: Config,
    articles: Sequence[Article],
    *,
    now: datetime,
    last_sent: SentIssue | None,
    since: datetime | None = None,
    pins: Sequence[str] = (),
    exclude_tags: Iterable[str] = (),
) -> Issue:
    """The next issue: articles in its window (or pinned), lead, sections, CTAs, subject."""
    digest = config.digest
    tz = config.publication.tz
    number = last_sent.number + 1 if last_sent else 1
    start = window_start(config, now, last_sent, since)
    excluded = frozenset(digest.exclude_tags) | frozenset(exclude_tags)

    pinned: list[Article] = []
    for pin in pins:
        article = _pinned(articles, pin)
        if article not in pinned:
            pinned.append(article)

    fresh = [
        a
        for a in articles
        if start < a.published <= now and not (excluded & set(a.tags)) and a not in pinned
    ]
    fresh.sort(key=lambda a: (a.published, a.id), reverse=True)
    chosen = (pinned + fresh)[: digest.max_articles]
    if not chosen:
        raise NothingToSend(_nothing_message(config, now, last_sent, since, start))

    lead = chosen[0]
    rest = chosen[1:]
    sections = _sections(rest) if digest.sections else (("", tuple(rest)),)
    ordered = (lead, *(a for _, group in sections for a in group))
    ctas = tuple(cta_for_issue(c, i, number, len(ordered)) for i, c in enumerate(config.cta))

    issue = Issue(
        number=number,
        date=now.astimezone(tz),
        window_start=start.astimezone(tz),
        window_end=now.astimezone(tz),
        articles=ordered,
        lead=lead,
        sections=sections,
        ctas=ctas,
        subject="",
        preheader="",
    )
    subject = _expression(config, "digest.subject", digest.subject, issue)
    preheader = (
        _expression(config, "digest.preheader", digest.preheader, issue)
        if digest.preheader
        else lead.summary
    )
    return dataclasses.replace(issue, subject=subject, preheader=preheader)


def window_start(
    config: Config, now: datetime, last_sent: SentIssue | None, since: datetime | None
) -> datetime:
    """Where the issue's window opens: --since, else the last sent issue, else digest.window."""
    if since is not None:
        return since
    if last_sent is not None:
        return last_sent.window_end
    return now - config.digest.window


def _nothing_message(
    config: Config, now: datetime, last: SentIssue | None, since: datetime | None, start: datetime
) -> str:
    tz = config.publication.tz
    if since is None and last is not None:
        day = last.sent_at.astimezone(tz).date().isoformat()
        return f"no new articles since issue {last.number} ({day}); nothing to send"
    return f"no new articles since {start.astimezone(tz):%Y-%m-%d %H:%M}; nothing to send"


def _sections(articles: Sequence[Article]) -> tuple[tuple[str, tuple[Article, ...]], ...]:
    """Group by first category, sections ordered by their newest article."""
    groups: dict[str, list[Article]] = {}
    for a in articles:
        groups.setdefault(a.categories[0] if a.categories else "More", []).append(a)
    return tuple((name, tuple(group)) for name, group in groups.items())


def cta_for_issue(cfg: CtaConfig, index: int, number: int, count: int) -> CallToAction:
    """The block as it appears in issue ``number``: variant chosen, position resolved."""
    headline, text, button, url = cfg.headline, cfg.text, cfg.button, cfg.url
    if cfg.variants:
        # the base block is variant 0, so a single variant alternates with the base
        i = (number - 1) % (len(cfg.variants) + 1)
        if i:
            v = cfg.variants[i - 1]
            headline = v.headline if v.headline is not None else headline
            text = v.text if v.text is not None else text
            button = v.button if v.button is not None else button
            url = v.url if v.url is not None else url
    position = cfg.position
    if position.startswith("after:"):
        n = int(position[6:])
        position = "top" if n == 0 else "bottom" if n >= count else position
    color, icon = CTA_KINDS[cfg.kind]
    return CallToAction(
        name=cfg.name or (cfg.kind if cfg.kind != "custom" else f"cta-{index + 1}"),
        kind=cfg.kind,
        url=url,
        headline=headline,
        text=text,
        button=button,
        position=position,
        color=cfg.color or color,
        icon=cfg.icon if cfg.icon is not None else icon,
        hide_for_tags=frozenset(cfg.hide_for_tags),
    )


def check_ctas(config: Config) -> None:
    """Reject CTA settings that load as valid YAML but cannot work (names file and line)."""
    seen: set[str] = set()
    for i, cfg in enumerate(config.cta):
        where = f"cta.{i}"
        for key, url in [
            ("url", cfg.url),
            *((f"variants.{j}.url", v.url) for j, v in enumerate(cfg.variants)),
        ]:
            if url is not None and urlsplit(url).scheme not in ("http", "https"):
                raise ConfigError(
                    f"{config.where(f'{where}.{key}')}: {where}.{key}: expected an absolute "
                    f'http(s) URL, got "{url}"'
                )
        if cfg.color is not None and not _is_colour(cfg.color):
            raise ConfigError(
                f"{config.where(f'{where}.color')}: {where}.color: expected a colour like "
                f'"#FF424D", got "{cfg.color}"'
            )
        name = cta_for_issue(cfg, i, 1, 1).name
        if name in seen:
            raise ConfigError(
                f'{config.where(where)}: {where}: another block is already named "{name}"; '
                f"give each block its own name:"
            )
        seen.add(name)


def _is_colour(value: str) -> bool:
    v = value.lstrip("#")
    return (
        value.startswith("#") and len(v) in (3, 6) and all(c in "0123456789abcdefABCDEF" for c in v)
    )


# --- UTM -------------------------------------------------------------------------------


def add_utm(url: str, utm: UtmConfig, number: int | None, content: str) -> str:
    """``url`` with utm_* parameters added (existing ones and the query string are kept)."""
    if not utm.enabled:
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    have = {k for k, _ in query}
    campaign = utm.campaign.replace("{number}", str(number)) if number is not None else "feed"
    wanted = [
        ("utm_source", utm.source),
        ("utm_medium", utm.medium),
        ("utm_campaign", campaign),
        ("utm_content", content),
    ]
    extra = [(k, v) for k, v in wanted if k not in have and v]
    if not extra:
        return url
    joined = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


# --- subject and preheader ----------------------------------------------------------------


# English month names whatever the locale, so golden files and subjects are stable
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def longdate(value: datetime | date) -> str:
    """``25 November 2026`` (the same in every locale, so golden files are stable)."""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def _pinned(articles: Sequence[Article], pin: str) -> Article:
    """The article ``--pin`` names: by slug, or by URL or id where a slug is not enough."""
    found = [a for a in articles if a.slug == pin]
    if not found:
        found = [a for a in articles if pin in (a.url, a.id)]
    if not found:
        raise UsageError(
            f'--pin: no article with slug "{pin}"; `pressroom articles` shows the slugs'
        )
    if len(found) > 1:
        # two files in two folders (Hugo sections, Jekyll categories) may share a slug: the
        # last one used to win without a word
        urls = ", ".join(sorted(a.url for a in found)[:3]) + (", …" if len(found) > 3 else "")
        raise UsageError(
            f'--pin: {len(found)} articles have the slug "{pin}" ({urls}); pin one by its URL'
        )
    return found[0]


_EXPR_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
_EXPR_ENV.filters["longdate"] = longdate


def _expression(config: Config, key: str, source: str, issue: Issue) -> str:
    """Render a one-line Jinja template from config (subject, preheader)."""
    where = config.where(key)
    context: dict[str, Any] = {"publication": config.publication, "issue": issue}
    try:
        text = _EXPR_ENV.from_string(source).render(context)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"{where}: {key}: template syntax error: {e.message}") from None
    except jinja2.UndefinedError as e:
        raise ConfigError(
            f"{where}: {key}: {e.message}; available: publication.name, publication.url, "
            "issue.number, issue.date, issue.lead.title, issue.articles"
        ) from None
    except Exception as e:  # a filter or attribute that raises: still a config problem
        raise DigestError(f"{where}: {key}: cannot render: {e}") from e
    return one_line(text)  # the text policy: a header line, nothing left open to run past it
