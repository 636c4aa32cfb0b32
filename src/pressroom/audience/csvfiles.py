"""Reading one subscriber-format CSV file (a subscriber list, the suppressed file) row by row,
with the damage a hand edit or a failed copy leaves named where it is: no or two ``email``
columns, an unterminated quote that would swallow the rows after it, a row with a field too
many, bytes that are not UTF-8, a file emptied to nothing."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

Problem = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each known column sits in one file's rows (a missing one points at a "")."""

    pos: dict[str, int]
    extras: list[tuple[int, str]]


def read_cells(
    path: Path,
    where: str,
    problem: Problem,
    columns: Sequence[str],
    *,
    warn: Problem | None = None,
    keep_long: bool = False,
) -> Iterator[tuple[int, list[str], Layout]]:
    """(line, cells, layout) for each data row; cells are padded so every ``pos`` is valid.
    A row with more fields than the header is a problem and skipped, unless ``keep_long``
    (the suppressed file: its address still counts)."""
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        problem(f"{where}: cannot read: {e.strerror}")
        return
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                if warn is not None:  # a truncated export or a failed copy, most likely
                    warn(
                        f"{where}: empty file, nobody in it is mailed; restore it from a "
                        f"backup or write the header {','.join(columns)}"
                    )
                return
            names = [h.strip().lower() for h in header]
            if "email" not in names:
                problem(
                    f"{where}:1: no email column; the first line must be a header like "
                    f"{','.join(columns)}"
                )
                return
            if twice := repeated_column(names):
                problem(twice_message(where, twice, names))
                return
            width = len(names)
            # a column the file lacks reads the extra "" cell after the last real one
            pos = {c: names.index(c) if c in names else width for c in columns}
            extras = [(i, header[i].strip()) for i, n in enumerate(names) if n not in columns and n]
            layout = Layout(pos, extras)
            pad = [""] * (width + 1)
            end = reader.line_num  # the last physical line read so far
            for cells in reader:
                line = end + 1  # where this row starts
                end = reader.line_num
                if end != line:
                    # a quoted value ran over a line break: nearly always a missing closing
                    # quote, which swallows the rows after it; none of them can be trusted
                    problem(runs_on(where, line, end))
                    continue
                n = len(cells)
                if n <= 1 and not (cells and cells[0].strip()):
                    continue  # blank line
                if n > width and not keep_long:
                    problem(
                        f"{where}:{line}: {n} fields but the header has "
                        f"{width}; quote values that contain a comma"
                    )
                    continue
                cells += pad[n:]
                yield line, cells, layout
        except UnicodeDecodeError:
            # decoding runs ahead of the csv reader: find the line in the raw bytes
            problem(f"{where}:{first_bad_line(path)}: not UTF-8; save the file as UTF-8 CSV")
        except csv.Error as e:
            problem(f"{where}:{reader.line_num}: malformed CSV ({e})")


def repeated_column(names: Sequence[str]) -> str | None:
    """The first column name (stripped, any case) that a header gives twice, if any."""
    seen: set[str] = set()
    for name in (n.strip().lower() for n in names):
        if name in seen:
            return name
        if name:
            seen.add(name)
    return None


def twice_message(where: str, name: str, names: Sequence[str]) -> str:
    at = [str(i + 1) for i, n in enumerate(names) if n.strip().lower() == name]
    return (
        f'{where}:1: the column "{name}" is in the header twice (columns {" and ".join(at)}); '
        "which one counts cannot be told: remove or rename one"
    )


def runs_on(where: str, line: int, end: int) -> str:
    """The problem line for a row whose quoted value runs from ``line`` on to ``end``."""
    lost = f"line {end} was" if end == line + 1 else f"lines {line + 1}-{end} were"
    return (
        f"{where}:{line}: unterminated quote (the row runs on to line {end}); fix the "
        f"quoting — {lost} not read"
    )


def first_bad_line(path: Path) -> int:
    """The number of the first line of ``path`` that is not UTF-8 (1 if none is)."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return n
    return 1
