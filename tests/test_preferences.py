"""``/preferences`` in-process, and the footer link every issue carries to it."""

from __future__ import annotations

import csv
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug.test import Client

from pressroom.audience import subscribers, tokens
from pressroom.config import Config
from pressroom.delivery import message
from pressroom.models import RenderedIssue, RenderedVariant, Subscriber, token
from pressroom.web.app import make_app
from tests.web_helpers import signup_publication

SECRET = b"prefs-test-secret-0123456789abcdef"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
CSV = (
    "email,name,lists,tags,status,subscribed_at,consent_at,source\n"
    "ada@example.com,Ada,weekly;members-only,patron,active,2026-01-01,,import\n"
    "bob@example.org,Bob,,,active,,,\n"
    "uma@example.com,Uma,weekly,,unsubscribed,2025-01-01,,\n"
)


@pytest.fixture
def pub(tmp_path: Path) -> Config:
    return signup_publication(tmp_path / "pub", subscribers_csv=CSV)


@pytest.fixture
def client(pub: Config) -> Client:
    return Client(make_app(pub, secret=SECRET, clock=lambda: NOW))


def prefs(email: str) -> str:
    return tokens.Signer(SECRET).preferences.token(email)


def rows(pub: Config) -> dict[str, dict[str, str]]:
    with (pub.subscribers.path / "subscribers.csv").open(newline="", encoding="utf-8") as f:
        return {r["email"]: r for r in csv.DictReader(f)}


def test_get_shows_the_readers_lists_and_name(pub: Config, client: Client) -> None:
    before = (pub.subscribers.path / "subscribers.csv").read_bytes()
    r = client.get(f"/preferences?t={prefs('ada@example.com')}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "ada@example.com" in html
    assert 'value="weekly" checked' in html
    assert 'value="breaking">' in html
    assert 'name="name" value="Ada"' in html
    assert "Unsubscribe from everything" in html
    assert "To change your address" in html
    assert (pub.subscribers.path / "subscribers.csv").read_bytes() == before


def test_no_lists_means_the_digest_list(client: Client) -> None:
    html = client.get(f"/preferences?t={prefs('bob@example.org')}").get_data(as_text=True)
    assert 'value="weekly" checked' in html


def test_post_saves_lists_and_name_keeping_what_the_form_does_not_offer(
    pub: Config, client: Client
) -> None:
    r = client.post(
        f"/preferences?t={prefs('ada@example.com')}",
        data={"action": "save", "list": ["breaking"], "name": "Ada L."},
    )
    assert r.status_code == 200
    assert "Saved." in r.get_data(as_text=True)
    row = rows(pub)["ada@example.com"]
    assert row["lists"] == "breaking;members-only"  # members-only is not on the form: kept
    assert row["name"] == "Ada L."
    assert row["tags"] == "patron" and row["source"] == "import"  # other columns untouched
    assert rows(pub)["bob@example.org"]["lists"] == ""
    assert [s.email for s in subscribers.iter_subscribers(pub, list_="weekly")] == [
        "bob@example.org"
    ]


def test_a_post_without_a_name_field_keeps_the_name(pub: Config, client: Client) -> None:
    # a one-click client, an old form or a script that sends lists only must not blank the
    # name; an empty field that is there does clear it
    r = client.post(f"/preferences?t={prefs('ada@example.com')}", data={"list": ["breaking"]})
    assert r.status_code == 200
    assert rows(pub)["ada@example.com"]["name"] == "Ada"
    assert rows(pub)["ada@example.com"]["lists"] == "breaking;members-only"
    client.post(f"/preferences?t={prefs('ada@example.com')}", data={"list": "weekly", "name": ""})
    assert rows(pub)["ada@example.com"]["name"] == ""


def test_choosing_no_list_asks_again_and_changes_nothing(pub: Config, client: Client) -> None:
    before = (pub.subscribers.path / "subscribers.csv").read_bytes()
    r = client.post(f"/preferences?t={prefs('ada@example.com')}", data={"action": "save"})
    assert r.status_code == 400
    assert "Choose at least one list" in r.get_data(as_text=True)
    assert (pub.subscribers.path / "subscribers.csv").read_bytes() == before


def test_unsubscribe_from_everything(pub: Config, client: Client) -> None:
    r = client.post(f"/preferences?t={prefs('bob@example.org')}", data={"action": "unsubscribe"})
    assert r.status_code == 200
    assert "You are unsubscribed" in r.get_data(as_text=True)
    assert subscribers.is_suppressed(pub, "bob@example.org")
    again = client.get(f"/preferences?t={prefs('bob@example.org')}")
    assert "You are not subscribed" in again.get_data(as_text=True)


@pytest.mark.parametrize("email", ["uma@example.com", "nobody@example.org"])
def test_a_reader_who_is_not_subscribed_is_sent_to_the_form(
    pub: Config, client: Client, email: str
) -> None:
    before = (pub.subscribers.path / "subscribers.csv").read_bytes()
    for method in ("GET", "POST"):
        r = client.open(f"/preferences?t={prefs(email)}", method=method, data={"list": "weekly"})
        assert r.status_code == 200
        assert "You are not subscribed" in r.get_data(as_text=True)
    assert (pub.subscribers.path / "subscribers.csv").read_bytes() == before


def test_no_token_says_where_the_link_is(client: Client) -> None:
    r = client.get("/preferences")
    assert r.status_code == 400
    assert "Manage your subscription" in r.get_data(as_text=True)


def test_every_issue_footer_links_to_the_readers_own_preferences(pub: Config) -> None:
    part = f'<a href="{token("preferences_url")}">x</a> {token("unsubscribe_url")}'
    rendered = RenderedIssue(3, "S", "P", (RenderedVariant("all", part, part),))
    recipient = message.recipient_for(
        pub, rendered, tokens.Signer(SECRET), Subscriber("ada@example.com")
    )
    url = recipient.fields["preferences_url"]
    assert url.startswith("https://theduran.example/preferences?t=")
    t = url.partition("?t=")[2]
    assert tokens.Signer(SECRET).preferences.verify(t) == "ada@example.com"
    client = Client(make_app(pub, secret=SECRET, clock=lambda: NOW))
    assert "ada@example.com" in client.get(f"/preferences?t={t}").get_data(as_text=True)
    # the configured page, wherever it lives, gets the token too, and is served
    custom = signup_publication(
        pub.root.parent / "custom",
        extra="serve:\n  url: https://news.example/reader/\n",
        subscribers_csv=CSV,
    )
    r2 = message.recipient_for(custom, rendered, tokens.Signer(SECRET), Subscriber("a@x.org"))
    assert r2.fields["preferences_url"].startswith("https://news.example/reader/preferences?t=")


def test_preferences_tokens_are_stable_per_address_and_secret() -> None:
    signer = tokens.Signer(SECRET)
    assert signer.preferences.token("ada@example.com") == signer.preferences.token(
        "ada@example.com"
    )
    assert tokens.Signer(b"other").preferences.token("ada@example.com") != signer.preferences.token(
        "ada@example.com"
    )


def test_a_file_with_a_column_given_twice_is_not_rewritten_over_the_readers_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # cells are matched to columns by name: the second "email" column's value would be
    # written into both, replacing the reader's own address with another
    csv_text = (
        "email,name,lists,tags,status,subscribed_at,Email\n"
        "ada@example.com,Ada,weekly,,active,,ada.old@example.com\n"
    )
    pub = signup_publication(tmp_path / "twice", subscribers_csv=csv_text)
    client = Client(make_app(pub, secret=SECRET, clock=lambda: NOW))
    path = pub.subscribers.path / "subscribers.csv"
    with caplog.at_level(logging.ERROR, logger="pressroom.web"):
        r = client.post(
            "/preferences",
            data={"t": prefs("ada@example.com"), "list": ["weekly", "breaking"], "name": "A"},
        )
    assert r.status_code == 500
    assert "Preferences saved" not in r.get_data(as_text=True)
    assert path.read_text() == csv_text
    assert 'the column "email" is in the header twice' in caplog.text


def test_a_save_never_rewrites_past_an_unterminated_quote(tmp_path: Path) -> None:
    # the open quote in Ada's row swallows the rows after it; a save would seal that damage
    # into the file (and a confirmation add a reader it hides as new)
    csv_text = (
        "email,name,lists,tags,status,subscribed_at\n"
        "bob@example.org,Bob,weekly,,active,\n"
        'ada@example.com,"Ada,weekly,,active,\n'
        "uma@example.com,Uma,weekly,,unsubscribed,\n"
    )
    pub = signup_publication(tmp_path / "quote", subscribers_csv=csv_text)
    client = Client(make_app(pub, secret=SECRET, clock=lambda: NOW))
    r = client.post(
        "/preferences", data={"t": prefs("bob@example.org"), "list": ["breaking"], "name": "B"}
    )
    assert r.status_code == 500
    assert (pub.subscribers.path / "subscribers.csv").read_text() == csv_text


def test_token_holders_are_limited_per_client(pub: Config) -> None:
    # every /preferences request with a genuine token reads every subscriber file and the
    # suppressed file: one leaked link must not let a client have that done without end
    from pressroom.web.app import PAGE_WINDOW

    PAGE_LIMIT = pub.serve.per_client
    assert PAGE_LIMIT == 120  # the default, per minute
    clock = {"now": NOW}
    client = Client(make_app(pub, secret=SECRET, clock=lambda: clock["now"]))
    url = f"/preferences?t={prefs('ada@example.com')}"
    for _ in range(PAGE_LIMIT):
        assert client.get(url).status_code == 200
    r = client.get(url)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    html = r.get_data(as_text=True)
    assert "Too many requests" in html and "ada@example.com" not in html
    # a save is refused too, and changes nothing
    before = (pub.subscribers.path / "subscribers.csv").read_bytes()
    r = client.post(url, data={"action": "unsubscribe"})
    assert r.status_code == 429
    assert (pub.subscribers.path / "subscribers.csv").read_bytes() == before
    assert not pub.subscribers.suppressed.exists() or "ada@" not in (
        pub.subscribers.suppressed.read_text(encoding="utf-8")
    )
    # another client, and an IPv6 client, are not held up by this one
    assert client.get(url, environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    v6 = {"REMOTE_ADDR": "2001:db8::1"}
    for _ in range(PAGE_LIMIT):
        assert client.get(url, environ_base=v6).status_code == 200
    # ... but the rest of that /64 is the same client
    assert client.get(url, environ_base={"REMOTE_ADDR": "2001:db8::2"}).status_code == 429
    # a bad token reads nothing and is not counted (it still gets its own 400)
    assert client.get("/preferences?t=nope").status_code == 400
    # once the window has passed, the first client is served again
    clock["now"] = NOW + PAGE_WINDOW
    assert client.get(url).status_code == 200
