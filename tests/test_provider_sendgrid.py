"""SendGrid adapter against the contract-validating fake SendGrid on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pressroom import config
from pressroom.delivery.providers.base import Outcome
from pressroom.delivery.providers.sendgrid import SendGrid, SendGridSettings
from pressroom.errors import ConfigError, ProviderAuthError, ProviderError
from tests.fakes.sample import UNSUBSCRIBE, content, recipient, recipients, variant
from tests.fakes.sendgrid import SendGridFake

KEY = "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"


@pytest.fixture
def server(contracts_dir: Path) -> Iterator[SendGridFake]:
    with SendGridFake(api_key=KEY) as fake:
        yield fake


def make(server: SendGridFake, key: str = KEY, **settings: object) -> SendGrid:
    raw = {"base_url": server.url, **settings}
    s = config.build_settings(SendGridSettings, raw, "providers.sendgrid", Path("."))
    provider = SendGrid.from_env(s, {"SENDGRID_API_KEY": key})
    provider.open(content())
    return provider  # type: ignore[return-value]


def test_full_batch_is_accepted_and_each_recipient_gets_its_own_unsubscribe_url(
    server: SendGridFake,
) -> None:
    results = make(server).send(recipients(1000))
    assert [r.outcome for r in results] == [Outcome.SENT] * 1000
    assert server.contract_violations == []
    assert server.internal_errors == []
    assert server.requests == 1
    assert server.duplicates() == {}
    for i in (0, 1, 500, 999):
        [got] = server.deliveries(f"reader{i}@example.com")
        url = f"{UNSUBSCRIBE}tok{i:06d}"
        assert got.headers["List-Unsubscribe"].startswith(f"<{url}>")
        assert got.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert got.headers["List-Id"] == "<weekly.news.example.org>"
        assert got.headers["Reply-To"] == "editor@news.example.org"
        assert f'href="{url}"' in got.html
        assert f"Unsubscribe: {url}" in got.text
        assert f"Hello Reader {i}," in got.text
        assert "-pr-" not in got.html + got.text + got.subject
        assert got.subject == "The Example weekly #7: a headline with ünïcode"
    assert results[0].message_id


def test_single_message_is_accepted(server: SendGridFake) -> None:
    [result] = make(server).send([recipient(3)])
    assert result.outcome is Outcome.SENT
    assert server.contract_violations == []
    assert server.internal_errors == []
    assert len(server.deliveries("reader3@example.com")) == 1


def test_names_are_escaped_in_html_and_raw_in_text(server: SendGridFake) -> None:
    make(server).send([recipient(1, name='Tom & "Jerry" <b>')])
    [got] = server.deliveries("reader1@example.com")
    assert "Hello Tom &amp; &quot;Jerry&quot; &lt;b&gt;," in got.html
    assert 'Hello Tom & "Jerry" <b>,' in got.text


def test_each_variant_goes_out_in_its_own_call(server: SendGridFake) -> None:
    provider = make(server)
    provider.open(content((variant("all"), variant("without:patreon", " No CTA."))))
    results = provider.send([recipient(1), recipient(2, "without:patreon")])
    assert all(r.outcome is Outcome.SENT for r in results)
    assert server.requests == 2
    assert "No CTA." in server.deliveries("reader2@example.com")[0].text
    assert "No CTA." not in server.deliveries("reader1@example.com")[0].text


# --- the validator itself catches broken requests -----------------------------------------


def _good() -> dict[str, Any]:
    return {
        "personalizations": [{"to": [{"email": "reader1@example.com"}]}],
        "from": {"email": "newsletter@news.example.org"},
        "subject": "Hi",
        "content": [{"type": "text/plain", "value": "Hello"}],
        "custom_args": {"pressroom_issue": "7"},
    }


def _post(server: SendGridFake, body: Any, content_type: str = "application/json") -> int:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": content_type}
    return requests.post(
        f"{server.url}/v3/mail/send", data=data, headers=headers, timeout=10
    ).status_code


def test_validator_accepts_a_hand_built_good_request(server: SendGridFake) -> None:
    assert _post(server, _good()) == 202
    assert server.contract_violations == []
    assert server.internal_errors == []


def _without(key: str) -> dict[str, Any]:
    body = _good()
    del body[key]
    return body


def _with(**changes: Any) -> dict[str, Any]:
    return {**_good(), **changes}


A = {"email": "a@example.com"}
HTML = {"type": "text/html", "value": "<p>x</p>"}
TEXT = {"type": "text/plain", "value": "x"}
many = [{"to": [{"email": f"r{i}@example.com"}]} for i in range(1001)]


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        (_without("from"), "'from' is a required property"),
        (_without("personalizations"), "'personalizations' is a required property"),
        (_with(personalizations=[{"subject": "x"}]), "'to' is a required property"),
        (_with(personalizations=many), "too long"),
        (_with(custom_args="issue-7"), "custom_args: expected an object"),
        (_with(content=[HTML, TEXT]), "text/plain must come first"),
        (_with(personalizations=[{"to": [A, A]}]), "more than once"),
        (_with(personalizations=[{"to": [A], "headers": {"To": "x"}}]), "To is reserved"),
        (_with(personalizations=[{"to": [A], "substitutions": {"-x-": "y" * 10_001}}]), "10,000"),
    ],
    ids=[
        "no-from",
        "no-personalizations",
        "no-to",
        "1001",
        "custom-args-string",
        "content-order",
        "duplicate",
        "reserved-header",
        "substitution-size",
    ],
)
def test_validator_rejects_broken_requests(server: SendGridFake, body: Any, expect: str) -> None:
    assert _post(server, body) == 400
    [(_, problems)] = server.contract_violations
    assert expect in " ".join(problems)
    assert server.total_accepted == 0


def test_validator_rejects_wrong_content_type(server: SendGridFake) -> None:
    assert _post(server, b"personalizations=x", "application/x-www-form-urlencoded") == 400
    assert server.contract_violations


# --- failure modes ------------------------------------------------------------------------


def test_429_with_rate_limit_reset_becomes_retry_after(server: SendGridFake) -> None:
    provider = make(server)
    reset = int(time.time()) + 30
    server.fail_next(
        1,
        429,
        headers={
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        },
    )
    results = provider.send(recipients(3))
    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert results[0].retry_after is not None and 25 <= results[0].retry_after <= 30
    assert server.total_accepted == 0
    assert all(r.outcome is Outcome.SENT for r in provider.send(recipients(3)))


def test_429_with_retry_after(server: SendGridFake) -> None:
    server.fail_next(1, 429, retry_after=12)
    [result] = make(server).send([recipient(1)])
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 12.0)


def test_rejected_key_stops_the_run_naming_the_env_var(server: SendGridFake) -> None:
    with pytest.raises(ProviderAuthError) as err:
        make(server, key="SG.wrong-key-value").send([recipient(1)])
    assert "SENDGRID_API_KEY" in err.value.message
    assert "SG.wrong-key-value" not in err.value.message


def test_invalid_addresses_fail_only_those_recipients(server: SendGridFake) -> None:
    server.fail_recipient("reader4@example.com", "invalid")
    server.fail_recipient("reader9@example.com", "invalid")
    results = make(server).send(recipients(12))
    failed = {r.email: r for r in results if r.outcome is not Outcome.SENT}
    assert set(failed) == {"reader4@example.com", "reader9@example.com"}
    assert all(r.outcome is Outcome.PERMANENT for r in failed.values())
    assert "Does not contain a valid address" in (failed["reader4@example.com"].error or "")
    assert server.total_accepted == 10
    assert server.requests == 2  # the refused call, then the ten good ones once
    assert server.duplicates() == {}


def test_payload_too_large_splits_the_batch(server: SendGridFake) -> None:
    server.fail_next(1, 413, body={"errors": [{"message": "too large", "field": None}]})
    results = make(server).send(recipients(6))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert server.requests == 3


def test_other_400_fails_the_batch_with_sendgrids_message(server: SendGridFake) -> None:
    body = {
        "errors": [
            {
                "message": "The from address does not match a verified Sender Identity.",
                "field": "from",
            }
        ]
    }
    server.fail_next(1, 400, body=body)
    results = make(server).send(recipients(4))
    assert {r.outcome for r in results} == {Outcome.PERMANENT}
    assert "verified Sender Identity" in (results[0].error or "")
    assert server.requests == 1


def test_batch_size_is_capped(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="1 to 1000"):
        config.build_settings(
            SendGridSettings, {"batch_size": 5000}, "providers.sendgrid", tmp_path
        )


def test_check_lists_scopes(server: SendGridFake) -> None:
    found = make(server).check()
    assert "mail.send allowed" in found and KEY not in found


def test_check_fails_without_mail_send_scope(contracts_dir: Path) -> None:
    fake = SendGridFake(api_key=KEY, scopes=("user.profile.read",))
    with fake, pytest.raises(ProviderError, match=r"lacks the mail\.send scope"):
        make(fake).check()


def test_check_with_a_wrong_key_names_the_env_var(server: SendGridFake) -> None:
    with pytest.raises(ProviderAuthError, match="SENDGRID_API_KEY"):
        make(server, key="SG.nope").check()


def test_a_200_that_is_not_sendgrids_answer_is_uncertain_not_sent(server: SendGridFake) -> None:
    # SendGrid accepts with 202 and an X-Message-Id; a 200 HTML page is a proxy, a captive
    # portal or a base_url pointing at a web site: nobody is marked sent on its word
    page = b"<!doctype html><html><body>Please log in to continue</body></html>"
    server.fail_next(1, 200, body=page, headers={"Content-Type": "text/html"})
    results = make(server).send(recipients(3))
    assert {r.outcome for r in results} == {Outcome.UNCERTAIN}
    assert "HTTP 200 without a SendGrid message id" in (results[0].error or "")
    assert all(r.outcome is Outcome.SENT for r in make(server).send(recipients(3)))
