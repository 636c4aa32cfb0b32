"""When pressroom first saw a feed item that carries no date (RSS 0.9x items have none).

Feed readers date such an item by the time they first fetched it; pressroom does the same and
keeps that time in the state database (``<state>/state.db``, table ``first_seen``), so the
item keeps its date on every later run and is not news again next week. The table is the
content stage's own: it is created on first use, beside the ledger's tables.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from pressroom.errors import SourceError

STATE_DB = "state.db"  # the state folder's database (``Config.state_db``), shared with the ledger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS first_seen (
    feed TEXT NOT NULL,     -- the feed source's configured URL
    item TEXT NOT NULL,     -- the item's guid, else its link
    seen TEXT NOT NULL,     -- ISO 8601 with offset
    PRIMARY KEY (feed, item)
)
"""


class FirstSeen:
    """The ``first_seen`` table of one state database, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def when(self, feed: str, item: str, now: datetime) -> datetime:
        """When ``item`` of ``feed`` was first seen; ``now`` (and recorded) the first time."""
        try:
            db = self._open()
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO first_seen (feed, item, seen) VALUES (?, ?, ?)",
                    (feed, item, now.isoformat()),
                )
                row = db.execute(
                    "SELECT seen FROM first_seen WHERE feed = ? AND item = ?", (feed, item)
                ).fetchone()
            return datetime.fromisoformat(row[0])
        except (sqlite3.Error, OSError, ValueError, TypeError) as e:
            raise SourceError(
                f"{self.path}: cannot record when feed items were first seen ({e}); check "
                "that the state: folder is writable"
            ) from e

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            try:
                db.execute(_SCHEMA)
            except sqlite3.Error:
                db.close()
                raise
            self._db = db
        return self._db
