"""Postmark suppression pull against the fake on 127.0.0.1: the stream's suppression dump,
walked in windows of days from the cursor (≥ 3 requests), a 429 and an error answer."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pressroom import config as config_mod
from pressroom.audience import events
from pressroom.delivery import feedback
from pressroom.delivery.providers.postmark import Postmark, PostmarkSettings
from pressroom.errors import ProviderError
from tests.fakes.postmark import PostmarkFake
from tests.send_helpers import make_config

TOKEN = "pm-pull-token"
ENV = {"POSTMARK_SERVER_TOKEN": TOKEN}
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DUMP = "/message-streams/broadcast/suppressions/dump"


@pytest.fixture
def server() -> Iterator[PostmarkFake]:
    with PostmarkFake(server_token=TOKEN) as fake:
        yield fake


def fill(fake: PostmarkFake) -> None:
    fake.add_suppression("broadcast", "gone@example.org", "HardBounce", "2026-11-02T08:58:33-05:00")
    fake.add_suppression(
        "broadcast", "angry@example.org", "SpamComplaint", "2026-11-12T08:00:00-05:00"
    )
    fake.add_suppression(
        "broadcast", "done@example.org", "ManualSuppression", "2026-11-25T10:00:00+00:00"
    )
    fake.add_suppression("outbound", "other@example.org", "HardBounce", "2026-11-20T10:00:00Z")


def adapter(server: PostmarkFake) -> Postmark:
    raw = {"base_url": server.url, "message_stream": "broadcast"}
    s = config_mod.build_settings(PostmarkSettings, raw, "providers.postmark", Path("."))
    return Postmark.from_env(s, ENV)  # type: ignore[return-value]


def test_the_first_sync_reads_the_whole_dump_in_one_request(server: PostmarkFake) -> None:
    fill(server)
    [page] = list(adapter(server).pull_suppressions("suppressions", None, NOW))
    assert [(e.address, e.kind) for e in page] == [
        ("gone@example.org", events.HARD_BOUNCE),
        ("angry@example.org", events.COMPLAINT),
        ("done@example.org", events.UNSUBSCRIBE),
    ]
    assert page[0].time == datetime(2026, 11, 2, 13, 58, 33, tzinfo=UTC)
    assert page[0].reason == "HardBounce (Recipient)"
    assert server.contract_violations == [] and server.internal_errors == []


def test_from_a_cursor_the_days_are_walked_window_by_window(server: PostmarkFake) -> None:
    fill(server)
    since = datetime(2026, 11, 8, tzinfo=UTC)
    pages = list(adapter(server).pull_suppressions("suppressions", since, NOW))
    # 8 Nov to 1 Dec: 8-14, 15-21, 22-28, 29 Nov-1 Dec
    assert len(pages) == 4
    assert [[e.address for e in p] for p in pages] == [
        ["angry@example.org"],
        [],
        ["done@example.org"],
        [],
    ]
    assert server.requests_by_path[DUMP] == 4
    assert server.contract_violations == []


def test_a_429_is_retried_and_an_error_names_postmarks_message(server: PostmarkFake) -> None:
    fill(server)
    server.fail_next(1, 429, retry_after=0)
    [page] = list(adapter(server).pull_suppressions("suppressions", None, NOW))
    assert len(page) == 3
    server.fail_next(
        1, 422, body={"ErrorCode": 1226, "Message": "The message stream was not found."}
    )
    with pytest.raises(
        ProviderError,
        match=r"postmark: cannot read the suppressions of stream broadcast.*not found",
    ):
        list(adapter(server).pull_suppressions("suppressions", None, NOW))


def test_sync_applies_the_dump_and_the_wrong_token_is_a_warning(
    server: PostmarkFake, tmp_path: Path
) -> None:
    fill(server)
    extra = f"providers:\n  postmark:\n    base_url: {server.url}\n    message_stream: broadcast\n"
    config = make_config(tmp_path / "pub", sending="provider: postmark\n", extra=extra)
    report = feedback.sync(config, now=NOW, env=ENV)
    assert report.warnings == []
    assert report.applied.by_reason() == {"bounced": 1, "complained": 1, "unsubscribed": 1}
    with config.subscribers.suppressed.open(encoding="utf-8") as f:
        assert {r["email"] for r in csv.DictReader(f)} == {
            "gone@example.org",
            "angry@example.org",
            "done@example.org",
        }
    assert events.cursor(config, "postmark", "suppressions") == "2026-11-25T10:00:00+00:00"
    again = feedback.sync(config, now=NOW, env=ENV)
    assert again.applied.new == 0 and again.applied.duplicates == 1  # from 24 Nov on
    bad = feedback.sync(config, now=NOW, env={"POSTMARK_SERVER_TOKEN": "wrong"})
    [warning] = bad.warnings
    assert "rejected the credentials" in warning and "POSTMARK_SERVER_TOKEN" in warning
    assert "wrong" not in warning
