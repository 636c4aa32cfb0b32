"""Mailgun adapter against the contract-validating fake Mailgun on 127.0.0.1."""

from __future__ import annotations

import base64
import dataclasses
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pressroom import config
from pressroom.delivery.providers.base import Outcome
from pressroom.delivery.providers.mailgun import Mailgun, MailgunSettings
from pressroom.errors import ConfigError, ProviderAuthError, ProviderConfigError, ProviderError
from tests.fakes.mailgun import MailgunFake
from tests.fakes.sample import UNSUBSCRIBE, content, recipient, recipients, variant
from tests.fakes.server import Request, Response, unanswered_url

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
DOMAIN = "mg.news.example.org"


@pytest.fixture
def server(contracts_dir: Path) -> Iterator[MailgunFake]:
    with MailgunFake(domain=DOMAIN, api_key=KEY) as fake:
        yield fake


def make(server: MailgunFake, key: str = KEY, **settings: object) -> Mailgun:
    raw = {"domain": DOMAIN, "base_url": server.url, **settings}
    s = config.build_settings(MailgunSettings, raw, "providers.mailgun", Path("."))
    provider = Mailgun.from_env(s, {"MAILGUN_API_KEY": key})
    provider.open(content())
    return provider  # type: ignore[return-value]


def test_full_batch_is_accepted_and_each_recipient_gets_its_own_unsubscribe_url(
    server: MailgunFake,
) -> None:
    batch = recipients(1000)
    results = make(server).send(batch)
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
        assert f'href="{url}"' in got.html
        assert f"Unsubscribe: {url}" in got.text
        assert f"Hello Reader {i}," in got.text
        assert "%recipient" not in got.html + got.text + got.subject
        assert got.subject == "The Example weekly #7: a headline with ünïcode"
        assert got.tag == "issue-7"
    assert results[0].message_id and results[0].message_id.endswith(f"@{DOMAIN}>")


def test_single_message_is_accepted(server: MailgunFake) -> None:
    [result] = make(server).send([recipient(3)])
    assert result.outcome is Outcome.SENT
    assert server.contract_violations == []
    assert server.internal_errors == []
    [got] = server.deliveries("reader3@example.com")
    assert got.headers["List-Unsubscribe"].startswith(f"<{UNSUBSCRIBE}tok000003>")


def test_names_are_escaped_in_html_and_raw_in_text(server: MailgunFake) -> None:
    make(server).send([recipient(1, name='Tom & "Jerry" <b>'), recipient(2)])
    [got] = server.deliveries("reader1@example.com")
    assert "Hello Tom &amp; &quot;Jerry&quot; &lt;b&gt;," in got.html
    assert 'Hello Tom & "Jerry" <b>,' in got.text


def test_each_variant_goes_out_in_its_own_call(server: MailgunFake) -> None:
    provider = make(server)
    provider.open(content((variant("all"), variant("without:patreon", " No CTA."))))
    batch = [recipient(1), recipient(2, "without:patreon"), recipient(3)]
    results = provider.send(batch)
    assert [r.email for r in results] == [r.email for r in batch]
    assert all(r.outcome is Outcome.SENT for r in results)
    assert server.requests == 2
    assert "No CTA." in server.deliveries("reader2@example.com")[0].text
    assert "No CTA." not in server.deliveries("reader3@example.com")[0].text


# --- the validator itself catches broken requests -----------------------------------------


def _post(server: MailgunFake, fields: list[tuple[str, str]], **kw: object) -> requests.Response:
    return requests.post(
        f"{server.url}/v3/{DOMAIN}/messages",
        auth=("api", KEY),
        timeout=10,
        **kw,
        files=None if "data" in kw else [(k, (None, v)) for k, v in fields],
    )


GOOD = [
    ("from", "a@news.example.org"),
    ("to", "reader1@example.com"),
    ("subject", "Hi"),
    ("text", "Hello %recipient.name%"),
    ("recipient-variables", '{"reader1@example.com": {"name": "R"}}'),
]


def test_validator_accepts_a_hand_built_good_request(server: MailgunFake) -> None:
    assert _post(server, GOOD).status_code == 200
    assert server.contract_violations == []
    assert server.internal_errors == []


@pytest.mark.parametrize(
    ("fields", "expect"),
    [
        ([f for f in GOOD if f[0] != "subject"], "subject"),
        ([f for f in GOOD if f[0] != "text"], "at least one of"),
        ([*GOOD[:-1], ("recipient-variables", "{}")], "no entry for reader1@example.com"),
        ([*GOOD[:-1], ("recipient-variables", '{"reader1@example.com": {}}')], "%recipient.name%"),
        (
            [
                *GOOD[:-1],
                *[("to", f"r{i}@example.com") for i in range(1000)],
                ("recipient-variables", "{}"),
            ],
            "batch limit is 1,000",
        ),
        ([*GOOD, ("h:X-Big", "x" * 17000)], "16 KB"),
    ],
    ids=["no-subject", "no-body", "no-variables-entry", "undefined-variable", "1001-to", "options"],
)
def test_validator_rejects_broken_requests(
    server: MailgunFake, fields: list[tuple[str, str]], expect: str
) -> None:
    response = _post(server, fields)
    assert response.status_code == 400
    [(_, problems)] = server.contract_violations
    assert expect in " ".join(problems)
    assert server.total_accepted == 0


def test_validator_rejects_urlencoded_form(server: MailgunFake) -> None:
    response = _post(server, [], data=dict(GOOD))
    assert response.status_code == 400
    [(_, problems)] = server.contract_violations
    assert "multipart/form-data" in problems[0]


# --- failure modes ------------------------------------------------------------------------


def test_429_is_retried_after_the_servers_delay(server: MailgunFake) -> None:
    provider = make(server)
    server.fail_next(1, 429, retry_after=7)
    results = provider.send(recipients(3))
    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert {r.retry_after for r in results} == {7.0}
    assert server.total_accepted == 0
    assert all(r.outcome is Outcome.SENT for r in provider.send(recipients(3)))


def test_429_delay_from_mailguns_message(server: MailgunFake) -> None:
    body = {
        "message": "Domain is not allowed to send: account-requests-per-sec limit "
        "exceeded, try again after 120 seconds"
    }
    server.fail_next(1, 429, body=body)
    [result] = make(server).send([recipient(1)])
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 120.0)
    assert "try again after 120 seconds" in (result.error or "")


def test_connect_timeout_is_retried(server: MailgunFake) -> None:
    with unanswered_url() as url:
        results = make(server, base_url=url, timeout=0.3).send(recipients(2))
    assert {r.outcome for r in results} == {Outcome.RETRY}  # no connection: nothing went out
    assert "ConnectTimeout" in (results[0].error or "")


def test_rejected_key_stops_the_run_naming_the_env_var(server: MailgunFake) -> None:
    with pytest.raises(ProviderAuthError) as err:
        make(server, key="key-wrong-0123456789").send([recipient(1)])
    assert "MAILGUN_API_KEY" in err.value.message
    assert "key-wrong-0123456789" not in err.value.message


def test_invalid_address_fails_only_that_recipient(server: MailgunFake) -> None:
    server.fail_recipient("reader6@example.com", "invalid")
    batch = recipients(16)
    results = make(server).send(batch)
    failed = [r for r in results if r.outcome is not Outcome.SENT]
    assert [r.email for r in failed] == ["reader6@example.com"]
    assert failed[0].outcome is Outcome.PERMANENT
    assert "not a valid address" in (failed[0].error or "")
    assert server.total_accepted == 15
    assert server.duplicates() == {}


def test_other_400_fails_the_batch_with_mailguns_message(server: MailgunFake) -> None:
    server.fail_next(1, 400, body={"message": "from parameter is missing"})
    results = make(server).send(recipients(5))
    assert {r.outcome for r in results} == {Outcome.PERMANENT}
    assert results[0].error == "HTTP 400: from parameter is missing"
    assert server.requests == 1


def test_missing_env_var_is_named() -> None:
    s = MailgunSettings(domain=DOMAIN)
    with pytest.raises(ProviderConfigError, match="MAILGUN_API_KEY is not set"):
        Mailgun.from_env(s, {})


# --- settings and check --------------------------------------------------------------------


def test_regions_and_base_url() -> None:
    assert MailgunSettings(domain=DOMAIN).endpoint == "https://api.mailgun.net"
    assert MailgunSettings(domain=DOMAIN, region="eu").endpoint == "https://api.eu.mailgun.net"
    proxy = MailgunSettings(domain=DOMAIN, region="eu", base_url="http://proxy.local/")
    assert proxy.endpoint == "http://proxy.local"


def test_batch_size_is_capped_at_mailguns_limit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="1 to 1000"):
        config.build_settings(
            MailgunSettings, {"domain": DOMAIN, "batch_size": 1001}, "providers.mailgun", tmp_path
        )
    s = config.build_settings(
        MailgunSettings, {"domain": DOMAIN, "batch_size": 250}, "providers.mailgun", tmp_path
    )
    assert Mailgun(s).batch_limit == 250


def test_check_reports_the_domain(server: MailgunFake) -> None:
    found = make(server).check()
    assert f"domain {DOMAIN} is active" in found
    assert KEY not in found


def test_check_fails_for_an_unknown_domain(server: MailgunFake) -> None:
    s = MailgunSettings(domain="other.example.org", base_url=server.url)
    with pytest.raises(ProviderError, match=r'domain "other\.example\.org" not found'):
        Mailgun(s, secrets={"api_key_env": KEY}).check()


# --- the fake server itself (shared by every provider fake) --------------------------------


def test_fake_keeps_connections_alive_with_tcp_nodelay(server: MailgunFake) -> None:
    provider = make(server)
    for start in range(0, 30, 10):
        provider.send(recipients(10, start))
    assert server.requests == 3
    assert server.connections == 1  # one keep-alive connection for every call
    assert server.nodelay == [True]


def test_fake_stats_endpoint_is_not_counted(server: MailgunFake) -> None:
    make(server).send(recipients(4))
    stats = requests.get(f"{server.url}/__fake__/stats", timeout=5).json()
    assert stats["requests"] == 1 and stats["accepted"] == 4 and stats["duplicates"] == 0
    assert stats["max_payload_bytes"] == server.payload_bytes[0] > 0
    assert server.requests == 1


def test_fake_faults_can_target_a_path(server: MailgunFake) -> None:
    provider = make(server)
    server.fail_next(1, 503, path="/v3/")
    assert "is active" in provider.check()  # GET /v4/domains/… is not affected
    assert provider.send([recipient(1)])[0].outcome is Outcome.RETRY
    assert provider.send([recipient(1)])[0].outcome is Outcome.SENT


def test_fake_records_concurrent_senders_exactly(server: MailgunFake) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def send(start: int) -> None:
        make(server).send(recipients(50, start))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(0, 800, 50)))
    assert server.total_accepted == 800
    assert len(server.accepted) == 800
    assert server.duplicates() == {}
    assert server.contract_violations == [] and server.internal_errors == []


def test_fake_shows_a_recipient_accepted_twice(server: MailgunFake) -> None:
    provider = make(server)
    provider.send([recipient(1)])
    provider.send([recipient(1)])
    assert server.duplicates() == {"reader1@example.com": 2}
    assert len(server.deliveries("reader1@example.com")) == 2


def test_display_names_with_commas_and_non_ascii_stay_one_address_each(
    server: MailgunFake,
) -> None:
    batch = [recipient(1, name="Doe, Jane"), recipient(2, name="Zoë Ångström"), recipient(3)]
    results = make(server).send(batch)
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert server.contract_violations == []
    assert set(server.accepted) == {f"reader{i}@example.com" for i in (1, 2, 3)}
    assert "Hello Zoë Ångström," in server.deliveries("reader2@example.com")[0].text


def test_an_international_address_with_a_quoted_or_encoded_name_goes_out(
    server: MailgunFake,
) -> None:
    # formataddr refuses a non-ASCII address: one such reader stopped every run of the issue
    batch = [
        dataclasses.replace(recipient(1, name="José Ó"), email="josé@example.com"),
        dataclasses.replace(recipient(2, name="Doe, Jane"), email="jane@bücher.example"),
        recipient(3),
    ]
    results = make(server).send(batch)
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert server.contract_violations == []
    everyone = {"josé@example.com", "jane@bücher.example", "reader3@example.com"}
    assert set(server.accepted) == everyone


class EchoingMailgun(MailgunFake):
    """A Mailgun that refuses the key and echoes back how it got it (header, query, body)."""

    def route(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        key = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")[2]
        echo = (
            f"Forbidden: Authorization: {auth}; api_key={urllib.parse.quote_plus(key)}; "
            f"quoted={urllib.parse.quote(key)}; token={base64.b64encode(key.encode()).decode()}"
        )
        return Response(401, {"message": echo})


def test_a_key_echoed_back_encoded_is_blanked_in_every_form(contracts_dir: Path) -> None:
    key = "key-5b+/Zf=0123456789abcdef01234"  # characters that base64 and URL-encoding change
    forms = {
        key,
        base64.b64encode(f"api:{key}".encode()).decode(),
        base64.b64encode(key.encode()).decode(),
        urllib.parse.quote_plus(key),
        urllib.parse.quote(key),  # "/" kept
    }
    assert len(forms) == 5  # each form differs from the others
    with EchoingMailgun(domain=DOMAIN, api_key=key) as fake:
        with pytest.raises(ProviderAuthError) as sent:
            make(fake, key=key).send([recipient(1)])
        with pytest.raises(ProviderError) as checked:
            make(fake, key=key).check()
    for err in (sent.value, checked.value):
        assert "Authorization: Basic *****" in err.message  # the echo did come back
        assert "api_key=*****" in err.message and "token=*****" in err.message
        assert "quoted=*****" in err.message
        for form in forms:
            assert form not in err.message, form


@pytest.mark.parametrize(
    "body",
    [
        b"<!doctype html><html><body>Welcome to the hotel wifi: please log in</body></html>",
        b"",
        {"message": "Queued. Thank you."},  # JSON, but not Mailgun's answer: no id
    ],
)
def test_a_200_that_is_not_mailguns_answer_is_uncertain_not_sent(
    server: MailgunFake, body: object
) -> None:
    # a proxy, a captive portal or a base_url pointing at a web site answers 200 itself:
    # nobody can tell whether Mailgun got the request, so nobody is marked sent (lost)
    server.fail_next(1, 200, body=body, headers={"Content-Type": "text/html"})
    results = make(server).send(recipients(3))
    assert {r.outcome for r in results} == {Outcome.UNCERTAIN}
    assert "HTTP 200 without a Mailgun message id" in (results[0].error or "")
    assert all(r.outcome is Outcome.SENT for r in make(server).send(recipients(3)))


@pytest.mark.parametrize(
    "body", [b"<!doctype html><html><body>It works!</body></html>", {"domain": "mg.example.org"}]
)
def test_check_fails_on_a_200_that_is_not_mailguns_domain_record(
    server: MailgunFake, body: object
) -> None:
    # a base_url at a web site (or a proxy) answers 200: `providers check` must not pass
    server.fail_next(1, 200, body=body, headers={"Content-Type": "text/html"})
    with pytest.raises(ProviderError) as err:
        make(server).check()
    assert "not the Mailgun API" in err.value.message
    assert "providers.mailgun.base_url" in err.value.message
