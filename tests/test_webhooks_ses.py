"""POST /hooks/ses: SNS messages signed (v1 and v2) with a certificate made by the test.

The certificate is served over TLS by a server on 127.0.0.1 that plays
``sns.us-east-1.amazonaws.com``: the test's HTTP session routes that one host name there and
trusts only the test CA. The production rule (https, ``sns.<region>.amazonaws.com``) is not
touched, and every URL the session was asked for is recorded, so a forged certificate URL is
shown never to be fetched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pressroom.delivery.sns import trusted_url
from tests.hooks_helpers import (
    SNS_HOST,
    TOPIC,
    SNSHost,
    client,
    receiver,
    sns_host,
    sns_session,
)
from tests.send_helpers import make_config

BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "gone@example.org",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2026-11-25T08:58:00.000Z",
        "feedbackId": "0100017c-b bounce-feedback",
    },
    "mail": {
        "timestamp": "2026-11-25T08:57:00.000Z",
        "messageId": "0100017c-message",
        "source": "newsletter@theduran.example",
        "destination": ["gone@example.org"],
        "tags": {"pressroom_issue": ["7"]},
    },
}
COMPLAINT = {
    "notificationType": "Complaint",
    "complaint": {
        "complainedRecipients": [{"emailAddress": "angry@example.org"}],
        "timestamp": "2026-11-25T08:59:00.000Z",
        "feedbackId": "0100017c-complaint",
        "complaintFeedbackType": "abuse",
    },
    "mail": {"messageId": "0100017c-message-2", "timestamp": "2026-11-25T08:57:00.000Z"},
}


def notification(inner: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    msg = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": json.dumps(inner),
        "Timestamp": "2026-11-25T08:59:30.000Z",
        "UnsubscribeURL": f"https://{SNS_HOST}/?Action=Unsubscribe&SubscriptionArn=x",
    }
    if subject is not None:
        msg["Subject"] = subject
    return msg


@pytest.fixture
def host(tmp_path: Path) -> Iterator[SNSHost]:
    with sns_host(tmp_path) as h:
        yield h


def post(c: Any, msg: dict[str, Any]) -> Any:
    return c.post(
        "/hooks/ses",
        data=json.dumps(msg),
        headers={"x-amz-sns-message-type": str(msg.get("Type")), "Content-Type": "text/plain"},
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_signed_bounce_and_complaint_are_read(tmp_path: Path, host: SNSHost, version: str) -> None:
    session, attempts = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    c = client(hooks)
    r1 = post(c, host.sign(notification(BOUNCE), version))
    assert r1.status_code == 200, r1.text
    r2 = post(c, host.sign(notification(COMPLAINT, subject="Amazon SES Email Event"), version))
    assert r2.status_code == 200, r2.text
    assert [(e.kind, e.address, e.issue) for e in rec.events] == [
        ("hard_bounce", "gone@example.org", 7),
        ("complaint", "angry@example.org", None),
    ]
    assert rec.events[0].reason == "smtp; 550 5.1.1 user unknown"
    assert rec.suppressed() == {"gone@example.org": "bounced", "angry@example.org": "complained"}
    # the certificate was fetched once and then served from the cache
    assert attempts == [host.cert_url]
    assert host.hits == [host.cert_path]


def test_tampered_message_is_refused(tmp_path: Path, host: SNSHost) -> None:
    session, _ = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    c = client(hooks)
    signed = host.sign(notification(BOUNCE))
    other = json.loads(signed["Message"])
    other["bounce"]["bouncedRecipients"][0]["emailAddress"] = "victim@example.org"
    assert post(c, {**signed, "Message": json.dumps(other)}).status_code == 403
    assert post(c, {**signed, "SignatureVersion": "1"}).status_code == 403
    assert post(c, {**signed, "SignatureVersion": "3"}).status_code == 403
    assert post(c, {**signed, "Signature": "not base64!"}).status_code == 403
    assert rec.calls == []
    assert rec.suppressed() == {}


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com.evil.test/SimpleNotificationService-test.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://evil.test/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com@evil.test/SimpleNotificationService-test.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://s3.amazonaws.com/sns/cert.pem",
        "https://xsns.us-east-1.amazonaws.com/cert.pem",
    ],
)
def test_forged_certificate_url_is_never_fetched(tmp_path: Path, host: SNSHost, url: str) -> None:
    session, attempts = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    signed = host.sign(notification(BOUNCE))
    response = post(client(hooks), {**signed, "SigningCertURL": url})
    assert response.status_code == 403
    assert attempts == [] and host.hits == []
    assert rec.calls == []
    assert not trusted_url(url)


def test_the_rule_accepts_every_region() -> None:
    assert trusted_url("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem")
    assert trusted_url("https://sns.ap-southeast-2.amazonaws.com:443/x.pem")


def test_a_host_with_an_untrusted_tls_certificate_is_not_believed(
    tmp_path: Path, host: SNSHost
) -> None:
    """TLS is verified: the right host name with a certificate from an unknown CA gives no
    certificate (503, so SNS retries) and nothing is applied."""
    session, attempts = sns_session(host, trust=False)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    assert post(client(hooks), host.sign(notification(BOUNCE))).status_code == 503
    assert attempts == [host.cert_url]
    assert host.hits == []  # the handshake failed before any request
    assert rec.calls == []


def test_subscription_confirmation(tmp_path: Path, host: SNSHost) -> None:
    session, attempts = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    c = client(hooks)
    subscribe = f"https://{SNS_HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f"
    msg = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic. To confirm, visit SubscribeURL.",
        "SubscribeURL": subscribe,
        "Timestamp": "2026-11-25T08:00:00.000Z",
    }
    response = post(c, host.sign(msg))
    assert response.status_code == 200, response.text
    assert response.json["note"] == f"subscribed to {TOPIC}"
    assert attempts == [host.cert_url, subscribe]
    # a SubscribeURL elsewhere, even correctly signed, is not visited
    attempts.clear()
    evil = {**msg, "SubscribeURL": "https://evil.test/?Action=ConfirmSubscription"}
    assert post(c, host.sign(evil)).status_code == 403
    assert attempts == []
    assert rec.calls == []


def test_other_topic_is_refused(tmp_path: Path, host: SNSHost) -> None:
    session, _ = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    msg = {**notification(BOUNCE), "TopicArn": "arn:aws:sns:us-east-1:999999999999:other"}
    assert post(client(hooks), host.sign(msg)).status_code == 403
    assert rec.calls == []


def test_without_a_topic_nothing_is_believed_or_confirmed(
    tmp_path: Path, host: SNSHost, capsys: pytest.CaptureFixture[str]
) -> None:
    # SNS signs every account's topics alike: a notification of anyone's own topic, signed
    # by SNS, would otherwise suppress any address here, and a subscription of it be confirmed
    root = tmp_path / "pub"
    make_config(
        root,
        sending="provider: ses\n",
        extra="providers:\n  ses:\n    region: us-east-1\n",
    )
    session, attempts = sns_session(host)
    hooks, rec = receiver(root, {}, session=session)
    c = client(hooks)
    other = "arn:aws:sns:us-east-1:999999999999:someone-else"
    r = post(c, host.sign({**notification(BOUNCE), "TopicArn": other}))
    assert r.status_code == 503
    subscribe = f"https://{SNS_HOST}/?Action=ConfirmSubscription&TopicArn={other}&Token=1"
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1c",
        "Token": "1",
        "TopicArn": other,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": subscribe,
        "Timestamp": "2026-11-25T08:00:00.000Z",
    }
    assert post(c, host.sign(confirmation)).status_code == 503
    assert subscribe not in attempts
    assert rec.calls == []
    assert rec.suppressed() == {}
    err = capsys.readouterr().err
    assert "providers.ses.sns_topic_arn is not set" in err and other in err


def test_malformed_is_400(tmp_path: Path, host: SNSHost) -> None:
    session, _ = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    c = client(hooks)
    assert c.post("/hooks/ses", data=b"<xml/>").status_code == 400
    signed = host.sign({**notification(BOUNCE), "Message": "not json"})
    assert post(c, signed).status_code == 400
    assert rec.calls == []


@pytest.mark.parametrize("recipients", [1, True, 2.5, "gone@example.org", {"a": 1}])
def test_recipients_that_are_not_an_array_are_400_not_500(
    tmp_path: Path, host: SNSHost, recipients: object
) -> None:
    session, _ = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    c = client(hooks)
    bounce = json.loads(json.dumps(BOUNCE))
    bounce["bounce"]["bouncedRecipients"] = recipients
    complaint = json.loads(json.dumps(COMPLAINT))
    complaint["complaint"]["complainedRecipients"] = recipients
    delivery = {
        "eventType": "Delivery",
        "mail": {"messageId": "0100017c-message-3"},
        "delivery": {"timestamp": "2026-11-25T08:58:00.000Z", "recipients": recipients},
    }
    for inner in (bounce, complaint, delivery):
        r = post(c, host.sign(notification(inner)))
        assert r.status_code == 400, r.text
    assert rec.calls == []
    assert rec.suppressed() == {}


def test_a_lone_surrogate_escape_is_400_not_500(tmp_path: Path, host: SNSHost) -> None:
    session, attempts = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    msg = json.dumps(host.sign(notification(BOUNCE))).replace(TOPIC, "\\ud800")
    assert post_raw(client(hooks), msg).status_code == 400
    assert rec.calls == [] and attempts == []


def post_raw(c: Any, data: str) -> Any:
    return c.post("/hooks/ses", data=data, headers={"Content-Type": "text/plain"})


def test_redelivery_hands_the_same_keys(tmp_path: Path, host: SNSHost) -> None:
    session, _ = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    c = client(hooks)
    signed = host.sign(notification(BOUNCE))
    assert post(c, signed).json["new"] == 1
    assert post(c, signed).json["new"] == 0
    assert [e.key for e in rec.calls[0]] == [e.key for e in rec.calls[1]]


def test_an_event_without_issue_counts_for_the_last_issue_sent_to_it(
    tmp_path: Path, host: SNSHost
) -> None:
    """SES notifications name no pressroom issue: the ledger says which one it was."""
    from datetime import UTC, datetime

    from pressroom.delivery import ledger as L
    from pressroom.delivery.ledger import Ledger, Update
    from tests.send_helpers import rendered_issue

    session, _ = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    assert rec.calls == []
    sent_at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    with Ledger(hooks.config.state_db) as ledger:
        frozen = ledger.freeze(
            rendered_issue(4), [("gone@example.org", "G", "all")], window_end=sent_at, now=sent_at
        )
        [row] = ledger.pending(frozen.number, 0, 10)
        ledger.record([Update(row.id, L.SENT)], now=sent_at.timestamp())
    untagged = {**BOUNCE, "mail": {**BOUNCE["mail"], "tags": {}}}
    assert post(client(hooks), host.sign(notification(untagged))).status_code == 200
    from pressroom.audience import events

    assert events.counts_by_issue(hooks.config)[4]["hard_bounce"] == 1


def test_a_message_of_another_topic_fetches_nothing(tmp_path: Path, host: SNSHost) -> None:
    # unauthenticated: a message naming another topic, with a certificate URL on the trusted
    # host but a path of its own, made the server fetch that URL (a thread held for up to
    # the timeout, an outbound request per post) before the topic was even looked at
    session, attempts = sns_session(host)
    hooks, rec = receiver(tmp_path / "pub", {}, session=session)
    c = client(hooks)
    other = "arn:aws:sns:us-east-1:999999999999:other"
    for i in range(5):
        forged = {
            **notification(BOUNCE),
            "TopicArn": other,
            "SignatureVersion": "1",
            "Signature": "AAAA",
            "SigningCertURL": f"https://{SNS_HOST}/SimpleNotificationService-{i}.pem",
        }
        assert post(c, forged).status_code == 403
    assert attempts == [] and host.hits == []
    assert rec.calls == []
    # our own topic is still verified (and its certificate fetched) as before
    assert post(c, host.sign(notification(BOUNCE))).status_code == 200
    assert attempts == [host.cert_url]
