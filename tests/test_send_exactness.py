"""Issue 13: readers given up only by choice, accounting that adds up, and the send rate.

- ``--resend-failed`` sends readers who failed for good again (reopening a settled issue),
  and "nothing to send" says when there are such readers;
- counts in the messages: deferred readers are not counted among "the others", and
  ``sending.max_consecutive_uncertain`` counts requests, not ledger batches; a pause caused
  by requests without an answer says which flag sends their readers;
- ``sending.rate``: over any one-second window at most ``rate`` recipients go out (one batch,
  when a batch is larger), from the first second; a retry costs only what is resent.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from pressroom.delivery import ledger as L
from pressroom.delivery import send as send_mod
from pressroom.delivery.ledger import Ledger
from pressroom.delivery.providers.base import (
    NO_WIRE,
    Outcome,
    Recipient,
    SendResult,
    Wire,
)
from pressroom.delivery.ratelimit import SendRate
from tests.send_helpers import ScriptedProvider
from tests.test_send import _last_report, _mailgun_demo, _send_mailgun, readers, setup


def one_at_a_time(demo: Path) -> None:
    """``sending.concurrency: 1`` in the demo's config.yaml."""
    cfg = demo / "config.yaml"
    text = cfg.read_text(encoding="utf-8")
    assert "  concurrency: 4\n" in text
    cfg.write_text(text.replace("  concurrency: 4\n", "  concurrency: 1\n"), encoding="utf-8")


# --- --resend-failed -----------------------------------------------------------------------


def test_resend_failed_reopens_the_settled_issue_and_sends_its_failed_readers(
    demo: Path,
) -> None:
    from tests.fakes.mailgun import MailgunFake

    everyone = readers(demo)
    with MailgunFake(api_key="mg-key") as server:
        _mailgun_demo(demo, server.url)  # one reader per request
        # a bare 400 naming no address: as likely our payload as the reader
        server.fail_next(1, 400, body={"message": "'html' parameter is malformed"})
        first = _send_mailgun(demo, "--now", "2026-11-25T09:00")
        assert first.exit_code == 1, first.output
        [failed] = [f["email"] for f in _last_report(demo)["failures"]]
        assert _last_report(demo)["status"] == "complete"  # settled: failed for good
        assert failed not in server.accepted

        again = _send_mailgun(demo, "--now", "2026-11-25T09:30")
        assert again.exit_code == 0, again.output
        assert "nothing to send" in again.output
        assert "issue 1 has 1 failed reader" in again.output
        assert "pressroom digest send --resend-failed" in again.output

        resent = _send_mailgun(demo, "--resend-failed", "--now", "2026-11-25T10:00")
        assert resent.exit_code == 0, resent.output
        assert "resending the 1 failed recipients of issue 1 (--resend-failed)" in resent.output
        assert "issue 1 is complete" in resent.output
        assert dict(server.accepted) == dict.fromkeys(everyone, 1)
    with Ledger(demo / ".pressroom" / "state.db") as ledger:
        last = ledger.last_sent()
        assert last is not None and last.number == 1  # the same issue, not a new one
        assert last.sent_at.isoformat().startswith("2026-11-25T09:00")  # when it went out
        assert ledger.counts(1)[L.FAILED] == 0

    nothing = _send_mailgun(demo, "--resend-failed", "--now", "2026-11-25T10:30")
    assert nothing.exit_code == 0, nothing.output
    assert "issue 1 has no failed recipients (--resend-failed)" in nothing.output


def test_resend_failed_cannot_be_a_dry_run(demo: Path) -> None:
    result = _send_mailgun(demo, "--resend-failed", "--dry-run")
    assert result.exit_code == 2
    assert "--resend-failed" in result.output and "--dry-run" in result.output


# --- accounting ----------------------------------------------------------------------------


def test_deferred_readers_are_not_counted_among_the_others(demo: Path) -> None:
    from tests.fakes.server import refusing_url

    everyone = readers(demo)
    with refusing_url() as url:
        _mailgun_demo(demo, url, sending="  max_attempts: 2\n")
        one_at_a_time(demo)
        down = _send_mailgun(demo, "--now", "2026-11-25T09:00")
    assert down.exit_code == 1, down.output
    m = re.search(r"(\d+) recipients deferred .*they stay pending with (\d+) others", down.output)
    assert m, down.output
    deferred, others = int(m.group(1)), int(m.group(2))
    assert deferred >= 1 and deferred + others == len(everyone)


class PerMessage(ScriptedProvider):
    """A scripted provider whose API takes one message per request (like SES ``SendEmail``)."""

    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        results: list[SendResult] = []
        for one in batch:
            results += super().send([one], wire)
        return results


def test_max_consecutive_uncertain_counts_requests_not_batches(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(
        tmp_path, 40, concurrency=1, batch_size=10, max_consecutive_failures=50
    )
    silent = {
        f"r{i:03d}@example.org": [SendResult("", Outcome.UNCERTAIN, error="ReadTimeout")]
        for i in range(40)
    }
    provider = PerMessage(silent)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.paused and "3 requests in a row got no answer" in summary.paused
    # three requests of one reader each, not three batches of ten
    assert ledger.counts(3)[L.UNCERTAIN] == 3 and summary.requests == 3
    assert ledger.counts(3)[L.PENDING] == 37 and ledger.counts(3)[L.IN_FLIGHT] == 0


def test_a_pause_for_unanswered_requests_names_the_flag_that_sends_them(demo: Path) -> None:
    from tests.fakes.mailgun import MailgunFake

    with MailgunFake(api_key="mg-key") as server:
        _mailgun_demo(demo, server.url)
        one_at_a_time(demo)
        server.drop_next(3, after_processing=True)
        result = _send_mailgun(demo, "--now", "2026-11-25T09:00")
    assert result.exit_code == 1, result.output
    assert "sending.max_consecutive_uncertain" in result.output
    assert "add --resend-uncertain to send the 3 uncertain ones too" in result.output
    assert "rerun `pressroom digest send` to resume" not in result.output


# --- sending.rate ----------------------------------------------------------------------------


class Clock:
    """A clock the rate limit sleeps on: sleeping moves it on, nothing really waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def max_in_window(events: list[tuple[float, int]], window: float = 1.0) -> int:
    """The most recipients sent within any ``window`` seconds [t, t + window)."""
    return max(sum(n for u, n in events if t <= u < t + window) for t, _ in events)


@pytest.mark.parametrize(("rate", "batch"), [(100.0, 10), (100.0, 30), (14.0, 1), (100.0, 100)])
def test_the_rate_holds_over_every_second_from_the_first(rate: float, batch: int) -> None:
    clock = Clock()
    limit = SendRate(rate, batch, clock=clock, sleep=clock.sleep)
    events = []
    for _ in range(60):
        limit.acquire(batch)
        events.append((clock.now, batch))
    assert max_in_window(events) <= rate
    # and no slower than that allows: as many whole batches as fit in each second
    assert clock.now <= 60 / (rate // batch)
    # paced, not in bursts: never two requests closer than one batch's share of a second
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(events)]
    assert min(gaps) >= batch / rate - 1e-9


def test_a_batch_larger_than_the_rate_goes_out_alone_each_window() -> None:
    clock = Clock()
    limit = SendRate(100.0, 1000, clock=clock, sleep=clock.sleep)
    events = []
    for _ in range(4):
        limit.acquire(1000)
        events.append((clock.now, 1000))
    assert max_in_window(events) == 1000  # one batch per second at most...
    assert [t for t, _ in events] == [0.0, 10.0, 20.0, 30.0]  # ...and 100/s over time


def test_the_send_loop_keeps_the_rate_from_the_first_second(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(
        tmp_path, 200, rate=50.0, concurrency=1, batch_size=10
    )
    clock = Clock()
    events: list[tuple[float, int]] = []

    class Timed(ScriptedProvider):
        def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
            wire.sending(batch)  # waits for the rate; the request goes out now
            events.append((clock.now, len(batch)))
            return super().send(batch, NO_WIRE)

    summary = send_mod.run(
        ledger, frozen, Timed(), factory, options, clock=clock, sleep=clock.sleep
    )
    assert summary.sent == 200
    # a bucket that starts full lets its capacity out at once, then the rate on top of it
    assert max_in_window(events) <= 50
    assert clock.now == pytest.approx(3.8)  # 200 at 50/s, paced: a batch every 0.2 s


def test_a_retry_costs_the_rate_only_for_what_is_resent(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(
        tmp_path, 10, rate=10.0, concurrency=1, batch_size=10, backoff_base=0.0
    )
    clock = Clock()
    busy = SendResult("", Outcome.RETRY, error="HTTP 503")
    provider = ScriptedProvider({"r004@example.org": [busy, SendResult("", Outcome.SENT)]})
    summary = send_mod.run(
        ledger, frozen, provider, factory, options, clock=clock, sleep=clock.sleep
    )
    assert summary.sent == 10 and summary.retried == 1
    assert [len(b) for b in provider.batches] == [10, 1]
    # 10 then 1 at 10/s: the one resent reader waits one second, not another full batch's
    assert 1.0 <= clock.now < 1.5


def test_a_stopping_run_does_not_wait_out_its_queued_slots() -> None:
    clock = Clock()
    limit = SendRate(10.0, 10, clock=clock, sleep=clock.sleep)
    limit.acquire(10)

    def stopping() -> None:
        raise RuntimeError("stopping")

    with pytest.raises(RuntimeError):
        limit.acquire(10, first=stopping)
    assert clock.now == 0.0  # refused at its turn, not after waiting a second for it
    limit.acquire(10)  # and it took no share of the rate
    assert clock.now == pytest.approx(1.0)
