"""End to end: an issue goes out through the fake Mailgun, Mailgun reports two hard bounces
and a complaint, `weekly` a week later syncs them and the next issue skips exactly those
three; `pressroom stats` and the reputation limits of `weekly` and `digest check`."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from pressroom import config as config_mod
from pressroom.audience import events
from pressroom.cli import main
from tests.fakes.mailgun import MailgunFake
from tests.send_helpers import write_subscribers

ARTICLE = """---
title: {title}
date: {date}
author: Helena Marsh
---

Something happened this week, and it is worth a paragraph or two.
"""
ENV = {"PRESSROOM_SECRET": "weekly-secret", "MY_MG_KEY": "mg-key"}


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(root / "config.yaml"), *args], env=ENV)


def recipients(server: MailgunFake, issue: int) -> set[str]:
    with server.lock:
        return {e for e, got in server.received.items() for d in got if d.tag == f"issue-{issue}"}


def test_provider_bounces_and_a_complaint_are_not_mailed_next_week(demo: Path) -> None:
    write_subscribers(demo, 1000)  # reader000000@example.org …
    with MailgunFake(api_key="mg-key") as server:
        cfg = demo / "config.yaml"
        cfg.write_text(
            cfg.read_text(encoding="utf-8")
            + f"providers:\n  mailgun:\n    domain: mg.example.org\n    base_url: {server.url}\n"
            "    api_key_env: MY_MG_KEY\n",
            encoding="utf-8",
        )
        first = run(demo, "weekly", "--provider", "mailgun", "--yes", "--now", "2026-11-25T09:00")
        assert first.exit_code == 0, first.output
        assert "suppressions: 0 newly suppressed from mailgun" in first.output
        sent = recipients(server, 1)
        assert len(sent) == 1000

        # the week after: Mailgun lists what happened (dated after the ledger's send marks)
        stamp = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%a, %d %b %Y %H:%M:%S UTC")
        gone = {"reader000010@example.org", "reader000500@example.org"}
        angry = "reader000999@example.org"
        for address in sorted(gone):
            server.add_suppression(
                "bounces", address, stamp, code="550", error="5.1.1 No such mailbox"
            )
        server.add_suppression("complaints", angry, stamp)
        (demo / "content" / "2026-11-30-next.md").write_text(
            ARTICLE.format(title="Next week's story", date="2026-11-30T10:00:00"),
            encoding="utf-8",
        )
        second = run(demo, "weekly", "--provider", "mailgun", "--yes", "--now", "2026-12-02T09:00")
        assert second.exit_code == 0, second.output
        assert "3 newly suppressed (2 bounced, 1 complained) from mailgun" in second.output
        # 1 complaint in 1,000: at the 0.1 % warning line, below the 0.3 % refusal
        assert "warning: issue 1's complaint rate is 0.10 %" in second.output
        assert sent - recipients(server, 2) == gone | {angry}
        assert len(recipients(server, 2)) == 997
        assert server.contract_violations == [] and server.internal_errors == []

    stats = run(demo, "stats", "1", "--json")
    assert stats.exit_code == 0, stats.output
    [one] = json.loads(stats.output)["issues"]
    assert (one["sent"], one["hard_bounces"], one["complaints"]) == (1000, 2, 1)
    assert one["complaint_rate"] == 0.001 and one["bounce_rate"] == 0.002
    assert one["status"] == "warn"
    assert one["thresholds"]["complaint_rate"] == {"warn": 0.001, "refuse": 0.003}


def test_over_the_limits_weekly_and_digest_check_refuse_unless_forced(demo: Path) -> None:
    first = run(demo, "weekly", "--now", "2026-11-25T09:00")  # the file provider
    assert first.exit_code == 0, first.output
    config = config_mod.load(demo / "config.yaml")
    table = run(demo, "stats")
    assert table.exit_code == 0 and "0.00 % (2 % / 5 %)" in table.output
    sent = json.loads(run(demo, "stats", "--json").output)["issues"][0]["sent"]
    assert 0 < sent < 100
    when = datetime(2026, 11, 26, tzinfo=UTC)
    done = events.apply(
        config,
        [events.Event("mailgun", events.COMPLAINT, "ada@example.com", when, issue=1)],
        now=when,
    )
    assert done.new == 1
    # a reader's own unsubscribe link counts for the issue it came after, once
    out = run(demo, "subscribers", "unsubscribe", "grace@example.org", "--now", "2026-11-27T10:00")
    assert out.exit_code == 0, out.output
    events.apply(
        config,
        [events.Event("mailgun", events.UNSUBSCRIBE, "Grace@example.org", when, issue=1)],
        now=when,
    )
    [one] = json.loads(run(demo, "stats", "1", "--json").output)["issues"]
    assert (one["complaints"], one["unsubscribes"], one["status"]) == (1, 1, "refuse")
    (demo / "content" / "2026-11-30-next.md").write_text(
        ARTICLE.format(title="Next week's story", date="2026-11-30T10:00:00"), encoding="utf-8"
    )

    check = run(demo, "digest", "check", "--now", "2026-12-02T09:00")
    assert check.exit_code == 1, check.output
    assert "issue 1's complaint rate is" in check.output and "--force" in check.output
    assert "Traceback" not in check.output
    forced = run(demo, "digest", "check", "--force", "--now", "2026-12-02T09:00")
    assert forced.exit_code == 0, forced.output
    assert "(--force: sending anyway)" in forced.output

    held = run(demo, "weekly", "--now", "2026-12-02T09:00")
    assert held.exit_code == 1, held.output
    assert "at or above the 0.30 % limit" in held.output and "pass --force" in held.output
    assert not (demo / "outbox" / "issue-2").exists()
    sent_anyway = run(demo, "weekly", "--force", "--now", "2026-12-02T09:00")
    assert sent_anyway.exit_code == 0, sent_anyway.output
    assert list((demo / "outbox" / "issue-2").glob("*.eml"))
    assert run(demo, "stats", "7").exit_code == 2  # no such issue: one line, exit 2


def test_a_refusal_at_send_time_is_a_hard_bounce_of_that_issue(demo: Path) -> None:
    from tests.fakes.postmark import PostmarkFake

    with PostmarkFake(server_token="pm-token") as server:
        cfg = demo / "config.yaml"
        cfg.write_text(
            cfg.read_text(encoding="utf-8")
            + f"providers:\n  postmark:\n    base_url: {server.url}\n"
            "    server_token_env: MY_PM_TOKEN\nbounces:\n  sync: false\n",
            encoding="utf-8",
        )
        server.fail_recipient("alan@example.net", 406)  # Postmark: inactive recipient
        env = {**ENV, "MY_PM_TOKEN": "pm-token"}
        args = [
            "--config",
            str(cfg),
            "weekly",
            "--provider",
            "postmark",
            "--now",
            "2026-11-25T09:00",
        ]
        result = CliRunner().invoke(main, args, env=env)
        assert "suppressions:" not in result.output  # bounces.sync: false
        assert not any("/suppressions/" in p for p in server.requests_by_path)
    config = config_mod.load(demo / "config.yaml")
    with config.subscribers.suppressed.open(encoding="utf-8") as f:
        rows = {r["email"]: r for r in csv.DictReader(f)}
    assert rows["alan@example.net"]["reason"] == "bounced"
    assert rows["alan@example.net"]["detail"] == "postmark: refused when issue 1 was sent"
    [one] = json.loads(run(demo, "stats", "1", "--json").output)["issues"]
    assert one["hard_bounces"] == 1


def test_stats_says_an_issue_is_still_sending(demo: Path) -> None:
    # a staged send (--limit 2 of 6): stats showed "sent 2" and its rates as if the issue
    # had gone out to two readers, with nothing saying four were still to come
    staged = run(demo, "digest", "send", "--limit", "2", "--now", "2026-11-25T09:00")
    assert staged.exit_code == 0, staged.output
    table = run(demo, "stats")
    assert table.exit_code == 0, table.output
    assert "still sending (4 not settled)" in table.output
    [one] = json.loads(run(demo, "stats", "1", "--json").output)["issues"]
    assert one["sent"] == 2 and one["unsettled"] == 4 and one["sending"] is True
    done = run(demo, "digest", "send", "--now", "2026-11-25T10:00")
    assert done.exit_code == 0, done.output
    assert "still sending" not in run(demo, "stats").output
    [one] = json.loads(run(demo, "stats", "1", "--json").output)["issues"]
    assert one["unsettled"] == 0 and one["sending"] is False


def test_stats_on_a_ledger_with_odd_times_is_one_line(demo: Path) -> None:
    # a state.db written by another program or edited by hand: a frozen_at without an offset
    # crashed `stats` (and the reputation check before every send) with a TypeError against
    # suppressed.csv's dates, and one that is no time with a ValueError traceback
    import sqlite3

    first = run(demo, "weekly", "--now", "2026-11-25T09:00")  # the file provider
    assert first.exit_code == 0, first.output
    out = run(demo, "subscribers", "unsubscribe", "grace@example.org", "--now", "2026-11-27T10:00")
    assert out.exit_code == 0, out.output
    state = demo / ".pressroom" / "state.db"
    with sqlite3.connect(state) as db:
        db.execute("UPDATE issues SET frozen_at = '2026-11-25 09:00:00' WHERE number = 1")
    table = run(demo, "stats")
    assert table.exit_code == 0, table.output
    [one] = json.loads(run(demo, "stats", "1", "--json").output)["issues"]
    assert one["unsubscribes"] == 1
    check = run(demo, "digest", "check", "--now", "2026-12-02T09:00")
    assert "Traceback" not in check.output
    assert check.exception is None or isinstance(check.exception, SystemExit), check.output
    with sqlite3.connect(state) as db:
        db.execute("UPDATE issues SET frozen_at = 'last wednesday' WHERE number = 1")
    bad = run(demo, "stats")
    assert bad.exit_code != 0 and isinstance(bad.exception, SystemExit), bad.output
    [line] = bad.stderr.strip().splitlines()
    assert "issue 1's frozen_at 'last wednesday' is not an ISO 8601 time" in line
