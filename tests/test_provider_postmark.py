"""Postmark adapter against the fake Postmark on 127.0.0.1 (documented-field validation)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pressroom import config
from pressroom.delivery.providers.base import Outcome
from pressroom.delivery.providers.postmark import PM_UNSUBSCRIBE, Postmark, PostmarkSettings
from pressroom.errors import ConfigError, ProviderAuthError, ProviderError
from tests.fakes.postmark import PostmarkFake
from tests.fakes.sample import UNSUBSCRIBE, content, recipient, recipients, variant

TOKEN = "b7e5c0d3-94a1-4f0e-9c52-7a3f1d2e8b61"


@pytest.fixture
def server() -> Iterator[PostmarkFake]:
    with PostmarkFake(server_token=TOKEN) as fake:
        yield fake


def make(server: PostmarkFake, token: str = TOKEN, **settings: object) -> Postmark:
    raw = {"base_url": server.url, **settings}
    s = config.build_settings(PostmarkSettings, raw, "providers.postmark", Path("."))
    provider = Postmark.from_env(s, {"POSTMARK_SERVER_TOKEN": token})
    provider.open(content())
    return provider  # type: ignore[return-value]


def test_full_batch_is_accepted_and_each_recipient_gets_its_own_unsubscribe_url(
    server: PostmarkFake,
) -> None:
    results = make(server).send(recipients(500))
    assert [r.outcome for r in results] == [Outcome.SENT] * 500
    assert len({r.message_id for r in results}) == 500
    assert server.contract_violations == []
    assert server.internal_errors == []
    assert server.requests == 1
    assert server.duplicates() == {}
    for i in (0, 1, 250, 499):
        [got] = server.deliveries(f"reader{i}@example.com")
        url = f"{UNSUBSCRIBE}tok{i:06d}"
        assert got.headers["List-Unsubscribe"].startswith(f"<{url}>")
        assert got.headers["List-Id"] == "<weekly.news.example.org>"
        assert got.headers["Reply-To"] == "editor@news.example.org"
        assert f'href="{url}"' in got.html
        assert f"Unsubscribe: {url}" in got.text
        assert f"Hello Reader {i}," in got.text
        assert "%%PR_" not in got.html + got.text + got.subject
        assert got.subject == "The Example weekly #7: a headline with ünïcode"
        assert got.tag == "issue-7"


def test_single_message_is_accepted(server: PostmarkFake) -> None:
    [result] = make(server).send([recipient(3)])
    assert result.outcome is Outcome.SENT
    assert server.contract_violations == []
    assert server.internal_errors == []


def test_names_are_escaped_in_html_and_raw_in_text(server: PostmarkFake) -> None:
    make(server).send([recipient(1, name='Tom & "Jerry", <b>\\')])
    [got] = server.deliveries("reader1@example.com")
    assert "Hello Tom &amp; &quot;Jerry&quot;, &lt;b&gt;\\," in got.html
    assert 'Hello Tom & "Jerry", <b>\\,' in got.text
    assert server.contract_violations == []
    assert server.internal_errors == []


def test_variants_in_one_batch(server: PostmarkFake) -> None:
    provider = make(server)
    provider.open(content((variant("all"), variant("without:patreon", " No CTA."))))
    results = provider.send([recipient(1), recipient(2, "without:patreon")])
    assert all(r.outcome is Outcome.SENT for r in results)
    assert server.requests == 1
    assert "No CTA." in server.deliveries("reader2@example.com")[0].text
    assert "No CTA." not in server.deliveries("reader1@example.com")[0].text


def test_broadcast_stream_with_postmark_unsubscribe_handling(server: PostmarkFake) -> None:
    provider = make(server, message_stream="broadcast", unsubscribe="postmark")
    assert provider.manages_unsubscribe
    provider.send([recipient(1)])
    [got] = server.deliveries("reader1@example.com")
    assert "List-Unsubscribe" not in got.headers
    assert f'href="{PM_UNSUBSCRIBE}"' in got.html
    assert UNSUBSCRIBE not in got.html + got.text
    assert "broadcast" in provider.check()


# --- the validator itself catches broken requests -----------------------------------------


GOOD = {"From": "a@news.example.org", "To": "reader1@example.com", "Subject": "Hi", "TextBody": "x"}


def _post(server: PostmarkFake, body: Any, **headers: str) -> int:
    h = {
        "X-Postmark-Server-Token": TOKEN,
        "Accept": "application/json",
        "Content-Type": "application/json",
        **headers,
    }
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{server.url}/email/batch", data=data, headers=h, timeout=10).status_code


def test_validator_accepts_a_hand_built_good_request(server: PostmarkFake) -> None:
    assert _post(server, [GOOD]) == 200
    assert server.contract_violations == []
    assert server.internal_errors == []


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ([{k: v for k, v in GOOD.items() if k != "To"}], "To: required"),
        ([{k: v for k, v in GOOD.items() if k != "TextBody"}], "TextBody or HtmlBody"),
        ([{**GOOD, "Header": []}], "Header: not a documented Postmark field"),
        ([{**GOOD, "Headers": {"List-Unsubscribe": "<x>"}}], "Headers: expected list"),
        ([{**GOOD, "Headers": [{"Name": "X"}]}], "{Name, Value}"),
        ([{**GOOD, "TrackOpens": "yes"}], "TrackOpens: expected bool"),
        ([{**GOOD, "To": ",".join(f"r{i}@example.com" for i in range(51))}], "allows 50"),
        ([GOOD] * 501, "at most 500"),
        (GOOD, "JSON array"),
    ],
    ids=[
        "no-to",
        "no-body",
        "unknown-field",
        "headers-dict",
        "header-shape",
        "bool",
        "51-to",
        "501",
        "not-array",
    ],
)
def test_validator_rejects_broken_requests(server: PostmarkFake, body: Any, expect: str) -> None:
    assert _post(server, body) == 400
    [(_, problems)] = server.contract_violations
    assert expect in " ".join(problems)
    assert server.total_accepted == 0


def test_validator_rejects_wrong_content_type(server: PostmarkFake) -> None:
    assert _post(server, b"From=a", **{"Content-Type": "application/x-www-form-urlencoded"}) == 400
    [(_, problems)] = server.contract_violations
    assert "Content-Type must be application/json" in problems[0]


# --- failure modes ------------------------------------------------------------------------


def test_inactive_recipient_is_permanent_and_suppressed_others_go_out(server: PostmarkFake) -> None:
    server.fail_recipient("reader2@example.com", 406)
    server.fail_recipient("reader3@example.com", 300)
    server.fail_recipient("reader4@example.com", 429)
    results = {r.email: r for r in make(server).send(recipients(6))}
    inactive = results["reader2@example.com"]
    assert (inactive.outcome, inactive.suppress) == (Outcome.PERMANENT, True)
    assert "inactive" in (inactive.error or "")
    invalid = results["reader3@example.com"]
    assert (invalid.outcome, invalid.suppress) == (Outcome.PERMANENT, False)
    assert results["reader4@example.com"].outcome is Outcome.RETRY
    sent = [e for e, r in results.items() if r.outcome is Outcome.SENT]
    assert sorted(sent) == [f"reader{i}@example.com" for i in (0, 1, 5)]
    assert server.total_accepted == 3


def test_429_is_retried_after_the_servers_delay(server: PostmarkFake) -> None:
    provider = make(server)
    server.fail_next(1, 429, retry_after=9)
    results = provider.send(recipients(3))
    assert {(r.outcome, r.retry_after) for r in results} == {(Outcome.RETRY, 9.0)}
    assert all(r.outcome is Outcome.SENT for r in provider.send(recipients(3)))


def test_a_200_without_per_message_results_is_uncertain(server: PostmarkFake) -> None:
    server.fail_next(1, 200, body=[])  # accepted, but no ErrorCode per message to read
    results = make(server).send(recipients(3))
    assert {r.outcome for r in results} == {Outcome.UNCERTAIN}
    assert "without one result per message" in (results[0].error or "")


def test_rejected_token_stops_the_run_naming_the_env_var(server: PostmarkFake) -> None:
    with pytest.raises(ProviderAuthError) as err:
        make(server, token="wrong-token-123").send([recipient(1)])
    assert "POSTMARK_SERVER_TOKEN" in err.value.message
    assert "wrong-token-123" not in err.value.message


def test_whole_request_refused_with_422(server: PostmarkFake) -> None:
    server.fail_next(1, 422, body={"ErrorCode": 300, "Message": "Invalid 'From' address"})
    results = make(server).send(recipients(2))
    assert {r.outcome for r in results} == {Outcome.PERMANENT}
    assert "Invalid 'From' address" in (results[0].error or "")


def test_unconfirmed_sender_signature_stops_the_run(server: PostmarkFake) -> None:
    body = {"ErrorCode": 401, "Message": "Sender signature not confirmed"}
    server.fail_next(1, 422, body=body)
    with pytest.raises(ProviderAuthError, match="sender signature is not confirmed"):
        make(server).send(recipients(2))


def test_unknown_stream_stops_the_run(server: PostmarkFake) -> None:
    with pytest.raises(ProviderAuthError, match="message stream was not found"):
        make(server, message_stream="newsletters").send(recipients(2))


def test_too_many_messages_halves_the_batch(server: PostmarkFake) -> None:
    server.fail_next(1, 422, body={"ErrorCode": 410, "Message": "Too many batch messages"})
    results = make(server).send(recipients(4))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert server.requests == 3


def test_batch_size_is_capped(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="1 to 500"):
        config.build_settings(PostmarkSettings, {"batch_size": 501}, "providers.postmark", tmp_path)


def test_check_reports_server_and_stream(server: PostmarkFake) -> None:
    found = make(server).check()
    assert 'server "Pressroom test server"' in found
    assert '"outbound" (Transactional)' in found
    assert TOKEN not in found


def test_check_rejects_postmark_unsubscribes_on_a_transactional_stream(
    server: PostmarkFake,
) -> None:
    with pytest.raises(ProviderError, match="needs a Broadcasts stream"):
        make(server, unsubscribe="postmark").check()


def test_check_unknown_stream(server: PostmarkFake) -> None:
    with pytest.raises(ProviderError, match='stream "nope" not found'):
        make(server, message_stream="nope").check()


def test_batch_over_50_mb_is_split_before_sending(server: PostmarkFake) -> None:
    provider = make(server)
    big = "x" * 200_000  # in both parts: 400 KB per message, 120 MB for 300 messages
    provider.open(content((variant("all", big),)))
    results = provider.send(recipients(300))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert server.requests == 4  # halved twice: four calls of 75 messages, 30 MB each
    assert server.contract_violations == []
    assert max(server.payload_bytes) <= 50_000_000


@pytest.mark.parametrize(
    "element", [1, None, {}, {"MessageID": "x"}, {"ErrorCode": "abc"}, {"ErrorCode": [0]}]
)
def test_a_result_without_a_readable_error_code_is_uncertain(
    server: PostmarkFake, element: object
) -> None:
    # ErrorCode 0 is Postmark's "accepted": an element without one is no proof either way
    server.fail_next(1, 200, body=[{"ErrorCode": 0, "MessageID": "m-1"}, element])
    results = make(server).send(recipients(2))
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.UNCERTAIN]
    assert "ErrorCode" in (results[1].error or "")


def test_a_422_with_a_garbled_error_code_is_a_refusal_not_a_crash(server: PostmarkFake) -> None:
    server.fail_next(1, 422, body={"ErrorCode": "abc", "Message": "Invalid"})
    results = make(server).send(recipients(2))
    assert {r.outcome for r in results} == {Outcome.PERMANENT}


@pytest.mark.parametrize("path", ["/server", "/message-streams/"])
@pytest.mark.parametrize("body", [b"<!doctype html><html><body>It works!</body></html>", [1, 2]])
def test_check_fails_on_a_200_that_is_not_postmarks_answer(
    server: PostmarkFake, path: str, body: object
) -> None:
    # a base_url at a web site (or a proxy) answers 200: `providers check` must not pass
    server.fail_next(1, 200, body=body, headers={"Content-Type": "text/html"}, path=path)
    with pytest.raises(ProviderError) as err:
        make(server).check()
    assert "not the Postmark API" in err.value.message
    assert "providers.postmark.base_url" in err.value.message
