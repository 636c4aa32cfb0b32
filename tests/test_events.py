"""The one event policy: suppress on hard bounce/complaint/unsubscribe, count soft bounces,
idempotent and order-independent, against real suppressed.csv and state.db files."""

from __future__ import annotations

import csv
import sqlite3
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pressroom import config
from pressroom.audience import events, subscribers
from pressroom.audience.events import Event
from pressroom.errors import ConfigError, LedgerError

from .subscribers_helpers import make_publication, write

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def pub(tmp_path: Path) -> config.Config:
    return make_publication(tmp_path / "pub")


def rows(pub: config.Config) -> list[dict[str, str]]:
    path = pub.subscribers.suppressed
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ev(kind: str, address: str, days: float = 0, **kw: object) -> Event:
    return Event("mailgun", kind, address, T0 + timedelta(days=days), **kw)  # type: ignore[arg-type]


def test_hard_bounce_complaint_and_unsubscribe_suppress_at_once(pub: config.Config) -> None:
    done = events.apply(
        pub,
        [
            ev(events.HARD_BOUNCE, "Gone@Example.ORG", reason="550 5.1.1 no such user"),
            ev(events.COMPLAINT, "angry@example.org", 1, reason="abuse report"),
            ev(events.UNSUBSCRIBE, "done@example.org", 2),
            ev(events.DELIVERED, "fine@example.org", 3),
        ],
        now=NOW,
    )
    assert done.new == 4 and done.duplicates == 0
    assert done.by_reason() == {"bounced": 1, "complained": 1, "unsubscribed": 1}
    assert done.summary() == "3 newly suppressed (1 bounced, 1 complained, 1 unsubscribed)"
    got = rows(pub)
    assert [(r["email"], r["reason"], r["date"], r["detail"]) for r in got] == [
        (
            "Gone@example.org",
            "bounced",
            "2026-11-02T09:00:00+00:00",
            "mailgun: 550 5.1.1 no such user",
        ),
        ("angry@example.org", "complained", "2026-11-03T09:00:00+00:00", "mailgun: abuse report"),
        ("done@example.org", "unsubscribed", "2026-11-04T09:00:00+00:00", "mailgun"),
    ]
    assert subscribers.load_suppressed(pub) == {
        "gone@example.org",
        "angry@example.org",
        "done@example.org",
    }


def test_the_same_events_twice_change_nothing(pub: config.Config) -> None:
    batch = [
        ev(events.HARD_BOUNCE, "gone@example.org"),
        ev(events.SOFT_BOUNCE, "full@example.org", 0),
        ev(events.SOFT_BOUNCE, "full@example.org", 7),
    ]
    first = events.apply(pub, batch, now=NOW)
    before = pub.subscribers.suppressed.read_bytes()
    again = events.apply(pub, batch, now=NOW + timedelta(days=1))
    assert (first.new, again.new, again.duplicates) == (3, 0, 3)
    assert again.suppressed == []
    assert pub.subscribers.suppressed.read_bytes() == before
    # a replayed soft bounce does not count twice: still two issues, not three
    assert events.soft_bounces(pub, "full@example.org") == 2
    assert events.apply(pub, batch[1:], now=NOW).suppressed == []


def test_provider_event_id_is_the_key(pub: config.Config) -> None:
    a = ev(events.SOFT_BOUNCE, "x@example.org", 0, id="evt-1")
    b = ev(events.SOFT_BOUNCE, "x@example.org", 5, id="evt-1")  # same event, reported again
    assert a.key == b.key
    assert (
        ev(events.SOFT_BOUNCE, "X@example.org").key == ev(events.SOFT_BOUNCE, "x@example.org").key
    )
    assert (
        ev(events.SOFT_BOUNCE, "x@example.org", 1).key
        != ev(events.SOFT_BOUNCE, "x@example.org").key
    )
    assert events.apply(pub, [a, b], now=NOW).duplicates == 1


def test_soft_bounces_suppress_after_the_limit_of_issues(pub: config.Config) -> None:
    for issue in (1, 2):
        events.apply(
            pub, [ev(events.SOFT_BOUNCE, "full@example.org", issue * 7, issue=issue)], now=NOW
        )
    # two bounces for the same issue are one issue
    events.apply(pub, [ev(events.SOFT_BOUNCE, "full@example.org", 14.5, issue=2)], now=NOW)
    assert rows(pub) == []
    done = events.apply(
        pub,
        [ev(events.SOFT_BOUNCE, "full@example.org", 21, issue=3, reason="452 mailbox full")],
        now=NOW,
    )
    assert done.suppressed == [
        ("full@example.org", "bounced", "mailgun: 3 soft bounces in a row; last: 452 mailbox full")
    ]
    assert rows(pub)[0]["date"] == "2026-11-23T09:00:00+00:00"


def test_a_delivery_resets_the_count_even_when_it_arrives_late(pub: config.Config) -> None:
    events.apply(pub, [ev(events.SOFT_BOUNCE, "a@example.org", d) for d in (0, 7)], now=NOW)
    # the delivery of day 10 arrives after the soft bounce of day 14: it resets only day 0 and 7
    events.apply(pub, [ev(events.SOFT_BOUNCE, "a@example.org", 14)], now=NOW)
    assert rows(pub)[0]["email"] == "a@example.org"  # three days in a row: suppressed

    events.apply(pub, [ev(events.SOFT_BOUNCE, "b@example.org", d) for d in (0, 7)], now=NOW)
    events.apply(pub, [ev(events.DELIVERED, "b@example.org", 10)], now=NOW)
    events.apply(pub, [ev(events.SOFT_BOUNCE, "b@example.org", 14)], now=NOW)
    assert events.soft_bounces(pub, "b@example.org") == 1
    # and a delivery older than all of them resets nothing
    events.apply(pub, [ev(events.SOFT_BOUNCE, "c@example.org", d) for d in (7, 14)], now=NOW)
    events.apply(pub, [ev(events.DELIVERED, "c@example.org", 1)], now=NOW)
    assert events.soft_bounces(pub, "c@example.org") == 2
    done = events.apply(pub, [ev(events.SOFT_BOUNCE, "c@example.org", 21)], now=NOW)
    assert [s[0] for s in done.suppressed] == ["c@example.org"]
    assert [r["email"] for r in rows(pub)] == ["a@example.org", "c@example.org"]


def test_out_of_order_arrival_gives_the_same_result(tmp_path: Path) -> None:
    stream = [
        ev(events.SOFT_BOUNCE, "x@example.org", 0),
        ev(events.DELIVERED, "x@example.org", 3),
        ev(events.SOFT_BOUNCE, "x@example.org", 7),
        ev(events.SOFT_BOUNCE, "x@example.org", 14),
        ev(events.SOFT_BOUNCE, "x@example.org", 21),
        ev(events.DELIVERED, "y@example.org", 30),
        ev(events.SOFT_BOUNCE, "y@example.org", 0),
        ev(events.SOFT_BOUNCE, "y@example.org", 7),
        ev(events.SOFT_BOUNCE, "y@example.org", 14),
    ]
    results = []
    for name, order in (
        ("fwd", stream),
        ("rev", stream[::-1]),
        ("mix", stream[1::2] + stream[::2]),
    ):
        pub = make_publication(tmp_path / name)
        for e in order:  # one event per apply, like webhooks arriving one by one
            events.apply(pub, [e], now=NOW)
        results.append(sorted((r["email"], r["reason"], r["date"]) for r in rows(pub)))
    assert results[0] == results[1] == results[2]
    # y's three soft bounces had no delivery between them: suppressed at the third, whether
    # its later delivery arrived first or last
    assert results[0] == [
        ("x@example.org", "bounced", "2026-11-23T09:00:00+00:00"),
        ("y@example.org", "bounced", "2026-11-16T09:00:00+00:00"),
    ]


def test_soft_limit_comes_from_config(tmp_path: Path) -> None:
    root = tmp_path / "pub"
    make_publication(root)
    text = (root / "config.yaml").read_text() + "bounces:\n  soft_limit: 1\n"
    (root / "config.yaml").write_text(text)
    pub = config.load(root / "config.yaml")
    assert pub.bounces.soft_limit == 1
    done = events.apply(pub, [ev(events.SOFT_BOUNCE, "x@example.org")], now=NOW)
    assert done.by_reason() == {"bounced": 1}


def test_bad_soft_limit_names_the_key(tmp_path: Path) -> None:
    root = tmp_path / "pub"
    make_publication(root)
    (root / "config.yaml").write_text(
        (root / "config.yaml").read_text() + textwrap.dedent("bounces:\n  soft_limit: 0\n")
    )
    with pytest.raises(
        ConfigError, match=r"config.yaml:\d+: bounces.soft_limit: expected a positive"
    ):
        config.load(root / "config.yaml")


def test_already_suppressed_and_invalid_addresses(pub: config.Config) -> None:
    write(
        pub.subscribers.suppressed,
        "email,reason,date,list\nold@example.org,unsubscribed,2026-01-01,weekly\n",
    )
    done = events.apply(
        pub,
        [ev(events.COMPLAINT, "OLD@example.org"), ev(events.HARD_BOUNCE, "not an address")],
        now=NOW,
    )
    assert done.suppressed == [] and done.new == 1
    assert done.invalid and done.invalid[0][0] == "not an address"
    assert [r["reason"] for r in rows(pub)] == ["unsubscribed"]  # the editor's row stays as it was


def test_dry_run_changes_nothing(pub: config.Config) -> None:
    batch = [
        ev(events.HARD_BOUNCE, "gone@example.org"),
        ev(events.HARD_BOUNCE, "gone@example.org", 1),
    ]
    done = events.apply(pub, batch, now=NOW, dry_run=True)
    assert done.suppressed == [("gone@example.org", "bounced", "mailgun")]
    assert not pub.subscribers.suppressed.exists()
    assert not pub.state_db.exists()  # no state yet: the dry run leaves none behind
    assert events.apply(pub, batch, now=NOW).new == 2  # nothing was remembered either
    again = events.apply(
        pub, [*batch, ev(events.COMPLAINT, "new@example.org")], now=NOW, dry_run=True
    )
    assert (again.duplicates, again.suppressed) == (
        2,
        [("new@example.org", "complained", "mailgun")],
    )


def test_a_failed_write_keeps_the_events_for_the_next_run(pub: config.Config) -> None:
    pub.subscribers.suppressed.parent.mkdir(parents=True, exist_ok=True)
    pub.subscribers.suppressed.mkdir()  # a folder where the file should be: the write fails
    with pytest.raises(subscribers.SubscriberError):
        events.apply(pub, [ev(events.HARD_BOUNCE, "gone@example.org")], now=NOW)
    pub.subscribers.suppressed.rmdir()
    done = events.apply(pub, [ev(events.HARD_BOUNCE, "gone@example.org")], now=NOW)
    assert done.new == 1 and [r["email"] for r in rows(pub)] == ["gone@example.org"]


def test_issue_of_fills_in_unknown_issues(pub: config.Config) -> None:
    seen: list[tuple[str, datetime]] = []

    def issue_of(address: str, when: datetime) -> int | None:
        seen.append((address, when))
        return 7

    events.apply(
        pub,
        [ev(events.COMPLAINT, "A@Example.org"), ev(events.HARD_BOUNCE, "b@example.org", issue=6)],
        now=NOW,
        issue_of=issue_of,
    )
    assert seen == [("A@example.org", T0)]
    assert events.counts_by_issue(pub) == {7: {"complaint": 1}, 6: {"hard_bounce": 1}}


def test_cursors_are_kept_per_provider_and_list(pub: config.Config) -> None:
    assert events.cursor(pub, "mailgun", "bounces") is None
    events.set_cursor(pub, "mailgun", "bounces", "https://x/page2", now=NOW)
    events.set_cursor(pub, "mailgun", "bounces", "https://x/page3", now=NOW)
    events.set_cursor(pub, "sendgrid", "bounces", "1700000000", now=NOW)
    assert events.cursor(pub, "mailgun", "bounces") == "https://x/page3"
    assert events.cursor(pub, "sendgrid", "bounces") == "1700000000"
    assert events.cursor(pub, "mailgun", "complaints") is None


def test_unknown_kind_and_unusable_state_file(pub: config.Config) -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        Event("mailgun", "bounced", "x@example.org", T0)
    pub.state.mkdir(parents=True, exist_ok=True)
    pub.state_db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="state"):
        events.apply(pub, [ev(events.HARD_BOUNCE, "x@example.org")], now=NOW)
    assert not pub.subscribers.suppressed.exists()
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(pub.state_db).execute("SELECT 1 FROM feedback_events").fetchall()


def test_a_reason_from_outside_loses_its_control_characters(pub: config.Config) -> None:
    # a bounce's reason is what a remote mail server (or a bounce mail's Subject) says: a
    # terminal escape in it reached `suppressions sync -v` and every `cat suppressed.csv`,
    # and an override turned the rest of the row around
    said = "550 \x1b]0;owned\x07\x1b[2J user \u202eknown\r\nunknown"
    events.apply(pub, [ev(events.HARD_BOUNCE, "gone@example.org", reason=said)], now=NOW)
    [row] = rows(pub)
    assert row["detail"] == "mailgun: 550 ]0;owned[2J user known unknown"
    text = pub.subscribers.suppressed.read_text(encoding="utf-8")
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert ev(events.HARD_BOUNCE, "gone@example.org", reason=said).reason == (
        "550 ]0;owned[2J user known unknown"
    )
