"""SendGrid suppression pull against the fake on 127.0.0.1: the five suppression lists by
``offset`` from ``start_time`` (≥ 3 pages), the unsubscribe group, a 429, an error page."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pressroom import config as config_mod
from pressroom.audience import events
from pressroom.delivery import feedback
from pressroom.delivery.providers.sendgrid import SendGrid, SendGridSettings
from pressroom.errors import ProviderError
from tests.fakes.sendgrid import SendGridFake
from tests.send_helpers import make_config

KEY = "SG.pull-test-key"
ENV = {"SENDGRID_API_KEY": KEY}
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T0 = int(datetime(2026, 11, 10, tzinfo=UTC).timestamp())
DAY = 86400


@pytest.fixture
def server() -> Iterator[SendGridFake]:
    with SendGridFake(api_key=KEY) as fake:
        fake.page_size = 2
        yield fake


def fill(fake: SendGridFake) -> None:
    for i in range(5):  # 5 bounces: 3 pages of at most 2
        fake.add_suppression(
            "bounces",
            f"gone{i}@example.org",
            T0 + i * DAY,
            reason="550 no such user",
            status="5.1.1",
        )
    fake.add_suppression("bounces", "full@example.org", T0, reason="mailbox full", status="4.2.2")
    fake.add_suppression("spam_reports", "angry@example.org", T0 + DAY, ip="10.63.202.100")
    fake.add_suppression("blocks", "blocked@example.org", T0, reason="IP blocked", status="4.0.0")
    fake.add_suppression("invalid_emails", "typo@example.org", T0, reason="Mail domain invalid")
    fake.add_suppression("unsubscribes", "done@example.org", T0 + 2 * DAY)
    fake.groups[4242] = ["group-out@example.org", "other-out@example.org"]


def adapter(server: SendGridFake, **settings: object) -> SendGrid:
    raw = {"base_url": server.url, **settings}
    s = config_mod.build_settings(SendGridSettings, raw, "providers.sendgrid", Path("."))
    return SendGrid.from_env(s, ENV)  # type: ignore[return-value]


def test_bounces_are_read_by_offset_to_the_end(server: SendGridFake) -> None:
    fill(server)
    pages = list(adapter(server).pull_suppressions("bounces", None, NOW))
    assert [len(p) for p in pages] == [2, 2, 2]
    got = {e.address: e for p in pages for e in p}
    assert len(got) == 6
    assert got["gone4@example.org"].kind == events.HARD_BOUNCE
    assert got["gone4@example.org"].reason == "5.1.1 550 no such user"
    assert got["full@example.org"].kind == events.SOFT_BOUNCE  # a 4.x.x status
    assert got["gone0@example.org"].time == datetime(2026, 11, 10, tzinfo=UTC)
    assert server.requests_by_path["/v3/suppression/bounces"] == 4  # 3 pages and the empty one
    assert server.contract_violations == [] and server.internal_errors == []


def test_start_time_is_sent_and_honoured(server: SendGridFake) -> None:
    fill(server)
    since = datetime(2026, 11, 13, tzinfo=UTC)
    got = [e.address for p in adapter(server).pull_suppressions("bounces", since, NOW) for e in p]
    assert sorted(got) == ["gone3@example.org", "gone4@example.org"]
    assert server.contract_violations == []


def test_a_429_waits_for_the_rate_limit_reset(server: SendGridFake) -> None:
    fill(server)
    pages = adapter(server).pull_suppressions("bounces", None, NOW)
    first = next(pages)
    server.fail_next(1, 429, headers={"X-RateLimit-Reset": "0"})
    assert len(first) + sum(len(p) for p in pages) == 6
    assert server.requests_by_path["/v3/suppression/bounces"] == 5


def test_an_error_page_names_sendgrids_message(server: SendGridFake) -> None:
    fill(server)
    pages = adapter(server).pull_suppressions("spam_reports", None, NOW)
    server.fail_next(
        1, 400, body={"errors": [{"field": "start_time", "message": "start_time must be an int"}]}
    )
    with pytest.raises(ProviderError, match=r"sendgrid: cannot read spam_reports .*must be an int"):
        next(pages)


def test_the_unsubscribe_group_is_pulled_and_sent_with(server: SendGridFake) -> None:
    fill(server)
    provider = adapter(server, unsubscribe_group=4242)
    [page] = list(provider.pull_suppressions("group_unsubscribes", None, NOW))
    assert [(e.address, e.kind, e.time) for e in page] == [
        ("group-out@example.org", events.UNSUBSCRIBE, NOW),
        ("other-out@example.org", events.UNSUBSCRIBE, NOW),
    ]
    later = datetime(2026, 12, 8, tzinfo=UTC)  # undated entries: the key must not move
    [again] = list(provider.pull_suppressions("group_unsubscribes", None, later))
    assert [e.key for e in again] == [e.key for e in page]
    assert list(adapter(server).pull_suppressions("group_unsubscribes", None, NOW)) == []

    from tests.fakes.sample import content, recipient

    provider.open(content())
    provider.send([recipient(1)])
    assert server.contract_violations == []
    assert server.asm_groups == [4242]  # the issue goes out with the group it pulls


def test_sync_reads_every_list_and_applies_the_policy(server: SendGridFake, tmp_path: Path) -> None:
    fill(server)
    config = make_config(
        tmp_path / "pub",
        sending="provider: sendgrid\n",
        extra=f"providers:\n  sendgrid:\n    base_url: {server.url}\n    unsubscribe_group: 4242\n",
    )
    report = feedback.sync(config, now=NOW, env=ENV)
    assert report.warnings == []
    assert report.applied.by_reason() == {"bounced": 6, "complained": 1, "unsubscribed": 3}
    with config.subscribers.suppressed.open(encoding="utf-8") as f:
        rows = {r["email"]: r for r in csv.DictReader(f)}
    assert "full@example.org" not in rows and "blocked@example.org" not in rows  # soft: counted
    assert rows["typo@example.org"]["reason"] == "bounced"
    assert rows["group-out@example.org"]["date"] == "2026-12-01T09:00:00+00:00"
    assert events.soft_bounces(config, "full@example.org") == 1
    assert feedback.sync(config, now=NOW, env=ENV).applied.new == 0
    # the next sync starts a day before the newest entry of each list
    assert events.cursor(config, "sendgrid", "bounces") == "2026-11-14T00:00:00+00:00"


def test_a_list_that_answers_the_same_page_at_every_offset_stops_the_sync(
    server: SendGridFake, tmp_path: Path
) -> None:
    # a list whose offset is not honoured would otherwise be read forever (cron never ends)
    entry = [{"email": "gone0@example.org", "created": T0, "reason": "550", "status": "5.1.1"}]
    server.fail_next(2, 200, body=entry * 2, path="/v3/suppression/bounces")
    pages = adapter(server).pull_suppressions("bounces", None, NOW)
    with pytest.raises(ProviderError, match="offset 2 answered the same entries as offset 0"):
        for _ in itertools.islice(pages, 10):
            pass
    config = make_config(
        tmp_path / "pub",
        sending="provider: sendgrid\n",
        extra=f"providers:\n  sendgrid:\n    base_url: {server.url}\n",
    )
    server.fail_next(2, 200, body=entry * 2, path="/v3/suppression/bounces")
    report = feedback.sync(config, now=NOW, env=ENV)
    assert report.warnings and "does not page" in report.warnings[0]
    assert report.applied.by_reason() == {"bounced": 1}  # what was read still counts
