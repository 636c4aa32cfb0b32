"""The installed code a run's output depends on, as one stamp.

pressroom's version and its own source files (an edited checkout of the same version), the
libraries whose output ends up in articles and feeds (an upgrade replaces their files, so
their times and inodes change) and the zone rules dates are read with. What is kept from
one run for the next (parsed articles, rendered feeds, the feeds page) names this stamp, so
an upgrade of any of them gives the output a cold run would.
"""

from __future__ import annotations

import hashlib
import os
import zoneinfo
from importlib.util import find_spec
from pathlib import Path

from pressroom import __version__

# the libraries whose output is in the feeds: writers, templates, Markdown, the sanitiser,
# front matter, slugs, addresses, zone rules
LIBRARIES = (
    "feedgen", "lxml", "jinja2", "markupsafe", "cmarkgfm", "nh3", "yaml", "anyascii",
    "email_validator", "tzdata",
)  # fmt: skip


def files(zone: str | None = None) -> list[tuple[str, Path | None]]:
    """Every file the stamp looks at, named: libraries, zone rules, pressroom's sources."""
    found: list[tuple[str, Path | None]] = []
    for library in LIBRARIES:
        spec = find_spec(library)
        found.append((library, Path(spec.origin) if spec is not None and spec.origin else None))
    if zone is not None:
        found += [("tz", Path(folder) / zone) for folder in zoneinfo.TZPATH]
    found += [(path.name, path) for path in tree(Path(__file__).parents[1])]  # pressroom
    return found


def tree(folder: Path) -> list[Path]:
    """Every file below ``folder`` in a stable order, bytecode caches left out."""
    found: list[Path] = []
    for base, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += [Path(base, name) for name in sorted(names)]
    return found


def stamp(zone: str | None = None) -> str:
    """One digest of ``files(zone)``: their sizes, times and inodes, with the version."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{__version__}\0{zoneinfo.TZPATH!r}\n".encode())
    for name, path in files(zone):
        try:
            st = os.stat(path) if path is not None else None
            seen = None if st is None else (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        except OSError:
            seen = None
        h.update(f"{name}\0{path}\0{seen}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()
