"""The files an import reads: other services' exports (and pressroom's own), as ``Incoming``
subscribers.

An export is read as UTF-8 (a BOM is fine); a file that is not is decoded with ``--encoding``,
or with the encoding charset-normalizer detects (said in a warning). A ``.zip`` is read whole:
every ``.csv`` inside it (Mailchimp hands out its audience export that way). Status words of
other tools map to ours (``STATUS_WORDS``).

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

import codecs
import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import charset_normalizer

from pressroom import textpolicy
from pressroom.audience import subscribers
from pressroom.errors import SubscriberError, UsageError

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
    where: str = ""  # the file it came from, when not the one merge names (a zip's member)


# --- reading service exports -----------------------------------------------------------


def _dict_rows(f: IO[str], where: str, *required: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, {column name in lower case: stripped value}) for each row of an export."""
    # strict: a quote left open would otherwise swallow every row after it into one value
    reader = csv.reader(f, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise SubscriberError(f"{where}:1: malformed CSV ({e})") from None
    if header is None:
        return  # an empty file (open_export has said so)
    fields = [n.strip() for n in header]
    missing = [c for c in required if c.lower() not in [n.lower() for n in fields]]
    if missing:
        raise UsageError(
            f'{where}:1: no "{missing[0]}" column; is this the right --format? '
            f"(columns: {', '.join(fields[:8]) or 'none'})"
        )
    keys = [n.lower() for n in fields]
    # a column an export gives twice (two "Email Address" columns): a row is read where its
    # copies agree or all but one are empty, and refused where they differ
    twice = {k for k in keys if k and keys.count(k) > 1}
    start = reader.line_num + 1  # where the next row begins
    try:
        for cells in reader:
            if not cells:
                start = reader.line_num + 1
                continue  # a blank line, as DictReader skips it
            clean: dict[str, str] = {}
            for k, v in zip(keys, cells, strict=False):
                v = v.strip()
                if k in twice and clean.get(k):
                    if v and v != clean[k]:
                        raise SubscriberError(
                            f'{where}:{start}: the column "{k}" is in the header twice and '
                            f'this row gives it two values ("{clean[k][:40]}", "{v[:40]}"); '
                            "remove or rename one column and import again (nothing was imported)"
                        )
                    continue
                clean[k] = v
            for k in keys[len(cells) :]:
                clean.setdefault(k, "")  # a short row: the missing cells are empty
            yield reader.line_num, clean
            start = reader.line_num + 1
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            raise SubscriberError(
                f"{where}:{start}: unterminated quote (the row runs on to the end of the "
                "file); close the quote and import again (nothing was imported)"
            ) from None
        raise SubscriberError(
            f"{where}:{start}: malformed CSV ({e}); fix the quoting and import again"
        ) from None


# --- files, zips and encodings ---------------------------------------------------------

# Excel on Western Windows saves "CSV" as cp1252: when detection ties, that is the likely one
_LIKELY = "cp1252"


def open_export(
    path: Path, shown: str, *, encoding: str | None = None, warn: Problem
) -> Iterator[tuple[str, IO[str]]]:
    """(where, text) for each CSV in ``path``: the file itself, or every ``.csv`` in a
    ``.zip`` (a Mailchimp audience export is a zip of subscribed, unsubscribed and cleaned)."""
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UsageError(
                f"--encoding: unknown encoding {encoding!r}; use one like cp1252, latin-1, "
                "utf-16 or mac-roman"
            ) from None
    try:
        data: bytes | None = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{shown}: cannot read: {e.strerror}") from None
    # a zip by its name or its first bytes (a download cut short has no central directory)
    if not (path.suffix.lower() == ".zip" or (data or b"").startswith(b"PK\x03\x04")):
        yield shown, _text(data or b"", shown, encoding, warn)
        return
    data = None  # read again by zipfile, member by member
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir()
                and info.filename.lower().endswith(".csv")
                and not info.filename.startswith("__MACOSX/")
            ]
            if not members:
                raise UsageError(
                    f"{shown}: the .zip holds no .csv file; unpack it and import the CSV inside"
                )
            for info in members:
                _refuse_a_bomb(info, shown)
            for info in members:
                where = f"{shown}:{info.filename}"
                yield where, _text(archive.read(info), where, encoding, warn)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
        raise UsageError(
            f"{shown}: cannot read the .zip ({e}); download the export again"
        ) from None


# A CSV of addresses packs 5-15 times smaller; a member packed far tighter than any real
# export (and big) is a bomb: refused before a byte of it is unpacked. zipfile never unpacks
# more than the size the archive declares, so the declared sizes are the ones to check.
_MAX_RATIO = 200
_MAX_MEMBER = 4 << 30  # 4 GiB: well past a ten-million-reader export


def _refuse_a_bomb(info: zipfile.ZipInfo, shown: str) -> None:
    big = info.file_size > 16 << 20
    if info.file_size > _MAX_MEMBER or (
        big and info.file_size > _MAX_RATIO * max(info.compress_size, 1)
    ):
        raise UsageError(
            f"{shown}:{info.filename}: unpacks to {info.file_size:,} bytes from "
            f"{info.compress_size:,}, which no real export does; unpack it yourself and import "
            "the CSV if it is genuine (nothing was imported)"
        )


def _text(data: bytes, where: str, encoding: str | None, warn: Problem) -> IO[str]:
    """``data`` decoded: ``encoding`` if given, else UTF-8, else a detected encoding (said)."""
    if not data.strip():
        warn(f"{where}: empty file; nothing imported from it")
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as e:
            raise UsageError(
                f"{where}:{_line_at(data, e.start)}: not {encoding}; pass the file's real "
                "--encoding (or omit it to detect one)"
            ) from None
        return io.StringIO(text.removeprefix("\ufeff"), newline="")
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as e:
        line = _line_at(data, e.start)
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        raise UsageError(
            f"{where}:{line}: not UTF-8, and its encoding cannot be told; save it as UTF-8 "
            "CSV, or pass --encoding (e.g. --encoding cp1252)"
        )
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    chosen = next((m for m in tied if _LIKELY in m.could_be_from_charset), best)
    name = _LIKELY if _LIKELY in chosen.could_be_from_charset else chosen.encoding
    others = sorted({m.encoding for m in tied} - {chosen.encoding})
    also = f"; it could also be {', '.join(others[:3])}" if others else ""
    warn(
        f"{where}:{line}: not UTF-8; read as {name} (detected{also}); pass --encoding if "
        "names look wrong"
    )
    return io.StringIO(data.decode(name, errors="replace").removeprefix("\ufeff"), newline="")


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _day(text: str) -> str:
    """The date part of a service timestamp (``2024-03-01 10:00:00`` → ``2024-03-01``)."""
    moment = subscribers.parse_time(text)
    return moment.date().isoformat() if moment else text.strip()


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("true", "yes", "1", "t", "y")


# Status words of other tools (Mailchimp, listmonk, Buttondown, Ghost…) → ours
STATUS_WORDS = {
    "subscribed": "active",
    "confirmed": "active",
    "enabled": "active",
    "regular": "active",
    "unconfirmed": "pending",
    "cleaned": "bounced",
    "blocklisted": "unsubscribed",
    "blacklisted": "unsubscribed",
}


def status_word(raw: str) -> str:
    """Our status for ``raw`` (``subscribed`` → ``active``, ``cleaned`` → ``bounced``, …)."""
    word = raw.strip().lower()
    return STATUS_WORDS.get(word, word) or "active"


def read_csv(f: IO[str], where: str) -> Iterator[Incoming]:
    """pressroom's own format (email,name,lists,tags,status,subscribed_at + extra columns)."""
    for line, row in _dict_rows(f, where, "email"):
        row = {k: unquote_formula(v) for k, v in row.items()}
        attrs = {k: v for k, v in row.items() if k not in subscribers.COLUMNS and k and v}
        yield Incoming(
            line=line,
            email=row.get("email", ""),
            name=row.get("name", ""),
            lists=subscribers.split_values(row.get("lists", "")),
            add_tags=subscribers.split_values(row.get("tags", "")),
            status=status_word(row.get("status", "")),
            subscribed_at=row.get("subscribed_at", ""),
            attrs=attrs,
        )


def read_mailchimp(f: IO[str], where: str) -> Iterator[Incoming]:
    """A Mailchimp audience export (subscribed, unsubscribed or cleaned members file)."""
    for line, row in _dict_rows(f, where, "Email Address"):
        name = " ".join(p for p in (row.get("first name", ""), row.get("last name", "")) if p)
        tags = next(csv.reader([row.get("tags", "")]), []) if row.get("tags") else []
        suppress = None
        stamp = row.get("clean_time") or row.get("unsub_time") or ""
        # the file says what its members are: the cleaned export has a CLEAN_TIME column, the
        # unsubscribed one UNSUB_TIME (left empty for some, e.g. members unsubscribed by an
        # admin or imported as unsubscribed), the subscribed export neither
        if "clean_time" in row:
            suppress = "bounced"
        elif "unsub_time" in row:
            suppress = "unsubscribed"
        yield Incoming(
            line=line,
            email=row.get("email address", ""),
            name=textpolicy.no_formula(name),  # readers typed it: never a formula
            add_tags=frozenset(t.strip() for t in tags if t.strip()),
            subscribed_at=_day(row.get("confirm_time") or row.get("optin_time", "")),
            suppress=suppress,
            # Mailchimp writes its times in UTC; unreadable ones fall back to the import time
            suppressed_at=subscribers.parse_time(stamp) if stamp else None,
        )


def read_substack(f: IO[str], where: str) -> Iterator[Incoming]:
    """A Substack subscriber export; paying subscribers are tagged ``paid``."""
    for line, row in _dict_rows(f, where, "email", "active_subscription"):
        paid = _truthy(row.get("active_subscription", ""))
        yield Incoming(
            line=line,
            email=row.get("email", ""),
            add_tags=frozenset({"paid"}) if paid else frozenset(),
            remove_tags=frozenset() if paid else frozenset({"paid"}),
            subscribed_at=_day(row.get("created_at", "")),
            suppress="unsubscribed" if _truthy(row.get("email_disabled", "")) else None,
        )


def read_patreon(f: IO[str], where: str) -> Iterator[Incoming]:
    """A Patreon members export; active patrons are tagged ``patron``, others lose it."""
    for line, row in _dict_rows(f, where, "Email", "Patron Status"):
        active = row.get("patron status", "").lower() == "active patron"
        yield Incoming(
            line=line,
            email=row.get("email", ""),
            name=textpolicy.no_formula(row.get("name", "")),  # patrons typed it
            add_tags=frozenset({"patron"}) if active else frozenset(),
            remove_tags=frozenset() if active else frozenset({"patron"}),
            subscribed_at=_day(row.get("patronage since date", "")),
        )


READERS: dict[str, Callable[[IO[str], str], Iterator[Incoming]]] = {
    "csv": read_csv,
    "mailchimp": read_mailchimp,
    "substack": read_substack,
    "patreon": read_patreon,
}


def read(
    path: Path, format_: str, *, encoding: str | None = None, warn: Problem
) -> Iterator[Incoming]:
    """Every row of an export file (or of each CSV in an export ``.zip``) in ``format_``."""
    for where, text in open_export(path, str(path), encoding=encoding, warn=warn):
        for item in READERS[format_](text, where):
            item.where = where
            yield item


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def quote_formula(cell: str) -> str:
    """``cell`` made inert for spreadsheets: ``=1+1`` → ``'=1+1``. A value that already reads
    so (``'=1+1``, a name someone typed) gets one quote more, so that ``unquote_formula``
    gives it back as it was instead of dropping its own quote."""
    return f"'{cell}" if cell.lstrip("'").startswith(_FORMULA_START) else cell


def unquote_formula(cell: str) -> str:
    """The inverse of ``quote_formula`` (what an export wrote comes back as it was)."""
    return cell[1:] if cell[:1] == "'" and cell.lstrip("'").startswith(_FORMULA_START) else cell
