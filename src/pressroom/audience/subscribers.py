"""``subscribers/*.csv``: streamed, validated, de-duplicated, with suppressions applied.

Every ``*.csv`` in ``subscribers.path`` (except the suppressed file) is a subscriber list with
the header ``email,name,lists,tags,status,subscribed_at``; only ``email`` is required, and
extra columns are kept in ``Subscriber.attrs``. ``lists`` and ``tags`` hold several values
separated by ``;`` (``weekly;breaking``). A row with no lists belongs to ``sending.list``.
A row whose ``status`` is empty or ``active`` is mailed; ``pending``, ``unsubscribed``,
``bounced`` and ``complained`` rows are skipped, and any other status (a typo) is reported and
skipped.

Files are read ``subscribers.csv`` first, then the others by name; when an address appears
twice the first row wins (a reader marked ``unsubscribed`` there is not revived by another
file). ``subscribers.suppressed`` (``email,reason,date,list``, and ``detail`` once a provider's
bounce or complaint reason was recorded) always wins: an address in it
is never mailed, on any list, whatever the lists say. Suppression is global on purpose (an
unsubscribe through List-Unsubscribe must stop all mail from this sender; a bounce or a
complaint is about the address): ``list`` only records where an unsubscribe came from, and
``date`` is an ISO 8601 time with its offset (``2026-11-25T14:29:25+00:00``). Addresses are
compared case-insensitively (``Bob@x.org`` and ``bob@x.org`` are one person) while the stored
address keeps its local-part case and gets its domain lower-cased, as email-validator
normalises it.

Rows are streamed; the only state kept for a run is one 60-bit hash per address seen (about
70 bytes per subscriber: ~70 MB for a million, read at ~185,000 rows/s), so a list never
sits in memory. A hash collision (odds under one in a million at a million readers) would
drop one reader as a duplicate. Rewrites (``add``, ``import``, unsubscribes) stream the file
to a temporary copy under an exclusive lock and then rename it into place.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time
from email.utils import parseaddr
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import email_validator

# the writers every audience file shares, kept importable from here (``subs.locked``, …)
from pressroom import textpolicy
from pressroom.audience.atomic import Unchanged as Unchanged
from pressroom.audience.atomic import atomic_writer as atomic_writer
from pressroom.audience.atomic import locked as locked
from pressroom.audience.atomic import read_table as read_table
from pressroom.audience.atomic import write_csv_atomic as write_csv_atomic
from pressroom.audience.csvfiles import Layout, read_cells
from pressroom.audience.csvfiles import first_bad_line as first_bad_line
from pressroom.audience.csvfiles import repeated_column as repeated_column
from pressroom.audience.csvfiles import twice_message as twice_message
from pressroom.errors import SubscriberError
from pressroom.models import Subscriber

if TYPE_CHECKING:
    from pressroom.config import Config

SEP = ";"
COLUMNS = ("email", "name", "lists", "tags", "status", "subscribed_at")
SUPPRESSED_COLUMNS = ("email", "reason", "date", "list")
DETAIL_COLUMN = "detail"  # optional: the provider's reason for a bounce or complaint
REASONS = ("unsubscribed", "bounced", "complained")
STATUSES = ("active", "pending", *REASONS)  # pending: signed up, not yet confirmed
MAIN_FILE = "subscribers.csv"

Problem = Callable[[str], None]
log = logging.getLogger(__name__)

# The common case, checked in well under a microsecond: a plain ASCII dot-atom local part and
# a letters-only TLD. Anything else (quotes, unicode, IDNA, special-use names, long parts)
# goes to email-validator, ~25 µs an address. The fast path must never accept an address
# email-validator rejects: tests/test_subscribers.py checks this on tricky and random input.
_FAST = re.compile(
    r"([A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]+)*)"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
# invisible format characters that cling to an address copied from a web page or a file
# joined after an Excel "CSV UTF-8" export (its BOM): around an address they are no part of
# it (inside one, the address stays invalid); U+FEFF BOM, U+200B-U+200D zero widths,
# U+2060 word joiner
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"
_HASH_BITS = (1 << 60) - 1  # 60 bits keep each int in two 30-bit digits (32 bytes)


def fast_normalise(address: str) -> str | None:
    """The normalised address when it is plainly valid; None means "ask email-validator"."""
    m = _FAST.fullmatch(address)
    if m is None or len(address) > 200:
        return None
    local, domain = m.groups()
    domain = domain.lower()
    if len(local) > 64 or "--" in domain or domain.rpartition(".")[2] in _SPECIAL_TLDS:
        return None
    return f"{local}@{domain}"


def normalise_email(raw: str) -> str:
    """The normalised form of ``raw`` (domain lower-cased); ValueError says why it is invalid.
    White space and invisible format characters around it (a BOM, a zero-width space) go."""
    address = raw.strip()
    if address[:1] in _INVISIBLE or address[-1:] in _INVISIBLE:
        while address and (address[0] in _INVISIBLE or address[-1] in _INVISIBLE):
            address = address.strip(_INVISIBLE).strip()
    fast = fast_normalise(address)
    if fast is not None:
        return fast
    try:
        info = email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError as e:
        raise ValueError(str(e)) from None
    return str(info.normalized)


def one_line(text: str) -> str:
    """``text`` as one line under the text policy (``pressroom.textpolicy``): control
    characters out, every run of whitespace, line breaks included, made one space, and no
    bidi control left open to run past the cell."""
    return textpolicy.one_line(text)


def key(email: str) -> str:
    """The comparison key of a normalised address (one person, whatever the case)."""
    return email.lower()


def split_values(text: str) -> frozenset[str]:
    """``"weekly; breaking"`` → ``{"weekly", "breaking"}``."""
    return frozenset(v.strip() for v in text.split(SEP) if v.strip())


def join_values(values: Iterable[str]) -> str:
    """The CSV cell for a set of lists or tags (sorted, ``;``-separated)."""
    return SEP.join(sorted(values))


# --- reading ---------------------------------------------------------------------------


def subscriber_files(config: Config) -> list[Path]:
    """The subscriber CSV files in reading order: subscribers.csv first, then by name."""
    folder = config.subscribers.path
    if not folder.is_dir():
        raise SubscriberError(
            f"{shown_path(config, folder)}: no such folder; create it with a {MAIN_FILE} "
            f"(header {','.join(COLUMNS)}) or set subscribers.path in {config.path.name}"
        )
    suppressed = config.subscribers.suppressed.resolve()
    files = [p for p in sorted(folder.glob("*.csv")) if p.resolve() != suppressed]
    return sorted(files, key=lambda p: p.name != MAIN_FILE)  # stable: the rest stay in order


def iter_subscribers(
    config: Config,
    *,
    list_: str | None = None,
    tag: str | None = None,
    on_problem: Problem | None = None,
    on_warning: Problem | None = None,
) -> Iterator[Subscriber]:
    """Every active, valid, unsuppressed subscriber once, streamed; bad rows go to on_problem,
    an empty file to on_warning (if given)."""
    problem = on_problem or log.warning
    suppressed = load_suppressed(config)
    default_lists = frozenset({config.sending.list})
    seen: set[int] = set()
    # lists/tags cells repeat on nearly every row: share one frozenset per distinct cell
    values: dict[str, frozenset[str]] = {}

    def parse_values(text: str) -> frozenset[str]:
        got = values.get(text)
        if got is None:
            got = split_values(text)
            if len(values) < 10_000:
                values[text] = got
        return got

    for path in subscriber_files(config):
        where = shown_path(config, path)
        layout: Layout | None = None
        for line, cells, got in read_cells(path, where, problem, COLUMNS, warn=on_warning):
            if got is not layout:  # a new file: look the columns up once
                layout = got
                ie, iname, ilists, itags, istatus, isince = (layout.pos[c] for c in COLUMNS)
                extras = layout.extras
            raw = cells[ie]
            try:
                email = normalise_email(raw)
            except ValueError as e:
                problem(
                    f'{where}:{line}: invalid email "{raw.strip()}" ({e})'
                    if raw.strip()
                    else f"{where}:{line}: no email; every row needs an address"
                )
                continue
            k = key(email)
            h = hash(k) & _HASH_BITS
            if h in seen:
                continue  # a duplicate (first file wins), reported by `subscribers validate`
            seen.add(h)
            status = cells[istatus].strip().lower()
            if status not in ("", "active"):
                if status not in STATUSES:
                    problem(unknown_status(where, line, cells[istatus]))
                continue
            if k in suppressed:
                continue
            lists = parse_values(cells[ilists]) or default_lists
            tags = parse_values(cells[itags])
            if (list_ is not None and list_ not in lists) or (tag is not None and tag not in tags):
                continue
            attrs = _NO_ATTRS
            if extras:
                extra = {n: cells[i] for i, n in extras if cells[i]}
                if extra:
                    attrs = MappingProxyType(extra)
            yield Subscriber(
                email=email,
                name=cells[iname].strip(),
                lists=lists,
                tags=tags,
                status=status or "active",
                subscribed_at=cells[isince].strip(),
                attrs=attrs,
            )


_NO_ATTRS: MappingProxyType[str, str] = MappingProxyType({})


def known_lists(config: Config) -> set[str]:
    """Every list name declared anywhere: ``lists:`` in the config, the ``lists`` cells of
    every subscriber row whatever its status (a row with none is on ``sending.list``), and
    the ``list`` an unsubscribe in the suppressed file came from."""
    names = set(config.lists)
    for path in subscriber_files(config):
        for _line, cells, layout in read_cells(path, "", _ignore, COLUMNS):
            if cells[layout.pos["email"]].strip():
                names |= split_values(cells[layout.pos["lists"]]) or {config.sending.list}
    path = config.subscribers.suppressed
    if path.exists():
        for _line, cells, layout in read_cells(path, "", _ignore, SUPPRESSED_COLUMNS):
            names |= split_values(cells[layout.pos["list"]])
    return names


def known_tags(config: Config) -> set[str]:
    """Every tag named anywhere: the ``tags`` cells of every subscriber row whatever its
    status, the support blocks' ``hide_for_tags`` and ``patreon.tag``."""
    names = {t for c in config.cta for t in c.hide_for_tags} | {config.patreon.tag}
    for path in subscriber_files(config):
        for _line, cells, layout in read_cells(path, "", _ignore, COLUMNS):
            if cells[layout.pos["email"]].strip():
                names |= split_values(cells[layout.pos["tags"]])
    return names


def unknown_tag(config: Config, name: str, what: str) -> str | None:
    """The problem line when tag ``name`` (named by ``what``) is on no subscriber row and
    named by no setting (see ``known_tags``): a typo that would send to nobody."""
    import difflib

    known = known_tags(config)
    if name in known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    return (
        f'{what} "{name}": no subscriber row has this tag; {hint}'
        f"(tags in use: {', '.join(sorted(known))})"
    )


def unknown_list(config: Config, name: str, what: str) -> str | None:
    """The problem line when list ``name`` (named by ``what``) is declared nowhere (see
    ``known_lists``) though other lists are: a typo that would send nothing, for ever."""
    import difflib

    if name in config.lists:  # declared: no need to read every subscriber file
        return None
    known = known_lists(config)
    if name in known or not known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    listed = ", ".join(sorted(known))
    return (
        f'{what} "{name}" is no list: not in lists: of {config.path.name}, any subscriber '
        f"row or the suppressed file; {hint}(known lists: {listed})"
    )


def unknown_status(where: str, line: int, raw: str) -> str:
    """The problem line for a row whose status is not one of STATUSES."""
    listed = ", ".join(STATUSES[:-1]) + f" or {STATUSES[-1]}"
    return f'{where}:{line}: unknown status "{raw.strip()}"; use {listed}'


def _rows(
    path: Path,
    where: str,
    problem: Problem,
    columns: Sequence[str] = COLUMNS,
    *,
    warn: Problem | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, {known column: value}) for each data row of one CSV file."""
    for line, cells, layout in read_cells(path, where, problem, columns, warn=warn):
        yield line, {c: cells[i] for c, i in layout.pos.items()}


def find(config: Config, email: str) -> tuple[str, int, str] | None:
    """Where ``email`` first appears in the subscriber files: (file, line, status) or None."""
    k = key_of(email)
    for path in subscriber_files(config):
        where = shown_path(config, path)
        for line, row in _rows(path, where, _ignore):
            try:
                if key(normalise_email(row.get("email", ""))) == k:
                    return where, line, row.get("status", "").strip().lower() or "active"
            except ValueError:
                continue
    return None


def count(config: Config, *, list_: str | None = None, tag: str | None = None) -> int:
    """How many subscribers ``iter_subscribers`` would give (bad rows are not counted)."""
    return sum(1 for _ in iter_subscribers(config, list_=list_, tag=tag, on_problem=_ignore))


def _ignore(message: str) -> None:
    pass


def validate(config: Config, *, on_warning: Problem | None = None) -> Iterator[str]:
    """Every problem in the subscriber files: bad rows, duplicates, bad suppressions."""
    problems: list[str] = []
    first_seen: dict[int, str] = {}  # hash → where; validate may hold the index, it is a check
    for path in subscriber_files(config):
        where = shown_path(config, path)
        for line, row in _rows(path, where, problems.append, warn=on_warning):
            yield from problems
            problems.clear()
            raw = row.get("email", "")
            try:
                email = normalise_email(raw)
            except ValueError as e:
                yield (
                    f'{where}:{line}: invalid email "{raw.strip()}" ({e})'
                    if raw.strip()
                    else f"{where}:{line}: no email; every row needs an address"
                )
                continue
            h = hash(key(email)) & _HASH_BITS
            if h in first_seen:
                yield f'{where}:{line}: duplicate of {first_seen[h]} ("{email}"); the first is used'
                continue
            first_seen[h] = f"{where}:{line}"
            status = row.get("status", "")
            if status.strip().lower() not in ("", *STATUSES):
                yield unknown_status(where, line, status)
        yield from problems
        problems.clear()
    for line, row in _suppressed_rows(config, problems.append):
        where = shown_path(config, config.subscribers.suppressed)
        raw = row.get("email", "").strip()
        if raw and entry_address(raw) is None:
            # it still suppresses that exact text, but no subscriber's address is that text
            yield (
                f'{where}:{line}: "{raw}" is no email address, so it suppresses nobody; '
                "write the address itself"
            )
        reason = row.get("reason", "").strip()
        if reason and reason not in REASONS:
            yield f'{where}:{line}: unknown reason "{reason}"; use one of {", ".join(REASONS)}'
    yield from problems


# --- suppressions ----------------------------------------------------------------------


def _suppressed_rows(config: Config, problem: Problem) -> Iterator[tuple[int, dict[str, str]]]:
    path = config.subscribers.suppressed
    if not path.exists():
        return
    yield from _rows(path, shown_path(config, path), problem, SUPPRESSED_COLUMNS)


def load_suppressed(config: Config) -> set[str]:
    """The comparison keys (see ``key``) of every suppressed address.

    The suppressed file decides who must never be mailed, so it is read failing closed: a
    row with more fields than the header still suppresses its address, and damage that
    hides rows (an unterminated quote, bytes that are not UTF-8, malformed CSV, no or two
    ``email`` columns, a file that cannot be read, a file emptied to 0 bytes) is a
    ``SubscriberError`` naming the file
    and line: nothing is sent, listed or exported until it reads cleanly.
    """
    path = config.subscribers.suppressed
    out: set[str] = set()
    if not path.exists():
        return out
    where = shown_path(config, path)
    damage: list[str] = []
    emptied = (
        f"{where}: empty file (not even its header); if nobody is suppressed yet, write the "
        f"header {','.join(SUPPRESSED_COLUMNS)}, else restore it from a backup: an emptied "
        "file would mail everyone who left"
    )
    for _line, cells, layout in read_cells(
        path,
        where,
        damage.append,
        SUPPRESSED_COLUMNS,
        keep_long=True,
        warn=lambda _m: damage.append(emptied),
    ):
        raw = cells[layout.pos["email"]].strip()
        if raw:  # an invalid one still suppresses itself: over-suppressing is the safe side
            out.add(key_of(raw))
    if damage == [emptied]:
        raise SubscriberError(emptied)
    if damage:
        raise SubscriberError(
            f"{damage[0]}; {where} says who must never be mailed, so nothing is sent "
            "until it reads cleanly"
        )
    return out


def is_suppressed(config: Config, email: str) -> bool:
    """Whether ``email`` is in the suppressed file."""
    return key_of(email) in load_suppressed(config)


def key_of(email: str) -> str:
    """The comparison key of an address as a file holds it. A cell written as a mail client
    shows an address (``Ada <ada@example.com>``, pasted into the suppressed file by hand) is
    that address; any other invalid cell is its own key (it still suppresses itself)."""
    found = entry_address(email)
    return key(found) if found is not None else key(email.strip())


def entry_address(cell: str) -> str | None:
    """The normalised address a file's cell names (also ``Ada <ada@example.com>``), or None."""
    try:
        return normalise_email(cell)
    except ValueError:
        pass
    if "<" in cell:
        inner = parseaddr(cell)[1]
        if inner and "<" not in inner:
            with contextlib.suppress(ValueError):
                return normalise_email(inner)
    return None


When = date | datetime | str

_DATE_FORMATS = ("%m/%d/%Y", "%Y/%m/%d", "%b %d, %Y", "%B %d, %Y", "%d %b %Y")


def parse_time(text: str) -> datetime | None:
    """An aware datetime from ISO 8601 or a common export date (naive means UTC); None if not."""
    text = text.strip()
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def timestamp(when: When) -> str:
    """``when`` as the suppressed file writes it: ISO 8601 with time and offset, to the second.

    A bare date is midnight UTC; a naive time is taken as UTC.
    """
    if isinstance(when, str):
        moment = parse_time(when)
        if moment is None:
            raise SubscriberError(
                f'cannot read the time "{when}"; use ISO 8601 like 2026-11-25T14:29:25+00:00'
            )
    elif isinstance(when, datetime):
        moment = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    else:
        moment = datetime.combine(when, time(0), tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def suppress(
    config: Config,
    email: str,
    *,
    reason: str,
    when: When,
    list_: str | None = None,
    signed: bool = False,
) -> bool:
    """Record ``email`` in the suppressed file (atomically); False if it already was there.

    ``signed``: the address comes from a token we signed (an unsubscribe link): we mailed it,
    so it is recorded even when the address checker no longer accepts it (a newer
    email-validator), rather than leaving the reader no way out.
    """
    entry = [(email, reason, None, "")]
    return len(suppress_entries(config, entry, when=when, list_=list_, signed=signed)) == 1


def suppress_many(
    config: Config,
    entries: Iterable[tuple[str, str] | tuple[str, str, When | None]],
    *,
    when: When,
    list_: str | None = None,
) -> int:
    """Record (email, reason[, when]) entries with one atomic rewrite; how many were new.

    An entry's own time (a service's unsubscribe date) wins over ``when``.
    """
    full = [(e[0], e[1], e[2] if len(e) > 2 else None, "") for e in entries]
    return len(suppress_entries(config, full, when=when, list_=list_))


def suppress_entries(
    config: Config,
    entries: Iterable[tuple[str, str, When | None, str]],
    *,
    when: When,
    list_: str | None = None,
    signed: bool = False,
) -> list[tuple[str, str, str]]:
    """Record (email, reason, when, detail) entries with one atomic rewrite under the lock.

    Returns the (address, reason, detail) entries that were new. ``detail`` (a provider's
    bounce reason) goes in a ``detail`` column, added to the file the first time one is set.
    """
    default = timestamp(when)
    wanted: list[tuple[str, str, str, str]] = []
    for email, reason, own, detail in entries:
        if reason not in REASONS:
            raise SubscriberError(
                f'unknown suppression reason "{reason}"; use one of {", ".join(REASONS)}'
            )
        try:
            address = normalise_email(email)
        except ValueError as e:
            address = textpolicy.one_line(email)
            if not (signed and address):
                raise SubscriberError(f'invalid email "{email.strip()}" ({e})') from None
        wanted.append((address, reason, default if own is None else timestamp(own), detail))
    if not wanted:
        return []
    path = config.subscribers.suppressed
    with locked(path):
        header: list[str] = list(SUPPRESSED_COLUMNS)
        body: list[list[str]] = []
        if path.exists():
            header, body = read_table(path)
            header = header or list(SUPPRESSED_COLUMNS)
            if "email" not in [h.strip().lower() for h in header]:
                raise SubscriberError(
                    f"{shown_path(config, path)}:1: no email column; the header must be "
                    f"{','.join(SUPPRESSED_COLUMNS)}"
                )
        index = {h.strip().lower(): i for i, h in enumerate(header)}
        known = {key_of(cells[index["email"]]) for cells in body if len(cells) > index["email"]}
        columns = list(SUPPRESSED_COLUMNS)
        if any(detail for *_, detail in wanted):
            columns.append(DETAIL_COLUMN)
        for name in columns:
            if name not in index:
                index[name] = len(header)
                header.append(name)
                for cells in body:
                    cells.append("")
        added: list[tuple[str, str, str]] = []
        for address, reason, stamp, detail in wanted:
            k = key(address)
            if k in known:
                continue
            known.add(k)
            new = [""] * len(header)
            values = {"email": address, "reason": reason, "date": stamp, "list": list_ or ""}
            if detail:
                values[DETAIL_COLUMN] = detail
            for name, value in values.items():
                new[index[name]] = value
            body.append(new)
            added.append((address, reason, detail))
        if added:
            write_csv_atomic(path, header, body)
    return added


def shown_path(config: Config, path: Path) -> str:
    """``path`` as people wrote it: relative to the folder of config.yaml when inside it."""
    try:
        return str(path.resolve().relative_to(config.root.resolve()))
    except ValueError:
        return str(path)
