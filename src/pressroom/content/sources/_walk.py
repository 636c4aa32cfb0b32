"""Walking a ``files`` source's folder: which files are articles, and their fingerprint.

The walk decides what the source reads (hidden files, the generators' non-content folders and
``exclude`` globs are skipped; symlinked folders are followed once); ``scan`` adds each file's
``stat``, and ``digest`` turns that into the source's fingerprint (``Source.fingerprint``):
what a run where nothing changed compares instead of reading any article.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from pressroom.content.sources.base import RACY_NS
from pressroom.errors import ArticleError
from pressroom.textpolicy import printable

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}
# Folders no generator publishes from: Jekyll's drafts, layouts and build output, Eleventy's
# includes and data, Hugo's build output. Hugo's section pages (_index.md) are lists too.
SKIPPED_FOLDERS = frozenset(
    {"_drafts", "_site", "_layouts", "_includes", "_data", "_sass", "node_modules"}
)
SKIPPED_FILES = frozenset({"_index.md", "_index.html", "_index.markdown"})


@dataclass(frozen=True)
class File:
    """One file the walk found (or could not read: ``problem``)."""

    path: str  # on disk
    rel: str  # as messages show it (relative to the config folder)
    folders: tuple[str, ...]  # folders between the source path and the file
    problem: str | None = None  # why it cannot be read at all (a symbolic link loop)


Scanned = list[tuple["File", os.stat_result | None, ArticleError | None]]


def scan(
    folder: str, shown: str, exclude: tuple[str, ...], outputs: tuple[str, ...] = ()
) -> Scanned:
    """Every article file below ``folder`` with its ``stat``, or the error that stands for it
    (``shown`` is how messages name the folder). The ``outputs`` folders, where pressroom
    writes (its feeds page is HTML), are left out like folders already walked."""
    found: Scanned = []
    seen: set[tuple[int, int]] = set()
    for output in outputs:
        with contextlib.suppress(OSError):
            info = os.stat(output)
            if not os.path.samestat(info, os.stat(folder)):  # never the whole folder
                seen.add((info.st_dev, info.st_ino))
    for file in walk(folder, shown, (), exclude, seen):
        if file.problem is not None:
            found.append((file, None, ArticleError(file.rel, "", file.problem)))
            continue
        try:
            st = os.stat(file.path)
            if not stat.S_ISREG(st.st_mode):  # a named pipe would block the read for ever
                problem = "not a regular file (a pipe, socket or device); remove it"
                found.append((file, None, ArticleError(file.rel, "", problem)))
                continue
            found.append((file, st, None))
        except OSError as e:
            error = ArticleError(file.rel, "", f"cannot read: {e.strerror or e}")
            found.append((file, None, error))
    return found


def walk(
    folder: str,
    shown: str,
    folders: tuple[str, ...],
    exclude: tuple[str, ...],
    seen: set[tuple[int, int]] | None = None,
) -> Iterator[File]:
    """The article files below ``folder``, in a stable order.

    Hidden files and folders (".git", ".DS_Store"), the generators' non-content folders
    (``SKIPPED_FOLDERS``) and paths matching an ``exclude`` glob are skipped; symlinked
    folders are followed, each real folder once (a link back up the tree must not loop).
    What cannot be walked (a symbolic link loop, a folder that cannot be read) comes back
    with its ``problem`` instead of stopping the walk.
    """
    seen = set() if seen is None else seen
    dirs: list[str] = []
    files: list[str] = []
    broken: list[tuple[str, str]] = []
    try:
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            return
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".") or _excluded("/".join((*folders, name)), exclude):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError as e:  # a symbolic link loop: ELOOP
                    broken.append((name, _walk_problem(e)))
                    continue
                if is_dir:
                    if name not in SKIPPED_FOLDERS:
                        dirs.append(name)
                elif os.path.splitext(name)[1].lower() in FORMATS and name not in SKIPPED_FILES:
                    files.append(name)
    except OSError as e:
        yield File(folder, shown, folders, _walk_problem(e))
        return
    # a name may hold a line break or a terminal escape: messages show it escaped, on one line
    for name, problem in sorted(broken):
        yield File(os.path.join(folder, name), f"{shown}/{printable(name)}", folders, problem)
    for name in sorted(files):
        yield File(os.path.join(folder, name), f"{shown}/{printable(name)}", folders)
    for name in sorted(dirs):
        yield from walk(
            os.path.join(folder, name),
            f"{shown}/{printable(name)}",
            (*folders, name),
            exclude,
            seen,
        )


def digest(found: Scanned, scanned_at: int) -> str | None:
    """What ``scan`` saw, as one hash: paths, sizes, times and inodes, and what failed.

    None when a file changed within ``RACY_NS`` before ``scanned_at`` (``time.time_ns()``
    taken before the scan): it may change again within the same clock tick and keep all of
    these, so nothing can be vouched for (see ``content.cache``).
    """
    h = hashlib.blake2b(digest_size=20)
    racy = scanned_at - RACY_NS
    for file, st, broken in found:
        if st is None:
            h.update(f"{file.path}\0{broken}\n".encode("utf-8", "surrogateescape"))
            continue
        if st.st_mtime_ns >= racy or st.st_ctime_ns >= racy:
            return None
        key = f"{file.path}\0{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}\n"
        h.update(key.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _walk_problem(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "a symbolic link loop (a link that points back to itself); remove or fix the link"
    return f"cannot read: {error.strerror or error}; check the permissions"


def _excluded(rel: str, exclude: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(rel, pattern.strip("/")) for pattern in exclude)
