"""SIGKILL a real `pressroom digest send` mid-run, resume, and check the server's own record.

The fake Mailgun server on 127.0.0.1 answers slowly, so each kill lands while requests are in
flight. After every kill the ledger must know exactly who was accepted: nobody is accepted
twice, everyone not reported uncertain is accepted exactly once, and ``--resend-uncertain``
completes the uncertain ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.mailgun import MailgunFake

READERS = 240
BIN = Path(sys.executable).parent / "pressroom"


def publication(demo: Path, url: str) -> list[str]:
    """The demo publication sending through the fake Mailgun, with READERS subscribers."""
    for csv in (demo / "subscribers").glob("*.csv"):
        if csv.name != "suppressed.csv":
            csv.unlink()
    emails = [f"reader{i:04d}@example.org" for i in range(READERS)]
    (demo / "subscribers" / "subscribers.csv").write_text(
        "email,name,lists,tags,status,subscribed_at\n"
        + "".join(f"{e},Reader {i},weekly,,active,\n" for i, e in enumerate(emails)),
        encoding="utf-8",
    )
    cfg = demo / "config.yaml"
    text = cfg.read_text(encoding="utf-8")
    text = text.replace("provider: file", "provider: mailgun").replace("rate: 100/s", "rate: 0/s")
    text = text.replace("concurrency: 4", "concurrency: 2")
    assert "provider: mailgun" in text and "\nproviders:" not in text
    text += (
        "\nproviders:\n  mailgun:\n    domain: mg.example.org\n"
        f"    base_url: {url}\n    api_key_env: TEST_MAILGUN_KEY\n    batch_size: 20\n"
    )
    cfg.write_text(text, encoding="utf-8")
    return emails


def start(demo: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TEST_MAILGUN_KEY": "key-test",
        "PRESSROOM_SECRET": "kill-test-secret",
        "PRESSROOM_NOW": "2026-11-25T09:00",
    }
    return subprocess.Popen(
        [str(BIN), "--config", str(demo / "config.yaml"), "digest", "send", "--yes", *extra],
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
            if address in uncertain:
                assert got in (0, 1), address
            else:
                assert got == 1, f"{address} accepted {got} times"
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
def test_sigterm_stops_cleanly_with_nothing_uncertain(demo: Path) -> None:
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
        proc.send_signal(signal.SIGTERM)
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
