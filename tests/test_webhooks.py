"""POST /hooks/mailgun|sendgrid|postmark: each provider's proof checked before anything else.

Payloads are signed here with keys made by the test (an HMAC key, an ECDSA P-256 pair, Basic
credentials), sent through the Werkzeug app in-process; the SNS (SES) side, with its HTTPS
certificate host, is in test_webhooks_ses.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from tests.hooks_helpers import (
    MAILGUN_KEY,
    NOW,
    POSTMARK_CREDS,
    Recorder,
    client,
    ec_keys,
    mailgun_body,
    receiver,
    sendgrid_headers,
)

FAILED = {
    "event": "failed",
    "severity": "permanent",
    "id": "G9Bn5sl1TC6nu79C8C0bwg",
    "timestamp": NOW.timestamp() - 60,
    "recipient": "gone@example.org",
    "reason": "bounce",
    "delivery-status": {"code": 550, "description": "No such mailbox", "message": "5.1.1"},
    "user-variables": {"pressroom_issue": "7", "pressroom_recipient": "gone@example.org"},
    "message": {"headers": {"message-id": "20261125.1@mg.example.org"}},
}


def mailgun_env() -> dict[str, str]:
    return {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


# --- Mailgun ------------------------------------------------------------------------------


def test_mailgun_valid_signature_hands_the_event_over(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, mailgun_env())
    response = client(hooks).post("/hooks/mailgun", data=mailgun_body(FAILED))
    assert response.status_code == 200, response.text
    assert response.json == {"events": 1, "new": 1, "duplicates": 0, "suppressed": 1}
    assert rec.suppressed() == {"gone@example.org": "bounced"}
    [event] = rec.events
    assert (event.provider, event.kind, event.address) == (
        "mailgun",
        "hard_bounce",
        "gone@example.org",
    )
    assert (event.id, event.issue, event.reason) == (
        "G9Bn5sl1TC6nu79C8C0bwg",
        7,
        "No such mailbox",
    )
    assert event.message_id == "20261125.1@mg.example.org"


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({**FAILED, "severity": "temporary"}, "soft_bounce"),
        ({**FAILED, "event": "complained"}, "complaint"),
        ({**FAILED, "event": "unsubscribed"}, "unsubscribe"),
        ({**FAILED, "event": "delivered"}, "delivered"),
    ],
)
def test_mailgun_event_kinds(tmp_path: Path, event: dict[str, object], kind: str) -> None:
    hooks, rec = receiver(tmp_path, mailgun_env())
    assert client(hooks).post("/hooks/mailgun", data=mailgun_body(event)).status_code == 200
    assert [e.kind for e in rec.events] == [kind]


def test_mailgun_opened_is_acknowledged_and_ignored(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, mailgun_env())
    response = client(hooks).post(
        "/hooks/mailgun", data=mailgun_body({**FAILED, "event": "opened"})
    )
    assert response.status_code == 200
    assert response.json["ignored"] == ["opened"]
    assert rec.events == []


def test_mailgun_tampered_event_or_wrong_key_is_refused_unread(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, mailgun_env())
    c = client(hooks)
    wrong_key = mailgun_body(FAILED, key="another-key")
    assert c.post("/hooks/mailgun", data=wrong_key).status_code == 403
    # a genuine signature with a changed timestamp: the HMAC no longer matches
    data = json.loads(mailgun_body(FAILED))
    data["signature"]["timestamp"] = str(int(data["signature"]["timestamp"]) + 1)
    assert c.post("/hooks/mailgun", data=json.dumps(data)).status_code == 403
    assert rec.calls == []
    assert rec.suppressed() == {}


def test_mailgun_stale_timestamp_is_refused(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, mailgun_env())
    old = mailgun_body(FAILED, ts=int(NOW.timestamp()) - 3600)
    response = client(hooks).post("/hooks/mailgun", data=old)
    assert response.status_code == 403
    assert rec.calls == []


@pytest.mark.parametrize("timestamp", ["nan", "NaN", "inf", "-inf", "1e400"])
def test_mailgun_timestamp_that_is_no_time_is_refused(tmp_path: Path, timestamp: str) -> None:
    # signed with the real key, so only the freshness check stands between it and a replay
    hooks, rec = receiver(tmp_path, mailgun_env())
    token = "n" * 50
    signature = hmac.new(
        MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    body = json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": FAILED,
        }
    )
    assert client(hooks).post("/hooks/mailgun", data=body).status_code == 403
    assert rec.calls == []


def test_mailgun_replayed_token(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, mailgun_env())
    c = client(hooks)
    body = mailgun_body(FAILED, token="a" * 50)
    assert c.post("/hooks/mailgun", data=body).status_code == 200
    # Mailgun redelivering the same request: acknowledged, nothing applied again
    again = c.post("/hooks/mailgun", data=body)
    assert again.status_code == 200 and again.json["duplicate"] is True
    # the captured signature reused with other event-data (the HMAC covers only timestamp +
    # token): refused
    forged = json.loads(body)
    forged["event-data"] = {**FAILED, "id": "other", "recipient": "victim@example.org"}
    assert c.post("/hooks/mailgun", data=json.dumps(forged)).status_code == 403
    assert [e.address for e in rec.events] == ["gone@example.org"]
    assert rec.suppressed() == {"gone@example.org": "bounced"}
    # the tokens survive a restart of the server: they are in the state database
    hooks2, rec2 = receiver(tmp_path, mailgun_env())
    assert client(hooks2).post("/hooks/mailgun", data=json.dumps(forged)).status_code == 403
    assert rec2.calls == []


def test_mailgun_malformed_body_is_400(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, mailgun_env())
    c = client(hooks)
    assert c.post("/hooks/mailgun", data=b"not json").status_code == 400
    no_recipient = {k: v for k, v in FAILED.items() if k != "recipient"}
    assert c.post("/hooks/mailgun", data=mailgun_body(no_recipient)).status_code == 400
    assert rec.calls == []


@pytest.mark.parametrize("name", [[], {}, ["failed"], {"a": 1}])
def test_a_signed_event_whose_type_is_a_list_or_object_is_400_not_500(
    tmp_path: Path, name: object
) -> None:
    private, public = ec_keys()
    hooks, rec = receiver(tmp_path, {**mailgun_env(), "SENDGRID_WEBHOOK_PUBLIC_KEY": public})
    c = client(hooks)
    r = c.post("/hooks/mailgun", data=mailgun_body({**FAILED, "event": name}))
    assert r.status_code == 400, r.text
    body = json.dumps([{**SG_EVENTS[0], "event": name}]).encode()
    headers = sendgrid_headers(private, body, str(int(NOW.timestamp())))
    r = c.post("/hooks/sendgrid", data=body, headers=headers)
    assert r.status_code == 400, r.text
    assert rec.calls == []
    assert rec.suppressed() == {}


@pytest.mark.parametrize("signature", ["é", "\u0661" * 64, "\x00"])
def test_mailgun_a_signature_with_non_ascii_characters_is_403_not_500(
    tmp_path: Path, signature: str
) -> None:
    hooks, rec = receiver(tmp_path, mailgun_env())
    body = json.loads(mailgun_body(FAILED))
    body["signature"]["signature"] = signature
    r = client(hooks).post("/hooks/mailgun", data=json.dumps(body))
    assert r.status_code == 403, r.text
    assert rec.calls == []


def test_a_lone_surrogate_escape_is_400_not_500(tmp_path: Path) -> None:
    # "\\ud800" is valid JSON but no text: it parsed, then failed wherever it was encoded
    private, public = ec_keys()
    env = {
        **mailgun_env(),
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public,
        "POSTMARK_WEBHOOK_CREDENTIALS": ":".join(POSTMARK_CREDS),
    }
    hooks, rec = receiver(tmp_path, env)
    c = client(hooks)
    unsigned = b'{"signature": {"timestamp": "1", "token": "\\ud800", "signature": "x"}}'
    assert c.post("/hooks/mailgun", data=unsigned).status_code == 400
    body = json.dumps([{**SG_EVENTS[0], "email": "x"}]).replace('"x"', '"\\udc80@example.org"')
    headers = sendgrid_headers(private, body.encode(), str(int(NOW.timestamp())))
    assert c.post("/hooks/sendgrid", data=body, headers=headers).status_code == 400
    record = json.dumps({**PM_BOUNCE, "Email": "x"}).replace('"x"', '"gone\\ud800@example.org"')
    r = c.post("/hooks/postmark", data=record, headers=basic(*POSTMARK_CREDS))
    assert r.status_code == 400
    # a surrogate pair (an emoji written as escapes) is text, and still read
    fine = json.dumps({**PM_BOUNCE, "Description": "x"}).replace('"x"', '"\\ud83d\\ude00"')
    assert c.post("/hooks/postmark", data=fine, headers=basic(*POSTMARK_CREDS)).status_code == 200
    assert [e.address for e in rec.events] == ["gone@example.org"]


def test_missing_secret_env_is_503_and_names_nothing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks, rec = receiver(tmp_path, {})
    response = client(hooks).post("/hooks/mailgun", data=mailgun_body(FAILED))
    assert response.status_code == 503
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in capsys.readouterr().err
    assert rec.calls == []


def test_unknown_provider_and_get(tmp_path: Path) -> None:
    hooks, _ = receiver(tmp_path, mailgun_env())
    c = client(hooks)
    assert c.post("/hooks/smtp", data=b"{}").status_code == 404
    assert c.post("/hooks/nosuch", data=b"{}").status_code == 404
    assert c.get("/hooks/mailgun").status_code == 405


# --- SendGrid -----------------------------------------------------------------------------

SG_EVENTS = [
    {
        "email": "gone@example.org",
        "timestamp": int(NOW.timestamp()) - 30,
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "sg_event_id": "ZGVsaXZlcmVkLTAtMjQ0NDQ",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "pressroom_issue": "7",
    },
    {
        "email": "angry@example.org",
        "timestamp": int(NOW.timestamp()) - 20,
        "event": "spamreport",
        "sg_event_id": "c3BhbXJlcG9ydC0wLTI0NA",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.1",
    },
    {
        "email": "late@example.org",
        "timestamp": int(NOW.timestamp()) - 10,
        "event": "bounce",
        "type": "blocked",
        "sg_event_id": "YmxvY2tlZC0wLTI0NA",
    },
    {"email": "x@example.org", "timestamp": 1, "event": "open", "sg_event_id": "b3Blbi0w"},
]


def test_sendgrid_signed_batch(tmp_path: Path) -> None:
    private, public = ec_keys()
    hooks, rec = receiver(tmp_path, {"SENDGRID_WEBHOOK_PUBLIC_KEY": public})
    body = json.dumps(SG_EVENTS).encode()
    headers = sendgrid_headers(private, body, str(int(NOW.timestamp())))
    response = client(hooks).post("/hooks/sendgrid", data=body, headers=headers)
    assert response.status_code == 200, response.text
    assert [(e.kind, e.address) for e in rec.events] == [
        ("hard_bounce", "gone@example.org"),
        ("complaint", "angry@example.org"),
        ("soft_bounce", "late@example.org"),
    ]
    assert rec.events[0].issue == 7
    assert response.json["ignored"] == ["open"]
    assert rec.suppressed() == {"gone@example.org": "bounced", "angry@example.org": "complained"}


def test_sendgrid_pem_key_works_too(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    private, _ = ec_keys()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hooks, rec = receiver(tmp_path, {"SENDGRID_WEBHOOK_PUBLIC_KEY": pem.decode()})
    body = json.dumps(SG_EVENTS[:1]).encode()
    headers = sendgrid_headers(private, body, "1764061200")
    assert client(hooks).post("/hooks/sendgrid", data=body, headers=headers).status_code == 200
    assert len(rec.events) == 1


def test_sendgrid_tampered_unsigned_or_other_key(tmp_path: Path) -> None:
    private, public = ec_keys()
    other, _ = ec_keys()
    hooks, rec = receiver(tmp_path, {"SENDGRID_WEBHOOK_PUBLIC_KEY": public})
    c = client(hooks)
    body = json.dumps(SG_EVENTS).encode()
    ts = str(int(NOW.timestamp()))
    tampered = body.replace(b"gone@example.org", b"kept@example.org")
    assert (
        c.post(
            "/hooks/sendgrid", data=tampered, headers=sendgrid_headers(private, body, ts)
        ).status_code
        == 403
    )
    moved = sendgrid_headers(private, body, ts)
    moved["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(ts) + 1)
    assert c.post("/hooks/sendgrid", data=body, headers=moved).status_code == 403
    assert (
        c.post("/hooks/sendgrid", data=body, headers=sendgrid_headers(other, body, ts)).status_code
        == 403
    )
    assert c.post("/hooks/sendgrid", data=body).status_code == 401
    garbage = {
        **sendgrid_headers(private, body, ts),
        "X-Twilio-Email-Event-Webhook-Signature": "!!",
    }
    assert c.post("/hooks/sendgrid", data=body, headers=garbage).status_code == 403
    assert rec.calls == []
    assert rec.suppressed() == {}


def test_sendgrid_replay_hands_the_same_keys(tmp_path: Path) -> None:
    private, public = ec_keys()
    hooks, rec = receiver(tmp_path, {"SENDGRID_WEBHOOK_PUBLIC_KEY": public})
    c = client(hooks)
    body = json.dumps(SG_EVENTS[:1]).encode()
    headers = sendgrid_headers(private, body, str(int(NOW.timestamp())))
    assert c.post("/hooks/sendgrid", data=body, headers=headers).json["new"] == 1
    assert len(rec.calls) == 1
    before = rec.config.subscribers.suppressed.read_bytes()
    # SendGrid retries a delivery it saw fail: the same sg_event_id, so the policy changes nothing
    again = c.post("/hooks/sendgrid", data=body, headers=headers)
    assert again.status_code == 200
    assert again.json["new"] == 0 and again.json["duplicates"] == 1
    assert rec.config.subscribers.suppressed.read_bytes() == before


def test_sendgrid_signed_but_malformed_is_400(tmp_path: Path) -> None:
    private, public = ec_keys()
    hooks, rec = receiver(tmp_path, {"SENDGRID_WEBHOOK_PUBLIC_KEY": public})
    c = client(hooks)
    for body in (b"{not json", b'{"event": "bounce"}', b'[{"event": "bounce", "email": "a@b.c"}]'):
        headers = sendgrid_headers(private, body, "1764061200")
        assert c.post("/hooks/sendgrid", data=body, headers=headers).status_code == 400
    assert rec.calls == []


def test_sendgrid_bad_key_in_env_is_503(tmp_path: Path) -> None:
    private, _ = ec_keys()
    hooks, rec = receiver(tmp_path, {"SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"})
    body = json.dumps(SG_EVENTS[:1]).encode()
    response = client(hooks).post(
        "/hooks/sendgrid", data=body, headers=sendgrid_headers(private, body, "1")
    )
    assert response.status_code == 503
    assert rec.calls == []


# --- Postmark -----------------------------------------------------------------------------

PM_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "issue-7",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Metadata": {"issue": "7", "recipient": "gone@example.org"},
    "ServerID": 23,
    "MessageStream": "broadcast",
    "Description": "The server was unable to deliver your message (ex: unknown user).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "Email": "gone@example.org",
    "From": "newsletter@theduran.example",
    "BouncedAt": "2026-11-25T08:58:10.2735393-04:00",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "The Duran weekly #7",
}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def postmark_env() -> dict[str, str]:
    return {"POSTMARK_WEBHOOK_CREDENTIALS": ":".join(POSTMARK_CREDS)}


def test_postmark_credentials_in_url(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, postmark_env())
    c = client(hooks)
    response = c.post("/hooks/postmark", json=PM_BOUNCE, headers=basic(*POSTMARK_CREDS))
    assert response.status_code == 200, response.text
    [event] = rec.events
    assert (event.kind, event.address, event.issue) == ("hard_bounce", "gone@example.org", 7)
    assert event.time.utcoffset() is not None and event.time.hour == 8
    complaint = {**PM_BOUNCE, "RecordType": "SpamComplaint", "Type": "SpamComplaint", "ID": 9}
    assert (
        c.post("/hooks/postmark", json=complaint, headers=basic(*POSTMARK_CREDS)).status_code == 200
    )
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "a4909a96-73d7-4c49-b148-a54522d3f7ac",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "ChangedAt": "2026-11-25T08:59:00Z",
        "Recipient": "leaver@example.org",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "issue-7",
        "Metadata": {"issue": "7"},
    }
    assert c.post("/hooks/postmark", json=change, headers=basic(*POSTMARK_CREDS)).status_code == 200
    assert [(e.kind, e.address) for e in rec.events] == [
        ("hard_bounce", "gone@example.org"),
        ("complaint", "gone@example.org"),
        ("unsubscribe", "leaver@example.org"),
    ]
    assert rec.suppressed() == {"gone@example.org": "bounced", "leaver@example.org": "unsubscribed"}


def test_postmark_wrong_or_missing_credentials(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, postmark_env())
    c = client(hooks)
    missing = c.post("/hooks/postmark", json=PM_BOUNCE)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    assert (
        c.post("/hooks/postmark", json=PM_BOUNCE, headers=basic("hookuser", "guess")).status_code
        == 401
    )
    assert (
        c.post("/hooks/postmark", json=PM_BOUNCE, headers=basic("x", POSTMARK_CREDS[1])).status_code
        == 401
    )
    bearer = {"Authorization": "Bearer " + POSTMARK_CREDS[1]}
    assert c.post("/hooks/postmark", json=PM_BOUNCE, headers=bearer).status_code == 401
    assert rec.calls == []


def test_postmark_malformed_and_duplicate(tmp_path: Path) -> None:
    hooks, rec = receiver(tmp_path, postmark_env())
    c = client(hooks)
    auth = basic(*POSTMARK_CREDS)
    assert c.post("/hooks/postmark", data=b"[]", headers=auth).status_code == 400
    no_time = {**PM_BOUNCE, "BouncedAt": "yesterday"}
    assert c.post("/hooks/postmark", json=no_time, headers=auth).status_code == 400
    assert rec.calls == []
    assert c.post("/hooks/postmark", json=PM_BOUNCE, headers=auth).json["new"] == 1
    assert c.post("/hooks/postmark", json=PM_BOUNCE, headers=auth).json["new"] == 0


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z"]
)
def test_postmark_time_at_the_edge_of_the_calendar_is_400(tmp_path: Path, when: str) -> None:
    # in UTC these are before year 1 or after 9999: the event's key could not be made
    hooks, _rec = receiver(tmp_path, postmark_env())
    c = client(hooks)
    response = c.post(
        "/hooks/postmark", json={**PM_BOUNCE, "BouncedAt": when}, headers=basic(*POSTMARK_CREDS)
    )
    assert response.status_code in (200, 400), response.text
    assert "Traceback" not in response.text


def test_a_large_sendgrid_batch_passes_the_apps_body_limit(tmp_path: Path) -> None:
    """Reader pages take 16 KB bodies (serve.max_body); a provider's batch is larger."""
    private, public = ec_keys()
    hooks, rec = receiver(tmp_path, {"SENDGRID_WEBHOOK_PUBLIC_KEY": public})
    batch = [
        {**SG_EVENTS[0], "email": f"gone{i}@example.org", "sg_event_id": f"id{i}"}
        for i in range(300)
    ]
    body = json.dumps(batch).encode()
    assert len(body) > 3 * hooks.config.serve.max_body
    headers = sendgrid_headers(private, body, "1764061200")
    response = client(hooks).post("/hooks/sendgrid", data=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json["suppressed"] == 300
    assert len(rec.suppressed()) == 300


def test_the_app_builds_its_own_receiver_from_config_and_env(tmp_path: Path) -> None:
    from werkzeug.test import Client

    from pressroom.web.app import make_app

    hooks, _ = receiver(tmp_path, {})
    app = make_app(hooks.config, secret=b"s" * 32, clock=lambda: NOW, env=postmark_env())
    c = Client(app)
    response = c.post("/hooks/postmark", json=PM_BOUNCE, headers=basic(*POSTMARK_CREDS))
    assert response.status_code == 200, response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # the app's headers
    assert c.get("/hooks/postmark").status_code == 405
    assert Recorder(hooks.config, hooks.policy).suppressed() == {"gone@example.org": "bounced"}


def test_pressroom_serve_takes_credentials_in_the_url_and_logs_no_secret(tmp_path: Path) -> None:
    """Through the real server (waitress), as Postmark calls it: user:password@host in the URL."""
    import os
    import re
    import subprocess
    import sys

    import requests

    hooks, rec = receiver(tmp_path, {})
    env = {**os.environ, "PRESSROOM_SECRET": "s" * 32, **postmark_env()}
    args = [sys.executable, "-c", "from pressroom.cli import main; main()"]
    args += ["--config", str(hooks.config.path), "serve", "--port", "0", "--threads", "2"]
    proc = subprocess.Popen(
        args,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        user, password = POSTMARK_CREDS
        url = f"http://{user}:{password}@127.0.0.1:{m.group(1)}/hooks/postmark"
        bounce = {**PM_BOUNCE, "BouncedAt": "2026-11-25T08:58:10Z"}
        assert requests.post(url, json=bounce, timeout=10).status_code == 200
        wrong = url.replace(password, "guess")
        assert requests.post(wrong, json=bounce, timeout=10).status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert rec.suppressed() == {"gone@example.org": "bounced"}
    assert "POST /hooks/postmark 200" in err and "POST /hooks/postmark 401" in err
    assert password not in err and "Traceback" not in err


def test_an_unknown_provider_is_not_told_which_ones_are_configured(tmp_path: Path) -> None:
    # the 404 listed the configured providers to anyone who asked
    hooks, _ = receiver(tmp_path, mailgun_env())
    c = client(hooks)
    answers = [c.post(f"/hooks/{name}", data=b"{}") for name in ("nosuch", "smtp", "file")]
    assert {r.status_code for r in answers} == {404}
    assert len({r.get_data() for r in answers}) == 1
    for configured in (b"mailgun", b"sendgrid", b"postmark", b"ses"):
        assert configured not in answers[0].get_data()
