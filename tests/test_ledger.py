"""The SQLite ledger: freezing, row states, crash semantics, the last sent issue."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from pressroom.delivery import ledger as L
from pressroom.delivery.ledger import Ledger, Update
from pressroom.errors import LedgerError
from tests.send_helpers import NOW, rendered_issue


def recipients(n: int) -> list[tuple[str, str, str]]:
    return [(f"r{i}@example.org", f"Reader {i}", "all") for i in range(n)]


def test_a_missing_state_file_means_nothing_was_sent(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.db"
    assert L.open_existing(path) is None
    with Ledger(path) as ledger:
        assert ledger.last_sent() is None
        assert ledger.unfinished() is None
    assert path.exists()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_freeze_keeps_the_rendered_issue_byte_for_byte(tmp_path: Path) -> None:
    rendered = rendered_issue(3)
    with Ledger(tmp_path / "s.db") as ledger:
        frozen = ledger.freeze(rendered, recipients(5), window_end=NOW, now=NOW, list_="weekly")
    with Ledger(tmp_path / "s.db") as ledger:  # reopened: it is on disk
        again = ledger.unfinished()
    assert again is not None
    assert again.rendered == rendered
    assert (again.number, again.total, again.list, again.status) == (3, 5, "weekly", "sending")
    assert again.window_end == NOW
    assert frozen == again


def test_duplicates_are_frozen_once(tmp_path: Path) -> None:
    rows = [*recipients(3), ("r1@example.org", "Again", "all")]
    with Ledger(tmp_path / "s.db") as ledger:
        frozen = ledger.freeze(rendered_issue(), rows, window_end=NOW, now=NOW)
        assert frozen.total == 3
        assert ledger.counts(frozen.number)[L.PENDING] == 3


def test_an_issue_cannot_be_frozen_twice_nor_beside_an_unfinished_one(tmp_path: Path) -> None:
    with Ledger(tmp_path / "s.db") as ledger:
        ledger.freeze(rendered_issue(1), recipients(2), window_end=NOW, now=NOW)
        with pytest.raises(LedgerError, match="already in the ledger"):
            ledger.freeze(rendered_issue(1), recipients(2), window_end=NOW, now=NOW)
        with pytest.raises(LedgerError, match="issue 1 is still being sent"):
            ledger.freeze(rendered_issue(2), recipients(2), window_end=NOW, now=NOW)


def test_rows_move_through_their_states_and_the_issue_settles(tmp_path: Path) -> None:
    with Ledger(tmp_path / "s.db") as ledger:
        frozen = ledger.freeze(rendered_issue(4), recipients(3), window_end=NOW, now=NOW)
        rows = ledger.pending(4, 0, 10)
        assert [r.email for r in rows] == ["r0@example.org", "r1@example.org", "r2@example.org"]
        ledger.mark_in_flight(rows, 100.0)
        assert ledger.counts(4)[L.IN_FLIGHT] == 3
        assert ledger.pending(4, 0, 10) == []
        ledger.record(
            [
                Update(rows[0].id, L.SENT, "<id0@x>"),
                Update(rows[1].id, L.FAILED, None, "SMTP 550: no such user"),
                Update(rows[2].id, L.PENDING, None, "HTTP 429"),
            ],
            101.0,
        )
        assert not ledger.mark_issue_sent(4, NOW)  # one still pending
        again = ledger.pending(4, 0, 10)
        assert again[0].attempts == 1 and again[0].first_try == 100.0
        ledger.mark_in_flight(again, 102.0)
        ledger.record([Update(again[0].id, L.SENT, "<id2@x>")], 103.0)
        assert ledger.failures(4) == [("r1@example.org", "SMTP 550: no such user")]
        assert ledger.mark_issue_sent(4, NOW + timedelta(minutes=5))
        last = ledger.last_sent()
        assert last is not None
        assert (last.number, last.sent_at, last.window_end) == (4, NOW + timedelta(minutes=5), NOW)
        assert ledger.unfinished() is None
        row = ledger.db.execute(
            "SELECT attempts, message_id, first_try, updated_at FROM deliveries WHERE id=?",
            (again[0].id,),
        ).fetchone()
        assert row == (2, "<id2@x>", 100.0, 103.0)
        assert frozen.number == 4


def test_rows_in_flight_at_a_crash_become_uncertain(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    ledger = Ledger(path)
    ledger.freeze(rendered_issue(5), recipients(4), window_end=NOW, now=NOW)
    rows = ledger.pending(5, 0, 2)
    ledger.mark_in_flight(rows, 1.0)
    ledger.db.close()  # the process dies here: no result recorded

    with Ledger(path) as ledger:
        assert ledger.crashed_to_uncertain(5) == 2
        assert ledger.emails_in(5, L.UNCERTAIN) == ["r0@example.org", "r1@example.org"]
        assert not ledger.mark_issue_sent(5, NOW)  # uncertain rows keep it open
        assert ledger.requeue_uncertain(5) == 2
        assert ledger.counts(5)[L.PENDING] == 4


def test_drop_uncertain_settles_them_as_dropped_not_failed(tmp_path: Path) -> None:
    with Ledger(tmp_path / "s.db") as ledger:
        ledger.freeze(rendered_issue(6), recipients(1), window_end=NOW, now=NOW)
        ledger.mark_in_flight(ledger.pending(6, 0, 1), 1.0)
        ledger.crashed_to_uncertain(6)
        assert ledger.drop_uncertain(6) == 1
        # many uncertain readers were delivered: dropping them is not a failure (issue 13 §3)
        assert ledger.failures(6) == []
        assert ledger.failures(6, L.DROPPED)[0][1].startswith("uncertain")
        assert ledger.counts(6)[L.DROPPED] == 1
        assert ledger.mark_issue_sent(6, NOW)


def test_discard_only_an_issue_without_history(tmp_path: Path) -> None:
    with Ledger(tmp_path / "s.db") as ledger:
        ledger.freeze(rendered_issue(8), recipients(2), window_end=NOW, now=NOW)
        ledger.discard(8)
        assert ledger.unfinished() is None
        ledger.freeze(rendered_issue(8), recipients(2), window_end=NOW, now=NOW)
        ledger.mark_in_flight(ledger.pending(8, 0, 1), 1.0)
        with pytest.raises(LedgerError, match="history"):
            ledger.discard(8)


def test_a_large_recipient_set_is_inserted_and_read_back_in_chunks(tmp_path: Path) -> None:
    gen = ((f"r{i}@example.org", "", "all") for i in range(120_000))
    with Ledger(tmp_path / "s.db") as ledger:
        frozen = ledger.freeze(rendered_issue(9), gen, window_end=NOW, now=NOW, chunk=25_000)
        assert frozen.total == 120_000
        ids = [r.id for r in ledger.iter_pending(9, chunk=7_000)]
        assert len(ids) == 120_000 and ids == sorted(ids)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="cannot open the state file"):
        Ledger(path)


def test_a_state_file_locked_by_another_program_says_so_not_restore_a_backup(
    tmp_path: Path,
) -> None:
    # a sqlite3 shell (or a DB browser) left a write transaction open on the state file
    path = tmp_path / "state.db"
    with Ledger(path) as ledger:
        ledger.db.execute("PRAGMA busy_timeout=100")  # not 30 s in a test
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE issues SET subject=subject")
        try:
            with pytest.raises(LedgerError) as caught:
                ledger.freeze(rendered_issue(1), recipients(3), window_end=NOW, now=NOW)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        message = caught.value.message
        assert "another program kept state.db locked" in message, message
        assert "not damaged" in message and "backup" not in message.replace("a backup tool", "")
        assert "\n" not in message
        # nothing was half-stored: the same freeze works once the other program let go
        frozen = ledger.freeze(rendered_issue(1), recipients(3), window_end=NOW, now=NOW)
        assert frozen.total == 3
