"""Rewriting subscriber files (`add`, `import`): streamed, locked, atomic; suppression dates."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pressroom.audience import imports as subscriber_import
from pressroom.audience import subscribers
from pressroom.cli import main
from pressroom.config import Config
from pressroom.errors import SubscriberError, UsageError
from tests.subscribers_helpers import HEADER, make_publication, write


@pytest.fixture
def pub(tmp_path: Path) -> Config:
    return make_publication(tmp_path / "pub")


def run(pub: Config, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(pub.path), *args])


def big_file(pub: Config, rows: int) -> Path:
    path = pub.root / "subscribers/subscribers.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(rows):
            f.write(f"reader{i}@example{i % 50}.org,Reader {i},weekly,,active,2026-01-01\n")
    return path


# --- streamed rewrites ---------------------------------------------------------------------


def test_add_and_import_stream_a_large_file_instead_of_loading_it(
    pub: Config, tmp_path: Path
) -> None:
    rows = 100_000
    path = big_file(pub, rows)
    size = path.stat().st_size  # ~6.5 MB; loaded as lists of strings it would take ~60 MB
    export = write(
        tmp_path / "patreon.csv",
        "Name,Email,Patron Status,Patronage Since Date\n"
        "Reader 50000,READER50000@example0.org,Active patron,2025-01-01\n"
        "Pat Ron,pat@example.org,Active patron,2025-02-03\n",
    )
    tracemalloc.start()
    try:
        added = run(pub, "subscribers", "add", "new@example.org", "--now", "2026-11-25T10:00")
        add_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        imported = run(pub, "subscribers", "import", str(export), "--format", "patreon")
        import_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert added.exit_code == 0, added.output
    assert imported.exit_code == 0, imported.output
    assert "1 added, 1 updated, 0 unchanged" in imported.stdout
    for peak in (add_peak, import_peak):
        assert peak < size // 4, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + rows + 2
    assert lines[1] == "reader0@example0.org,Reader 0,weekly,,active,2026-01-01"
    assert lines[50_001] == "reader50000@example0.org,Reader 50000,weekly,patron,active,2026-01-01"
    assert lines[-2:] == [
        "new@example.org,,,,active,2026-11-25",
        "pat@example.org,Pat Ron,,patron,active,2025-02-03",
    ]


def test_an_import_that_changes_nothing_leaves_the_file_alone(pub: Config, tmp_path: Path) -> None:
    path = write(
        pub.root / "subscribers/subscribers.csv",
        "Email,Name\nada@example.com,Ada\n",  # no lists/tags columns: they would be added
    )
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    export = write(tmp_path / "own.csv", "email,name\nADA@example.com,Someone else\n")
    r = run(pub, "subscribers", "import", str(export), "--format", "csv")
    assert r.exit_code == 0, r.output
    assert "0 added, 0 updated, 1 unchanged" in r.stdout
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_import_keeps_other_rows_as_they_are_and_adds_new_columns(
    pub: Config, tmp_path: Path
) -> None:
    path = write(
        pub.root / "subscribers/subscribers.csv",
        "email,name,tags\n"
        "ada@example.com,Ada,\n"
        "\n"
        "not an address,Kept,\n"
        "ada@EXAMPLE.com,second row of ada,\n"
        'grace@example.org,"Hopper, Grace",x\n',
    )
    export = write(
        tmp_path / "own.csv",
        "email,name,tags,city\n"
        "ada@example.com,,patron,Paris\n"  # known: tags merged into her first row only
        "zoe@example.org,Zoë,,Lyon\n"
        "zoe@example.org,,vip,\n",  # twice in one export: one row, both tags
    )
    r = run(
        pub, "subscribers", "import", str(export), "--format", "csv", "--now", "2026-11-25T10:00"
    )
    assert r.exit_code == 0, r.output
    assert f"{export}: 1 added, 2 updated, 0 unchanged" in r.stdout
    assert path.read_text(encoding="utf-8") == (
        "email,name,tags,lists,status,subscribed_at,city\n"
        "ada@example.com,Ada,patron,,,,\n"
        "not an address,Kept,,,,,\n"
        "ada@EXAMPLE.com,second row of ada,,,,,\n"
        'grace@example.org,"Hopper, Grace",x,,,,\n'
        "zoe@example.org,Zoë,vip,,active,2026-11-25,Lyon\n"
    )


def test_add_refuses_an_address_already_in_the_target_and_leaves_it(pub: Config) -> None:
    path = write(pub.root / "subscribers/subscribers.csv", HEADER + "ada@example.com,,,,,\n")
    item = subscriber_import.Incoming(line=0, email="ADA@example.com")
    with pytest.raises(UsageError, match=r"ADA@example.com is already in subscribers/subscribers"):
        subscriber_import.merge(
            pub,
            [item],
            into=path,
            when=datetime(2026, 11, 25, tzinfo=UTC),
            source="EMAIL",
            problem=pytest.fail,
            add_only=True,
        )
    assert path.read_text() == HEADER + "ada@example.com,,,,,\n"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_file_that_cannot_be_read_is_one_clear_error_and_unchanged(pub: Config) -> None:
    path = pub.root / "subscribers/subscribers.csv"
    path.write_bytes(HEADER.encode() + b"ada@example.com,,,,,\n" + b"bad\xff@example.org,,,,,\n")
    before = path.read_bytes()
    r = run(pub, "subscribers", "add", "new@example.org", "--into", "subscribers.csv")
    assert r.exit_code == 1
    assert r.stderr == (
        "error: subscribers/subscribers.csv:3: not UTF-8; save it as UTF-8 CSV before changing it\n"
    )
    assert "Traceback" not in r.output
    assert path.read_bytes() == before


# --- concurrent writers --------------------------------------------------------------------

WORKER = """
import sys
from click.testing import CliRunner
from pressroom.cli import main

config, worker, kind = sys.argv[1], sys.argv[2], sys.argv[3]
for i in range(12):
    email = f"w{worker}-{i}@example.org"
    if kind == "add":
        args = ["subscribers", "add", email]
    elif kind == "import":
        path = f"{sys.argv[4]}/import-{worker}-{i}.csv"
        with open(path, "w") as f:
            f.write(f"email,tags\\n{email},imported\\ngone-{worker}-{i}@example.org,\\n")
        args = ["subscribers", "import", path, "--format", "csv"]
    else:
        args = ["subscribers", "unsubscribe", email]
    r = CliRunner().invoke(main, ["--config", config, *args])
    assert r.exit_code == 0, r.output
"""


def test_concurrent_add_import_and_unsubscribe_lose_nothing(pub: Config, tmp_path: Path) -> None:
    big_file(pub, 3_000)  # each rewrite takes a while: writers would overlap without the lock
    kinds = ["add", "add", "import", "import", "unsubscribe"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(pub.path), str(w), kind, str(tmp_path)],
            stderr=subprocess.PIPE,
        )
        for w, kind in enumerate(kinds)
    ]
    results = [(p.communicate()[1].decode(), p.returncode) for p in procs]
    assert [code for _, code in results] == [0] * len(kinds), results
    listed = {s.email for s in subscribers.iter_subscribers(pub, on_problem=pytest.fail)}
    for w, kind in enumerate(kinds):
        for i in range(12):
            if kind == "add":
                assert f"w{w}-{i}@example.org" in listed
            elif kind == "import":
                assert f"w{w}-{i}@example.org" in listed
                assert f"gone-{w}-{i}@example.org" in listed
    assert len(listed) == 3_000 + 2 * 12 + 2 * 2 * 12
    lines = (pub.root / "subscribers/subscribers.csv").read_text().splitlines()
    assert len(lines) == 1 + len(listed)  # and no row written twice
    suppressed = subscribers.load_suppressed(pub)
    assert suppressed == {f"w4-{i}@example.org" for i in range(12)}


# --- suppression dates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "written"),
    [
        (datetime(2026, 11, 25, 14, 29, 25, 123456, tzinfo=UTC), "2026-11-25T14:29:25+00:00"),
        (
            datetime(2026, 11, 25, 9, 0, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-25T09:00:00+02:00",
        ),
        (datetime(2026, 11, 25, 9, 0), "2026-11-25T09:00:00+00:00"),  # naive: UTC
        (date(2026, 11, 25), "2026-11-25T00:00:00+00:00"),
        ("2026-11-25", "2026-11-25T00:00:00+00:00"),
        ("2026-11-25T09:30:00Z", "2026-11-25T09:30:00+00:00"),
        ("2026-11-25 09:30:00-05:00", "2026-11-25T09:30:00-05:00"),
    ],
)
def test_suppressed_dates_are_always_iso_with_time_and_offset(
    pub: Config, when: date | str, written: str
) -> None:
    subscribers.suppress(pub, "a@example.org", reason="bounced", when=when)
    assert pub.subscribers.suppressed.read_text().splitlines()[1] == (
        f"a@example.org,bounced,{written},"
    )


def test_an_unreadable_suppression_time_is_refused(pub: Config) -> None:
    with pytest.raises(SubscriberError, match=r'cannot read the time "last tuesday"; use ISO 8601'):
        subscribers.suppress(pub, "a@example.org", reason="bounced", when="last tuesday")
    assert not pub.subscribers.suppressed.exists()


def test_an_entry_carries_its_own_time(pub: Config) -> None:
    n = subscribers.suppress_many(
        pub,
        [
            ("a@example.org", "unsubscribed", datetime(2024, 5, 1, 12, tzinfo=UTC)),
            ("b@example.org", "bounced", None),
            ("c@example.org", "bounced"),
        ],
        when=datetime(2026, 11, 25, 10, tzinfo=UTC),
    )
    assert n == 3
    assert pub.subscribers.suppressed.read_text().splitlines()[1:] == [
        "a@example.org,unsubscribed,2024-05-01T12:00:00+00:00,",
        "b@example.org,bounced,2026-11-25T10:00:00+00:00,",
        "c@example.org,bounced,2026-11-25T10:00:00+00:00,",
    ]


def test_mailchimp_times_are_kept_and_unreadable_ones_fall_back_to_the_import_time(
    pub: Config, tmp_path: Path
) -> None:
    export = write(
        tmp_path / "unsubscribed_members_export.csv",
        "Email Address,First Name,UNSUB_TIME,UNSUB_REASON\n"
        "a@example.org,A,2024-05-01 12:00:00,\n"
        "b@example.org,B,sometime in May,\n",
    )
    r = run(
        pub,
        "subscribers",
        "import",
        str(export),
        "--format",
        "mailchimp",
        "--now",
        "2026-11-25T10:00:00+01:00",
    )
    assert r.exit_code == 0, r.output
    assert pub.subscribers.suppressed.read_text().splitlines()[1:] == [
        "a@example.org,unsubscribed,2024-05-01T12:00:00+00:00,",
        "b@example.org,unsubscribed,2026-11-25T10:00:00+01:00,",
    ]


def test_imported_suppressions_and_bounces_use_the_same_format_as_unsubscribes(
    pub: Config, tmp_path: Path
) -> None:
    export = write(
        tmp_path / "substack.csv",
        "email,active_subscription,email_disabled\nquiet@example.org,false,true\n",
    )
    now = "2026-11-25T14:29:25+00:00"
    r = run(pub, "subscribers", "import", str(export), "--format", "substack", "--now", now)
    assert r.exit_code == 0, r.output
    r = run(pub, "subscribers", "unsubscribe", "u@example.org", "--now", now)
    assert r.exit_code == 0, r.output
    r = run(pub, "subscribers", "unsubscribe", "b@example.org", "--reason", "bounced", "--now", now)
    assert r.exit_code == 0, r.output
    assert pub.subscribers.suppressed.read_text().splitlines()[1:] == [
        f"quiet@example.org,unsubscribed,{now},",
        f"u@example.org,unsubscribed,{now},",
        f"b@example.org,bounced,{now},",
    ]


def test_a_symlinked_file_is_rewritten_where_it_points(pub: Config, tmp_path: Path) -> None:
    # suppressed.csv (or a list) kept elsewhere and linked in, e.g. one suppression file shared
    # by two publications: a rewrite renamed its new copy over the link, so the shared file
    # never learnt of the unsubscribe and the link was silently gone for good
    shared = tmp_path / "elsewhere"
    shared.mkdir()
    real_suppressed = shared / "suppressions.csv"
    real_suppressed.write_text("email,reason,date,list\nold@example.org,bounced,,\n", "utf-8")
    real_list = shared / "readers.csv"
    real_list.write_text(HEADER + "ada@example.com,Ada,,,,\n", encoding="utf-8")
    link_suppressed = pub.root / "subscribers/suppressed.csv"
    link_suppressed.symlink_to(real_suppressed)
    link_list = pub.root / "subscribers/subscribers.csv"
    link_list.symlink_to(real_list)

    result = run(pub, "subscribers", "unsubscribe", "ada@example.com")
    assert result.exit_code == 0, result.output
    result = run(pub, "subscribers", "add", "bob@example.org")
    assert result.exit_code == 0, result.output

    assert link_suppressed.is_symlink() and link_list.is_symlink()
    assert "ada@example.com,unsubscribed" in real_suppressed.read_text(encoding="utf-8")
    assert "old@example.org,bounced" in real_suppressed.read_text(encoding="utf-8")
    assert "bob@example.org" in real_list.read_text(encoding="utf-8")
    assert [s.email for s in subscribers.iter_subscribers(pub)] == ["bob@example.org"]
    # the lock is taken beside the real file, where every publication sharing it looks
    assert (shared / ".suppressions.csv.lock").exists()
    assert not list(shared.glob("*.tmp")) and not list((pub.root / "subscribers").glob("*.tmp"))
