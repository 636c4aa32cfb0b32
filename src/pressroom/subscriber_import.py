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

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pressroom import subscribers
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
    text = text.strip()
    if not text:
        return ""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    for fmt in ("%m/%d/%Y", "%Y/%m/%d", "%b %d, %Y", "%B %d, %Y", "%d %b %Y"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return text


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
    """Merge ``incoming`` into the subscriber file ``into`` and the suppressed file (atomic)."""
    summary = Summary()
    if into.exists():
        header, rows = subscribers.read_table(into)
        if header and "email" not in [h.strip().lower() for h in header]:
            raise SubscriberError(
                f"{subscribers.shown_path(config, into)}:1: no email column; fix the header first"
            )
    else:
        header, rows = [], []
    if not header:
        header = list(subscribers.COLUMNS)
    col = {h.strip().lower(): i for i, h in enumerate(header)}
    for name in subscribers.COLUMNS:
        if name not in col:
            col[name] = len(header)
            header.append(name)
    width = len(header)
    for r in rows:
        r.extend([""] * (width - len(r)))
    index: dict[str, int] = {}
    for i, r in enumerate(rows):
        try:
            index.setdefault(subscribers.key(subscribers.normalise_email(r[col["email"]])), i)
        except ValueError:
            continue  # `subscribers validate` reports it; an import leaves it alone
    today = when.date().isoformat() if isinstance(when, datetime) else when.isoformat()
    to_suppress: list[tuple[str, str]] = []
    changed = False

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
            to_suppress.append((email, item.suppress))
            continue
        k = subscribers.key(email)
        if k in index:
            if add_only:
                raise UsageError(f"{email} is already in {subscribers.shown_path(config, into)}")
            r = rows[index[k]]
            before = list(r)
            tags = (subscribers.split_values(r[col["tags"]]) | item.add_tags) - item.remove_tags
            lists = subscribers.split_values(r[col["lists"]]) | item.lists
            r[col["tags"]] = subscribers.join_values(tags)
            r[col["lists"]] = subscribers.join_values(lists)
            if item.name and not r[col["name"]]:
                r[col["name"]] = item.name
            if r != before:
                summary.updated += 1
                changed = True
            else:
                summary.unchanged += 1
            continue
        new = [""] * width
        values = {
            "email": email,
            "name": item.name,
            "lists": subscribers.join_values(item.lists),
            "tags": subscribers.join_values(item.add_tags - item.remove_tags),
            "status": item.status or "active",
            "subscribed_at": item.subscribed_at or today,
        }
        for attr, value in item.attrs.items():
            if attr not in col:
                col[attr] = width
                header.append(attr)
                width += 1
                for r in rows:
                    r.append("")
                new.append("")
            values[attr] = value
        for name, value in values.items():
            new[col[name]] = value
        index[k] = len(rows)
        rows.append(new)
        summary.added += 1
        changed = True

    if changed:
        subscribers.write_csv_atomic(into, header, rows)
    summary.suppressed = subscribers.suppress_many(config, to_suppress, when=today)
    return summary


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
