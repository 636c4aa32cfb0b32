"""Uncertain recipients settled by asking the provider: `digest send --reconcile`, `weekly`.

A send runs against the Mailgun or Postmark fake on 127.0.0.1 while two requests lose their
answer: one the fake accepted (its answer was dropped after processing), one it never saw.
Both recipients end up uncertain; reconciling asks the fake's events log (Mailgun) or message
search (Postmark), finds the first and not the second, and the run sends only the second.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pressroom.cli import main
from pressroom.config import load
from pressroom.delivery import ledger as L
from pressroom.delivery.ledger import Ledger
from pressroom.delivery.providers.base import Content, Recipient
from pressroom.delivery.providers.mailgun import Mailgun, MailgunSettings
from pressroom.models import RenderedVariant
from tests.fakes.mailgun import MailgunFake
from tests.fakes.postmark import PostmarkFake
from tests.fakes.sendgrid import SendGridFake
from tests.send_helpers import write_subscribers

FIRST = "2026-11-25T09:00"  # the demo's articles fall in this issue's window
READERS = [f"reader{i}@example.org" for i in range(6)]

SETTINGS = {
    "mailgun": ("MY_MG_KEY", "mg-key", "    domain: mg.example.org\n"),
    "postmark": ("MY_PM_TOKEN", "pm-token", "    server_token_env: MY_PM_TOKEN\n"),
    "sendgrid": ("MY_SG_KEY", "sg-key", ""),
}


def fake(name: str) -> Any:
    if name == "mailgun":
        return MailgunFake(api_key="mg-key")
    if name == "postmark":
        return PostmarkFake(server_token="pm-token")
    return SendGridFake(api_key="sg-key")


def configure(demo: Path, name: str, url: str) -> dict[str, str]:
    var, secret, extra = SETTINGS[name]
    key = "api_key_env" if name != "postmark" else "server_token_env"
    extra = extra if name != "postmark" else ""
    cfg = demo / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"providers:\n  {name}:\n{extra}    base_url: {url}\n    {key}: {var}\n"
        "    batch_size: 1\n",
        encoding="utf-8",
    )
    write_subscribers(demo, [f"{e},Reader,weekly,,active," for e in READERS])
    return {var: secret, "PRESSROOM_SECRET": "s3cret"}


def run(demo: Path, env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--config", str(demo / "config.yaml"), *args], env=env)


def later(minutes: int = 60) -> str:
    """A --now after the real time the first run's requests were made at."""
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def last_report(demo: Path) -> dict[str, Any]:
    path = max((demo / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def uncertain_pair(demo: Path, name: str, server: Any, env: dict[str, str]) -> tuple[str, str]:
    """Send with two answers lost: (the recipient the fake accepted, the one it never saw)."""
    server.drop_next(1, after_processing=True)
    server.drop_next(1)
    first = run(demo, env, "digest", "send", "--provider", name, "--now", FIRST)
    assert first.exit_code == 1, first.output
    held = sorted(last_report(demo)["uncertain"])
    assert len(held) == 2, first.output
    accepted = [e for e in held if e in server.accepted]
    lost = [e for e in held if e not in server.accepted]
    assert len(accepted) == 1 and len(lost) == 1
    return accepted[0], lost[0]


@pytest.mark.parametrize("name", ["mailgun", "postmark"])
def test_reconcile_settles_each_uncertain_recipient_by_asking(demo: Path, name: str) -> None:
    with fake(name) as server:
        env = configure(demo, name, server.url)
        accepted, lost = uncertain_pair(demo, name, server, env)
        result = run(
            demo, env, "digest", "send", "--provider", name, "--reconcile", "--now", later()
        )
        assert result.exit_code == 0, result.output
        # nobody twice, everybody once: the accepted one was not sent again
        assert dict(server.accepted) == dict.fromkeys(READERS, 1)
        assert server.contract_violations == [] and server.internal_errors == []
    assert f"reconciled 2 uncertain recipients with {name}" in result.output
    assert "1 were accepted (now sent), 1 were not" in result.output
    report = last_report(demo)
    assert report["status"] == "complete"
    settled = {s["email"]: s for s in report["reconciled"]["settled"]}
    assert settled[accepted]["now"] == "sent" and settled[lost]["now"] == "pending"
    assert name in settled[accepted]["how"]
    with Ledger(load(demo / "config.yaml").state_db) as ledger:
        assert ledger.counts(1)[L.SENT] == len(READERS)


def test_mailgun_too_recent_to_tell_stays_uncertain(demo: Path) -> None:
    with fake("mailgun") as server:
        env = configure(demo, "mailgun", server.url)
        accepted, lost = uncertain_pair(demo, "mailgun", server, env)
        # asked at once: the accepted one is in the log, the other may just not be there yet
        now = later(1)
        result = run(
            demo, env, "digest", "send", "--provider", "mailgun", "--reconcile", "--now", now
        )
        assert result.exit_code == 1, result.output
        assert dict(server.accepted) == {e: 1 for e in READERS if e != lost}
    assert "may lag 30 minutes" in result.output
    report = last_report(demo)
    assert report["uncertain"] == [lost]
    assert {s["email"]: s["now"] for s in report["reconciled"]["settled"]} == {
        accepted: "sent",
        lost: "uncertain",
    }


def test_a_provider_that_cannot_answer_says_so(demo: Path) -> None:
    with fake("sendgrid") as server:
        env = configure(demo, "sendgrid", server.url)
        server.drop_next(1)
        first = run(demo, env, "digest", "send", "--provider", "sendgrid", "--now", FIRST)
        assert first.exit_code == 1, first.output
        again = run(
            demo, env, "digest", "send", "--provider", "sendgrid", "--reconcile", "--now", later()
        )
        assert again.exit_code == 1
    assert "sendgrid cannot say whether it accepted a message" in again.output
    report = last_report(demo)
    assert len(report["uncertain"]) == 1
    assert report["reconciled"]["unable"].startswith("sendgrid cannot say")


def test_weekly_reconciles_before_reporting_uncertain_recipients(demo: Path) -> None:
    with fake("mailgun") as server:
        env = configure(demo, "mailgun", server.url)
        cfg = demo / "config.yaml"
        cfg.write_text(
            cfg.read_text(encoding="utf-8").replace("provider: file", "provider: mailgun"),
            encoding="utf-8",
        )
        uncertain_pair(demo, "mailgun", server, env)
        weekly = run(demo, env, "weekly", "--now", later())
        assert weekly.exit_code == 0, weekly.output
        assert dict(server.accepted) == dict.fromkeys(READERS, 1)
    assert "reconciled 2 uncertain recipients with mailgun" in weekly.output
    assert "held open" not in weekly.output


def test_reconcile_refuses_a_dry_run(demo: Path) -> None:
    result = run(demo, {}, "digest", "send", "--reconcile", "--dry-run")
    assert result.exit_code == 2
    assert "--reconcile" in result.output and "--dry-run" in result.output


def test_mailgun_messages_carry_issue_and_recipient_variables() -> None:
    with MailgunFake(api_key="k") as server:
        provider = mailgun(server.url)
        provider.open(content(12))
        provider.send([recipient("a@example.org"), recipient("b@example.org")])
        assert server.contract_violations == []
        assert [e["user-variables"] for e in server.events] == [
            {"pressroom_issue": "12", "pressroom_recipient": "a@example.org"},
            {"pressroom_issue": "12", "pressroom_recipient": "b@example.org"},
        ]


def test_mailgun_scans_the_log_page_by_page_for_many_uncertain(tmp_path: Path) -> None:
    """Over 20 uncertain recipients: one scan of the issue's accepted events around the
    attempts, following ``paging.next`` over several 300-event pages."""
    with MailgunFake(api_key="k") as server:
        provider = mailgun(server.url)
        provider.open(content(9))
        sent = [f"r{i:04d}@example.org" for i in range(650)]
        for start in range(0, len(sent), 1000):
            provider.send([recipient(e) for e in sent[start : start + 1000]])
        provider.open(content(8))  # another issue's message to the same reader is no proof
        provider.send([recipient("never@example.org")])
        at = datetime.now(UTC)
        asked = [*sent, "never@example.org"]
        verdicts = provider.reconcile(9, [(e, at) for e in asked], at + timedelta(hours=1))
        pages = [p for p in server.requests_by_path if "/events" in p]
    by_email = {v.email: v.accepted for v in verdicts}
    assert all(by_email[e] is True for e in sent)
    assert by_email["never@example.org"] is False
    assert len(pages) >= 3  # the first request and at least two paging URLs


def test_postmark_messages_carry_issue_and_recipient_metadata() -> None:
    from pressroom.delivery.providers.postmark import Postmark, PostmarkSettings

    with PostmarkFake(server_token="t") as server:
        provider = Postmark(
            PostmarkSettings(base_url=server.url), secrets={"server_token_env": "t"}
        )
        provider.open(content(12))
        provider.send([recipient("a@example.org")])
        assert server.contract_violations == []
        assert server.outbound[0]["Metadata"] == {"issue": "12", "recipient": "a@example.org"}


# --- helpers for the adapter-level tests --------------------------------------------------


def mailgun(url: str) -> Mailgun:
    return Mailgun(
        MailgunSettings(domain="mg.example.org", base_url=url), secrets={"api_key_env": "k"}
    )


def content(issue: int) -> Content:
    variant = RenderedVariant(key="all", html="<p>Hi</p>", text="Hi")
    return Content(
        issue=issue,
        subject=f"Issue {issue}",
        from_="News <news@example.org>",
        reply_to=None,
        variants={"all": variant},
        tag=f"issue-{issue}",
    )


def recipient(email: str) -> Recipient:
    return Recipient(email, "", "all", {}, {})


@pytest.mark.parametrize("fast", [timedelta(hours=2), timedelta(hours=-2)])
def test_mailgun_reconcile_finds_an_acceptance_when_the_clock_was_wrong(
    demo: Path, fast: timedelta
) -> None:
    # the machine's clock was two hours off when the requests went out (no NTP yet after a
    # boot, a VM resumed): Mailgun logged the acceptance at its own time, and a reader it
    # accepted must be found, not sent the issue a second time
    with fake("mailgun") as server:
        env = configure(demo, "mailgun", server.url)
        accepted, lost = uncertain_pair(demo, "mailgun", server, env)
        with sqlite3.connect(load(demo / "config.yaml").state_db) as db:
            db.execute(
                "UPDATE deliveries SET updated_at = updated_at + ? WHERE state = 'uncertain'",
                (fast.total_seconds(),),
            )
        result = run(
            demo, env, "digest", "send", "--provider", "mailgun", "--reconcile", "--now", later(240)
        )
        assert result.exit_code == 0, result.output
        assert dict(server.accepted) == dict.fromkeys(READERS, 1)  # nobody twice
        assert server.contract_violations == [] and server.internal_errors == []
    settled = {s["email"]: s["now"] for s in last_report(demo)["reconciled"]["settled"]}
    assert settled == {accepted: "sent", lost: "pending"}
