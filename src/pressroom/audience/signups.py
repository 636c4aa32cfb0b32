"""Readers who sign themselves up: limits, the confirmed write, and preference changes.

Nothing is written to ``subscribers/`` before a reader confirms: a pending signup lives only
in its signed confirmation link (``tokens.ReaderTokens.confirm``). What is kept is how many
confirmation mails went to each address and how many signups came from each client address,
in ``<state>/signups.db``, under keyed hashes (HMAC with the secret), so the file holds no
address at all.

Writes (``confirm``, ``set_preferences``) take the same per-file lock and atomic rename as
``pressroom subscribers add/import/unsubscribe`` (``subscribers.locked``,
``subscribers.atomic_writer``): a web request and a CLI run never lose each other's rows.
A confirmation records consent beside the row: ``consent_at`` (ISO 8601) and
``consent_source`` (``web-form``).
"""

from __future__ import annotations

import contextlib
import csv
import enum
import hashlib
import hmac
import ipaddress
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pressroom.audience import events, subscribers
from pressroom.audience.imports import open_rows
from pressroom.errors import SubscriberError

if TYPE_CHECKING:
    from pressroom.config import Config

CONSENT_COLUMNS = ("consent_at", "consent_source")
WEB_FORM = "web-form"
NOT_READDED = ("bounced", "complained")  # only the editor can bring these back


# --- limits ------------------------------------------------------------------------------


class Limits:
    """Sliding-window counters per client address and per email address, in SQLite."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self.path = path
        self._key = hmac.new(secret, b"pressroom-signup-limits-v1", hashlib.sha256).digest()
        self._lock = threading.Lock()  # one writer per process; SQLite locks across processes

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:32]

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise SubscriberError(f"{self.path}: cannot open the signup limits: {e}") from e
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS signup_hits "
                "(kind TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS signup_hits_key ON signup_hits (kind, key)")
            yield db
        except sqlite3.Error as e:
            raise SubscriberError(f"{self.path}: signup limits: {e}") from e
        finally:
            db.close()

    def take(self, kind: str, value: str, limit: int, window: timedelta, now: datetime) -> bool:
        """Count one hit of ``value`` if under ``limit`` per ``window``; False when over."""
        if limit <= 0:  # 0: no limit
            return True
        key = self._digest(kind, value)
        at = now.timestamp()
        with self._lock, self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "DELETE FROM signup_hits WHERE kind = ? AND at <= ?",
                    (kind, at - window.total_seconds()),
                )
                (used,) = db.execute(
                    "SELECT COUNT(*) FROM signup_hits WHERE kind = ? AND key = ?", (kind, key)
                ).fetchone()
                if used >= limit:
                    db.execute("COMMIT")
                    return False
                db.execute("INSERT INTO signup_hits VALUES (?, ?, ?)", (kind, key, at))
                db.execute("COMMIT")
                return True
            except BaseException:
                db.execute("ROLLBACK")
                raise


def client_key(client: str) -> str:
    """What the per-client limit counts: an IPv4 address, or the /64 network of an IPv6 one
    (one home or server gets a whole /64 and can pick a new address for every request)."""
    try:
        ip = ipaddress.ip_address(client.strip().strip("[]").split("%")[0])
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def mailbox_key(email: str) -> str:
    """What the per-address limit counts: the mailbox that receives the mail, so that
    ``ada+1@``, ``ada+2@``… (subaddresses, RFC 5233) count as one, and so do Gmail's dotted
    spellings: otherwise one inbox can be sent any number of confirmation mails."""
    local, _, domain = subscribers.key(email).rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


# --- what the files say about an address ---------------------------------------------------


def standing(config: Config, email: str) -> str | None:
    """How ``email`` stands: a suppression reason, else its row's status, else None (new)."""
    reason = suppression_of(config, email)
    if reason:
        return reason
    found = subscribers.find(config, email)
    return found[2] if found else None


def suppression_of(config: Config, email: str) -> str | None:
    """Why ``email`` is in the suppressed file (``unsubscribed`` when no reason), or None.

    An ``unsubscribed`` row answers ``complained`` or ``bounced`` when such a report came in
    after it (the suppressed file keeps its first row; the event history has the report).
    """
    found = suppression_entry(config, email)
    return found[0] if found else None


def suppression_entry(config: Config, email: str) -> tuple[str, datetime | None] | None:
    """(reason, date) of ``email``'s row in the suppressed file (see ``suppression_of``), or
    None; the date is None when the row has none that can be read."""
    k = subscribers.key(email)
    path = config.subscribers.suppressed
    if path.exists():
        header, rows = subscribers.read_table(path)
        index = {h.strip().lower(): i for i, h in enumerate(header)}
        ie, ir, idate = index.get("email"), index.get("reason"), index.get("date")
        for cells in rows:
            if ie is not None and ie < len(cells) and subscribers.key_of(cells[ie]) == k:
                reason = cells[ir].strip() if ir is not None and ir < len(cells) else ""
                date = cells[idate] if idate is not None and idate < len(cells) else ""
                since = subscribers.parse_time(date)
                if reason in ("", "unsubscribed"):
                    reason = events.reported_since(config, email, since) or reason
                return reason or "unsubscribed", since
    return None


def _same(raw: str, k: str) -> bool:
    try:
        return subscribers.key(subscribers.normalise_email(raw)) == k
    except ValueError:
        return subscribers.key(raw.strip()) == k


def row_of(config: Config, email: str) -> tuple[Path, dict[str, str]] | None:
    """The file and cells (by column name) of ``email``'s first row, or None."""
    k = subscribers.key(email)
    for path in subscribers.subscriber_files(config):
        with open_rows(path, subscribers.shown_path(config, path)) as rows:
            header = next(rows, None)
            if not header:
                continue
            names = [h.strip().lower() for h in header]
            if "email" not in names:
                continue
            ie = names.index("email")
            for cells in rows:
                if len(cells) > ie and _same(cells[ie], k):
                    return path, {
                        n: cells[i] if i < len(cells) else "" for i, n in enumerate(names)
                    }
    return None


def lists_of(config: Config, cells: dict[str, str]) -> frozenset[str]:
    """The lists a row is on (no lists: ``sending.list``)."""
    return subscribers.split_values(cells.get("lists", "")) or frozenset({config.sending.list})


# --- confirming ------------------------------------------------------------------------------


class Confirmed(enum.Enum):
    ADDED = "added"  # a new row
    RESUBSCRIBED = "resubscribed"  # was unsubscribed or pending: active again
    UPDATED = "updated"  # already active: lists merged (confirming twice changes nothing)
    REFUSED = "refused"  # bounced or complained: only the editor can re-add
    STALE = "stale"  # the reader unsubscribed after this link was made: it no longer counts


@dataclass(frozen=True)
class Signup:
    """A confirmed signup: who, under which name, for which lists, and when."""

    email: str
    name: str
    lists: frozenset[str]
    when: datetime
    source: str = WEB_FORM
    asked_at: datetime | None = None  # when the confirmation link was made, if known


def confirm(config: Config, signup: Signup) -> Confirmed:
    """Add or re-activate ``signup.email`` (lists merged, consent recorded), atomically."""
    email = subscribers.normalise_email(signup.email)
    entry = suppression_entry(config, email)
    reason, since = entry if entry else (None, None)
    if reason in NOT_READDED:
        return Confirmed.REFUSED
    if (
        reason == "unsubscribed"
        and since is not None
        and signup.asked_at is not None
        and since > signup.asked_at
    ):
        # a link made before the reader left (an old mail, a browser restoring the tab and
        # posting again) must not undo the unsubscribe: only a new signup can
        return Confirmed.STALE
    found = row_of(config, email)
    path = found[0] if found else config.subscribers.path / subscribers.MAIN_FILE
    stamp = signup.when.isoformat(timespec="seconds")
    outcome: list[Confirmed] = []

    def change(cells: dict[str, str] | None) -> dict[str, str] | None:
        if cells is None:
            outcome.append(Confirmed.ADDED)
            return {
                "email": email,
                "name": signup.name,
                "lists": subscribers.join_values(signup.lists),
                "status": "active",
                "subscribed_at": stamp,
                "consent_at": stamp,
                "consent_source": signup.source,
            }
        status = cells.get("status", "").strip().lower()
        if status in NOT_READDED:
            outcome.append(Confirmed.REFUSED)
            return None
        new = dict(cells)
        lists = lists_of(config, cells) | signup.lists
        new["lists"] = subscribers.join_values(lists)
        if signup.name and not cells.get("name", "").strip():
            new["name"] = signup.name
        if status in ("", "active") and reason is None:
            outcome.append(Confirmed.UPDATED)
        else:
            outcome.append(Confirmed.RESUBSCRIBED)
            new["status"] = "active"
            new["subscribed_at"] = stamp
        if new != cells or not cells.get("consent_at"):
            new["consent_at"] = stamp
            new["consent_source"] = signup.source
        return new if new != cells else None

    rewrite_row(config, path, email, change)
    result = outcome[0] if outcome else Confirmed.UPDATED
    if result is not Confirmed.REFUSED and reason == "unsubscribed":
        unsuppress(config, email)
        result = Confirmed.RESUBSCRIBED
    return result


def set_preferences(
    config: Config, email: str, *, lists: frozenset[str], offered: frozenset[str], name: str
) -> bool:
    """Put ``email`` on exactly ``lists`` of the ``offered`` ones (others kept); False if gone."""
    found = row_of(config, email)
    if found is None:
        return False
    seen: list[bool] = []

    def change(cells: dict[str, str] | None) -> dict[str, str] | None:
        if cells is None:
            return None  # removed since: nothing to change
        seen.append(True)
        new = dict(cells)
        new["lists"] = subscribers.join_values((lists_of(config, cells) - offered) | lists)
        new["name"] = name
        return new if new != cells else None

    rewrite_row(config, found[0], email, change, add=False)
    return bool(seen)


# --- the row rewrite ---------------------------------------------------------------------------

Change = Callable[[dict[str, str] | None], dict[str, str] | None]


def rewrite_row(config: Config, path: Path, email: str, change: Change, add: bool = True) -> None:
    """Under the file's lock, stream ``path`` to a new copy with ``email``'s row changed.

    ``change`` gets the row's cells by column name (None when absent) and returns the new
    cells, or None for "leave it"; an absent row it returns cells for is appended.
    """
    k = subscribers.key(email)
    shown = subscribers.shown_path(config, path)
    with (
        subscribers.locked(path),
        subscribers.atomic_writer(path) as out,
        open_rows(path, shown) as rows,
    ):
        header = list(next(rows, None) or subscribers.COLUMNS)
        names = [h.strip().lower() for h in header]
        if "email" not in names:
            raise SubscriberError(f"{shown}:1: no email column; fix the header first")
        if twice := subscribers.repeated_column(names):
            # cells are matched to columns by name: a name given twice would write one
            # column's value into both (another address over the reader's own)
            raise SubscriberError(subscribers.twice_message(shown, twice, header))
        for column in (*subscribers.COLUMNS, *CONSENT_COLUMNS):
            if column not in names:
                names.append(column)
                header.append(column)
        ie = names.index("email")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        done = changed = False
        for cells in rows:
            if not cells:
                continue
            if not done and len(cells) > ie and _same(cells[ie], k):
                done = True
                cells += [""] * (len(names) - len(cells))
                new = change(dict(zip(names, cells, strict=False)))
                if new is not None:
                    cells = [new.get(n, "") for n in names]
                    changed = True
            writer.writerow(cells)
        if not done and add:
            new = change(None)
            if new is not None:
                writer.writerow([new.get(n, "") for n in names])
                changed = True
        if not changed:
            raise subscribers.Unchanged


def unsuppress(config: Config, email: str) -> bool:
    """Remove an ``unsubscribed`` entry for ``email`` from the suppressed file (atomically)."""
    path = config.subscribers.suppressed
    k = subscribers.key(email)
    with subscribers.locked(path):
        if not path.exists():
            return False
        header, rows = subscribers.read_table(path)
        index = {h.strip().lower(): i for i, h in enumerate(header)}
        ie, ir = index.get("email"), index.get("reason")
        if ie is None:
            return False

        def keep(cells: list[str]) -> bool:
            if not (len(cells) > ie and subscribers.key_of(cells[ie]) == k):
                return True
            reason = cells[ir].strip() if ir is not None and ir < len(cells) else ""
            return reason not in ("", "unsubscribed")

        kept = [cells for cells in rows if keep(cells)]
        if len(kept) == len(rows):
            return False
        subscribers.write_csv_atomic(path, header, kept)
        return True
