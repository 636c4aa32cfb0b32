"""Changing subscriber files: ``add``, ``import`` (csv, Mailchimp, Substack, Patreon), ``export``.

Imports merge into one file of ``subscribers/`` (``subscribers.csv`` unless told otherwise):
a new address is appended, a known one gets the new tags and lists (and loses the tags the
export says no longer apply, like ``patron`` for a former patron), and addresses that the
service says unsubscribed or bounced go to the suppressed file. Every write is atomic.

Export formats, as the services document them:

- Mailchimp audience export (one CSV per status: subscribed, unsubscribed, cleaned):
  ``Email Address``, ``First Name``, ``Last Name``, …, ``OPTIN_TIME``, ``CONFIRM_TIME``,
  ``UNSUB_TIME`` (unsubscribed file), ``CLEAN_TIME`` (cleaned = bounced), ``TAGS``
  (``"tag one","tag two"``).
- Substack subscriber export: ``email``, ``active_subscription`` (true for paying
  subscribers, tagged ``paid``), ``expiry``, ``plan``, ``email_disabled`` (true: the reader
  turned email off, recorded as unsubscribed), ``created_at``.
- Patreon members export: ``Name``, ``Email``, ``Patron Status`` (``Active patron``,
  ``Declined patron``, ``Former patron``), ``Tier``, ``Patronage Since Date``, … Active
  patrons are tagged ``patron`` (what the support block's ``hide_for_tags`` uses); others
  lose that tag.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pressroom.audience import subscribers
from pressroom.errors import SubscriberError, UsageError

if TYPE_CHECKING:
    from pressroom.config import Config

Problem = Callable[[str], None]


@dataclass
class Incoming:
    """One subscriber as an import file describes them."""

    line: int
    email: str
    name: str = ""
    lists: frozenset[str] = frozenset()
    add_tags: frozenset[str] = frozenset()
    remove_tags: frozenset[str] = frozenset()
    status: str = "active"
    subscribed_at: str = ""
    suppress: str | None = None  # "unsubscribed" | "bounced": record it, do not add
    suppressed_at: datetime | None = None  # when the service recorded it (None: import time)
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Summary:
    """What an import or add changed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    skipped: int = 0


# --- reading service exports -----------------------------------------------------------


def _dict_rows(path: Path, where: str, *required: str) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise UsageError(f"{where}: cannot read: {e.strerror}") from None
    with f:
        reader = csv.DictReader(f)
        fields = [n.strip() for n in reader.fieldnames or []]
        missing = [c for c in required if c.lower() not in [n.lower() for n in fields]]
        if missing:
            raise UsageError(
                f'{where}:1: no "{missing[0]}" column; is this the right --format? '
                f"(columns: {', '.join(fields[:8]) or 'none'})"
            )
        try:
            for row in reader:
                clean = {
                    (k or "").strip().lower(): (v if isinstance(v, str) else "").strip()
                    for k, v in row.items()
                }
                yield reader.line_num, clean
        except (csv.Error, UnicodeDecodeError) as e:
            raise SubscriberError(f"{where}:{reader.line_num}: malformed CSV ({e})") from None


def _day(text: str) -> str:
    """The date part of a service timestamp (``2024-03-01 10:00:00`` → ``2024-03-01``)."""
    moment = subscribers.parse_time(text)
    return moment.date().isoformat() if moment else text.strip()


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("true", "yes", "1", "t", "y")


def read_csv(path: Path, where: str) -> Iterator[Incoming]:
    """pressroom's own format (email,name,lists,tags,status,subscribed_at + extra columns)."""
    for line, row in _dict_rows(path, where, "email"):
        attrs = {k: v for k, v in row.items() if k not in subscribers.COLUMNS and k and v}
        yield Incoming(
            line=line,
            email=row.get("email", ""),
            name=row.get("name", ""),
            lists=subscribers.split_values(row.get("lists", "")),
            add_tags=subscribers.split_values(row.get("tags", "")),
            status=row.get("status", "").lower() or "active",
            subscribed_at=row.get("subscribed_at", ""),
            attrs=attrs,
        )


def read_mailchimp(path: Path, where: str) -> Iterator[Incoming]:
    """A Mailchimp audience export (subscribed, unsubscribed or cleaned members file)."""
    for line, row in _dict_rows(path, where, "Email Address"):
        name = " ".join(p for p in (row.get("first name", ""), row.get("last name", "")) if p)
        tags = next(csv.reader([row.get("tags", "")]), []) if row.get("tags") else []
        suppress = None
        stamp = row.get("clean_time") or row.get("unsub_time") or ""
        if row.get("clean_time"):
            suppress = "bounced"
        elif row.get("unsub_time"):
            suppress = "unsubscribed"
        yield Incoming(
            line=line,
            email=row.get("email address", ""),
            name=name,
            add_tags=frozenset(t.strip() for t in tags if t.strip()),
            subscribed_at=_day(row.get("confirm_time") or row.get("optin_time", "")),
            suppress=suppress,
            # Mailchimp writes its times in UTC; unreadable ones fall back to the import time
            suppressed_at=subscribers.parse_time(stamp) if stamp else None,
        )


def read_substack(path: Path, where: str) -> Iterator[Incoming]:
    """A Substack subscriber export; paying subscribers are tagged ``paid``."""
    for line, row in _dict_rows(path, where, "email", "active_subscription"):
        paid = _truthy(row.get("active_subscription", ""))
        yield Incoming(
            line=line,
            email=row.get("email", ""),
            add_tags=frozenset({"paid"}) if paid else frozenset(),
            remove_tags=frozenset() if paid else frozenset({"paid"}),
            subscribed_at=_day(row.get("created_at", "")),
            suppress="unsubscribed" if _truthy(row.get("email_disabled", "")) else None,
        )


def read_patreon(path: Path, where: str) -> Iterator[Incoming]:
    """A Patreon members export; active patrons are tagged ``patron``, others lose it."""
    for line, row in _dict_rows(path, where, "Email", "Patron Status"):
        active = row.get("patron status", "").lower() == "active patron"
        yield Incoming(
            line=line,
            email=row.get("email", ""),
            name=row.get("name", ""),
            add_tags=frozenset({"patron"}) if active else frozenset(),
            remove_tags=frozenset() if active else frozenset({"patron"}),
            subscribed_at=_day(row.get("patronage since date", "")),
        )


READERS: dict[str, Callable[[Path, str], Iterator[Incoming]]] = {
    "csv": read_csv,
    "mailchimp": read_mailchimp,
    "substack": read_substack,
    "patreon": read_patreon,
}


# --- merging into a subscriber file -----------------------------------------------------


def target_file(config: Config, into: str | None) -> Path:
    """The subscriber file that ``add`` and ``import`` write (``subscribers.csv`` by default)."""
    folder = config.subscribers.path
    path = folder / (into or subscribers.MAIN_FILE)
    if path.suffix != ".csv":
        path = path.with_suffix(".csv")
    if path.resolve() == config.subscribers.suppressed.resolve():
        raise UsageError(f"{path.name} is the suppressed file; pick another --into file")
    if path.parent.resolve() != folder.resolve():
        raise UsageError(f"--into: expected a file name inside {folder}, got {into!r}")
    return path


def merge(
    config: Config,
    incoming: Iterable[Incoming],
    *,
    into: Path,
    when: date | datetime,
    source: str,
    problem: Problem,
    add_only: bool = False,
) -> Summary:
    """Merge ``incoming`` into the subscriber file ``into`` and the suppressed file (atomic).

    The export is indexed in memory (it is the small side); ``into`` is streamed row by row
    into a temporary copy, under the same lock as every other rewrite of it.
    """
    summary = Summary()
    today = when.date().isoformat() if isinstance(when, datetime) else when.isoformat()
    pending: dict[str, list[tuple[str, Incoming]]] = {}
    to_suppress: list[tuple[str, str, datetime | None]] = []
    for item in incoming:
        try:
            email = subscribers.normalise_email(item.email)
        except ValueError as e:
            summary.skipped += 1
            problem(
                f'{source}:{item.line}: invalid email "{item.email}" ({e})'
                if item.email
                else f"{source}:{item.line}: no email; skipped"
            )
            continue
        if item.suppress:
            to_suppress.append((email, item.suppress, item.suppressed_at))
            continue
        if (item.status or "active") not in subscribers.STATUSES:
            summary.skipped += 1
            problem(subscribers.unknown_status(source, item.line, item.status))
            continue
        pending.setdefault(subscribers.key(email), []).append((email, item))
    if pending:
        with subscribers.locked(into):
            _rewrite(config, into, pending, summary, today=today, add_only=add_only)
    summary.suppressed = subscribers.suppress_many(config, to_suppress, when=when)
    return summary


def _rewrite(
    config: Config,
    into: Path,
    pending: dict[str, list[tuple[str, Incoming]]],
    summary: Summary,
    *,
    today: str,
    add_only: bool,
) -> None:
    """Copy ``into`` row by row, updating the rows ``pending`` names; append the new ones."""
    shown = subscribers.shown_path(config, into)
    with subscribers.atomic_writer(into) as out, open_rows(into, shown) as rows:
        header = list(next(rows, None) or subscribers.COLUMNS)
        col = {h.strip().lower(): i for i, h in enumerate(header)}
        if "email" not in col:
            raise SubscriberError(f"{shown}:1: no email column; fix the header first")
        for name in subscribers.COLUMNS:
            if name not in col:
                col[name] = len(header)
                header.append(name)
        # extra columns of new rows widen the header, which is written first: when the
        # export brings a column the file lacks, a first pass finds which rows are new
        extra = {a for _k, items in pending.items() for a in items[0][1].attrs} - col.keys()
        if extra:
            new_keys = pending.keys() - _keys_in(into, shown, col["email"], pending)
            extra = {a for k in new_keys for a in pending[k][0][1].attrs} - col.keys()
            for attr in sorted(extra):
                col[attr] = len(header)
                header.append(attr)
        width = len(header)
        ie = col["email"]
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        changed = False
        for cells in rows:
            if not cells:
                continue
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            if pending:
                k = row_key(cells[ie])
                if k in pending:
                    if add_only:
                        raise UsageError(f"{pending[k][0][0]} is already in {shown}")
                    for _email, item in pending.pop(k):
                        changed |= _update(cells, col, item, summary)
            writer.writerow(cells)
        for items in pending.values():
            email, first = items[0]
            values = {
                **first.attrs,
                "email": email,
                "name": first.name,
                "lists": subscribers.join_values(first.lists),
                "tags": subscribers.join_values(first.add_tags - first.remove_tags),
                "status": first.status or "active",
                "subscribed_at": first.subscribed_at or today,
            }
            new = [""] * width
            for name, value in values.items():
                new[col[name]] = value
            summary.added += 1
            for _email, item in items[1:]:
                _update(new, col, item, summary)
            writer.writerow(new)
            changed = True
        if not changed:
            raise subscribers.Unchanged  # keep the old file (and its mtime) as it was


def _update(cells: list[str], col: dict[str, int], item: Incoming, summary: Summary) -> bool:
    """Apply ``item``'s tags, lists and name to an existing row; whether it changed."""
    before = list(cells)
    tags = (subscribers.split_values(cells[col["tags"]]) | item.add_tags) - item.remove_tags
    cells[col["tags"]] = subscribers.join_values(tags)
    lists = subscribers.split_values(cells[col["lists"]]) | item.lists
    cells[col["lists"]] = subscribers.join_values(lists)
    if item.name and not cells[col["name"]]:
        cells[col["name"]] = item.name
    if cells != before:
        summary.updated += 1
        return True
    summary.unchanged += 1
    return False


def row_key(raw: str) -> str | None:
    try:
        return subscribers.key(subscribers.normalise_email(raw))
    except ValueError:
        return None  # `subscribers validate` reports it; an import leaves it alone


def _keys_in(path: Path, shown: str, ie: int, wanted: Iterable[str]) -> set[str]:
    """Which of ``wanted`` already have a row in ``path`` (a streamed pass)."""
    wanted = set(wanted)
    found: set[str] = set()
    with open_rows(path, shown) as rows:
        next(rows, None)
        for cells in rows:
            k = row_key(cells[ie]) if len(cells) > ie else None
            if k in wanted:
                found.add(k)
    return found


@contextlib.contextmanager
def open_rows(path: Path, shown: str) -> Iterator[Iterator[list[str]]]:
    """The rows of a subscriber file (header first), streamed; none if it does not exist."""
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        yield iter(())
        return
    except OSError as e:
        raise SubscriberError(f"{shown}: cannot read: {e.strerror}") from e
    with f:
        reader = csv.reader(f)
        try:
            yield reader
        except UnicodeDecodeError:
            # decoding runs ahead of the csv reader: find the line in the raw bytes
            line = subscribers.first_bad_line(path)
            raise SubscriberError(
                f"{shown}:{line}: not UTF-8; save it as UTF-8 CSV before changing it"
            ) from None
        except csv.Error as e:
            raise SubscriberError(
                f"{shown}:{reader.line_num}: malformed CSV ({e}); fix it before changing it"
            ) from None


def export(config: Config, out: IO[str], *, problem: Problem) -> int:
    """Write every subscriber who would be mailed, in pressroom's CSV format; the count."""
    # two passes: the first finds the extra columns, so the header is complete and stable
    extra: dict[str, None] = {}
    for s in subscribers.iter_subscribers(config, on_problem=lambda _m: None):
        for k in s.attrs:
            extra.setdefault(k, None)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*subscribers.COLUMNS, *extra])
    n = 0
    for s in subscribers.iter_subscribers(config, on_problem=problem):
        writer.writerow(
            [
                s.email,
                s.name,
                subscribers.join_values(s.lists),
                subscribers.join_values(s.tags),
                s.status,
                s.subscribed_at,
                *(s.attrs.get(k, "") for k in extra),
            ]
        )
        n += 1
    return n
