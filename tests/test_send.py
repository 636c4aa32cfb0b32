"""The send loop over a real ledger: batching, retries, permanent failures, auth, pauses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pressroom.audience.tokens import Signer
from pressroom.cli import main
from pressroom.delivery import ledger as L
from pressroom.delivery import message
from pressroom.delivery import send as send_mod
from pressroom.delivery.ledger import Ledger
from pressroom.delivery.providers.base import Outcome, SendResult
from pressroom.delivery.providers.file import eml_name
from pressroom.delivery.ratelimit import SendRate
from pressroom.errors import ProviderAuthError
from tests.send_helpers import NOW, ScriptedProvider, make_config, rendered_issue

SIGNER = Signer(b"k")


def setup(tmp_path: Path, n: int, **opts: object):  # type: ignore[no-untyped-def]
    config = make_config(tmp_path)
    rendered = rendered_issue(3)
    ledger = Ledger(config.state_db)
    rows = [(f"r{i:03d}@example.org", f"R {i}", "all") for i in range(n)]
    frozen = ledger.freeze(rendered, rows, window_end=NOW, now=NOW)
    factory = message.RecipientFactory(config, rendered, SIGNER)
    defaults = dict(
        rate=0.0,
        concurrency=3,
        batch_size=10,
        max_attempts=4,
        max_retry_time=60.0,
        max_consecutive_failures=50,
        backoff_base=0.01,
    )
    defaults.update(opts)
    options = send_mod.SendOptions(**defaults)  # type: ignore[arg-type]
    return config, ledger, frozen, factory, options, rendered


def test_every_recipient_is_sent_once_in_batches_of_the_limit(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 95)
    provider = ScriptedProvider(max_batch=10)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.sent == 95 and summary.failed == 0
    assert provider.accepted == {f"r{i:03d}@example.org": 1 for i in range(95)}
    assert max(len(b) for b in provider.batches) == 10
    assert len(provider.batches) == 10
    assert ledger.counts(3)[L.SENT] == 95
    assert ledger.mark_issue_sent(3, NOW)
    assert 1 <= provider.max_active <= 3


def test_a_batch_holds_one_audience_variant_so_it_is_one_provider_request(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    rendered = rendered_issue(3)
    ledger = Ledger(config.state_db)
    # patrons and non-patrons interleaved, as a real list has them
    rows = [
        (f"r{i:03d}@example.org", f"R {i}", "all" if i % 3 else "without:patreon")
        for i in range(60)
    ]
    frozen = ledger.freeze(rendered, rows, window_end=NOW, now=NOW)
    factory = message.RecipientFactory(config, rendered, SIGNER)
    options = send_mod.SendOptions(concurrency=2, batch_size=10)
    provider = ScriptedProvider(max_batch=10)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.sent == 60
    variant = dict((e, v) for e, _, v in rows)
    assert all(len({variant[e] for e in batch}) == 1 for batch in provider.batches)
    # 40 + 20 readers: 4 + 2 full requests, where mixed batches needed 6 × 2 variants
    assert sorted(len(b) for b in provider.batches) == [10] * 6
    assert summary.requests == 6


def test_retries_back_off_and_then_succeed(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 5)
    retry = SendResult("", Outcome.RETRY, error="HTTP 503")
    provider = ScriptedProvider({"r001@example.org": [retry, retry, SendResult("", Outcome.SENT)]})
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.sent == 5 and summary.retried == 2
    assert provider.accepted["r001@example.org"] == 1
    attempts = ledger.db.execute(
        "SELECT attempts FROM deliveries WHERE email='r001@example.org'"
    ).fetchone()[0]
    assert attempts == 3


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 2)
    slept: list[float] = []
    retry = SendResult("", Outcome.RETRY, error="HTTP 429", retry_after=7.0)
    provider = ScriptedProvider({"r000@example.org": [retry, SendResult("", Outcome.SENT)]})
    clock = [0.0]

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    summary = send_mod.run(
        ledger, frozen, provider, factory, options, clock=lambda: clock[0], sleep=sleep
    )
    assert summary.sent == 2
    assert clock[0] >= 7.0  # nobody was sent again before the provider said so


def test_retries_are_bounded_by_max_attempts_and_then_deferred_not_failed(
    tmp_path: Path,
) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 3, max_attempts=3)
    provider = ScriptedProvider(
        {"r002@example.org": [SendResult("", Outcome.RETRY, error="HTTP 500")]}
    )
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.sent == 2 and summary.failed == 0
    assert summary.deferred == [("r002@example.org", "HTTP 500")]
    assert sum(1 for b in provider.batches if "r002@example.org" in b) == 3
    # a temporary failure stays temporary: pending with its last error, the issue open
    assert ledger.row_states(3)["r002@example.org"] == L.PENDING
    assert ledger.failures(3, L.PENDING) == [
        ("r002@example.org", "deferred after 3 attempts: HTTP 500")
    ]
    assert not ledger.mark_issue_sent(3, NOW)


def test_a_permanent_failure_fails_that_recipient_and_the_run_goes_on(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 20)
    bounced: list[tuple[str, str]] = []
    provider = ScriptedProvider(
        {
            "r004@example.org": [
                SendResult(
                    "", Outcome.PERMANENT, error="SMTP 550 5.1.1 no such user", suppress=True
                )
            ],
            "r009@example.org": [SendResult("", Outcome.PERMANENT, error="HTTP 400 bad address")],
        }
    )
    summary = send_mod.run(ledger, frozen, provider, factory, options, on_suppress=bounced.extend)
    assert summary.sent == 18 and summary.failed == 2
    assert dict(summary.failures)["r009@example.org"] == "HTTP 400 bad address"
    assert bounced == [("r004@example.org", "bounced")]
    assert len(provider.batches) == 2  # permanent failures are not retried


def test_an_auth_failure_stops_at_once_and_leaves_the_rest_pending(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 50, concurrency=1)
    provider = ScriptedProvider({"r020@example.org": [ProviderAuthError("mailgun: check MG_KEY")]})
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.stopped == "mailgun: check MG_KEY"
    counts = ledger.counts(3)
    assert counts[L.SENT] == 20
    assert counts[L.PENDING] == 30 and counts[L.IN_FLIGHT] == 0
    assert len(provider.batches) <= 3  # nothing dispatched after the failure was seen


def test_consecutive_failures_pause_the_run_and_a_rerun_resumes(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(
        tmp_path, 100, concurrency=1, max_consecutive_failures=3, max_attempts=10
    )
    down = {
        f"r{i:03d}@example.org": [SendResult("", Outcome.RETRY, error="HTTP 502")]
        for i in range(100)
    }
    summary = send_mod.run(ledger, frozen, ScriptedProvider(down), factory, options)
    assert summary.paused and "HTTP 502" in summary.paused
    assert summary.sent == 0
    assert ledger.counts(3)[L.PENDING] == 100  # paused, not failed
    healthy = ScriptedProvider()
    again = send_mod.run(ledger, frozen, healthy, factory, options)
    assert again.sent == 100 and again.paused is None
    assert sum(healthy.accepted.values()) == 100


def test_recipients_who_unsubscribed_after_the_freeze_are_skipped(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 10)
    provider = ScriptedProvider()
    gone = {"r003@example.org", "r007@example.org"}
    summary = send_mod.run(
        ledger, frozen, provider, factory, options, is_suppressed=gone.__contains__
    )
    assert summary.skipped == 2 and summary.sent == 8
    assert not gone & set(provider.accepted)
    assert ledger.counts(3)[L.SKIPPED] == 2
    assert ledger.mark_issue_sent(3, NOW)


def test_limit_sends_at_most_n_and_leaves_the_rest_pending(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 30, limit=12)
    provider = ScriptedProvider()
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.sent == 12 and ledger.counts(3)[L.PENDING] == 18
    assert sorted(provider.accepted) == [f"r{i:03d}@example.org" for i in range(12)]


def test_an_adapter_crash_marks_the_batch_uncertain(tmp_path: Path) -> None:
    _config, ledger, frozen, factory, options, _ = setup(tmp_path, 5, concurrency=1)
    provider = ScriptedProvider({"r000@example.org": [RuntimeError("adapter bug")]})
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.stopped and "adapter bug" in summary.stopped
    assert ledger.counts(3)[L.UNCERTAIN] == 5


def test_each_recipient_gets_its_own_fields(tmp_path: Path) -> None:
    _config, _ledger, _frozen, factory, _options, _rendered = setup(tmp_path, 3)
    r = factory.make("r001@example.org", "R 1", "all")
    assert r.fields["email"] == "r001@example.org" and r.fields["name"] == "R 1"
    assert SIGNER.verify(r.fields["unsubscribe_url"].split("t=")[1]) == (
        "r001@example.org",
        "weekly",
    )
    assert r.headers["List-Unsubscribe"].startswith(f"<{r.fields['unsubscribe_url']}>")


def test_token_bucket_spaces_batches_at_the_configured_rate() -> None:
    clock = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        clock[0] += s

    bucket = SendRate(100.0, 100, clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        bucket.acquire(100)  # the first 100 are the burst; then one batch per second
    assert clock[0] == pytest.approx(4.0)
    bucket.hold(30)
    bucket.acquire(1)
    assert clock[0] >= 34.0


def test_unlimited_rate_never_waits() -> None:
    bucket = SendRate(0.0, 10, sleep=lambda s: (_ for _ in ()).throw(AssertionError))
    assert bucket.acquire(10_000) == 0.0


# --- the CLI on the demo publication (file provider) ---------------------------------------


def invoke(root: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        main,
        ["--config", str(root / "config.yaml"), *args],
        env={"PRESSROOM_SECRET": "s3cret", **(env or {})},
    )


def readers(root: Path) -> list[str]:
    """The demo's mailable subscribers, as the subscriber module reads them."""
    from pressroom import config as config_mod
    from pressroom.audience.subscribers import iter_subscribers

    config = config_mod.load(root / "config.yaml")
    return sorted(s.email for s in iter_subscribers(config, list_=config.sending.list))


def test_digest_send_writes_one_eml_per_subscriber_and_a_report(demo: Path) -> None:
    import email
    import email.policy

    expected = readers(demo)
    assert len(expected) >= 3
    result = invoke(demo, "digest", "send", "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    emls = sorted((demo / "outbox").glob("issue-*/*.eml"))
    to = sorted(
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"]
        .addresses[0]
        .addr_spec
        for p in emls
    )
    assert to == expected
    assert f"sent {len(expected)}, failed 0" in result.output
    reports = list((demo / "reports").glob("issue-*.json"))
    assert len(reports) == 1
    data = json.loads(reports[0].read_text())
    assert data["counts"]["sent"] == len(expected) and data["status"] == "complete"
    assert "s3cret" not in reports[0].read_text()
    # the issue is settled: a second send finds nothing new and sends nothing
    again = invoke(demo, "digest", "send", "--now", "2026-11-25T10:00")
    assert again.exit_code == 0, again.output
    assert "nothing to send" in again.output
    assert len(sorted((demo / "outbox").glob("issue-*/*.eml"))) == len(expected)


def test_a_damaged_suppressed_file_stops_the_send_and_a_long_row_still_suppresses(
    demo: Path,
) -> None:
    suppressed = demo / "subscribers/suppressed.csv"
    header = suppressed.read_text().splitlines()[0]
    # a hand edit leaves a quote open: the rows after it would be swallowed, and the readers
    # they suppress mailed
    suppressed.write_text(
        f'{header}\n"oops@example.com,unsubscribed,2026-01-01T00:00:00+00:00,\n'
        "grace@example.org,complained,2026-01-02T00:00:00+00:00,\n"
    )
    result = invoke(demo, "digest", "send", "--now", "2026-11-25T09:00")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        "error: subscribers/suppressed.csv:2: unterminated quote (the row runs on to line 3); "
        "fix the quoting — line 3 was not read; subscribers/suppressed.csv says who must never "
        "be mailed, so nothing is sent until it reads cleanly"
    ]
    assert list((demo / "outbox").glob("issue-*/*.eml")) == []
    # a row with a comma too many (a provider's reason pasted unquoted) still suppresses
    suppressed.write_text(
        f"{header}\ngrace@example.org,bounced,2026-01-02T00:00:00+00:00,,550, mailbox gone\n"
    )
    assert "grace@example.org" not in readers(demo)
    result = invoke(demo, "digest", "send", "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    assert list((demo / "outbox").glob("issue-*/grace*")) == []


def test_an_emptied_suppressed_file_stops_the_send(demo: Path) -> None:
    # truncated to 0 bytes (a failed copy, `> suppressed.csv`): everyone who left would be
    # mailed again
    (demo / "subscribers/suppressed.csv").write_bytes(b"")
    result = invoke(demo, "digest", "send", "--now", "2026-11-25T09:00")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        "error: subscribers/suppressed.csv: empty file (not even its header); if nobody is "
        "suppressed yet, write the header email,reason,date,list, else restore it from a "
        "backup: an emptied file would mail everyone who left"
    ]
    assert list((demo / "outbox").glob("issue-*/*.eml")) == []
    (demo / "subscribers/suppressed.csv").write_text("email,reason,date,list\n")
    assert invoke(demo, "digest", "send", "--now", "2026-11-25T09:00").exit_code == 0


def test_dry_run_says_what_would_be_sent_and_writes_nothing(demo: Path) -> None:
    no_secret = {"PRESSROOM_SECRET": ""}
    result = invoke(demo, "digest", "send", "--dry-run", "--now", "2026-11-25T09:00", env=no_secret)
    assert result.exit_code == 0, result.output
    n = len(readers(demo))
    assert "would send issue 1" in result.output and f"to {n} recipients" in result.output
    assert not (demo / "outbox").exists()
    assert not (demo / ".pressroom").exists()  # no ledger, no lock, no secret


def test_test_to_sends_one_marked_copy_and_records_nothing(demo: Path) -> None:
    result = invoke(
        demo, "digest", "send", "--test-to", "me@example.net", "--now", "2026-11-25T09:00"
    )
    assert result.exit_code == 0, result.output
    # kept apart from real deliveries: outbox/test/, never the issue's own folder
    assert list((demo / "outbox").glob("issue-*/*.eml")) == []
    emls = list((demo / "outbox" / "test").glob("*.eml"))
    assert [p.name for p in emls] == ["issue-1-" + eml_name("me@example.net")]
    assert b"Subject: [TEST] " in emls[0].read_bytes()
    with Ledger(demo / ".pressroom" / "state.db") as ledger:
        assert ledger.unfinished() is None and ledger.last_sent() is None


def test_confirm_over_refuses_without_yes_when_not_interactive(demo: Path) -> None:
    cfg = demo / "config.yaml"
    cfg.write_text(cfg.read_text().replace("confirm_over: 1000", "confirm_over: 2"))
    result = invoke(demo, "digest", "send", "--now", "2026-11-25T09:00")
    assert result.exit_code == 2, result.output
    assert "--yes" in result.output
    assert "froze issue" not in result.output  # the freeze was rolled back: not said
    assert not list((demo / "outbox").glob("issue-*/*.eml"))
    with Ledger(demo / ".pressroom" / "state.db") as ledger:
        assert ledger.unfinished() is None  # nothing frozen either
    ok = invoke(demo, "digest", "send", "--yes", "--now", "2026-11-25T09:00")
    assert ok.exit_code == 0, ok.output
    assert f"froze issue 1 for {len(readers(demo))} recipients" in ok.output


def test_a_missing_provider_secret_is_a_config_error_naming_the_variable(demo: Path) -> None:
    cfg = demo / "config.yaml"
    cfg.write_text(
        cfg.read_text() + "providers:\n  smtp:\n    host: 127.0.0.1\n"
        "    username_env: MY_SMTP_USER\n    password_env: MY_SMTP_PASS\n"
    )
    env = {k: "" for k in ("MY_SMTP_USER", "MY_SMTP_PASS")}
    result = invoke(
        demo, "digest", "send", "--provider", "smtp", "--now", "2026-11-25T09:00", env=env
    )
    assert result.exit_code == 2, result.output
    assert "MY_SMTP_USER" in result.output
    assert "Traceback" not in result.output


def test_conflicting_options_are_rejected_before_any_work(demo: Path) -> None:
    result = invoke(demo, "digest", "send", "--dry-run", "--test-to", "a@example.org")
    assert result.exit_code == 2
    assert "--dry-run and --test-to" in result.output
    assert not (demo / ".pressroom").exists()


def test_an_unknown_provider_lists_the_known_ones(demo: Path) -> None:
    result = invoke(demo, "digest", "send", "--provider", "carrier-pigeon")
    assert result.exit_code == 2
    assert "carrier-pigeon" in result.output and "file" in result.output and "smtp" in result.output


def test_rejected_credentials_stop_the_run_and_name_the_env_var(demo: Path) -> None:
    from tests.fakes.mailgun import MailgunFake

    with MailgunFake(api_key="the-right-key") as server:
        cfg = demo / "config.yaml"
        cfg.write_text(
            cfg.read_text(encoding="utf-8")
            + f"providers:\n  mailgun:\n    domain: mg.example.org\n    base_url: {server.url}\n"
            "    api_key_env: MY_MG_KEY\n",
            encoding="utf-8",
        )
        result = invoke(
            demo,
            "digest",
            "send",
            "--provider",
            "mailgun",
            "--now",
            "2026-11-25T09:00",
            env={"MY_MG_KEY": "a-wrong-key"},
        )
    assert result.exit_code == 1, result.output
    assert "MY_MG_KEY" in result.output
    assert "a-wrong-key" not in result.output
    assert server.total_accepted == 0
    with Ledger(demo / ".pressroom" / "state.db") as ledger:
        frozen = ledger.unfinished()
        assert frozen is not None  # resumable once the key is fixed
        assert ledger.counts(frozen.number)[L.PENDING] == frozen.total


def test_uncertain_recipients_are_listed_not_resent_and_can_be_dropped(demo: Path) -> None:
    first = invoke(demo, "digest", "send", "--limit", "1", "--now", "2026-11-25T09:00")
    assert first.exit_code == 0, first.output
    state = demo / ".pressroom" / "state.db"
    with Ledger(state) as ledger:
        frozen = ledger.unfinished()
        assert frozen is not None
        crashed = ledger.pending(frozen.number, 0, 2)
        ledger.mark_in_flight(crashed, 1.0)  # a run died while these were being sent
    lost = sorted(r.email for r in crashed)

    second = invoke(demo, "digest", "send", "--now", "2026-11-25T09:30")
    assert second.exit_code == 1, second.output
    assert "2 uncertain recipients" in second.output
    assert all(email in second.output for email in lost)
    written = {p.name for p in (demo / "outbox" / f"issue-{frozen.number}").glob("*.eml")}
    assert len(written) == frozen.total - 2
    assert not {eml_name(email) for email in lost} & written
    report = json.loads(
        max((demo / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime_ns).read_text()
    )
    assert sorted(report["uncertain"]) == lost and report["status"] == "incomplete"

    third = invoke(demo, "digest", "send", "--drop-uncertain", "--now", "2026-11-25T10:00")
    # an explicit choice, done as asked: dropped (many were delivered), not failed
    assert third.exit_code == 0, third.output
    assert "2 uncertain recipients dropped by --drop-uncertain" in third.output
    assert "issue 1 is complete" in third.output.replace(f"issue {frozen.number}", "issue 1")
    with Ledger(state) as ledger:
        assert ledger.unfinished() is None
        last = ledger.last_sent()
        assert last is not None and last.number == frozen.number
        assert ledger.failures(frozen.number) == []
        assert ledger.emails_in(frozen.number, L.DROPPED) == lost
    report = json.loads(
        max((demo / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime_ns).read_text()
    )
    assert report["dropped"] == lost and report["run"]["dropped_uncertain"] == 2
    assert report["counts"]["dropped"] == 2 and report["counts"]["failed"] == 0
    assert report["status"] == "complete" and report["exit_code"] == 0


def test_throttling_with_retry_after_costs_time_not_attempts(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(tmp_path, 1, max_attempts=2)
    throttled = SendResult("", Outcome.RETRY, error="HTTP 429", retry_after=0.01)
    provider = ScriptedProvider(
        {"r000@example.org": [throttled] * 4 + [SendResult("", Outcome.SENT)]}
    )
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.sent == 1 and summary.failed == 0
    assert len(provider.batches) == 5  # four 429s did not use up max_attempts=2


@pytest.mark.parametrize("wait", [86_400.0, 1e29])
def test_a_retry_after_beyond_the_retry_window_defers_at_once(tmp_path: Path, wait: float) -> None:
    # a provider that says "come back tomorrow" (or in 10^29 s) must not keep the run asleep
    # far past sending.max_retry_time: the reader is deferred to the next run now
    _, ledger, frozen, factory, options, _ = setup(tmp_path, 2, max_retry_time=60.0)
    throttled = SendResult("", Outcome.RETRY, error="HTTP 429", retry_after=wait)
    provider = ScriptedProvider({"r000@example.org": [throttled, SendResult("", Outcome.SENT)]})
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s
        assert clock[0] < 3600, "the run slept past the retry window"

    summary = send_mod.run(
        ledger, frozen, provider, factory, options, clock=lambda: clock[0], sleep=sleep
    )
    assert summary.sent == 1 and summary.failed == 0
    assert summary.deferred == [("r000@example.org", "HTTP 429")]
    assert ledger.row_states(3)["r000@example.org"] == L.PENDING
    assert clock[0] < 60.0


# --- requests that got no answer: uncertain, never silently sent twice ---------------------


def test_an_uncertain_result_is_held_not_retried(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(tmp_path, 12)
    lost = SendResult("", Outcome.UNCERTAIN, error="ReadTimeout: read timed out")
    provider = ScriptedProvider({"r004@example.org": [lost, SendResult("", Outcome.SENT)]})
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.sent == 11 and summary.failed == 0 and summary.retried == 0
    assert summary.uncertain == 1
    [(email, reason)] = summary.uncertainties
    assert email == "r004@example.org" and "ReadTimeout" in reason
    assert sum(b.count("r004@example.org") for b in provider.batches) == 1  # not resent
    assert ledger.row_states(3)["r004@example.org"] == L.UNCERTAIN
    assert not ledger.mark_issue_sent(3, NOW)  # the issue stays open until it is settled


def test_retry_uncertain_retries_it_like_a_temporary_failure(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(tmp_path, 12, retry_uncertain=True)
    lost = SendResult("", Outcome.UNCERTAIN, error="ReadTimeout: read timed out")
    provider = ScriptedProvider({"r004@example.org": [lost, SendResult("", Outcome.SENT)]})
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    assert summary.sent == 12 and summary.uncertain == 0 and summary.retried == 1
    assert sum(b.count("r004@example.org") for b in provider.batches) == 2
    assert ledger.mark_issue_sent(3, NOW)


def test_a_provider_that_stops_answering_pauses_the_run(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(
        tmp_path, 100, concurrency=1, max_consecutive_failures=3
    )
    silent = {
        f"r{i:03d}@example.org": [SendResult("", Outcome.UNCERTAIN, error="ReadTimeout")]
        for i in range(100)
    }
    summary = send_mod.run(ledger, frozen, ScriptedProvider(silent), factory, options)
    assert summary.paused and "ReadTimeout" in summary.paused
    counts = ledger.counts(3)
    # three batches in doubt (and at most the one queued behind them); the rest never tried
    assert 30 <= counts[L.UNCERTAIN] <= 40
    assert counts[L.PENDING] == 100 - counts[L.UNCERTAIN]


def _mailgun_demo(demo: Path, url: str, sending: str = "") -> None:
    cfg = demo / "config.yaml"
    text = cfg.read_text(encoding="utf-8")
    if sending:
        text = text.replace(
            "  secret_env: PRESSROOM_SECRET\n", f"  secret_env: PRESSROOM_SECRET\n{sending}"
        )
    cfg.write_text(
        text + f"providers:\n  mailgun:\n    domain: mg.example.org\n    base_url: {url}\n"
        "    api_key_env: MY_MG_KEY\n    batch_size: 1\n",
        encoding="utf-8",
    )


def _send_mailgun(demo: Path, *args: str):  # type: ignore[no-untyped-def]
    return invoke(
        demo,
        "digest",
        "send",
        "--provider",
        "mailgun",
        *args,
        env={"MY_MG_KEY": "mg-key"},
    )


def _last_report(demo: Path) -> dict:  # type: ignore[type-arg]
    path = max((demo / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_a_batch_whose_answer_was_lost_is_held_uncertain_not_sent_twice(demo: Path) -> None:
    from tests.fakes.mailgun import MailgunFake

    everyone = readers(demo)
    with MailgunFake(api_key="mg-key") as server:
        _mailgun_demo(demo, server.url)
        server.drop_next(1, after_processing=True)  # accepted, then the answer is lost
        result = _send_mailgun(demo, "--now", "2026-11-25T09:00")
        assert result.exit_code == 1, result.output
        assert server.duplicates() == {}  # from the fake's own record: nobody got it twice
        assert sorted(server.accepted) == everyone
        assert server.contract_violations == []
    report = _last_report(demo)
    held = sorted(report["uncertain"])
    assert len(held) == 1 and set(held) <= set(everyone)  # the one request whose answer was lost
    assert report["run"]["uncertain"] == 1 and report["counts"]["uncertain"] == 1
    assert report["counts"]["sent"] == len(everyone) - 1
    assert report["status"] == "incomplete" and report["exit_code"] == 1
    reasons = {r["email"]: r["reason"] for r in report["uncertain_reasons"]}
    assert sorted(reasons) == held and all("RemoteDisconnected" in r for r in reasons.values())
    assert "1 uncertain recipients" in result.output and "--resend-uncertain" in result.output
    assert all(email in result.output for email in held)


def test_resend_uncertain_sends_the_held_recipients(demo: Path) -> None:
    from tests.fakes.mailgun import MailgunFake

    everyone = readers(demo)
    with MailgunFake(api_key="mg-key") as server:
        _mailgun_demo(demo, server.url)
        server.drop_next(1)  # the request never reached the provider's books
        first = _send_mailgun(demo, "--now", "2026-11-25T09:00")
        assert first.exit_code == 1, first.output
        held = sorted(_last_report(demo)["uncertain"])
        assert len(held) == 1 and not set(held) & set(server.accepted)
        again = _send_mailgun(demo, "--now", "2026-11-25T09:30")
        assert again.exit_code == 1, again.output  # not resent without being told
        assert not set(held) & set(server.accepted)
        last = _send_mailgun(demo, "--resend-uncertain", "--now", "2026-11-25T10:00")
        assert last.exit_code == 0, last.output
        assert "resending 1 uncertain recipients" in last.output
        assert dict(server.accepted) == dict.fromkeys(everyone, 1)
    report = _last_report(demo)
    assert report["status"] == "complete" and report["uncertain"] == []


def test_retry_uncertain_setting_retries_a_lost_answer(demo: Path) -> None:
    from tests.fakes.mailgun import MailgunFake

    everyone = readers(demo)
    with MailgunFake(api_key="mg-key") as server:
        _mailgun_demo(demo, server.url, sending="  retry_uncertain: true\n")
        server.drop_next(1, after_processing=True)
        result = _send_mailgun(demo, "--now", "2026-11-25T09:00")
        assert result.exit_code == 0, result.output
        # retried at once: the batch whose answer was lost is the risk the setting accepts
        doubled = server.duplicates()
        assert list(doubled.values()) == [2]
        assert sorted(server.accepted) == everyone
    report = _last_report(demo)
    assert report["status"] == "complete" and report["uncertain"] == []
    assert report["run"]["retried"] == 1


def test_resent_uncertain_recipients_get_a_fresh_retry_window(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(tmp_path, 2, max_retry_time=60.0)
    rows = ledger.pending(3, 0, 2)
    ledger.mark_in_flight(rows, 1.0)  # a request made long ago (epoch 1.0) got no answer
    assert ledger.crashed_to_uncertain(3) == 2
    assert ledger.requeue_uncertain(3) == 2  # --resend-uncertain
    busy = SendResult("", Outcome.RETRY, error="HTTP 503")
    provider = ScriptedProvider({"r000@example.org": [busy, SendResult("", Outcome.SENT)]})
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    # a 503 now is retried, not "gave up" because the first try was long ago
    assert summary.sent == 2 and summary.failed == 0 and summary.retried == 1


# --- segments, deferral, the uncertain threshold, ETA, bounce dates ----------------------


def _emls(root: Path, number: int = 1) -> dict[str, bytes]:
    import email
    import email.policy

    out = {}
    for p in sorted((root / "outbox" / f"issue-{number}").glob("*.eml")):
        data = p.read_bytes()
        msg = email.message_from_bytes(data, policy=email.policy.default)
        out[msg["To"].addresses[0].addr_spec] = data
    return out


def test_a_list_segment_sends_part_of_the_issue_and_a_plain_run_sends_the_rest(
    demo: Path,
) -> None:
    import re

    from pressroom.audience.tokens import Signer

    everyone = readers(demo)  # the issue belongs to sending.list ("weekly")
    first = invoke(demo, "digest", "send", "--list", "breaking", "--now", "2026-11-25T09:00")
    assert first.exit_code == 0, first.output
    # only the weekly readers also on "breaking"; the rest stay pending, the issue open
    assert sorted(_emls(demo)) == ["katherine@example.com"]
    assert f"sent 1 of {len(everyone)}; {len(everyone) - 1} still pending for issue 1" in (
        first.output
    )
    assert "pressroom digest send` to send the rest" in first.output
    assert "is complete" not in first.output
    raw = _emls(demo)["katherine@example.com"]
    assert b"List-Id: " in raw and b"<weekly.theduran.example>" in raw
    token = re.search(rb"unsubscribe\?t=([A-Za-z0-9_\-.]+)", raw)
    assert token is not None
    # the token is for the issue's own list, the one List-Id names
    assert Signer(b"s3cret").verify(token.group(1).decode()) == ("katherine@example.com", "weekly")
    with Ledger(demo / ".pressroom" / "state.db") as ledger:
        assert ledger.last_sent() is None
        frozen = ledger.unfinished()
        assert frozen is not None and frozen.total == len(everyone)

    rest = invoke(demo, "digest", "send", "--now", "2026-11-25T10:00")
    assert rest.exit_code == 0, rest.output
    assert "resuming issue 1" in rest.output and "issue 1 is complete" in rest.output
    assert sorted(_emls(demo)) == everyone  # one message each, nobody twice
    assert not (demo / "outbox" / "issue-2").exists()
    with Ledger(demo / ".pressroom" / "state.db") as ledger:
        last = ledger.last_sent()
        assert last is not None and last.number == 1


def test_a_tag_rollout_is_completed_by_weekly(demo: Path) -> None:
    everyone = readers(demo)
    staff = invoke(demo, "digest", "send", "--tag", "early-reader", "--now", "2026-11-25T09:00")
    assert staff.exit_code == 0, staff.output
    assert sorted(_emls(demo)) == ["katherine@example.com", "radia@example.org"]
    dry = invoke(demo, "digest", "send", "--dry-run", "--now", "2026-11-25T09:30")
    assert f"{len(everyone) - 2} pending" in dry.output
    rest = invoke(demo, "weekly", "--now", "2026-11-25T10:00")
    assert rest.exit_code == 0, rest.output
    assert "resuming issue 1" in rest.output and "issue 1 is complete" in rest.output
    assert sorted(_emls(demo)) == everyone
    reports = sorted((demo / "reports").glob("*.json"))
    assert sorted(json.loads(p.read_text())["run"]["sent"] for p in reports) == [
        2,
        len(everyone) - 2,
    ]


def test_a_relay_that_stays_down_defers_everyone_and_a_later_run_sends_them(
    demo: Path,
) -> None:
    from tests.fakes.mailgun import MailgunFake
    from tests.fakes.server import refusing_url

    everyone = readers(demo)
    with refusing_url() as url:
        _mailgun_demo(demo, url, sending="  max_attempts: 2\n")
        down = _send_mailgun(demo, "--now", "2026-11-25T09:00")
    assert down.exit_code == 1, down.output
    assert "deferred after repeated temporary failures" in down.output
    assert "ConnectionRefusedError" in down.output or "refused" in down.output.lower()
    assert "run `pressroom digest send` again later" in down.output
    assert "is complete" not in down.output
    report = _last_report(demo)
    assert report["status"] == "incomplete" and report["counts"]["failed"] == 0
    assert report["counts"]["pending"] == len(everyone)
    assert report["run"]["deferred"] == len(report["deferred"]) >= 1
    assert all("Connection" in d["last_error"] for d in report["deferred"])
    with Ledger(demo / ".pressroom" / "state.db") as ledger:
        assert ledger.last_sent() is None and ledger.unfinished() is not None

    cfg = demo / "config.yaml"
    with MailgunFake(api_key="mg-key") as server:
        cfg.write_text(cfg.read_text().replace(url, server.url))
        up = _send_mailgun(demo, "--now", "2026-11-25T11:00")
        assert up.exit_code == 0, up.output
        assert "issue 1 is complete" in up.output
        assert dict(server.accepted) == dict.fromkeys(everyone, 1)


def test_a_deferred_recipient_gets_a_fresh_allowance_in_the_next_run(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(tmp_path, 3, max_attempts=2)
    busy = SendResult("", Outcome.RETRY, error="HTTP 503")
    first = send_mod.run(
        ledger, frozen, ScriptedProvider({"r000@example.org": [busy]}), factory, options
    )
    assert first.deferred and ledger.row_states(3)["r000@example.org"] == L.PENDING
    # a later run: one more 503, then the provider is back; not deferred on the first 503
    again = ScriptedProvider({"r000@example.org": [busy, SendResult("", Outcome.SENT)]})
    second = send_mod.run(ledger, frozen, again, factory, options)
    assert second.deferred == [] and second.sent == 1 and second.retried == 1
    assert ledger.mark_issue_sent(3, NOW)


def test_a_few_unanswered_requests_in_a_row_pause_the_run(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(
        tmp_path, 200, concurrency=1, max_consecutive_failures=50
    )
    assert options.max_consecutive_uncertain == 3
    silent = {
        f"r{i:03d}@example.org": [SendResult("", Outcome.UNCERTAIN, error="ReadTimeout")]
        for i in range(200)
    }
    summary = send_mod.run(ledger, frozen, ScriptedProvider(silent), factory, options)
    assert summary.paused and "sending.max_consecutive_uncertain" in summary.paused
    counts = ledger.counts(3)
    assert 30 <= counts[L.UNCERTAIN] <= 40  # three batches (and at most one queued behind)
    assert counts[L.PENDING] == 200 - counts[L.UNCERTAIN]


def test_the_eta_never_promises_more_than_the_configured_rate(tmp_path: Path) -> None:
    _, ledger, frozen, factory, options, _ = setup(
        tmp_path, 300, rate=100.0, concurrency=1, batch_size=10
    )
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    seen: list[send_mod.Progress] = []
    summary = send_mod.run(
        ledger,
        frozen,
        ScriptedProvider(),
        factory,
        options,
        progress=seen.append,
        clock=lambda: clock[0],
        sleep=sleep,
    )
    assert summary.sent == 300
    timed = [p for p in seen if p.eta is not None and p.done < p.todo]
    assert timed
    for p in timed:
        # the first batches go out in the bucket's burst; the rest at 100/s at best
        assert p.eta >= (p.todo - p.done) / 100.0 - 1e-6, p


def test_a_bounce_is_suppressed_with_its_full_time(demo: Path) -> None:
    import csv

    from tests.fakes.postmark import PostmarkFake

    token = "b7e5c0d3-94a1-4f0e-9c52-7a3f1d2e8b61"
    with PostmarkFake(server_token=token) as server:
        server.fail_recipient("alan@example.net", 406)
        cfg = demo / "config.yaml"
        cfg.write_text(cfg.read_text() + f"providers:\n  postmark:\n    base_url: {server.url}\n")
        result = invoke(
            demo,
            "digest",
            "send",
            "--provider",
            "postmark",
            "--now",
            "2026-11-25T09:30",
            env={"POSTMARK_SERVER_TOKEN": token},
        )
    assert result.exit_code == 1, result.output  # one recipient failed
    with open(demo / "subscribers" / "suppressed.csv", encoding="utf-8") as f:
        rows = {r["email"]: r for r in csv.DictReader(f)}
    assert rows["alan@example.net"]["reason"] == "bounced"
    assert rows["alan@example.net"]["date"].startswith("2026-11-25T09:30")


# --- one exit status: the command's, the report's and the summary's --------------------------


def _reports(demo: Path) -> list[dict]:  # type: ignore[type-arg]
    """Every report, in the order the folder lists them by name."""
    return [json.loads(p.read_text()) for p in sorted((demo / "reports").glob("*.json"))]


def test_a_staged_run_exits_0_and_its_report_says_so(demo: Path) -> None:
    everyone = readers(demo)
    first = invoke(demo, "digest", "send", "--yes", "--limit", "1", "--now", "2026-11-25T09:00")
    assert first.exit_code == 0, first.output
    second = invoke(demo, "digest", "send", "--list", "breaking", "--now", "2026-11-25T09:00")
    assert second.exit_code == 0, second.output
    rest = invoke(demo, "digest", "send", "--now", "2026-11-25T09:00")
    assert rest.exit_code == 0, rest.output
    # listed by name, the reports are in run order (same pinned time: the run number decides)
    names = sorted(p.name for p in (demo / "reports").glob("*.json"))
    assert [n.split("-")[:4] for n in names] == [
        ["issue", "1", "run", "001"],
        ["issue", "1", "run", "002"],
        ["issue", "1", "run", "003"],
    ]
    reports = _reports(demo)
    assert [(r["status"], r["exit_code"]) for r in reports] == [
        ("staged", 0),
        ("staged", 0),
        ("complete", 0),
    ]
    assert [r["run"]["sent"] for r in reports] == [1, 1, len(everyone) - 2]


def _bad_rows(demo: Path) -> None:
    (demo / "subscribers" / "extra.csv").write_text(
        "email,name,lists\nbob@,Bob,weekly\n,Nobody,weekly\nzoe@example.org,Zoe,weekly\n"
    )


def test_bad_subscriber_rows_make_the_send_exit_1_and_the_report_and_summary_say_why(
    demo: Path,
) -> None:
    _bad_rows(demo)
    result = invoke(demo, "digest", "send", "--now", "2026-11-25T09:00")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "error: subscribers/extra.csv:2: invalid email" in out
    assert "error: subscribers/extra.csv:3: no email" in out
    assert "zoe@example.org" in _emls(demo)  # the good rows are mailed
    # the reason for exit 1 comes after the summary, not only before "froze issue 1"
    skipped = "2 subscriber rows skipped (see the errors above)"
    assert skipped in out and out.index(skipped) > out.index("froze issue 1")
    assert out.index(skipped) > out.index("issue 1 is complete")
    (report,) = _reports(demo)
    assert report["status"] == "complete"  # every readable reader was mailed…
    assert report["exit_code"] == 1  # …but not everyone in the files could be
    assert report["subscriber_rows_skipped"] == 2


def test_a_dry_run_reports_bad_subscriber_rows_and_exits_1_like_the_send(demo: Path) -> None:
    _bad_rows(demo)
    dry = invoke(demo, "digest", "send", "--dry-run", "--now", "2026-11-25T09:00")
    assert dry.exit_code == 1, dry.output
    assert "error: subscribers/extra.csv:2: invalid email" in dry.output
    assert "error: subscribers/extra.csv:3: no email" in dry.output
    assert "; 2 bad subscriber rows skipped; nothing was sent or recorded" in dry.output
    assert f"to {len(readers(demo))} recipients" in dry.output
    assert not (demo / "outbox").exists()
    real = invoke(demo, "digest", "send", "--now", "2026-11-25T09:00")
    assert real.exit_code == dry.exit_code, real.output
