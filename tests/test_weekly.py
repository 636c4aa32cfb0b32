"""`pressroom weekly` on the demo publication: feeds, issue, send, the lock, the second run."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pressroom import config as config_mod
from pressroom.audience.subscribers import iter_subscribers
from pressroom.cli import main
from pressroom.delivery import send as send_mod
from pressroom.delivery.ledger import Ledger


def weekly(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        main,
        ["--config", str(root / "config.yaml"), "weekly", *args],
        env={"PRESSROOM_SECRET": "weekly-secret"},
    )


def test_weekly_builds_feeds_and_sends_the_issue_then_a_second_run_sends_nothing(
    demo: Path,
) -> None:
    config = config_mod.load(demo / "config.yaml")
    readers = sum(1 for _ in iter_subscribers(config, list_=config.sending.list))

    first = weekly(demo, "--now", "2026-11-25T09:00")
    assert first.exit_code == 0, first.output
    assert list((demo / "public" / "feeds").rglob("*.xml"))
    emls = list((demo / "outbox" / "issue-1").glob("*.eml"))
    assert len(emls) == readers
    assert "issue 1 is complete" in first.output
    with Ledger(config.state_db) as ledger:
        last = ledger.last_sent()
        assert last is not None and last.number == 1

    second = weekly(demo, "--now", "2026-11-25T12:00")
    assert second.exit_code == 0, second.output
    assert "nothing to send" in second.output
    assert "issue 1" in second.output  # says why: nothing since issue 1
    assert len(list((demo / "outbox").rglob("*.eml"))) == readers
    assert len(list((demo / "reports").glob("*.json"))) == 1


def test_a_second_concurrent_run_is_refused_by_the_lock(demo: Path) -> None:
    config = config_mod.load(demo / "config.yaml")
    with send_mod.RunLock(config.state):
        result = weekly(demo, "--now", "2026-11-25T09:00")
    assert result.exit_code == 1, result.output
    assert "another pressroom send is running" in result.output
    assert "Traceback" not in result.output
    assert not (demo / "outbox").exists()
    after = weekly(demo, "--now", "2026-11-25T09:00")  # the lock is gone with its holder
    assert after.exit_code == 0, after.output


def test_weekly_resumes_an_unfinished_issue_before_building_a_new_one(demo: Path) -> None:
    runner = CliRunner()
    env = {"PRESSROOM_SECRET": "weekly-secret"}
    cfg = ["--config", str(demo / "config.yaml")]
    part = runner.invoke(
        main, [*cfg, "digest", "send", "--limit", "2", "--now", "2026-11-25T09:00"], env=env
    )
    assert part.exit_code == 0, part.output
    assert len(list((demo / "outbox" / "issue-1").glob("*.eml"))) == 2

    rest = weekly(demo, "--now", "2026-11-26T09:00")
    assert rest.exit_code == 0, rest.output
    assert "resuming issue 1" in rest.output
    config = config_mod.load(demo / "config.yaml")
    readers = sum(1 for _ in iter_subscribers(config, list_=config.sending.list))
    assert len(list((demo / "outbox" / "issue-1").glob("*.eml"))) == readers
    assert not (demo / "outbox" / "issue-2").exists()
    reports = sorted((demo / "reports").glob("*.json"))
    assert [json.loads(p.read_text())["run"]["sent"] for p in reports] == [2, readers - 2]


def test_weekly_writes_the_view_online_page_each_message_links_to(demo: Path) -> None:
    import email
    import email.policy
    import html
    import re

    config = config_mod.load(demo / "config.yaml")
    assert not config.digest.archive.exists()  # `digest build` was never run
    result = weekly(demo, "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    eml = next((demo / "outbox" / "issue-1").glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    links = set(re.findall(r"View online: (\S+)", text))
    assert links == {f"{config.publication.url}issues/1/"}
    # public/ is what the site serves at publication.url: the link's page now exists
    page = config.digest.archive / "1" / "index.html"
    assert page.parent.relative_to(config.digest.archive.parent).as_posix() == "issues/1"
    html_page = page.read_text(encoding="utf-8")
    assert html.escape(str(msg["Subject"]), quote=False) in html_page
    assert "weekly-secret" not in html_page and "?t=" not in html_page  # nothing personal
    manifest = json.loads((config.digest.archive / "issues.json").read_text())
    assert manifest["1"]["date"] == "2026-11-25"


ARTICLE = """---
title: A late story
date: {date}
author: Helena Marsh
---

Something happened after the issue went out, and it is worth a paragraph or two.
"""


def test_weekly_waits_min_interval_before_a_new_issue_unless_forced(demo: Path) -> None:
    config = config_mod.load(demo / "config.yaml")
    assert config.digest.min_interval.total_seconds() == 6 * 86400
    first = weekly(demo, "--now", "2026-11-25T09:00")
    assert first.exit_code == 0, first.output
    (demo / "content" / "2026-11-25-late.md").write_text(
        ARTICLE.format(date="2026-11-25T10:00:00"), encoding="utf-8"
    )

    soon = weekly(demo, "--now", "2026-11-25T12:00")
    assert soon.exit_code == 0, soon.output
    assert "issue 1 went out 2026-11-25 09:00, less than 6d ago" in soon.output
    assert "the next issue is due from 2026-12-01 09:00 (use --force to send now)" in soon.output
    assert not (demo / "outbox" / "issue-2").exists()

    forced = weekly(demo, "--force", "--now", "2026-11-25T12:00")
    assert forced.exit_code == 0, forced.output
    assert "issue 2 is complete" in forced.output
    assert (demo / "outbox" / "issue-2").exists()


def test_weekly_sends_the_next_issue_once_min_interval_has_passed(demo: Path) -> None:
    assert weekly(demo, "--now", "2026-11-25T09:00").exit_code == 0
    (demo / "content" / "2026-11-27-late.md").write_text(
        ARTICLE.format(date="2026-11-27T10:00:00"), encoding="utf-8"
    )
    # six days later, a few minutes early for a 7-day week: a drifting cron still runs
    due = weekly(demo, "--now", "2026-12-01T09:05")
    assert due.exit_code == 0, due.output
    assert "issue 2 is complete" in due.output


def test_manual_digest_send_is_not_held_by_min_interval(demo: Path) -> None:
    assert weekly(demo, "--now", "2026-11-25T09:00").exit_code == 0
    (demo / "content" / "2026-11-25-late.md").write_text(
        ARTICLE.format(date="2026-11-25T10:00:00"), encoding="utf-8"
    )
    manual = CliRunner().invoke(
        main,
        ["--config", str(demo / "config.yaml"), "digest", "send", "--now", "2026-11-25T12:00"],
        env={"PRESSROOM_SECRET": "weekly-secret"},
    )
    assert manual.exit_code == 0, manual.output
    assert "issue 2 is complete" in manual.output


def test_an_issue_held_by_uncertain_recipients_blocks_weekly_and_says_what_to_do(
    demo: Path,
) -> None:
    from tests.fakes.mailgun import MailgunFake

    cfg = demo / "config.yaml"
    env = {"PRESSROOM_SECRET": "weekly-secret", "MY_MG_KEY": "mg-key"}
    with MailgunFake(api_key="mg-key") as server:
        cfg.write_text(
            cfg.read_text(encoding="utf-8")
            + f"providers:\n  mailgun:\n    domain: mg.example.org\n    base_url: {server.url}\n"
            "    api_key_env: MY_MG_KEY\n    batch_size: 1\n",
            encoding="utf-8",
        )
        # one answer lost: one uncertain reader (the send, not the suppression sync before it)
        server.drop_next(1, after_processing=True, path="/v3/mg.example.org/messages")
        run = ["--config", str(cfg), "weekly", "--provider", "mailgun"]
        first = CliRunner().invoke(main, [*run, "--now", "2026-11-25T09:00"], env=env)
        assert first.exit_code == 1, first.output
        # weekly first asks Mailgun about the uncertain reader (issue 12 §5): here its events
        # log cannot be read, so the reader stays uncertain and the issue stays held
        server.fail_next(1, 503, path="/v3/mg.example.org/events")
        later = CliRunner().invoke(main, [*run, "--now", "2026-12-02T09:00"], env=env)
        assert later.exit_code == 1, later.output
        assert "mailgun could not be asked about the uncertain recipients" in later.output
        assert "held open by its 1 uncertain recipients" in later.output
        assert "no new issue is sent until you decide" in later.output
        assert "--resend-uncertain" in later.output and "--drop-uncertain" in later.output
        config = config_mod.load(cfg)
        with Ledger(config.state_db) as ledger:
            assert ledger.issue(2) is None  # nothing new was built or frozen
        server.fail_next(1, 503, path="/v3/mg.example.org/events")  # still cannot be asked
        settled = CliRunner().invoke(
            main, [*run, "--drop-uncertain", "--now", "2026-12-02T09:10"], env=env
        )
        # dropped, not failed: many uncertain readers were delivered (issue 13 §3)
        assert "recorded as dropped, not failed" in settled.output
        assert settled.exit_code == 0, settled.output
        with Ledger(config.state_db) as ledger:
            last = ledger.last_sent()
            assert last is not None and last.number == 1


def test_a_broken_article_makes_weekly_exit_1_and_its_report_agrees(demo: Path) -> None:
    (demo / "content" / "2026-11-20-broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    result = weekly(demo, "--now", "2026-11-25T09:00")
    assert result.exit_code == 1, result.output
    assert "content/2026-11-20-broken.md" in result.output
    assert "issue 1 is complete" in result.output
    (path,) = (demo / "reports").glob("*.json")
    report = json.loads(path.read_text())
    # the article was reported before the send began: the report still carries the exit 1
    assert report["exit_code"] == 1 and report["subscriber_rows_skipped"] == 0


def test_weekly_with_a_clock_set_back_says_so_and_exits_1(demo: Path) -> None:
    # a dead RTC battery or a VM snapshot: the clock is days before the last issue. Every run
    # would otherwise say "nothing to send" with exit 0 and no issue would ever go out again
    first = weekly(demo, "--now", "2026-11-25T09:00")
    assert first.exit_code == 0, first.output
    (demo / "content" / "2026-11-30-late.md").write_text(
        ARTICLE.format(date="2026-11-30T10:00:00"), encoding="utf-8"
    )
    for extra in ((), ("--force",)):
        behind = weekly(demo, *extra, "--now", "2026-11-20T07:00")
        assert behind.exit_code == 1, behind.output
        assert (
            "error: this machine's time (2026-11-20 07:00) is before issue 1 went out "
            "(2026-11-25 09:00)" in behind.output
        ), behind.output
        assert "check the clock" in behind.output
        assert "Traceback" not in behind.output
    assert not (demo / "outbox" / "issue-2").exists()
    # the same --now again (a rerun) or a later time is no clock problem
    again = weekly(demo, "--now", "2026-11-25T09:00")
    assert again.exit_code == 0, again.output


def test_a_sending_list_typo_is_a_config_error_naming_the_closest_list(demo: Path) -> None:
    cfg = demo / "config.yaml"
    cfg.write_text(cfg.read_text().replace("  list: weekly", "  list: weekley"))
    for args in ((), ("--dry-run",)):
        result = CliRunner().invoke(
            main,
            ["--config", str(cfg), "digest", "send", "--now", "2026-11-25T09:00", "--yes", *args],
            env={"PRESSROOM_SECRET": "weekly-secret"},
        )
        assert result.exit_code == 2, result.output
        assert 'did you mean "weekly"?' in result.output, result.output
        assert "sending.list" in result.output and "config.yaml:" in result.output
        assert "Traceback" not in result.output
    result = weekly(demo, "--now", "2026-11-25T09:00")
    assert result.exit_code == 2, result.output
    assert 'sending.list "weekley" is no list' in result.output
    assert not (demo / "outbox").exists()
    with Ledger(demo / ".pressroom" / "state.db") as ledger:  # nothing frozen
        assert ledger.unfinished() is None and ledger.last_issue() is None
    # a --list typo is a usage error too, before anything is frozen
    cfg.write_text(cfg.read_text().replace("  list: weekley", "  list: weekly"))
    result = CliRunner().invoke(
        main,
        ["--config", str(cfg), "digest", "send", "--now", "2026-11-25T09:00", "--list", "braking"],
        env={"PRESSROOM_SECRET": "weekly-secret"},
    )
    assert result.exit_code == 2, result.output
    assert '--list "braking" is no list' in result.output
    assert 'did you mean "breaking"?' in result.output


def test_a_known_list_with_nobody_on_it_is_still_a_warning(demo: Path) -> None:
    cfg = demo / "config.yaml"
    text = cfg.read_text().replace("  list: weekly", "  list: quiet")
    cfg.write_text(text.replace("lists:\n", "lists:\n  quiet:\n    title: Quiet\n", 1))
    result = weekly(demo, "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    assert "no subscribers on list 'quiet'" in result.output


def test_a_tag_typo_in_a_staged_send_is_a_usage_error_not_a_frozen_issue(demo: Path) -> None:
    # `--tag early-readr`: the issue was frozen for everyone, sent to nobody, exit 0
    cfg = demo / "config.yaml"
    args = ["--config", str(cfg), "digest", "send", "--now", "2026-11-25T09:00", "--yes"]
    result = CliRunner().invoke(
        main, [*args, "--tag", "early-readr"], env={"PRESSROOM_SECRET": "weekly-secret"}
    )
    assert result.exit_code == 2, result.output
    assert '--tag "early-readr": no subscriber row has this tag' in result.output
    assert 'did you mean "early-reader"?' in result.output
    db = demo / ".pressroom" / "state.db"
    if db.exists():
        with Ledger(db) as ledger:
            assert ledger.unfinished() is None and ledger.last_issue() is None
    # a real tag still sends its readers only
    result = CliRunner().invoke(
        main, [*args, "--tag", "early-reader"], env={"PRESSROOM_SECRET": "weekly-secret"}
    )
    assert result.exit_code == 0, result.output


def test_an_issue_settled_days_late_does_not_hold_the_next_weekly_issue(demo: Path) -> None:
    # issue 1 went out on Wednesday's cron run, but two answers were lost and the publisher
    # dropped those readers only on Saturday: the issue settled then, and min_interval
    # counted from Saturday, so next Wednesday's cron said "nothing to send" (exit 0) and
    # the week's issue was skipped
    assert weekly(demo, "--now", "2026-11-25T09:00").exit_code == 0
    db = demo / ".pressroom" / "state.db"
    import sqlite3

    with sqlite3.connect(db) as conn:  # as the cron run left it: two answers lost
        conn.execute(
            "UPDATE deliveries SET state='uncertain' WHERE id IN "
            "(SELECT id FROM deliveries WHERE state='sent' LIMIT 2)"
        )
        conn.execute("UPDATE issues SET status='sending', sent_at=NULL WHERE number=1")
    cmd = ["--config", str(demo / "config.yaml"), "digest", "send", "--drop-uncertain"]
    settled = CliRunner().invoke(
        main, [*cmd, "--now", "2026-11-28T15:00"], env={"PRESSROOM_SECRET": "weekly-secret"}
    )
    assert settled.exit_code == 0, settled.output
    (demo / "content" / "2026-11-30-late.md").write_text(
        ARTICLE.format(date="2026-11-30T10:00:00"), encoding="utf-8"
    )
    due = weekly(demo, "--now", "2026-12-02T09:00")
    assert due.exit_code == 0, due.output
    assert "issue 2 is complete" in due.output
