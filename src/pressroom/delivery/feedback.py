"""Pull sync: every provider's suppression lists, read to the end, through the one policy.

``sync`` is what ``pressroom suppressions sync`` and ``weekly`` (``bounces.sync``) run. For
each provider it builds the adapter, and for each of the adapter's ``suppression_lists``
asks ``pull_suppressions`` for the pages since that list's cursor, applies each page with
``audience.events.apply`` (so a sync cut short keeps what it applied), and only when the
list was read to its end moves the cursor on (the newest entry's time; the next sync starts
a day before it, since providers date entries loosely and applying an entry twice is free).
A provider that cannot be reached, or whose credentials are missing, becomes a warning: the
run goes on with the suppressions it already has.

Each event that carries no issue is attributed, for ``pressroom stats``, to the last issue
the ledger sent that address before the event happened.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from pressroom.audience import events
from pressroom.audience import subscribers as subs
from pressroom.config import Config
from pressroom.delivery.providers._pull import parse_time
from pressroom.delivery.providers.base import Provider
from pressroom.errors import ProviderError, UsageError

OVERLAP = timedelta(days=1)


@dataclass
class ProviderSync:
    """What one provider's sync did."""

    provider: str
    lists: list[str] = field(default_factory=list)  # read to the end
    pages: int = 0
    applied: events.Applied = field(default_factory=events.Applied)
    warning: str | None = None


@dataclass
class SyncReport:
    """What one ``sync`` did, provider by provider."""

    providers: list[ProviderSync] = field(default_factory=list)

    @property
    def applied(self) -> events.Applied:
        total = events.Applied()
        for p in self.providers:
            total.add(p.applied)
        return total

    @property
    def warnings(self) -> list[str]:
        return [p.warning for p in self.providers if p.warning]

    def summary(self) -> str:
        """``suppressions: 3 newly suppressed (2 bounced, 1 complained) from mailgun``."""
        names = ", ".join(p.provider for p in self.providers) or "no provider"
        return f"suppressions: {self.applied.summary()} from {names}"


def pullable(config: Config, name: str | None = None) -> list[str]:
    """The providers to sync: ``name``, or the sending one and every configured one that has
    suppression lists."""
    from pressroom.delivery import providers

    if name is not None:
        cls = providers.get(name, where="--provider")
        if not cls.pulls_from(config):
            able = [n for n in providers.registry.names() if providers.get(n).pulls_from(config)]
            raise UsageError(
                f"--provider {name}: {name} keeps no suppression list to pull; "
                f"use one of {', '.join(able)}"
            )
        return [name]
    wanted = [config.sending.provider, *sorted(config.providers)]
    out: list[str] = []
    for n in wanted:
        if n not in out and providers.get(n).pulls_from(config):
            out.append(n)
    return out


def sync_enabled(config: Config) -> bool:
    """Whether ``weekly`` syncs: ``bounces.sync``, by default on when there is something to pull."""
    if config.bounces.sync is not None:
        return config.bounces.sync
    return bool(pullable(config))


def sync(
    config: Config,
    *,
    now: datetime,
    provider: str | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> SyncReport:
    """Pull the providers' suppression lists and apply them (see the module docstring)."""
    from pressroom.delivery.send import make_provider

    report = SyncReport()
    for name in pullable(config, provider):
        result = ProviderSync(name)
        report.providers.append(result)
        try:
            adapter = make_provider(config, name, os.environ if env is None else env, session)
        except ProviderError as e:
            result.warning = f"{name}: not synced: {e.message}"
            continue
        try:
            _sync_one(config, adapter, result, now=now, since=since, dry_run=dry_run)
        except ProviderError as e:
            result.warning = f"{e.message} (sync stopped; suppressions already known still apply)"
        finally:
            adapter.close()
    return report


def _sync_one(
    config: Config,
    adapter: Provider,
    result: ProviderSync,
    *,
    now: datetime,
    since: datetime | None,
    dry_run: bool,
) -> None:
    for list_ in adapter.suppression_lists:
        start = since
        if start is None:
            stored = parse_time(events.cursor(config, adapter.name, list_))
            start = stored - OVERLAP if stored is not None else None
        newest: datetime | None = None
        for page in adapter.pull_suppressions(list_, start, now):
            result.pages += 1
            applied = events.apply(
                config, page, now=now, issue_of=issue_attribution(config, page), dry_run=dry_run
            )
            result.applied.add(applied)
            if not dry_run:
                adapter.acknowledge(list_)
            for e in page:
                if newest is None or e.time > newest:
                    newest = e.time
        result.lists.append(list_)
        if newest is not None and not dry_run:
            previous = parse_time(events.cursor(config, adapter.name, list_))
            if previous is None or newest > previous:
                events.set_cursor(config, adapter.name, list_, newest.isoformat(), now=now)


def issue_attribution(config: Config, page: Sequence[events.Event]) -> events.IssueOf | None:
    """Attribute an event to the last issue sent to its address before it (one ledger read
    per page)."""
    wanted = {subs.key(e.address.strip()) for e in page if e.issue is None}
    if not wanted or not config.state_db.exists():
        return None
    sent: dict[str, list[tuple[float, int]]] = {}
    try:
        db = sqlite3.connect(f"file:{config.state_db}?mode=ro", uri=True, timeout=30)
        try:
            marks = ",".join("?" * len(wanted))
            rows = db.execute(
                "SELECT lower(email), issue, updated_at FROM deliveries "
                f"WHERE state = 'sent' AND lower(email) IN ({marks})",
                sorted(wanted),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None  # no ledger yet (or not readable): the events simply carry no issue
    for email, issue, at in rows:
        sent.setdefault(email, []).append((float(at or 0), int(issue)))

    def issue_of(address: str, when: datetime) -> int | None:
        moment = when.timestamp()
        best = [issue for at, issue in sent.get(subs.key(address), []) if at <= moment]
        return max(best) if best else None

    return issue_of
