"""SES v2 adapter against the fake SES on 127.0.0.1 (botocore model + SigV4 verification)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pressroom import config
from pressroom.delivery.providers.base import Outcome
from pressroom.delivery.providers.ses import SES, SESSettings
from pressroom.errors import ConfigError, ProviderAuthError, ProviderConfigError
from pressroom.models import RenderedVariant
from tests.fakes.sample import UNSUBSCRIBE, content, recipient, recipients, variant
from tests.fakes.ses import BULK, SESFake, render

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"


@pytest.fixture
def server() -> Iterator[SESFake]:
    with SESFake(access_key_id=KEY_ID, secret_access_key=SECRET, region=REGION) as fake:
        yield fake


def make(server: SESFake, secret: str = SECRET, **settings: object) -> SES:
    raw = {"base_url": server.url, "region": REGION, **settings}
    s = config.build_settings(SESSettings, raw, "providers.ses", Path("."))
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": secret}
    provider = SES.from_env(s, env)
    provider.open(content())
    return provider  # type: ignore[return-value]


def check_recipient(server: SESFake, i: int) -> None:
    [got] = server.deliveries(f"reader{i}@example.com")
    url = f"{UNSUBSCRIBE}tok{i:06d}"
    assert got.headers["List-Unsubscribe"].startswith(f"<{url}>")
    assert got.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got.headers["List-Id"] == "<weekly.news.example.org>"
    assert got.headers["Reply-To"] == "editor@news.example.org"
    assert f'href="{url}"' in got.html
    assert f"Unsubscribe: {url}" in got.text
    assert f"Hello Reader {i}," in got.text
    assert "{{" not in got.html + got.text + got.subject
    assert got.subject == "The Example weekly #7: a headline with ünïcode"


def test_full_bulk_call_is_accepted_and_each_recipient_gets_its_own_unsubscribe_url(
    server: SESFake,
) -> None:
    results = make(server).send(recipients(50))
    assert [r.outcome for r in results] == [Outcome.SENT] * 50
    assert server.contract_violations == []
    assert server.internal_errors == []
    assert server.requests_by_path == {BULK: 1}
    assert server.duplicates() == {}
    for i in (0, 1, 25, 49):
        check_recipient(server, i)
    assert len({r.message_id for r in results}) == 50


def test_single_bulk_entry_is_accepted(server: SESFake) -> None:
    [result] = make(server).send([recipient(3)])
    assert result.outcome is Outcome.SENT
    assert server.contract_violations == []
    assert server.internal_errors == []


def test_send_email_per_recipient_when_bulk_is_off(server: SESFake) -> None:
    results = make(server, use_bulk=False).send(recipients(3))
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert server.contract_violations == []
    assert server.internal_errors == []
    assert server.requests_by_path == {"/v2/email/outbound-emails": 3}
    for i in range(3):
        check_recipient(server, i)


@pytest.mark.parametrize("use_bulk", [True, False])
def test_international_addresses_go_out_as_ses_documents_or_fail_alone(
    server: SESFake, use_bulk: bool
) -> None:
    # SES takes 7-bit ASCII only: an IDN domain goes out in Punycode; a non-ASCII local part
    # (SMTPUTF8) cannot be sent through SES at all, and fails alone instead of stopping the run
    batch = [
        recipient(0),
        dataclasses.replace(recipient(1, name="Jürgen «J» Müller"), email="user@bücher.example"),
        dataclasses.replace(recipient(2, name="José"), email="josé@example.com"),
        recipient(3, name='Tom "T" Ó'),
    ]
    results = make(server, use_bulk=use_bulk).send(batch)
    assert [r.outcome for r in results] == [
        Outcome.SENT,
        Outcome.SENT,
        Outcome.PERMANENT,
        Outcome.SENT,
    ]
    assert "ASCII" in (results[2].error or "")
    assert server.contract_violations == []
    assert server.internal_errors == []
    assert [d.to for d in server.deliveries("user@xn--bcher-kva.example")] == [
        "user@xn--bcher-kva.example"
    ]
    assert server.deliveries("josé@example.com") == []
    assert server.total_accepted == 3


def test_names_are_escaped_once_in_html_and_raw_in_text(server: SESFake) -> None:
    make(server).send([recipient(1, name='Tom & "Jerry" <b>')])
    [got] = server.deliveries("reader1@example.com")
    assert "Hello Tom &amp; &quot;Jerry&quot; &lt;b&gt;," in got.html
    assert 'Hello Tom & "Jerry" <b>,' in got.text


def test_literal_braces_in_the_issue_survive_the_template(server: SESFake) -> None:
    provider = make(server)
    braces = RenderedVariant("all", "<p>Use {{ name }} in Jinja</p>", "Use {{ name }} in Jinja")
    provider.open(content((braces,)))
    assert provider.send([recipient(1)])[0].outcome is Outcome.SENT
    [got] = server.deliveries("reader1@example.com")
    assert got.text == "Use {{ name }} in Jinja"
    assert server.contract_violations == []
    assert server.internal_errors == []


def test_each_variant_goes_out_in_its_own_call(server: SESFake) -> None:
    provider = make(server)
    provider.open(content((variant("all"), variant("without:patreon", " No CTA."))))
    results = provider.send([recipient(1), recipient(2, "without:patreon")])
    assert all(r.outcome is Outcome.SENT for r in results)
    assert server.requests == 2
    assert "No CTA." in server.deliveries("reader2@example.com")[0].text


def test_requests_are_signed_with_sigv4(server: SESFake) -> None:
    provider = make(server)
    provider.send([recipient(1)])
    # the fake recomputed the signature with botocore and the same secret: it matched
    assert server.total_accepted == 1
    assert server.requests_by_path == {BULK: 1}


# --- the validator itself catches broken requests -----------------------------------------


def _signed_post(
    server: SESFake, path: str, body: Any, content_type: str = "application/json"
) -> int:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    aws = AWSRequest("POST", server.url + path, data=data, headers={"Content-Type": content_type})
    SigV4Auth(Credentials(KEY_ID, SECRET), "ses", REGION).add_auth(aws)
    response = requests.post(server.url + path, data=data, headers=dict(aws.headers), timeout=10)
    return response.status_code


def _good() -> dict[str, Any]:
    return {
        "FromEmailAddress": "newsletter@news.example.org",
        "DefaultContent": {
            "Template": {
                "TemplateContent": {"Subject": "Hi", "Text": "Hello {{{name}}}"},
                "TemplateData": '{"name": ""}',
            }
        },
        "BulkEmailEntries": [{"Destination": {"ToAddresses": ["reader1@example.com"]}}],
    }


def _entries(n: int) -> list[dict[str, Any]]:
    return [{"Destination": {"ToAddresses": [f"r{i}@example.com"]}} for i in range(n)]


def _bad_header() -> dict[str, Any]:
    body = _good()
    body["BulkEmailEntries"][0]["ReplacementHeaders"] = [{"Name": "List-Unsubscribe", "Value": "ü"}]
    return body


def _no_data() -> dict[str, Any]:
    body = _good()
    del body["DefaultContent"]["Template"]["TemplateData"]
    return body


def _sixteen_headers() -> dict[str, Any]:
    body = _good()
    headers = [{"Name": f"X-H{i}", "Value": "v"} for i in range(16)]
    body["DefaultContent"]["Template"]["Headers"] = headers
    return body


def test_validator_accepts_a_hand_built_good_request(server: SESFake) -> None:
    assert _signed_post(server, BULK, _good()) == 200
    assert server.contract_violations == []
    assert server.internal_errors == []


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ({k: v for k, v in _good().items() if k != "DefaultContent"}, "DefaultContent"),
        ({**_good(), "BulkEmailEntries": [{}]}, "Destination"),
        ({**_good(), "BulkEmailEntries": _entries(51)}, "at most 50 per call"),
        ({**_good(), "FromEmailAddress": ["a@example.org"]}, "FromEmailAddress"),
        (_bad_header(), "does not match"),
        (_sixteen_headers(), "at most 15"),
        (_no_data(), "no data for ['name']"),
    ],
    ids=[
        "no-content",
        "no-destination",
        "51",
        "wrong-type",
        "non-ascii-header",
        "16-headers",
        "missing-variable",
    ],
)
def test_validator_rejects_broken_requests(server: SESFake, body: Any, expect: str) -> None:
    assert _signed_post(server, BULK, body) == 400
    [(_, problems)] = server.contract_violations
    assert expect in " ".join(problems)
    assert server.total_accepted == 0


def test_validator_rejects_wrong_content_type(server: SESFake) -> None:
    assert (
        _signed_post(server, BULK, b"Action=SendBulkEmail", "application/x-www-form-urlencoded")
        == 400
    )
    assert server.contract_violations


def test_render_is_handlebars_like() -> None:
    data = {"a": "<&>"}
    assert render("{{a}}|{{{a}}}|\\{{a}}", data) == "&lt;&amp;&gt;|<&>|{{a}}"


# --- failure modes ------------------------------------------------------------------------


def test_entry_statuses_map_per_recipient(server: SESFake) -> None:
    server.fail_recipient("reader1@example.com", "MESSAGE_REJECTED")
    server.fail_recipient("reader2@example.com", "TRANSIENT_FAILURE")
    server.fail_recipient("reader3@example.com", "ACCOUNT_THROTTLED")
    server.fail_recipient("reader4@example.com", "INVALID_PARAMETER")
    results = {r.email: r for r in make(server).send(recipients(6))}
    outcomes = {e: r.outcome for e, r in results.items()}
    assert outcomes == {
        "reader0@example.com": Outcome.SENT,
        "reader1@example.com": Outcome.PERMANENT,
        "reader2@example.com": Outcome.RETRY,
        "reader3@example.com": Outcome.RETRY,
        "reader4@example.com": Outcome.PERMANENT,
        "reader5@example.com": Outcome.SENT,
    }
    assert "MESSAGE_REJECTED" in (results["reader1@example.com"].error or "")
    assert server.total_accepted == 2


def test_throttling_exception_is_retried(server: SESFake) -> None:
    server.fail_next(
        1,
        400,
        headers={"x-amzn-ErrorType": "ThrottlingException:"},
        body={"message": "Rate exceeded"},
    )
    results = make(server).send(recipients(2))
    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert "ThrottlingException" in (results[0].error or "")


def test_too_many_requests_with_retry_after(server: SESFake) -> None:
    server.fail_next(
        1, 429, retry_after=4, headers={"x-amzn-ErrorType": "TooManyRequestsException"}
    )
    [result] = make(server).send([recipient(1)])
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 4.0)


def test_a_200_without_per_entry_results_is_uncertain(server: SESFake) -> None:
    server.fail_next(1, 200, body={})  # accepted, but no BulkEmailEntryResults to read
    results = make(server).send(recipients(3))
    assert {r.outcome for r in results} == {Outcome.UNCERTAIN}
    assert "without one result per entry" in (results[0].error or "")


def test_wrong_secret_stops_the_run_naming_the_env_vars(server: SESFake) -> None:
    with pytest.raises(ProviderAuthError) as err:
        make(server, secret="not-the-secret-at-all").send([recipient(1)])
    assert "AWS_SECRET_ACCESS_KEY" in err.value.message
    assert "signature" in err.value.message
    assert "not-the-secret-at-all" not in err.value.message


def test_suspended_account_stops_the_run(server: SESFake) -> None:
    server.fail_next(
        1,
        400,
        headers={"x-amzn-ErrorType": "AccountSuspendedException"},
        body={"message": "account suspended"},
    )
    with pytest.raises(ProviderAuthError, match="cannot send"):
        make(server).send(recipients(2))


def test_message_rejected_is_permanent(server: SESFake) -> None:
    server.fail_next(
        1,
        400,
        headers={"x-amzn-ErrorType": "MessageRejected"},
        body={"message": "Email address is not verified."},
    )
    results = make(server).send(recipients(2))
    assert {r.outcome for r in results} == {Outcome.PERMANENT}
    assert "not verified" in (results[0].error or "")


def test_session_token_is_used_when_set(server: SESFake) -> None:
    s = SESSettings(region=REGION, base_url=server.url)
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": "tok"}
    provider = SES.from_env(s, env)
    assert provider.secrets["session_token_env"] == "tok"
    assert provider.redact("x tok y") == "x ***** y"


def test_missing_env_var_is_named() -> None:
    with pytest.raises(ProviderConfigError, match="AWS_SECRET_ACCESS_KEY is not set"):
        SES.from_env(SESSettings(), {"AWS_ACCESS_KEY_ID": KEY_ID})


def test_regional_endpoint_and_batch_cap(tmp_path: Path) -> None:
    assert SESSettings(region="eu-central-1").endpoint == "https://email.eu-central-1.amazonaws.com"
    with pytest.raises(ConfigError, match="1 to 50"):
        config.build_settings(SESSettings, {"batch_size": 51}, "providers.ses", tmp_path)


def test_check_reads_the_account(server: SESFake) -> None:
    found = make(server).check()
    assert f"account in {REGION} can send" in found
    assert "200,000/24h" in found
    assert SECRET not in found and KEY_ID not in found


def test_paths_are_the_botocore_models() -> None:
    import botocore.session

    from pressroom.delivery.providers import ses

    model = botocore.session.get_session().get_service_model("sesv2")
    for operation, method, path in [
        ("SendBulkEmail", "POST", ses.BULK_PATH),
        ("SendEmail", "POST", ses.SINGLE_PATH),
        ("GetAccount", "GET", ses.ACCOUNT_PATH),
    ]:
        http = model.operation_model(operation).http
        assert (http["method"], http["requestUri"]) == (method, path)
    assert model.metadata["signingName"] == "ses"


@pytest.mark.parametrize("entry", ["SUCCESS", None, 7, ["SUCCESS"]])
def test_a_bulk_entry_result_that_is_not_an_object_is_uncertain_not_a_crash(
    server: SESFake, entry: object
) -> None:
    body = {"BulkEmailEntryResults": [{"Status": "SUCCESS", "MessageId": "m-1"}, entry]}
    server.fail_next(1, 200, body=body)
    results = make(server).send(recipients(2))
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.UNCERTAIN]


def test_a_per_message_200_without_a_message_id_is_uncertain_not_sent(server: SESFake) -> None:
    # a proxy, a captive portal or a base_url at a web site answers 200 itself: SES's
    # SendEmail always names the message, so nobody is marked sent (lost) on such an answer
    page = b"<!doctype html><html><body>Please log in to continue</body></html>"
    server.fail_next(1, 200, body=page, headers={"Content-Type": "text/html"})
    provider = make(server, use_bulk=False)
    [first, second] = provider.send(recipients(2))
    assert first.outcome is Outcome.UNCERTAIN
    assert "HTTP 200 without an SES MessageId" in (first.error or "")
    assert second.outcome is Outcome.SENT
