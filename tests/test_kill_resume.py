"""SIGKILL a real `pressroom digest send` mid-run, resume, and check the server's own record.

The fake Mailgun server on 127.0.0.1 answers slowly, so each kill lands while requests are in
flight. After every kill the ledger must know exactly who was accepted: nobody is accepted
twice, everyone not reported uncertain is accepted exactly once, every uncertain reader's
request reached the server (uncertain means "was on the wire", not "was in a batch being
prepared"), and ``--resend-uncertain`` completes the uncertain ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.mailgun import MailgunFake

READERS = 240
BIN = Path(sys.executable).parent / "pressroom"


def publication(demo: Path, url: str, readers: int = READERS, batch_size: int = 20) -> list[str]:
    """The demo publication sending through the fake Mailgun, with ``readers`` subscribers."""
    for csv in (demo / "subscribers").glob("*.csv"):
        if csv.name != "suppressed.csv":
            csv.unlink()
    emails = [f"reader{i:06d}@example.org" for i in range(readers)]
    # every third reader is a patron (the issue without its support block): two variants
    # interleaved, as on a real list
    (demo / "subscribers" / "subscribers.csv").write_text(
        "email,name,lists,tags,status,subscribed_at\n"
        + "".join(
            f"{e},Reader {i},weekly,{'' if i % 3 else 'patron'},active,\n"
            for i, e in enumerate(emails)
        ),
        encoding="utf-8",
    )
    cfg = demo / "config.yaml"
    text = cfg.read_text(encoding="utf-8")
    text = text.replace("provider: file", "provider: mailgun").replace("rate: 100/s", "rate: 0/s")
    text = text.replace("concurrency: 4", "concurrency: 2")
    assert "provider: mailgun" in text and "\nproviders:" not in text
    text += (
        "\nproviders:\n  mailgun:\n    domain: mg.example.org\n"
        f"    base_url: {url}\n    api_key_env: TEST_MAILGUN_KEY\n    batch_size: {batch_size}\n"
    )
    cfg.write_text(text, encoding="utf-8")
    return emails


def start(demo: Path, *extra: str, command: str = "digest send") -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TEST_MAILGUN_KEY": "key-test",
        "PRESSROOM_SECRET": "kill-test-secret",
        "PRESSROOM_NOW": "2026-11-25T09:00",
    }
    return subprocess.Popen(
        [str(BIN), "--config", str(demo / "config.yaml"), *command.split(), "--yes", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=demo,
    )


def latest_report(demo: Path) -> dict:  # type: ignore[type-arg]
    reports = sorted((demo / "reports").glob("issue-*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(reports[-1].read_text(encoding="utf-8"))


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_never_sends_twice(demo: Path) -> None:
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    with MailgunFake(api_key="key-test") as server:
        emails = publication(demo, server.url)
        server.slow_next(10_000, seconds=0.25)  # every request takes a while: kills land mid-batch

        kills = 0
        for kill_after in (1, 3, 4, 2):  # requests that must have arrived before each kill
            before = server.requests
            proc = start(demo)
            deadline = time.monotonic() + 60
            while server.requests < before + kill_after and proc.poll() is None:
                assert time.monotonic() < deadline, "the send never reached the server"
                time.sleep(0.01)
            # kill while the requests are inside the provider (0.25 s each), as a crash
            # mid-send does; not in the instant the other worker's request, marked in flight a
            # few ms after this one's, is being written to its socket: that race is the one no
            # order can remove (marking after the write could mail a reader twice)
            time.sleep(0.1)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate(timeout=30)
            time.sleep(0.4)  # let the server finish the requests the dead client left behind
        assert kills >= 3
        assert server.contract_violations == []

        # a plain rerun finishes everything that is certain and reports the rest
        proc = start(demo)
        _, err = proc.communicate(timeout=120)
        report = latest_report(demo)
        uncertain = set(report["uncertain"])
        assert uncertain, "no kill landed while a request was in flight"
        assert proc.returncode == 1, err.decode()
        assert f"{len(uncertain)} uncertain recipients" in err.decode()

        assert server.duplicates() == {}  # nobody accepted twice
        for address in emails:
            got = server.accepted[address]
            # uncertain means "was on the wire": a reader is marked in flight only once the
            # request carrying it is built and about to go out, so every uncertain reader's
            # request reached the server (which, slow but alive, served each one it got)
            assert got == 1, f"{address} accepted {got} times (uncertain: {address in uncertain})"
        assert report["counts"]["sent"] + len(uncertain) == READERS

        # --resend-uncertain completes them; only uncertain ones can ever be doubled
        proc = start(demo, "--resend-uncertain")
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        final = latest_report(demo)
        assert final["counts"]["sent"] == READERS and final["status"] == "complete"
        assert all(server.accepted[a] >= 1 for a in emails)
        assert set(server.duplicates()) <= uncertain
        assert server.contract_violations == [] and server.internal_errors == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_stops_cleanly_with_nothing_uncertain(demo: Path, sig: int) -> None:
    # SIGHUP: the SSH session that ran it closed; it used to kill the run with its requests
    # in flight, leaving those readers uncertain and the issue held open
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    with MailgunFake(api_key="key-test") as server:
        emails = publication(demo, server.url)
        server.slow_next(10_000, seconds=0.25)
        proc = start(demo)
        deadline = time.monotonic() + 60
        while server.requests < 3 and proc.poll() is None:
            assert time.monotonic() < deadline, "the send never reached the server"
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err.decode()
        assert "interrupted" in err.decode()
        report = latest_report(demo)
        assert report["run"]["interrupted"] is True
        assert report["uncertain"] == []  # requests in flight were finished and recorded
        assert 0 < report["counts"]["sent"] < READERS
        assert report["counts"]["sent"] == server.total_accepted

        proc = start(demo)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert server.duplicates() == {}
        assert all(server.accepted[a] == 1 for a in emails)


def reading_position(pid: int, path: Path) -> int | None:
    """How far process ``pid`` has read the open file ``path`` (from /proc), or None."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        for fd in fds.iterdir():
            if os.readlink(fd) == str(path):
                info = (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text()
                return int(info.split("pos:", 1)[1].split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError, ValueError):
        return None
    return None


def issues_in_ledger(demo: Path) -> int:
    """Issues the ledger holds, read the way a new run would (after SQLite's recovery)."""
    db = demo / ".pressroom" / "state.db"  # config.yaml: state: .pressroom
    if not db.exists():
        return 0
    import sqlite3

    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM issues").fetchone()[0])
        except sqlite3.OperationalError:  # killed before the schema was written
            return 0


@pytest.mark.slow
def test_sigkill_during_the_freeze_then_rerun_sends_everyone_once(demo: Path) -> None:
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    if not Path("/proc/self/fdinfo").exists():
        pytest.skip("needs /proc to see where the freeze is")
    readers = 40_000
    with MailgunFake(api_key="key-test", validate=False) as server:
        emails = publication(demo, server.url, readers=readers, batch_size=1000)
        csv = (demo / "subscribers" / "subscribers.csv").resolve()
        size = csv.stat().st_size
        kills = 0
        for fraction in (0.1, 0.6):  # early and late in the freeze
            proc = start(demo)
            deadline = time.monotonic() + 60
            while proc.poll() is None:
                # the freeze streams the subscriber file into the ledger: kill part way in
                pos = reading_position(proc.pid, csv)
                if pos is not None and pos >= size * fraction:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    break
                assert time.monotonic() < deadline, "the send never read the subscribers"
                time.sleep(0.002)
            proc.communicate(timeout=30)
            assert server.requests == 0, "the kill came after the freeze"
            assert (demo / ".pressroom" / "state.db").exists()  # the ledger was open
            assert issues_in_ledger(demo) == 0  # all or nothing: no half-frozen issue
        assert kills == 2

        proc = start(demo)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        report = latest_report(demo)
        assert report["counts"]["sent"] == readers and report["uncertain"] == []
        assert server.duplicates() == {}
        assert server.total_accepted == readers
        assert all(server.accepted[a] == 1 for a in emails)


@pytest.mark.slow
def test_sigkill_before_the_requests_reach_the_server(demo: Path) -> None:
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    with MailgunFake(api_key="key-test") as server:
        emails = publication(demo, server.url)
        # the first run's rows go in flight, but its requests never get to the provider
        server.hold_connections()
        proc = start(demo)
        deadline = time.monotonic() + 60
        while server.held < 2 and proc.poll() is None:  # concurrency 2: two batches waiting
            assert time.monotonic() < deadline, "the send never connected"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        server.release_held(drop=True)
        assert server.requests == 0 and server.total_accepted == 0

        # the batches that were in flight are uncertain: reported, not resent by themselves
        proc = start(demo)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err.decode()
        report = latest_report(demo)
        uncertain = set(report["uncertain"])
        assert len(uncertain) == 2 * 20, uncertain  # two batches of 20 were in flight
        assert f"{len(uncertain)} uncertain recipients" in err.decode()
        assert server.duplicates() == {}
        for address in emails:
            assert server.accepted[address] == (0 if address in uncertain else 1), address

        proc = start(demo, "--resend-uncertain")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert latest_report(demo)["status"] == "complete"
        assert server.duplicates() == {}  # they had never arrived: now exactly once
        assert all(server.accepted[a] == 1 for a in emails)
        assert server.contract_violations == [] and server.internal_errors == []


@pytest.mark.slow
def test_a_second_weekly_while_one_runs_is_refused(demo: Path) -> None:
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    with MailgunFake(api_key="key-test") as server:
        emails = publication(demo, server.url)
        server.hold_connections()  # the first run waits on the provider, holding the lock
        first = start(demo, command="weekly")
        deadline = time.monotonic() + 60
        while server.held < 1 and first.poll() is None:
            assert time.monotonic() < deadline, "the first weekly never reached the provider"
            time.sleep(0.01)
        assert first.poll() is None, first.communicate()[1].decode()

        second = start(demo, command="weekly")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1, (out + err).decode()
        assert "another pressroom send is running" in err.decode()
        assert f"(pid {first.pid})" in err.decode()
        assert "Traceback" not in err.decode()

        server.release_held(drop=False)  # the provider answers the first run after all
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err.decode()
        assert server.duplicates() == {}
        assert all(server.accepted[a] == 1 for a in emails)
        assert latest_report(demo)["status"] == "complete"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_is_not_held_up_by_a_run_waiting_for_its_send_rate(demo: Path, sig: int) -> None:
    # sending.rate 1/h: after the first request, the next waits an hour for its slot. A cron
    # timeout (SIGTERM) or Ctrl-C must stop the run now, not after that hour
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    cfg = demo / "config.yaml"
    text = cfg.read_text(encoding="utf-8")
    assert "rate: 100/s" in text
    cfg.write_text(text.replace("rate: 100/s", "rate: 1/h"), encoding="utf-8")
    env = {**os.environ, "PRESSROOM_SECRET": "rate-test"}
    args = [str(BIN), "digest", "send", "--yes", "--now", "2026-11-25T09:00"]
    proc = subprocess.Popen(args, cwd=demo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outbox = demo / "outbox" / "issue-1"
    deadline = time.monotonic() + 60
    while not (outbox.is_dir() and any(outbox.glob("*.eml"))):  # the first request went out
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)  # the next request is waiting for its slot
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the run did not stop: it waited out its send-rate slot")
    assert proc.returncode == 1, err.decode()
    assert "interrupted" in err.decode() and "Traceback" not in err.decode()
    report = latest_report(demo)
    assert report["run"]["interrupted"] is True and report["uncertain"] == []
    sent = report["counts"]["sent"]
    assert 0 < sent < 6 and report["counts"]["pending"] == 6 - sent
    assert len(list(outbox.glob("*.eml"))) == sent

    cfg.write_text(text, encoding="utf-8")  # the rest go out at the normal rate
    done = subprocess.run(args, cwd=demo, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert latest_report(demo)["counts"]["sent"] == 6
    assert len(list(outbox.glob("*.eml"))) == 6


@pytest.mark.slow
def test_a_second_ctrl_c_while_in_flight_requests_finish_still_records_and_reports(
    demo: Path,
) -> None:
    # an impatient publisher presses Ctrl-C again while the stopped run waits for the
    # answers of the requests already on the wire: those answers are still recorded, the
    # report is still written, and the process still ends (no traceback)
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    with MailgunFake(api_key="key-test") as server:
        emails = publication(demo, server.url)
        server.slow_next(10_000, seconds=1.5)
        proc = start(demo)
        deadline = time.monotonic() + 60
        while server.requests < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the send never reached the server"
            time.sleep(0.01)
        time.sleep(0.1)  # both workers are waiting for their answers
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # again, while the answers are still coming
        _, raw = proc.communicate(timeout=60)
        err = raw.decode()
        assert "Traceback" not in err, err
        assert proc.returncode == 1, err
        assert "interrupted" in err
        report = latest_report(demo)
        assert report["run"]["interrupted"] is True
        assert report["uncertain"] == []  # the answers of the requests in flight were recorded
        assert 0 < report["counts"]["sent"] < READERS
        assert report["counts"]["sent"] == server.total_accepted

        server.clear_faults()
        proc = start(demo)
        _, raw = proc.communicate(timeout=120)
        assert proc.returncode == 0, raw.decode()
        assert server.duplicates() == {}
        assert all(server.accepted[a] == 1 for a in emails)


@pytest.mark.slow
def test_a_closed_terminal_stops_a_send_cleanly_though_nothing_can_be_shown(demo: Path) -> None:
    # the SSH session closes: SIGHUP, and every write to the terminal fails from then on
    # (EIO). The progress line's failed write stopped the loop with an exception: no report
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    with MailgunFake(api_key="key-test") as server:
        publication(demo, server.url)
        server.slow_next(10_000, seconds=0.25)
        master, slave = os.openpty()
        env = {
            **os.environ,
            "TEST_MAILGUN_KEY": "key-test",
            "PRESSROOM_SECRET": "kill-test-secret",
            "PRESSROOM_NOW": "2026-11-25T09:00",
        }
        args = [str(BIN), "--config", str(demo / "config.yaml"), "digest", "send", "--yes"]
        proc = subprocess.Popen(args, env=env, stdin=slave, stdout=slave, stderr=slave, cwd=demo)
        os.close(slave)
        try:
            deadline = time.monotonic() + 60
            while server.requests < 3 and proc.poll() is None:
                assert time.monotonic() < deadline, "the send never reached the server"
                with contextlib.suppress(OSError):  # keep the terminal's buffer drained
                    os.read(master, 65536) if select.select([master], [], [], 0)[0] else None
                time.sleep(0.01)
        finally:
            os.close(master)  # the terminal is gone
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=60)
        report = latest_report(demo)
        assert report["run"]["interrupted"] is True
        assert report["uncertain"] == []  # requests in flight were finished and recorded
        assert report["counts"]["sent"] == server.total_accepted


@pytest.mark.slow
def test_a_send_under_nohup_survives_the_terminal_closing(demo: Path) -> None:
    # `nohup pressroom weekly &`: SIGHUP is ignored on purpose, and must stay ignored
    if not BIN.exists():
        pytest.skip(f"{BIN} not found: install pressroom into this venv (pip install -e .)")
    with MailgunFake(api_key="key-test") as server:
        emails = publication(demo, server.url, readers=60)
        server.slow_next(10_000, seconds=0.1)
        env = {
            **os.environ,
            "TEST_MAILGUN_KEY": "key-test",
            "PRESSROOM_SECRET": "kill-test-secret",
            "PRESSROOM_NOW": "2026-11-25T09:00",
        }
        args = [str(BIN), "--config", str(demo / "config.yaml"), "digest", "send", "--yes"]

        def nohup() -> None:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

        proc = subprocess.Popen(
            args,
            env=env,
            cwd=demo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=nohup,
        )
        deadline = time.monotonic() + 60
        while server.requests < 1 and proc.poll() is None:
            assert time.monotonic() < deadline, "the send never reached the server"
            time.sleep(0.01)
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert all(server.accepted[a] == 1 for a in emails)
