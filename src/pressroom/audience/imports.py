"""Changing subscriber files: ``add``, ``import`` (csv, Mailchimp, Substack, Patreon), ``export``.

Reading the export files (encodings, zips, each service's columns) is ``import_files``; every
value is flattened to one line here.

Imports merge into one file of ``subscribers/`` (``subscribers.csv`` unless told otherwise):
a new address is appended, a known one gets the new tags and lists (and loses the tags the
export says no longer apply, like ``patron`` for a former patron), and addresses that the
service says unsubscribed or bounced go to the suppressed file. Every write is atomic.
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
from pressroom.audience.import_files import READERS as READERS
from pressroom.audience.import_files import Incoming as Incoming
from pressroom.audience.import_files import quote_formula
from pressroom.audience.import_files import read as read
from pressroom.errors import SubscriberError, UsageError

if TYPE_CHECKING:
    from pressroom.config import Config

Problem = Callable[[str], None]


@dataclass
class Summary:
    """What an import or add changed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    skipped: int = 0
    elsewhere: list[str] = field(default_factory=list)  # other files changed (readers there)


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
        _flatten(item)
        where = item.where or source
        try:
            email = subscribers.normalise_email(item.email)
        except ValueError as e:
            summary.skipped += 1
            problem(
                f'{where}:{item.line}: invalid email "{item.email}" ({e})'
                if item.email
                else f"{where}:{item.line}: no email; skipped"
            )
            continue
        if item.suppress:
            to_suppress.append((email, item.suppress, item.suppressed_at))
            continue
        if (item.status or "active") not in subscribers.STATUSES:
            summary.skipped += 1
            problem(subscribers.unknown_status(where, item.line, item.status))
            continue
        pending.setdefault(subscribers.key(email), []).append((email, item))
    if pending:
        # an address already in another file is changed there, never added again to
        # ``into``: subscribers.csv is read first, so a fresh row there would win over the
        # reader's own row elsewhere (and bring back one marked unsubscribed or bounced)
        for path, found in _held_elsewhere(config, into, pending):
            if add_only:
                where = subscribers.shown_path(config, path)
                raise UsageError(f"{found[next(iter(found))][0][0]} is already in {where}")
            before = summary.updated
            with subscribers.locked(path):
                _rewrite(config, path, found, summary, today=today, add_only=False, append=False)
            if summary.updated != before:
                summary.elsewhere.append(subscribers.shown_path(config, path))
    if pending:
        with subscribers.locked(into):
            _rewrite(config, into, pending, summary, today=today, add_only=add_only)
    summary.suppressed = subscribers.suppress_many(config, to_suppress, when=when)
    return summary


def _held_elsewhere(
    config: Config, into: Path, pending: dict[str, list[tuple[str, Incoming]]]
) -> Iterator[tuple[Path, dict[str, list[tuple[str, Incoming]]]]]:
    """(file, the entries of ``pending`` whose row it holds) for each subscriber file other
    than ``into`` where an address's row is the one that counts (the first in reading
    order); those entries leave ``pending``, which keeps the rest for ``into``."""
    if not config.subscribers.path.is_dir():
        return  # the rewrite of ``into`` says what is wrong
    target = into.resolve()
    files = subscribers.subscriber_files(config)
    claimed: set[str] = set()  # held by ``into`` before any later file
    before_into = True
    for path in files:
        if not pending:
            return
        if path.resolve() == target:
            before_into = False
            claimed = _keys_held(config, path, pending)
            continue
        wanted = pending.keys() if before_into else pending.keys() - claimed
        held = _keys_held(config, path, wanted)
        if held:
            yield path, {k: pending.pop(k) for k in held}


def _keys_held(config: Config, path: Path, wanted: Iterable[str]) -> set[str]:
    """Which of ``wanted`` have a row in the subscriber file ``path``."""
    wanted = set(wanted)
    found: set[str] = set()
    if not wanted:
        return found
    shown = subscribers.shown_path(config, path)
    # a file that cannot be read whole cannot say it does not hold an address: the error
    # stops the import (an unsubscribed reader in it would otherwise be added again)
    with open_rows(path, shown) as rows:
        header = next(rows, None) or []
        names = [h.strip().lower() for h in header]
        if "email" not in names:
            return found
        ie = names.index("email")
        for cells in rows:
            k = row_key(cells[ie]) if len(cells) > ie else None
            if k in wanted:
                found.add(k)
    return found


def _flatten(item: Incoming) -> None:
    """One line per value: a line break inside a cell would make a row our reader rejects."""
    flat = subscribers.one_line
    item.name = flat(item.name)
    item.subscribed_at = flat(item.subscribed_at)
    item.lists = frozenset(filter(None, map(flat, item.lists)))
    item.add_tags = frozenset(filter(None, map(flat, item.add_tags)))
    item.remove_tags = frozenset(filter(None, map(flat, item.remove_tags)))
    item.attrs = {flat(k): flat(v) for k, v in item.attrs.items()}


def _rewrite(
    config: Config,
    into: Path,
    pending: dict[str, list[tuple[str, Incoming]]],
    summary: Summary,
    *,
    today: str,
    add_only: bool,
    append: bool = True,
) -> None:
    """Copy ``into`` row by row, updating the rows ``pending`` names; append the new ones
    (unless not ``append``: rows of another file, which it was found to hold)."""
    shown = subscribers.shown_path(config, into)
    with subscribers.atomic_writer(into) as out, open_rows(into, shown) as rows:
        header = list(next(rows, None) or subscribers.COLUMNS)
        col = {h.strip().lower(): i for i, h in enumerate(header)}
        if "email" not in col:
            raise SubscriberError(f"{shown}:1: no email column; fix the header first")
        if twice := subscribers.repeated_column(header):
            raise SubscriberError(subscribers.twice_message(shown, twice, header))
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
        for items in pending.values() if append else ():
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
    # the service says the reader left (listmonk's blocklisted, a cleaned address): a reader
    # still mailed here would be mailed against their will; the other way round never
    # happens (an export's "active" does not bring back one who left)
    status = cells[col["status"]].strip().lower()
    if item.status in subscribers.REASONS and status in ("", "active", "pending"):
        cells[col["status"]] = item.status
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

        def one_line_rows() -> Iterator[list[str]]:
            # a quoted value over a line break is nearly always a missing closing quote that
            # swallowed the rows after it (the reader skips them too): a rewrite would not see
            # them (adding an unsubscribed reader again as new) and would seal the damage
            end = reader.line_num
            for cells in reader:
                line, end = end + 1, reader.line_num
                if end != line:
                    raise SubscriberError(
                        f"{shown}:{line}: unterminated quote (the row runs on to line {end}); "
                        "fix the quoting before changing it (nothing was changed)"
                    )
                yield cells

        try:
            yield one_line_rows()
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


def export(config: Config, out: IO[str], *, problem: Problem, warn: Problem | None = None) -> int:
    """Write every subscriber who would be mailed, in pressroom's CSV format; the count.

    A cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) gets a
    leading ``'`` (OWASP's CSV-injection advice); ``import --format csv`` takes it off again.
    """
    # two passes: the first finds the extra columns, so the header is complete and stable
    extra: dict[str, None] = {}
    for s in subscribers.iter_subscribers(config, on_problem=lambda _m: None):
        for k in s.attrs:
            extra.setdefault(k, None)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([quote_formula(c) for c in (*subscribers.COLUMNS, *extra)])
    n = 0
    for s in subscribers.iter_subscribers(config, on_problem=problem, on_warning=warn):
        cells = [
            s.email,
            s.name,
            subscribers.join_values(s.lists),
            subscribers.join_values(s.tags),
            s.status,
            s.subscribed_at,
            *(s.attrs.get(k, "") for k in extra),
        ]
        writer.writerow([quote_formula(c) for c in cells])
        n += 1
    return n
