"""The delivery ledger: a SQLite file (WAL) that makes sending exact across crashes.

Before the first message of an issue goes out, ``freeze`` stores the rendered issue (subject,
every variant's HTML and text) and one row per recipient in state ``pending``. Sending moves
rows ``pending → in_flight → sent | failed``; the ``in_flight`` mark is committed once a
request is built, right *before* it goes out, for exactly the readers it carries, and its
result right after it answers, so after a crash:

- ``sent`` rows were accepted and are never sent again;
- ``pending`` rows were certainly not sent;
- ``in_flight`` rows may or may not have gone out. The next run turns them into
  ``uncertain``, reports them, and sends them only when told to (``--resend-uncertain``).

``skipped`` rows unsubscribed after the freeze; ``dropped`` rows were uncertain and the
publisher chose not to resend them (``--drop-uncertain``: many were delivered, so they are not
``failed``). ``--resend-failed`` puts ``failed`` rows back to ``pending``, reopening the issue
if it was settled. An issue is ``sent`` once no row is left ``pending``, ``in_flight`` or
``uncertain``; ``last_sent`` is what numbers the next issue
and starts its article window.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pressroom.errors import LedgerError, write_fix
from pressroom.models import RenderedIssue, SentIssue, rendered_from_json, rendered_to_json

PENDING, IN_FLIGHT, SENT, FAILED, UNCERTAIN, SKIPPED, DROPPED = (
    "pending",
    "in_flight",
    "sent",
    "failed",
    "uncertain",
    "skipped",
    "dropped",
)
STATES = (PENDING, IN_FLIGHT, SENT, FAILED, UNCERTAIN, SKIPPED, DROPPED)
# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF)
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 3, 8, 10, 13, 14
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# how long a write waits for another program's transaction on the state file to end
BUSY_TIMEOUT = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issues (
    number      INTEGER PRIMARY KEY,
    status      TEXT NOT NULL,          -- 'sending' until every row is settled, then 'sent'
    subject     TEXT NOT NULL,
    rendered    TEXT NOT NULL,          -- JSON of the RenderedIssue, byte for byte
    segment     TEXT NOT NULL,          -- JSON: list, tag the recipients were chosen by
    window_end  TEXT NOT NULL,          -- ISO; the next issue's articles start here
    frozen_at   TEXT NOT NULL,
    sent_at     TEXT,
    total       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    issue       INTEGER NOT NULL REFERENCES issues(number),
    email       TEXT NOT NULL,
    name        TEXT NOT NULL,
    variant     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    message_id  TEXT,
    error       TEXT,
    first_try   REAL,                   -- epoch seconds
    updated_at  REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_recipient ON deliveries(issue, email);
"""
# every column the code uses, by table (a state file missing one is refused when opened)
_COLUMNS = {
    "issues": (
        "number", "status", "subject", "rendered", "segment", "window_end", "frozen_at",
        "sent_at", "total",
    ),
    "deliveries": (
        "id", "issue", "email", "name", "variant", "state", "attempts", "message_id", "error",
        "first_try", "updated_at",
    ),
}  # fmt: skip
# No index on state: every state change would rewrite it (two b-tree writes per row, twice
# per delivery). Pending rows are read in id order from a cursor, which the primary key
# serves; counting by state scans one issue's rows, once per run.


@dataclass(frozen=True, slots=True)
class FrozenIssue:
    """An issue frozen in the ledger: exactly what every recipient gets."""

    number: int
    status: str
    rendered: RenderedIssue
    list: str | None
    tag: str | None
    window_end: datetime
    frozen_at: datetime
    total: int


@dataclass(frozen=True, slots=True)
class Row:
    """One recipient's delivery row."""

    id: int
    email: str
    name: str
    variant: str
    attempts: int
    first_try: float | None


@dataclass(frozen=True, slots=True)
class Update:
    """The outcome of one attempt for one row."""

    id: int
    state: str
    message_id: str | None = None
    error: str | None = None


class Ledger:
    """The state file. Safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; the in-flight marks are
            # committed FULL (see mark_in_flight), which also syncs every earlier commit
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            self._check_schema()
        except (sqlite3.Error, OSError) as e:
            raise LedgerError(
                f"{self.path}: cannot open the state file ({e}); {self.fix(e)} (the state: "
                "setting names it)"
            ) from e

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self, doing: str = "") -> _Transaction:
        return _Transaction(self, doing)

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        """The lock, with SQLite's errors as one-line ``LedgerError``s (a damaged page, a
        state file of another version), never a traceback."""
        with self.lock:
            try:
                yield
            except sqlite3.Error as e:
                raise LedgerError(f"{self.path}: {e}; {self.fix(e)}, then run again") from e

    def _check_schema(self) -> None:
        """Refuse a state file whose tables lack a column this version reads or writes."""
        for table, wanted in _COLUMNS.items():
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in wanted if c not in have]
            if missing:
                self.db.close()
                raise LedgerError(
                    f"{self.path}: not a state file this pressroom can use (table {table} has "
                    f"no column {', '.join(missing)}: written by another version or another "
                    "program); point the state: setting at this publication's state folder, "
                    "or restore it from a backup made by this version of pressroom"
                )

    def fix(self, e: sqlite3.Error | OSError) -> str:
        """What to do about ``e``: free space, make the folder writable, or check the file."""
        if isinstance(e, OSError):
            return write_fix(e, self.path.parent)
        code = getattr(e, "sqlite_errorcode", 0) & 0xFF
        if code in (_SQLITE_FULL, _SQLITE_IOERR):
            return f"free space on the disk holding {self.path.parent} (or check that disk)"
        if code in (_SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_PERM):
            return f"make {self.path.parent} and the files in it writable"
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            # the file is fine: restoring a backup here would lose what was sent since
            return (
                f"another program kept {self.path.name} locked for {BUSY_TIMEOUT:.0f}s (a "
                "sqlite3 shell or database browser with a transaction open, or a backup "
                "tool): close it or end its transaction; the file is not damaged"
            )
        return f"check {self.path} (restore it from a backup if it is damaged)"

    # --- issues ---------------------------------------------------------------------

    def last_sent(self) -> SentIssue | None:
        """The most recent issue whose every recipient is settled, or None."""
        with self._read():
            row = self.db.execute(
                "SELECT number, sent_at, window_end FROM issues WHERE status='sent' "
                "ORDER BY number DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return SentIssue(row[0], _dt(row[1]), _dt(row[2]))

    def went_out(self) -> set[int]:
        """Numbers of the issues that went out: settled, or sent to someone already."""
        with self._read():
            rows = self.db.execute(
                "SELECT number FROM issues AS i WHERE status='sent' OR EXISTS "
                "(SELECT 1 FROM deliveries AS d WHERE d.issue=i.number AND d.state=?)",
                (SENT,),
            ).fetchall()
        return {r[0] for r in rows}

    def unfinished(self) -> FrozenIssue | None:
        """The frozen issue still being sent (at most one), or None."""
        with self._read():
            row = self.db.execute(
                "SELECT number FROM issues WHERE status='sending' ORDER BY number LIMIT 1"
            ).fetchone()
        return self.issue(row[0]) if row else None

    def issue(self, number: int) -> FrozenIssue | None:
        """Frozen issue ``number``, or None."""
        with self._read():
            row = self.db.execute(
                "SELECT number, status, rendered, segment, window_end, frozen_at, total "
                "FROM issues WHERE number=?",
                (number,),
            ).fetchone()
        if row is None:
            return None
        segment = json.loads(row[3])
        return FrozenIssue(
            number=row[0],
            status=row[1],
            rendered=rendered_from_json(row[2]),
            list=segment.get("list"),
            tag=segment.get("tag"),
            window_end=_dt(row[4]),
            frozen_at=_dt(row[5]),
            total=row[6],
        )

    def freeze(
        self,
        rendered: RenderedIssue,
        recipients: Iterable[tuple[str, str, str]],
        *,
        window_end: datetime,
        now: datetime,
        list_: str | None = None,
        tag: str | None = None,
        chunk: int = 50_000,
    ) -> FrozenIssue:
        """Store the issue and one pending row per (email, name, variant), all or nothing."""
        existing = self.issue(rendered.number)
        if existing is not None:
            raise LedgerError(
                f"{self.path}: issue {rendered.number} is already in the ledger "
                f"({existing.status}); it cannot be frozen twice"
            )
        other = self.unfinished()
        if other is not None:
            raise LedgerError(
                f"{self.path}: issue {other.number} is still being sent; finish it first "
                f"(pressroom digest send)"
            )
        number = rendered.number
        total = 0
        # all or nothing: a full disk leaves no half-frozen issue behind, just the error
        with self.lock, self._tx(f"freezing issue {number} (nothing of it was stored)"):
            self.db.execute(
                "INSERT INTO issues(number, status, subject, rendered, segment, window_end, "
                "frozen_at, total) VALUES (?, 'sending', ?, ?, ?, ?, ?, 0)",
                (
                    number,
                    rendered.subject,
                    rendered_to_json(rendered),
                    json.dumps({"list": list_, "tag": tag}),
                    _iso(window_end),
                    _iso(now),
                ),
            )
            batch: list[tuple[int, str, str, str]] = []
            for email, name, variant in recipients:
                batch.append((number, email, name, variant))
                if len(batch) >= chunk:
                    total += self._insert(batch)
                    batch = []
            if batch:
                total += self._insert(batch)
            self.db.execute("UPDATE issues SET total=? WHERE number=?", (total, number))
        frozen = self.issue(number)
        assert frozen is not None
        return frozen

    def _insert(self, rows: list[tuple[int, str, str, str]]) -> int:
        before = self.db.total_changes
        # OR IGNORE: a recipient listed twice is frozen once
        self.db.executemany(
            "INSERT OR IGNORE INTO deliveries(issue, email, name, variant) VALUES (?, ?, ?, ?)",
            rows,
        )
        return self.db.total_changes - before

    def discard(self, number: int) -> None:
        """Forget an issue that never sent anything (a frozen issue with no sent rows)."""
        with self.lock, self._tx():
            sent = self.db.execute(
                "SELECT count(*) FROM deliveries WHERE issue=? AND state NOT IN ('pending')",
                (number,),
            ).fetchone()[0]
            if sent:
                raise LedgerError(f"issue {number} has delivery history; it cannot be discarded")
            self.db.execute("DELETE FROM deliveries WHERE issue=?", (number,))
            self.db.execute("DELETE FROM issues WHERE number=?", (number,))

    def mark_issue_sent(self, number: int, now: datetime) -> bool:
        """Mark the issue sent when nothing is left to do; True when it was."""
        with self.lock, self._tx():
            open_rows = self.db.execute(
                "SELECT count(*) FROM deliveries WHERE issue=? AND state IN (?, ?, ?)",
                (number, PENDING, IN_FLIGHT, UNCERTAIN),
            ).fetchone()[0]
            if open_rows:
                return False
            self.db.execute(
                "UPDATE issues SET status='sent', sent_at=coalesce(sent_at, ?) "
                "WHERE number=? AND status='sending'",
                (_iso(now), number),
            )
            return True

    # --- rows -----------------------------------------------------------------------

    def counts(self, number: int) -> dict[str, int]:
        """Rows per state (every state present, zero when none)."""
        with self._read():
            rows = self.db.execute(
                "SELECT state, count(*) FROM deliveries WHERE issue=? GROUP BY state", (number,)
            ).fetchall()
        out = dict.fromkeys(STATES, 0)
        out.update({state: n for state, n in rows})
        return out

    def crashed_to_uncertain(self, number: int) -> int:
        """Rows left in flight by a run that died become uncertain; returns how many."""
        with self.lock, self._tx():
            cur = self.db.execute(
                "UPDATE deliveries SET state=?, error=? WHERE issue=? AND state=?",
                (UNCERTAIN, "in flight when a previous run stopped", number, IN_FLIGHT),
            )
            return cur.rowcount

    def requeue_uncertain(self, number: int) -> int:
        """Uncertain rows back to pending (``--resend-uncertain``); returns how many."""
        with self.lock, self._tx():
            # first_try restarts: sending.max_retry_time counts from this decision, not from
            # a request that may be days old
            cur = self.db.execute(
                "UPDATE deliveries SET state=?, first_try=NULL WHERE issue=? AND state=?",
                (PENDING, number, UNCERTAIN),
            )
            return cur.rowcount

    def drop_uncertain(self, number: int) -> int:
        """Uncertain rows settled as dropped without resending (``--drop-uncertain``)."""
        with self.lock, self._tx():
            cur = self.db.execute(
                "UPDATE deliveries SET state=?, error=? WHERE issue=? AND state=?",
                (
                    DROPPED,
                    "uncertain, dropped by --drop-uncertain: possibly delivered, not resent",
                    number,
                    UNCERTAIN,
                ),
            )
            return cur.rowcount

    def uncertain_attempts(self, number: int) -> list[tuple[str, float | None]]:
        """(email, epoch seconds of its last attempt) of every uncertain row, by email."""
        with self._read():
            return [
                (r[0], r[1])
                for r in self.db.execute(
                    "SELECT email, updated_at FROM deliveries WHERE issue=? AND state=? "
                    "ORDER BY email",
                    (number, UNCERTAIN),
                )
            ]

    def settle_uncertain(
        self,
        number: int,
        sent: Sequence[tuple[str, str | None]],
        pending: Sequence[str],
        now: float,
    ) -> None:
        """Uncertain rows the provider answered for: ``sent`` (email, message id) are sent;
        ``pending`` go back to pending, to be sent by this run (``--reconcile``)."""
        with self.lock, self._tx():
            self.db.executemany(
                "UPDATE deliveries SET state=?, message_id=coalesce(?, message_id), error=NULL, "
                "updated_at=? WHERE issue=? AND email=? AND state=?",
                [(SENT, mid, now, number, email, UNCERTAIN) for email, mid in sent],
            )
            # first_try restarts, as with --resend-uncertain
            self.db.executemany(
                "UPDATE deliveries SET state=?, first_try=NULL, error=NULL, updated_at=? "
                "WHERE issue=? AND email=? AND state=?",
                [(PENDING, now, number, email, UNCERTAIN) for email in pending],
            )

    def requeue_failed(self, number: int) -> int:
        """Failed rows back to pending (``--resend-failed``), reopening a settled issue;
        returns how many."""
        with self.lock, self._tx():
            cur = self.db.execute(
                "UPDATE deliveries SET state=?, first_try=NULL WHERE issue=? AND state=?",
                (PENDING, number, FAILED),
            )
            if cur.rowcount:
                # sent_at stays: the issue went out then (digest.min_interval counts from it)
                self.db.execute("UPDATE issues SET status='sending' WHERE number=?", (number,))
            return cur.rowcount

    def last_issue(self) -> int | None:
        """The number of the most recent issue in the ledger (settled or not), or None."""
        with self._read():
            row = self.db.execute("SELECT max(number) FROM issues").fetchone()
        return row[0] if row and row[0] is not None else None

    def emails_in(self, number: int, state: str, limit: int | None = None) -> list[str]:
        """Addresses of the rows in ``state`` (sorted)."""
        sql = "SELECT email FROM deliveries WHERE issue=? AND state=? ORDER BY email"
        args: tuple[Any, ...] = (number, state)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        with self._read():
            return [r[0] for r in self.db.execute(sql, args)]

    def failures(self, number: int, state: str = FAILED) -> list[tuple[str, str]]:
        """(email, reason) of every failed row (or every row in ``state``)."""
        with self._read():
            return [
                (r[0], r[1] or "")
                for r in self.db.execute(
                    "SELECT email, error FROM deliveries WHERE issue=? AND state=? ORDER BY email",
                    (number, state),
                )
            ]

    def pending(self, number: int, after_id: int, limit: int) -> list[Row]:
        """Up to ``limit`` pending rows with id > ``after_id``, in id order."""
        with self._read():
            rows = self.db.execute(
                "SELECT id, email, name, variant, attempts, first_try FROM deliveries "
                # "+issue": walk the primary key from the cursor, not the (issue, email) index
                # (which would scan and sort the whole issue for every chunk)
                "WHERE +issue=? AND state=? AND id>? ORDER BY id LIMIT ?",
                (number, PENDING, after_id, limit),
            ).fetchall()
        return [Row(*r) for r in rows]

    def iter_pending(self, number: int, chunk: int = 10_000) -> Iterator[Row]:
        """Every pending row, read in chunks (never the whole list in memory)."""
        with self._read():
            first = self.db.execute(
                "SELECT min(id) FROM deliveries WHERE issue=?", (number,)
            ).fetchone()[0]
        last = (first or 1) - 1  # older issues' rows come before: start at this issue's
        while True:
            rows = self.pending(number, last, chunk)
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def mark_in_flight(self, rows: Sequence[Row], now: float) -> None:
        """Commit the in-flight mark of a batch; call BEFORE the provider request.

        This commit is synchronous=FULL (fsynced, and with it every earlier commit): after a
        power cut as after a kill, a request that may have gone out is never taken for one
        that did not.
        """
        ids = json.dumps([r.id for r in rows])
        with self._read():
            self.db.execute("PRAGMA synchronous=FULL")
            try:
                with self._tx():
                    self.db.execute(
                        "UPDATE deliveries SET state=?, attempts=attempts+1, updated_at=?, "
                        "first_try=coalesce(first_try, ?) "
                        "WHERE id IN (SELECT value FROM json_each(?))",
                        (IN_FLIGHT, now, now, ids),
                    )
            finally:
                self.db.execute("PRAGMA synchronous=NORMAL")

    def record(self, updates: Sequence[Update], now: float) -> None:
        """Commit the outcome of a batch; call right after the provider answered."""
        groups: dict[tuple[str, str | None, str | None], list[int]] = {}
        for u in updates:
            groups.setdefault((u.state, u.message_id, u.error), []).append(u.id)
        singles: list[tuple[str, str | None, str | None, float, int]] = []
        with self.lock, self._tx():
            for (state, message_id, error), ids in groups.items():
                if len(ids) < 8:
                    singles.extend((state, message_id, error, now, i) for i in ids)
                    continue
                # a whole batch usually shares one outcome (and one provider message id)
                self.db.execute(
                    "UPDATE deliveries SET state=?, message_id=coalesce(?, message_id), "
                    "error=?, updated_at=? WHERE id IN (SELECT value FROM json_each(?))",
                    (state, message_id, error, now, json.dumps(ids)),
                )
            if singles:
                self.db.executemany(
                    "UPDATE deliveries SET state=?, message_id=coalesce(?, message_id), "
                    "error=?, updated_at=? WHERE id=?",
                    singles,
                )

    def row_states(self, number: int) -> dict[str, str]:
        """email → state for an issue (tests and small lists)."""
        with self._read():
            return dict(
                self.db.execute("SELECT email, state FROM deliveries WHERE issue=?", (number,))
            )


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error; SQLite errors become LedgerError."""

    def __init__(self, ledger: Ledger, doing: str = "") -> None:
        self.ledger = ledger
        self.doing = f" while {doing}" if doing else ""

    def _error(self, e: sqlite3.Error) -> LedgerError:
        ledger = self.ledger
        return LedgerError(f"{ledger.path}: {e}{self.doing}; {ledger.fix(e)}, then run again")

    def __enter__(self) -> None:
        try:
            self.ledger.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise self._error(e) from e

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        db = self.ledger.db
        if exc_type is None:
            try:
                db.execute("COMMIT")
                return
            except sqlite3.Error as e:
                # SQLite has often rolled back already (a full disk): "no transaction is active"
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise self._error(e) from e
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise self._error(exc) from exc


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def open_existing(path: Path) -> Ledger | None:
    """The ledger at ``path`` if the state file exists (nothing was ever sent otherwise)."""
    return Ledger(path) if path.exists() else None


def last_sent(state_db: Path) -> SentIssue | None:
    """The last issue that went out, from the state file (None before the first send)."""
    if not state_db.exists():
        return None  # opening the ledger would create the state file; nothing was sent
    ledger = Ledger(state_db)
    try:
        return ledger.last_sent()
    finally:
        ledger.close()


def went_out(state_db: Path) -> set[int]:
    """The issues that went out, from the state file (none before the first send)."""
    if not state_db.exists():
        return set()  # opening the ledger would create the state file; nothing was sent
    with Ledger(state_db) as ledger:
        return ledger.went_out()
