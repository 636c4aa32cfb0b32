"""A stop error after an accepted request never discards what was accepted (issue 13 §2).

Each HTTP adapter runs through the real send loop and ledger to its provider's fake on
127.0.0.1. The fake accepts the first request and refuses the next (401/403, or SES's
``SendingPausedException``/``AccountSuspendedException``): the run stops, the readers of the
accepted request are recorded as sent, and a resumed run mails everyone else: nobody twice,
nobody missing, from the fake's own record. Readers are patrons and non-patrons interleaved,
so the two audience variants share every stretch of the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pressroom.audience.tokens import Signer
from pressroom.delivery import ledger as L
from pressroom.delivery import message
from pressroom.delivery import send as send_mod
from pressroom.delivery.ledger import Ledger
from pressroom.delivery.providers.base import Provider
from tests.fakes.mailgun import MailgunFake
from tests.fakes.postmark import PostmarkFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import FakeProviderServer
from tests.fakes.ses import SESFake
from tests.send_helpers import NOW, make_config, rendered_issue

READERS = 12
BATCH = 4
ENV = {"K1": "key-1", "K2": "key-2"}


@dataclass(frozen=True)
class Case:
    fake: Callable[[], AbstractContextManager[Any]]
    settings: str  # providers.<name> lines (base_url is added)
    per_message: bool = False


SES_SETTINGS = (
    "ses:\n    region: eu-west-1\n    access_key_id_env: K1\n    secret_access_key_env: K2\n"
)
CASES = {
    "mailgun": Case(lambda: MailgunFake(api_key="key-1"), "mailgun:\n    domain: mg.example.org\n"),
    "sendgrid": Case(lambda: SendGridFake(api_key="key-1"), "sendgrid:\n    api_key_env: K1\n"),
    "postmark": Case(
        lambda: PostmarkFake(server_token="key-1"), "postmark:\n    server_token_env: K1\n"
    ),
    "ses-bulk": Case(
        lambda: SESFake(access_key_id="key-1", secret_access_key="key-2", region="eu-west-1"),
        SES_SETTINGS,
    ),
    "ses-single": Case(
        lambda: SESFake(access_key_id="key-1", secret_access_key="key-2", region="eu-west-1"),
        SES_SETTINGS + "    use_bulk: false\n",
        per_message=True,
    ),
}
SES_STOPS = {
    "SendingPausedException": (400, "Sending is paused for this account."),
    "AccountSuspendedException": (400, "The account is suspended."),
    "AccessDeniedException": (403, "not authorized to perform ses:SendBulkEmail"),
}


def refusals(name: str) -> list[str]:
    return list(SES_STOPS) if name.startswith("ses") else ["401", "403"]


@dataclass
class Publication:
    server: FakeProviderServer
    ledger: Ledger
    frozen: Any
    readers: list[str]
    run: Callable[[], send_mod.Summary]


@pytest.fixture
def publication(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Publication]:
    case = CASES[request.param]
    with case.fake() as server:
        name = case.settings.split(":")[0]
        key_env = "" if name != "mailgun" else "    api_key_env: K1\n"
        config = make_config(
            tmp_path,
            sending=f"provider: {name}\nrate: 0/s\nconcurrency: 1\n",
            extra=f"providers:\n  {case.settings}{key_env}    base_url: {server.url}\n",
        )
        rendered = rendered_issue(3)
        readers = [f"r{i:03d}@example.org" for i in range(READERS)]
        rows = [(e, f"R {i}", "all" if i % 2 else "without:patreon") for i, e in enumerate(readers)]
        with Ledger(config.state_db) as ledger:
            frozen = ledger.freeze(rendered, rows, window_end=NOW, now=NOW)
            factory = message.RecipientFactory(config, rendered, Signer(b"k"))

            def run() -> send_mod.Summary:
                provider: Provider = send_mod.make_provider(config, env=ENV)
                provider.open(message.content_for(config, rendered, provider=provider, now=NOW))
                options = send_mod.SendOptions.from_config(config, provider, batch_size=BATCH)
                try:
                    return send_mod.run(ledger, frozen, provider, factory, options)
                finally:
                    provider.close()

            yield Publication(server, ledger, frozen, readers, run)


def refuse(server: FakeProviderServer, how: str) -> None:
    if how in SES_STOPS:
        status, text = SES_STOPS[how]
        server.fail_next(1, status, headers={"x-amzn-ErrorType": f"{how}:"}, body={"message": text})
    else:
        server.fail_next(1, int(how))  # the provider's own error body for that status


def check_resume(p: Publication, accepted_first: int) -> None:
    """The stopped run kept what went out; a resumed run sends the rest, each once."""
    counts = p.ledger.counts(p.frozen.number)
    assert counts[L.SENT] == accepted_first == p.server.total_accepted
    assert counts[L.PENDING] == READERS - accepted_first
    assert counts[L.IN_FLIGHT] == counts[L.UNCERTAIN] == 0
    again = p.run()
    assert again.stopped is None and again.sent == READERS - accepted_first
    assert p.server.duplicates() == {}
    assert {e: p.server.accepted[e] for e in p.readers} == dict.fromkeys(p.readers, 1)
    assert p.server.contract_violations == [] and p.server.internal_errors == []


@pytest.mark.parametrize(
    ("publication", "how"),
    [(name, how) for name in sorted(CASES) for how in refusals(name)],
    indirect=["publication"],
)
def test_a_refusal_after_an_accepted_request_keeps_it_and_a_resume_sends_the_rest_once(
    publication: Publication, how: str
) -> None:
    p = publication
    p.server.serve_next(1)
    refuse(p.server, how)
    first = p.run()
    assert first.stopped and first.error is not None
    # one request per batch of one variant; SES single mode: one request per reader
    accepted = 1 if p.server.requests_by_path.get("/v2/email/outbound-emails") else BATCH
    assert first.sent == accepted and first.requests == 1
    check_resume(p, accepted)


SPLITS = {
    # a refusal that names no reader, which the adapter answers by sending halves
    "mailgun": (
        400,
        {"message": "'to' parameter is not a valid address. please check documentation"},
    ),
    "sendgrid": (413, None),
    "postmark": (413, None),
}


@pytest.mark.parametrize("publication", sorted(SPLITS), indirect=True)
def test_a_refusal_after_an_accepted_half_of_a_split_batch_keeps_that_half(
    publication: Publication,
) -> None:
    p = publication
    status, body = SPLITS[p.server.provider if p.server.provider in SPLITS else "mailgun"]
    p.server.fail_next(1, status, body=body)  # the batch: split in halves
    p.server.serve_next(1)  # the first half is accepted
    p.server.fail_next(1, 401)  # the second is refused: the key was revoked meanwhile
    first = p.run()
    assert first.stopped and first.sent == BATCH // 2
    check_resume(p, BATCH // 2)
