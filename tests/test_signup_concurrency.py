"""200 concurrent confirmations against the real waitress server, with CLI writes between."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

from pressroom.audience import subscribers, tokens
from pressroom.web.app import make_app
from tests.web_helpers import running, signup_publication

SECRET = b"concurrency-test-secret-0123456789ab"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
N = 200


def test_200_concurrent_confirmations_lose_nothing(tmp_path: Path) -> None:
    existing = "email,name,lists,tags,status,subscribed_at\n" + "".join(
        f"old{i}@example.com,Old {i},weekly,patron,active,2025-01-01\n" for i in range(50)
    )
    # behind a proxy, each reader from their own address (serve.per_client counts each one)
    behind = "serve:\n  trusted_proxy: 127.0.0.1\n"
    pub = signup_publication(tmp_path / "pub", behind, subscribers_csv=existing)
    other = pub.subscribers.path / "patrons.csv"
    other.write_text("email,name\npatron@example.com,P\n", encoding="utf-8")
    other_before = other.read_bytes()
    maker = tokens.ReaderTokens(SECRET, lambda: NOW)
    links = [maker.confirm(f"reader{i}@example.org", f"Reader {i}", ["weekly"]) for i in range(N)]
    links += links[:20]  # the same link twice at once: still one row each

    readers = {token: f"198.51.{i // 250}.{i % 250 + 1}" for i, token in enumerate(links[:N])}

    def post(token: str) -> int:
        forwarded = {"X-Forwarded-For": readers[token]}
        r = requests.post(f"{base}/confirm", data={"t": token}, headers=forwarded, timeout=60)
        assert "You are subscribed" in r.text
        return r.status_code

    with running(make_app(pub, secret=SECRET, clock=lambda: NOW), threads=16) as base:
        cli = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from pressroom.cli import main; main()",
                    "--config",
                    str(pub.path),
                    "subscribers",
                    "add",
                    f"cli{i}@example.net",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(3)
        ]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=50) as pool:
            codes = list(pool.map(post, links))
        elapsed = time.perf_counter() - started
        for proc in cli:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    assert codes == [200] * len(links)
    print(f"{len(links)} confirmations in {elapsed:.2f} s")

    path = pub.subscribers.path / "subscribers.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    emails = [r["email"] for r in rows]
    assert len(emails) == len(set(emails)) == 50 + N + 3  # no duplicate, none lost
    new = [r for r in rows if r["email"].startswith("reader")]
    assert len(new) == N
    assert all(r["status"] == "active" and r["consent_source"] == "web-form" for r in new)
    assert {f"cli{i}@example.net" for i in range(3)} <= set(emails)
    # the existing readers are untouched, in order, with their data
    assert [(r["email"], r["tags"], r["subscribed_at"]) for r in rows[:50]] == [
        (f"old{i}@example.com", "patron", "2025-01-01") for i in range(50)
    ]
    assert other.read_bytes() == other_before
    assert not list(pub.subscribers.path.glob("*.tmp"))  # no torn or stray file
    assert subscribers.count(pub) == 50 + N + 3 + 1
