"""Mailgun suppression pull (bounces, complaints, unsubscribes) against the fake on 127.0.0.1:
paging URLs to the end, a 429, an error page, the cursor, and the sync driver."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pressroom import config as config_mod
from pressroom.audience import events
from pressroom.delivery import feedback
from pressroom.delivery.providers.mailgun import Mailgun, MailgunSettings
from pressroom.errors import ProviderError
from tests.fakes.mailgun import MailgunFake
from tests.send_helpers import make_config

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
DOMAIN = "mg.news.example.org"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ENV = {"MAILGUN_API_KEY": KEY}


@pytest.fixture
def server() -> Iterator[MailgunFake]:
    with MailgunFake(domain=DOMAIN, api_key=KEY) as fake:
        fake.page_size = 2
        yield fake


def fill(fake: MailgunFake) -> None:
    for i in range(7):  # 7 bounces: 4 pages of at most 2
        fake.add_suppression(
            "bounces",
            f"gone{i}@example.org",
            f"Thu, 1{i} Nov 2026 01:49:40 UTC",
            code="550",
            error="5.1.1 No such mailbox",
        )
    fake.add_suppression("complaints", "angry@example.org", "Fri, 20 Nov 2026 08:00:00 UTC")
    fake.add_suppression(
        "unsubscribes", "done@example.org", "Sat, 21 Nov 2026 08:00:00 UTC", tags=["*"]
    )


def adapter(server: MailgunFake) -> Mailgun:
    raw = {"domain": DOMAIN, "base_url": server.url}
    s = config_mod.build_settings(MailgunSettings, raw, "providers.mailgun", Path("."))
    return Mailgun.from_env(s, ENV)  # type: ignore[return-value]


def publication(root: Path, server: MailgunFake) -> config_mod.Config:
    return make_config(
        root,
        sending="provider: mailgun\n",
        extra=f"providers:\n  mailgun:\n    domain: {DOMAIN}\n    base_url: {server.url}\n",
    )


def suppressed(config: config_mod.Config) -> dict[str, str]:
    with config.subscribers.suppressed.open(encoding="utf-8") as f:
        return {r["email"]: r["reason"] for r in csv.DictReader(f)}


def test_bounces_are_read_page_by_page_to_the_end(server: MailgunFake) -> None:
    fill(server)
    pages = list(adapter(server).pull_suppressions("bounces", None, NOW))
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    got = [e for p in pages for e in p]
    assert [e.address for e in got] == [f"gone{i}@example.org" for i in range(7)]
    assert {e.kind for e in got} == {events.HARD_BOUNCE}
    assert got[3].time == datetime(2026, 11, 13, 1, 49, 40, tzinfo=UTC)
    assert got[0].reason == "550 5.1.1 No such mailbox"
    # 4 pages with items, then the empty one that ends the list
    assert server.requests_by_path[f"/v3/{DOMAIN}/bounces"] == 5
    assert server.contract_violations == [] and server.internal_errors == []


def test_since_drops_older_entries(server: MailgunFake) -> None:
    fill(server)
    since = datetime(2026, 11, 15, tzinfo=UTC)
    got = [e.address for p in adapter(server).pull_suppressions("bounces", since, NOW) for e in p]
    assert got == ["gone5@example.org", "gone6@example.org"]


def test_a_429_is_waited_out(server: MailgunFake) -> None:
    fill(server)
    pages = adapter(server).pull_suppressions("bounces", None, NOW)
    first = next(pages)
    server.fail_next(1, 429, retry_after=0)
    rest = list(pages)
    assert len(first) + sum(len(p) for p in rest) == 7
    assert server.requests_by_path[f"/v3/{DOMAIN}/bounces"] == 6  # one answered 429


def test_an_error_page_stops_the_list_with_mailguns_message(server: MailgunFake) -> None:
    fill(server)
    pages = adapter(server).pull_suppressions("bounces", None, NOW)
    next(pages)
    server.fail_next(1, 400, body={"message": "Invalid page parameter"})
    with pytest.raises(
        ProviderError, match=r"mailgun: cannot read bounces .*Invalid page parameter"
    ):
        next(pages)


def test_a_paging_url_on_another_host_is_not_followed(server: MailgunFake) -> None:
    server.add_suppression("bounces", "a@example.org", "Thu, 12 Nov 2026 01:49:40 UTC")
    provider = adapter(server)
    provider.settings = config_mod.build_settings(  # the fake's URL seen as a different origin
        MailgunSettings,
        {"domain": DOMAIN, "base_url": server.url.replace("127.0.0.1", "localhost")},
        "providers.mailgun",
        Path("."),
    )
    with pytest.raises(ProviderError, match="another host"):
        list(provider.pull_suppressions("bounces", None, NOW))


def test_sync_applies_every_list_keeps_a_cursor_and_is_idempotent(
    server: MailgunFake, tmp_path: Path
) -> None:
    fill(server)
    config = publication(tmp_path / "pub", server)
    report = feedback.sync(config, now=NOW, env=ENV)
    assert report.warnings == []
    [mg] = report.providers
    assert mg.lists == ["bounces", "complaints", "unsubscribes"]
    assert report.applied.by_reason() == {"bounced": 7, "complained": 1, "unsubscribed": 1}
    assert report.summary() == (
        "suppressions: 9 newly suppressed (7 bounced, 1 complained, 1 unsubscribed) from mailgun"
    )
    assert suppressed(config)["angry@example.org"] == "complained"
    assert events.cursor(config, "mailgun", "bounces") == "2026-11-16T01:49:40+00:00"

    again = feedback.sync(config, now=NOW, env=ENV)
    assert again.applied.suppressed == [] and again.applied.new == 0
    # the cursor keeps older entries from being handed over again
    # within the one-day overlap: gone5, gone6, the complaint and the unsubscribe
    assert again.applied.duplicates == 4


def test_an_unreachable_provider_is_a_warning_and_keeps_what_was_applied(
    server: MailgunFake, tmp_path: Path
) -> None:
    fill(server)
    config = publication(tmp_path / "pub", server)
    server.fail_next(5, 503, retry_after=0, path=f"/v3/{DOMAIN}/bounces")
    report = feedback.sync(config, now=NOW, env=ENV)
    [warning] = report.warnings
    assert "mailgun: cannot read bounces" in warning and "after 5 tries" in warning
    assert report.applied.suppressed == []
    assert events.cursor(config, "mailgun", "bounces") is None
    assert feedback.sync(config, now=NOW, env=ENV).applied.by_reason()["bounced"] == 7


def test_missing_credentials_are_a_warning(server: MailgunFake, tmp_path: Path) -> None:
    config = publication(tmp_path / "pub", server)
    report = feedback.sync(config, now=NOW, env={})
    assert report.warnings == [
        "mailgun: not synced: mailgun: environment variable MAILGUN_API_KEY is not set; export "
        "it with your mailgun credentials (or set providers.mailgun.api_key_env)"
    ]


def test_dry_run_writes_nothing(server: MailgunFake, tmp_path: Path) -> None:
    fill(server)
    config = publication(tmp_path / "pub", server)
    report = feedback.sync(config, now=NOW, env=ENV, dry_run=True)
    assert len(report.applied.suppressed) == 9
    assert not config.subscribers.suppressed.exists()
    assert not config.state_db.exists()


def test_the_command_syncs_and_says_what_it_suppressed(server: MailgunFake, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pressroom.cli import main

    fill(server)
    config = publication(tmp_path / "pub", server)
    run = ["--config", str(config.path), "suppressions", "sync", "--now", "2026-12-01T09:00"]
    dry = CliRunner().invoke(main, [*run, "--dry-run"], env=ENV)
    assert dry.exit_code == 0, dry.output
    assert "9 newly suppressed (7 bounced, 1 complained, 1 unsubscribed)" in dry.output
    assert "dry run" in dry.output and not config.subscribers.suppressed.exists()
    real = CliRunner().invoke(main, [*run, "--since", "2026-11-15"], env=ENV)
    assert real.exit_code == 0, real.output
    assert (
        "4 newly suppressed (2 bounced, 1 complained, 1 unsubscribed) from mailgun" in real.output
    )
    bad = CliRunner().invoke(main, [*run, "--since", "last week"], env=ENV)
    assert bad.exit_code == 2 and 'error: --since: expected a date like "2026-11-01"' in bad.output
    smtp = CliRunner().invoke(main, [*run, "--provider", "smtp"], env=ENV)
    assert smtp.exit_code == 2 and "smtp keeps no suppression list to pull" in smtp.output
    server.fail_next(5, 503, retry_after=0, path=f"/v3/{DOMAIN}/bounces")
    down = CliRunner().invoke(main, run, env=ENV)
    assert down.exit_code == 1 and "warning: mailgun: cannot read bounces" in down.output
    assert "Traceback" not in down.output


def test_a_list_that_fails_keeps_the_lists_read_before_it(
    server: MailgunFake, tmp_path: Path
) -> None:
    fill(server)
    config = publication(tmp_path / "pub", server)
    server.fail_next(5, 503, retry_after=0, path=f"/v3/{DOMAIN}/complaints")
    report = feedback.sync(config, now=NOW, env=ENV)
    [warning] = report.warnings
    assert "cannot read complaints" in warning
    assert report.providers[0].lists == ["bounces"]  # read to the end; unsubscribes not reached
    assert report.applied.by_reason() == {"bounced": 7}
    assert events.cursor(config, "mailgun", "bounces") is not None
    assert events.cursor(config, "mailgun", "complaints") is None


@pytest.mark.parametrize("when", [1e20, "1e400", "0001-01-01T00:00:00+14:00", float("nan")])
def test_an_entry_dated_outside_the_calendar_is_skipped_not_a_traceback(
    server: MailgunFake, when: object
) -> None:
    server.add_suppression("bounces", "odd@example.org", "Thu, 12 Nov 2026 01:49:40 UTC")
    server.add_suppression("bounces", "good@example.org", "Thu, 12 Nov 2026 01:49:40 UTC")
    server.suppression_lists["bounces"]["odd@example.org"]["created_at"] = when
    got = [e.address for p in adapter(server).pull_suppressions("bounces", None, NOW) for e in p]
    assert got == ["good@example.org"]


def test_entries_that_are_not_objects_and_paging_that_is_not_an_object_are_passed_over(
    server: MailgunFake,
) -> None:
    good = {"address": "gone@example.org", "created_at": "Thu, 12 Nov 2026 01:49:40 UTC"}
    body = {"items": [5, "x", None, good], "paging": ["next"]}
    server.fail_next(1, 200, body=body, path=f"/v3/{DOMAIN}/bounces")
    pages = list(adapter(server).pull_suppressions("bounces", None, NOW))
    assert [[e.address for e in p] for p in pages] == [["gone@example.org"]]


def test_a_lone_surrogate_in_an_answer_stops_the_sync_with_a_warning(
    server: MailgunFake, tmp_path: Path
) -> None:
    # "\\ud800" is valid JSON but no text: it failed later, writing suppressed.csv (a traceback)
    bad = {
        "address": "gone@example.org",
        "created_at": "Thu, 12 Nov 2026 01:49:40 UTC",
        "error": "550 \ud800",
    }
    server.fail_next(1, 200, body={"items": [bad]}, path=f"/v3/{DOMAIN}/bounces")
    config = publication(tmp_path / "pub", server)
    report = feedback.sync(config, now=NOW, env=ENV)
    assert any("the answer is not JSON" in w for w in report.warnings), report.warnings
