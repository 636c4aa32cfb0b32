"""SES suppression pull (ListSuppressedDestinations) against the fake on 127.0.0.1: SigV4 over
the query, NextToken to the end (≥ 3 pages), StartDate, a throttle and an error answer."""

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
from pressroom.delivery.providers.ses import SES, SESSettings
from pressroom.errors import ProviderError
from tests.fakes.ses import SUPPRESSED, SESFake
from tests.send_helpers import make_config

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
ENV = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 10, tzinfo=UTC).timestamp()
DAY = 86400.0


@pytest.fixture
def server() -> Iterator[SESFake]:
    with SESFake(access_key_id=KEY_ID, secret_access_key=SECRET, region=REGION) as fake:
        fake.page_size = 2
        yield fake


def fill(fake: SESFake) -> None:
    for i in range(5):
        fake.suppressed[f"gone{i}@example.org"] = ("BOUNCE", T0 + i * DAY)
    fake.suppressed["angry@example.org"] = ("COMPLAINT", T0 + 0.5 * DAY)


def adapter(server: SESFake, secret: str = SECRET) -> SES:
    raw = {"base_url": server.url, "region": REGION}
    s = config_mod.build_settings(SESSettings, raw, "providers.ses", Path("."))
    return SES.from_env(s, {**ENV, "AWS_SECRET_ACCESS_KEY": secret})  # type: ignore[return-value]


def test_the_list_is_read_with_next_token_to_the_end(server: SESFake) -> None:
    fill(server)
    pages = list(adapter(server).pull_suppressions("suppressed", None, NOW))
    assert [len(p) for p in pages] == [2, 2, 2]
    got = {e.address: e for p in pages for e in p}
    assert got["angry@example.org"].kind == events.COMPLAINT
    assert got["gone3@example.org"].kind == events.HARD_BOUNCE
    assert got["gone0@example.org"].time == datetime(2026, 11, 10, tzinfo=UTC)
    assert server.requests_by_path[SUPPRESSED] == 3
    assert server.contract_violations == [] and server.internal_errors == []


def test_start_date_is_signed_and_honoured(server: SESFake) -> None:
    fill(server)
    since = datetime(2026, 11, 12, 12, tzinfo=UTC)
    got = [
        e.address for p in adapter(server).pull_suppressions("suppressed", since, NOW) for e in p
    ]
    assert got == ["gone3@example.org", "gone4@example.org"]
    assert server.contract_violations == []


def test_a_throttle_is_retried_and_an_error_names_the_type(server: SESFake) -> None:
    fill(server)
    pages = adapter(server).pull_suppressions("suppressed", None, NOW)
    first = next(pages)
    server.fail_next(
        1,
        429,
        retry_after=0,
        headers={"x-amzn-ErrorType": "TooManyRequestsException:"},
        body={"message": "Too many requests"},
    )
    assert len(first) + sum(len(p) for p in pages) == 6
    server.fail_next(
        1,
        400,
        headers={"x-amzn-ErrorType": "BadRequestException:"},
        body={"message": "Invalid StartDate"},
    )
    with pytest.raises(
        ProviderError, match=r"ses: cannot read .*BadRequestException: Invalid StartDate"
    ):
        list(adapter(server).pull_suppressions("suppressed", None, NOW))


def test_a_wrong_secret_is_refused_by_the_signature_check(server: SESFake) -> None:
    with pytest.raises(ProviderError, match="rejected the credentials"):
        list(adapter(server, secret="not-the-secret").pull_suppressions("suppressed", None, NOW))


def test_sync_applies_the_list(server: SESFake, tmp_path: Path) -> None:
    fill(server)
    extra = f"providers:\n  ses:\n    base_url: {server.url}\n    region: {REGION}\n"
    config = make_config(tmp_path / "pub", sending="provider: ses\n", extra=extra)
    report = feedback.sync(config, now=NOW, env=ENV)
    assert report.warnings == []
    assert report.applied.by_reason() == {"bounced": 5, "complained": 1}
    with config.subscribers.suppressed.open(encoding="utf-8") as f:
        rows = {r["email"]: r for r in csv.DictReader(f)}
    assert rows["angry@example.org"]["detail"] == "ses: SES suppression list: COMPLAINT"
    assert events.cursor(config, "ses", "suppressed") == "2026-11-14T00:00:00+00:00"
    assert feedback.sync(config, now=NOW, env=ENV).applied.new == 0


def test_a_next_token_that_leads_back_or_summaries_that_are_no_list_stop_the_sync(
    server: SESFake,
) -> None:
    item = {"EmailAddress": "gone0@example.org", "Reason": "BOUNCE", "LastUpdateTime": T0}
    looping = {"SuppressedDestinationSummaries": [item], "NextToken": "same-token"}
    server.fail_next(2, 200, body=looping, path=SUPPRESSED)
    pages = adapter(server).pull_suppressions("suppressed", None, NOW)
    with pytest.raises(ProviderError, match="NextToken leads back to a page already read"):
        for _ in itertools.islice(pages, 10):
            pass
    server.fail_next(1, 200, body={"SuppressedDestinationSummaries": 5}, path=SUPPRESSED)
    with pytest.raises(ProviderError, match="SuppressedDestinationSummaries is not a list"):
        list(adapter(server).pull_suppressions("suppressed", None, NOW))
