"""Delivery feedback from providers, and the one policy that turns it into suppressions.

Every path that learns what happened to a message — the pull sync of each provider's
suppression lists, signed webhooks, the SMTP bounce mailbox, a refusal at send time — builds
``Event`` records and hands them to ``apply``; nothing else writes bounce or complaint
suppressions (besides the editor's own ``subscribers unsubscribe --reason``).

The API (for pull sync, webhooks and the bounce mailbox alike)::

    from pressroom.audience import events

    e = events.Event(
        provider="mailgun",            # the adapter's name (or "imap" for the bounce mailbox)
        kind=events.HARD_BOUNCE,       # HARD_BOUNCE, SOFT_BOUNCE, COMPLAINT, UNSUBSCRIBE, DELIVERED
        address="reader@example.org",  # any case; normalised like subscriber addresses
        time=when,                     # aware datetime of the event (naive is taken as UTC)
        issue=42,                      # issue number when the provider echoes it, else None
        message_id="<...>",            # provider or RFC 5322 message id when known, else None
        reason="550 5.1.1 no such user",  # the provider's own words, kept in suppressed.csv
        id="provider-event-id",        # the provider's event id when it has one, else None
    )
    result = events.apply(config, [e, ...], now=now)   # -> Applied
    result.suppressed      # [(address, reason, detail)] newly written to suppressed.csv
    result.duplicates      # events seen before (same ``key``): nothing changed for them
    result.invalid         # [(address, problem)] events whose address is not an address

The policy, applied in one place:

- ``hard_bounce`` → suppressed at once, reason ``bounced``; ``complaint`` → ``complained``;
  ``unsubscribe`` (a provider-side unsubscribe) → ``unsubscribed``. The row's ``date`` is the
  event's time and its ``detail`` column the provider and its reason.
- ``soft_bounce`` is counted per address: once soft bounces fall in ``bounces.soft_limit``
  (default 3) different issues with no delivery between them, the address is suppressed as
  ``bounced`` (dated at the bounce that reached the limit). A ``delivered`` event resets the
  count: it splits the address's soft bounces, ordered by their own times, into runs.
  Soft bounces with no known issue count by UTC day (a weekly newsletter sends once a day at
  most); ``apply(issue_of=...)`` lets the caller attribute them to the issue from its ledger.
- Events are keyed (``Event.key``: the provider's event id when given, else a hash of
  provider, kind, address, time, issue and message id) and remembered in the state database
  (``<state>/state.db``, tables ``feedback_events`` and ``feedback_cursors``): applying the
  same event twice changes nothing. Order of arrival does not matter either: runs are cut by
  the events' own times, so a late delivery resets only the bounces before it and a late
  soft bounce joins the run it belongs to; the outcome is what applying the events in time
  order would give. A suppression is never lifted by a later event (only the editor removes
  a row).
- ``suppressed.csv`` is written through ``subscribers.suppress_entries`` (one atomic rewrite
  under the subscribers lock, the one signups and unsubscribes take). The events are
  committed only after that write succeeded, so a failed write is retried by the next apply.

``cursor``/``set_cursor`` keep where each provider's pull sync stopped (one row per provider
and list), in the same database.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pressroom import textpolicy
from pressroom.audience import subscribers as subs
from pressroom.errors import LedgerError

if TYPE_CHECKING:
    from pressroom.config import Config

HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCE = "soft_bounce"
COMPLAINT = "complaint"
UNSUBSCRIBE = "unsubscribe"
DELIVERED = "delivered"
KINDS = (HARD_BOUNCE, SOFT_BOUNCE, COMPLAINT, UNSUBSCRIBE, DELIVERED)
# the suppression reason each kind writes at once (soft bounces only after soft_limit)
REASON_OF = {HARD_BOUNCE: "bounced", COMPLAINT: "complained", UNSUBSCRIBE: "unsubscribed"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_events (
    key         TEXT PRIMARY KEY,       -- Event.key: one row per event ever applied
    provider    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    address     TEXT NOT NULL,          -- subscribers.key() of the address
    time        TEXT NOT NULL,          -- UTC, fixed width, so text order is time order
    issue       INTEGER,
    message_id  TEXT,
    reason      TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_events_address ON feedback_events(address, kind);
CREATE INDEX IF NOT EXISTS feedback_events_issue ON feedback_events(issue, kind);
CREATE TABLE IF NOT EXISTS feedback_cursors (
    provider    TEXT NOT NULL,
    list        TEXT NOT NULL,          -- which of the provider's lists ("bounces", "complaints")
    cursor      TEXT NOT NULL,          -- provider-specific: a time, a paging URL, a token
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (provider, list)
);
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a provider reported about one address (see the module docstring)."""

    provider: str
    kind: str
    address: str
    time: datetime
    issue: int | None = None
    message_id: str | None = None
    reason: str = ""
    id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f'unknown event kind "{self.kind}"; use one of {", ".join(KINDS)}')
        if self.time.tzinfo is None:
            object.__setattr__(self, "time", self.time.replace(tzinfo=UTC))
        # what a remote server said (a webhook, a pulled page, a bounce mail's Subject) is text
        # from outside: it reaches suppressed.csv's detail, state.db and the terminal
        if self.reason and not self.reason.isprintable():
            object.__setattr__(self, "reason", textpolicy.one_line(self.reason))

    @property
    def key(self) -> str:
        """A stable key: the same report of the same event always gives the same key."""
        if self.id:
            return f"{self.provider}:{self.kind}:{self.id}"
        parts = (
            self.provider,
            self.kind,
            subs.key(self.address.strip()),
            _utc(self.time),
            "" if self.issue is None else str(self.issue),
            self.message_id or "",
        )
        digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
        return f"{self.provider}:{self.kind}:{digest}"


@dataclass
class Applied:
    """What one ``apply`` did."""

    new: int = 0  # events not seen before
    duplicates: int = 0  # events seen before: no change
    suppressed: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # (address, reason, detail)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (address, problem)
    kinds: Counter[str] = field(default_factory=Counter)  # new events by kind

    def add(self, other: Applied) -> None:
        """Fold another ``apply``'s result into this one."""
        self.new += other.new
        self.duplicates += other.duplicates
        self.suppressed.extend(other.suppressed)
        self.invalid.extend(other.invalid)
        self.kinds.update(other.kinds)

    def by_reason(self) -> Counter[str]:
        """Newly suppressed addresses per reason (``bounced``: 2, ``complained``: 1)."""
        return Counter(reason for _, reason, _ in self.suppressed)

    def summary(self) -> str:
        """One line: ``3 newly suppressed (2 bounced, 1 complained)``."""
        counts = self.by_reason()
        if not counts:
            return "0 newly suppressed"
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        return f"{len(self.suppressed)} newly suppressed ({why})"


IssueOf = Callable[[str, datetime], int | None]


def apply(
    config: Config,
    events: Iterable[Event],
    *,
    now: datetime,
    soft_limit: int | None = None,
    issue_of: IssueOf | None = None,
    dry_run: bool = False,
) -> Applied:
    """Apply ``events`` with the one policy; idempotent and order-independent.

    ``soft_limit`` defaults to ``bounces.soft_limit`` of ``config`` (3 when unset);
    ``issue_of(address, time)`` fills in the issue of an event that does not carry one;
    ``dry_run`` reports what would change and changes nothing.
    """
    limit = soft_limit if soft_limit is not None else config.bounces.soft_limit
    result = Applied()
    # a dry run against a publication with no state yet reads an empty in-memory database:
    # it must not leave a state.db behind
    path = config.state_db if config.state_db.exists() or not dry_run else None
    with _connect(path) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            fresh = _record(db, events, now, issue_of, result)
            entries = _decide(db, fresh, limit)
            if dry_run:
                known = subs.load_suppressed(config)
                seen: set[str] = set()
                for address, reason, _when, detail in entries:
                    k = subs.key(address)
                    if k not in known and k not in seen:
                        seen.add(k)
                        result.suppressed.append((address, reason, detail))
                db.execute("ROLLBACK")
                return result
            added = subs.suppress_entries(config, entries, when=now)
            result.suppressed.extend(added)
            db.execute("COMMIT")
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise LedgerError(
                    f"{config.state_db}: cannot record provider events ({e}); nothing was "
                    "changed, run it again"
                ) from e
            raise
    return result


def _record(
    db: sqlite3.Connection,
    events: Iterable[Event],
    now: datetime,
    issue_of: IssueOf | None,
    result: Applied,
) -> list[tuple[Event, str]]:
    """Insert the events not seen before; (event, normalised address) for each of them."""
    fresh: list[tuple[Event, str]] = []
    applied_at = _utc(now)
    for event in events:
        try:
            address = subs.normalise_email(event.address)
        except ValueError as e:
            result.invalid.append((event.address.strip(), str(e)))
            continue
        issue = event.issue
        if issue is None and issue_of is not None:
            issue = issue_of(address, event.time)
        cur = db.execute(
            "INSERT OR IGNORE INTO feedback_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.key,
                event.provider,
                event.kind,
                subs.key(address),
                _utc(event.time),
                issue,
                event.message_id,
                event.reason,
                applied_at,
            ),
        )
        if cur.rowcount == 0:
            result.duplicates += 1
            continue
        result.new += 1
        result.kinds[event.kind] += 1
        fresh.append((event, address))
    return fresh


def _decide(
    db: sqlite3.Connection, fresh: Sequence[tuple[Event, str]], limit: int
) -> list[tuple[str, str, datetime, str]]:
    """The suppressions the fresh events call for: (address, reason, when, detail)."""
    out: list[tuple[str, str, datetime, str]] = []
    recount: dict[str, str] = {}  # key -> address, for soft bounces and deliveries
    for event, address in fresh:
        reason = REASON_OF.get(event.kind)
        if reason is not None:
            out.append((address, reason, event.time, _detail(event.provider, event.reason)))
        elif event.kind in (SOFT_BOUNCE, DELIVERED):
            recount[subs.key(address)] = address
    for k, address in recount.items():
        rows = db.execute(
            "SELECT kind, issue, time, provider, reason FROM feedback_events "
            "WHERE address = ? AND kind IN (?, ?) ORDER BY time, kind",
            (k, SOFT_BOUNCE, DELIVERED),
        ).fetchall()
        run: set[str] = set()
        for kind, issue, t, provider, reason in rows:
            if kind == DELIVERED:
                run.clear()
                continue
            run.add(str(issue) if issue is not None else f"day {t[:10]}")
            if len(run) >= limit:
                detail = _detail(provider, f"{len(run)} soft bounces in a row; last: {reason}")
                out.append((address, "bounced", datetime.fromisoformat(t), detail))
                break
    return out


def _detail(provider: str, reason: str) -> str:
    text = " ".join(reason.split())[:300]
    return f"{provider}: {text}" if text else provider


def soft_bounces(config: Config, address: str) -> int:
    """How many issues in a row ``address`` soft-bounced since its last delivery."""
    k = subs.key(subs.normalise_email(address))
    with _connect(config.state_db) as db:
        last = db.execute(
            "SELECT max(time) FROM feedback_events WHERE address = ? AND kind = ?",
            (k, DELIVERED),
        ).fetchone()[0]
        rows = db.execute(
            "SELECT DISTINCT coalesce(CAST(issue AS TEXT), 'day ' || substr(time, 1, 10)) "
            "FROM feedback_events WHERE address = ? AND kind = ? AND time > ?",
            (k, SOFT_BOUNCE, last or ""),
        ).fetchall()
    return len(rows)


def counts_by_issue(config: Config) -> dict[int, Counter[str]]:
    """Issue number -> distinct addresses per event kind, for the events that know their issue."""
    path = config.state_db
    if not path.exists():
        return {}
    with _connect(path) as db:
        rows = db.execute(
            "SELECT issue, kind, count(DISTINCT address) FROM feedback_events "
            "WHERE issue IS NOT NULL GROUP BY issue, kind"
        ).fetchall()
    out: dict[int, Counter[str]] = {}
    for issue, kind, n in rows:
        out.setdefault(int(issue), Counter())[kind] = int(n)
    return out


def addresses_by_issue(config: Config) -> dict[int, dict[str, set[str]]]:
    """Issue number -> event kind -> the addresses (keys) it happened to."""
    path = config.state_db
    if not path.exists():
        return {}
    with _connect(path) as db:
        rows = db.execute(
            "SELECT DISTINCT issue, kind, address FROM feedback_events WHERE issue IS NOT NULL"
        ).fetchall()
    out: dict[int, dict[str, set[str]]] = {}
    for issue, kind, address in rows:
        out.setdefault(int(issue), {}).setdefault(str(kind), set()).add(str(address))
    return out


def reported_since(config: Config, address: str, since: datetime | None) -> str | None:
    """``complained`` or ``bounced`` when a complaint or hard bounce for ``address`` was
    applied at or after ``since`` (ever, when None), else None.

    Such an event writes nothing when the address is already suppressed as ``unsubscribed``;
    the signup form asks this before it lifts that row, so the order in which a reader left
    and complained does not decide whether the form may bring them back.
    """
    path = config.state_db
    if not path.exists():
        return None
    try:
        k = subs.key(subs.normalise_email(address))
    except ValueError:
        return None  # never recorded: events with such an address are refused as invalid
    with _connect(path) as db:
        kinds = {
            str(kind)
            for (kind,) in db.execute(
                "SELECT DISTINCT kind FROM feedback_events WHERE address = ? AND kind IN (?, ?) "
                "AND applied_at >= ?",
                (k, COMPLAINT, HARD_BOUNCE, "" if since is None else _utc(since)),
            )
        }
    for kind in (COMPLAINT, HARD_BOUNCE):
        if kind in kinds:
            return REASON_OF[kind]
    return None


# --- pull-sync cursors -----------------------------------------------------------------


def cursor(config: Config, provider: str, list_: str) -> str | None:
    """Where the last successful sync of ``provider``'s ``list_`` stopped, or None."""
    if not config.state_db.exists():
        return None
    with _connect(config.state_db) as db:
        row = db.execute(
            "SELECT cursor FROM feedback_cursors WHERE provider = ? AND list = ?",
            (provider, list_),
        ).fetchone()
    return str(row[0]) if row else None


def set_cursor(config: Config, provider: str, list_: str, value: str, *, now: datetime) -> None:
    """Remember where the sync of ``provider``'s ``list_`` got to (after its events applied)."""
    with _connect(config.state_db) as db:
        db.execute(
            "INSERT INTO feedback_cursors VALUES (?, ?, ?, ?) ON CONFLICT (provider, list) "
            "DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            (provider, list_, value, _utc(now)),
        )


# --- the database ----------------------------------------------------------------------


def _utc(moment: datetime) -> str:
    """Fixed-width UTC text (``2026-11-25T14:29:25.000000+00:00``): sorts as time does."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@contextlib.contextmanager
def _connect(path: Path | None) -> Iterator[sqlite3.Connection]:
    """The state database with the feedback tables (autocommit; callers BEGIN themselves);
    None: an empty one in memory."""
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path or ":memory:", isolation_level=None, timeout=30)
    except (sqlite3.Error, OSError) as e:
        raise LedgerError(
            f"{path}: cannot open the state file ({e}); check the path and permissions of "
            "the state: directory"
        ) from e
    try:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise LedgerError(
                f"{path}: cannot use the state file ({e}); check that it is pressroom's "
                "state.db and that the disk has room"
            ) from e
        yield db
    finally:
        db.close()
