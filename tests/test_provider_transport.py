"""Transport failures, the same for every HTTP adapter: what may have gone out decides.

A refused connection or a 5xx answer is retried (nothing was accepted); an answer slower
than the timeout, or a connection dropped after the request went out, is UNCERTAIN, because
the provider may have the batch (the fakes show it accepting after the client gave up).
Each case runs against the provider's own fake server on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest

from pressroom.delivery.providers.base import Outcome, Provider
from pressroom.errors import ProviderConfigError
from tests import test_provider_mailgun as mailgun
from tests import test_provider_postmark as postmark
from tests import test_provider_sendgrid as sendgrid
from tests import test_provider_ses as ses
from tests.fakes.mailgun import MailgunFake
from tests.fakes.postmark import PostmarkFake
from tests.fakes.sample import recipient, recipients
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import FakeProviderServer, refusing_url, wait_until
from tests.fakes.ses import SESFake


@dataclass(frozen=True)
class Case:
    fake: Callable[[], AbstractContextManager[Any]]
    make: Callable[..., Provider]
    settings: dict[str, Any]
    per_message: bool = False  # one request per recipient: a fault hits one recipient


CASES = {
    "mailgun": Case(
        lambda: MailgunFake(domain=mailgun.DOMAIN, api_key=mailgun.KEY), mailgun.make, {}
    ),
    "sendgrid": Case(lambda: SendGridFake(api_key=sendgrid.KEY), sendgrid.make, {}),
    "postmark": Case(lambda: PostmarkFake(server_token=postmark.TOKEN), postmark.make, {}),
    "ses-bulk": Case(
        lambda: SESFake(access_key_id=ses.KEY_ID, secret_access_key=ses.SECRET, region=ses.REGION),
        ses.make,
        {"use_bulk": True},
    ),
    "ses-single": Case(
        lambda: SESFake(access_key_id=ses.KEY_ID, secret_access_key=ses.SECRET, region=ses.REGION),
        ses.make,
        {"use_bulk": False},
        per_message=True,
    ),
}


CASES_BY_SERVER = {
    MailgunFake: CASES["mailgun"],
    SendGridFake: CASES["sendgrid"],
    PostmarkFake: CASES["postmark"],
    SESFake: CASES["ses-bulk"],
}

Setup = tuple[FakeProviderServer, Callable[..., Provider], list[Any]]


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Iterator[Setup]:
    """The fake server, a factory for the adapter, and a batch that one request carries."""
    c = CASES[request.param]
    batch = [recipient(1)] if c.per_message else recipients(2)
    with c.fake() as server:
        yield server, lambda **settings: c.make(server, **{**c.settings, **settings}), batch


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(case: Setup, status: int) -> None:
    server, make, batch = case
    server.fail_next(1, status)
    results = make().send(batch)
    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert str(status) in (results[0].error or "")


def test_slow_answer_within_the_timeout_is_a_success(case: Setup) -> None:
    server, make, _ = case
    server.slow_next(1, 0.2)
    assert make(timeout=5).send([recipient(1)])[0].outcome is Outcome.SENT


def test_answer_slower_than_the_timeout_is_uncertain(case: Setup) -> None:
    server, make, _ = case
    server.slow_next(1, 1.0)
    [result] = make(timeout=0.2).send([recipient(1)])
    assert result.outcome is Outcome.UNCERTAIN
    assert "ReadTimeout" in (result.error or "")
    # the provider goes on and accepts it after we gave up: resending would mail it twice
    assert wait_until(lambda: server.total_accepted == 1)


# SendGrid answers a send with 202 and no body: nothing to trickle
@pytest.mark.parametrize("name", ["mailgun", "postmark", "ses-bulk", "ses-single"])
def test_an_answer_trickled_past_the_timeout_is_uncertain_not_a_hang(name: str) -> None:
    # each byte comes within the read timeout, the whole answer never does: the run waited
    # for as long as the server cared to drip (the read timeout applies to each read)
    c = CASES[name]
    with c.fake() as server:
        server.drip_next(1, 0.05)
        started = time.monotonic()
        [result] = c.make(server, **c.settings, timeout=0.5).send([recipient(1)])
        assert time.monotonic() - started < 3
        assert result.outcome is Outcome.UNCERTAIN
        assert "no full answer in 0.5 s" in (result.error or "")
        assert server.total_accepted == 1  # the provider has it: a resend would mail it twice


@pytest.mark.parametrize("after_processing", [False, True])
def test_connection_dropped_after_the_request_is_uncertain(
    case: Setup, after_processing: bool
) -> None:
    server, make, batch = case
    server.drop_next(1, after_processing=after_processing)
    results = make().send(batch)
    assert {r.outcome for r in results} == {Outcome.UNCERTAIN}
    assert "RemoteDisconnected" in (results[0].error or "")
    # the client cannot tell these two apart; in one of them the provider has the batch
    assert server.total_accepted == (len(batch) if after_processing else 0)


def test_refused_connection_is_retried(case: Setup) -> None:
    server, make, batch = case
    with refusing_url() as url:
        results = make(base_url=url).send(batch)
    assert {r.outcome for r in results} == {Outcome.RETRY}  # nothing can have gone out
    assert "Connection refused" in (results[0].error or "")
    assert server.requests == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "\u00b2"},  # a Latin-1 digit that str.isdigit() takes and float() refuses
        {"Retry-After": "\u00b9\u00b2"},
        {"X-RateLimit-Reset": "nan"},
        {"X-RateLimit-Reset": "inf"},
        {"X-RateLimit-Reset": "-5"},
    ],
)
def test_a_429_with_a_garbled_wait_is_retried_not_uncertain(
    case: Setup, headers: dict[str, str]
) -> None:
    # a refused request is a refused request, whatever it says about when to come back: its
    # readers must not become uncertain (held from every later run) over a header's spelling
    server, make, batch = case
    server.fail_next(1, 429, headers=headers)
    results = make().send(batch)
    assert {r.outcome for r in results} == {Outcome.RETRY}
    for r in results:
        assert r.retry_after is None or 0 <= r.retry_after < float("inf")
    assert server.total_accepted == 0


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_and_stops_the_run_naming_base_url(
    case: Setup, status: int
) -> None:
    # following it would hand the batch (and a key sent in a header of its own, Postmark's)
    # to another host, or turn the POST into a GET whose 200 reads as "accepted"
    server, make, batch = case
    with CASES_BY_SERVER[type(server)].fake() as elsewhere:
        server.fail_next(1, status, headers={"Location": f"{elsewhere.url}/v3/mail/send"})
        with pytest.raises(ProviderConfigError, match="base_url") as raised:
            make().send(batch)
        assert elsewhere.requests == 0
    assert str(status) in raised.value.message
    assert server.total_accepted == 0


@pytest.mark.parametrize("status", [201, 204, 206])
def test_an_undocumented_success_status_is_uncertain(case: Setup, status: int) -> None:
    # a 2xx the provider does not document for a send may still mean "accepted": neither a
    # failure (a --resend-failed would mail them twice) nor a success (nobody checks it)
    server, make, batch = case
    server.fail_next(1, status, body=b"")
    results = make().send(batch)
    assert {r.outcome for r in results} == {Outcome.UNCERTAIN}
    assert str(status) in (results[0].error or "")
