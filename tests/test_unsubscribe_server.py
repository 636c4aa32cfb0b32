"""The unsubscribe route of the web app over real HTTP on 127.0.0.1 (waitress, and the CLI)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from pressroom.audience import subscribers
from pressroom.audience import tokens as unsubscribe
from pressroom.config import Config
from pressroom.errors import SubscriberError
from pressroom.web.app import make_app
from tests.subscribers_helpers import HEADER, make_publication, write
from tests.web_helpers import running

SECRET = b"server-test-secret-0123456789abcdef"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture
def pub(tmp_path: Path) -> Config:
    pub = make_publication(tmp_path / "pub")
    write(
        pub.root / "subscribers/main.csv",
        HEADER + "ada@example.com,Ada,,,,\nbob@example.org,Bob,,,,\n",
    )
    return pub


@pytest.fixture
def server(pub: Config) -> Iterator[str]:
    with running(make_app(pub, secret=SECRET, clock=lambda: NOW)) as base:
        yield base


def token(email: str = "ada@example.com", list_: str = "weekly") -> str:
    return unsubscribe.Signer(SECRET).token(email, list_)


def active(pub: Config) -> list[str]:
    return [s.email for s in subscribers.iter_subscribers(pub)]


def test_get_shows_a_confirmation_form_and_changes_nothing(pub: Config, server: str) -> None:
    r = requests.get(
        f"{server}/unsubscribe", params={"t": token()}, allow_redirects=False, timeout=5
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "ada@example.com" in r.text
    assert re.search(r'<form method="post" action="\?t=[\w.-]+">', r.text)
    assert "Set-Cookie" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"
    assert not pub.subscribers.suppressed.exists()
    assert active(pub) == ["ada@example.com", "bob@example.org"]
    head = requests.head(f"{server}/unsubscribe", params={"t": token()}, timeout=5)
    assert head.status_code == 200
    assert not pub.subscribers.suppressed.exists()


def test_one_click_post_unsubscribes_once_without_redirect(pub: Config, server: str) -> None:
    url = unsubscribe.unsubscribe_url(pub, token()).replace("https://theduran.example", server)
    for _ in range(2):  # mail clients retry; the second POST must not add a second row
        r = requests.post(
            url,
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
            timeout=5,
        )
        assert r.status_code == 200
        assert "Location" not in r.headers
        assert "Set-Cookie" not in r.headers
        assert "You are unsubscribed" in r.text
    assert pub.subscribers.suppressed.read_text() == (
        "email,reason,date,list\nada@example.com,unsubscribed,2026-11-25T09:30:00+00:00,weekly\n"
    )
    assert active(pub) == ["bob@example.org"]


def test_a_link_whose_address_the_checker_now_refuses_still_unsubscribes(
    pub: Config, server: str
) -> None:
    # the link was mailed when the address passed; a newer email-validator refuses it (here:
    # a special-use domain). The reader must still get out, never a 500
    old = "reader@mail.local"
    with pytest.raises(ValueError):
        subscribers.normalise_email(old)
    for _ in range(2):
        r = requests.post(
            f"{server}/unsubscribe?t={token(old)}",
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=5,
        )
        assert r.status_code == 200, r.text
        assert "You are unsubscribed" in r.text
    assert pub.subscribers.suppressed.read_text() == (
        "email,reason,date,list\nreader@mail.local,unsubscribed,2026-11-25T09:30:00+00:00,weekly\n"
    )
    # typed by hand, such an address is still refused
    with pytest.raises(SubscriberError, match="invalid email"):
        subscribers.suppress(pub, "other@mail.local", reason="unsubscribed", when=NOW)


def test_multipart_one_click_body_is_accepted(pub: Config, server: str) -> None:
    r = requests.post(
        f"{server}/unsubscribe?t={token('bob@example.org')}",
        files={"List-Unsubscribe": (None, "One-Click")},
        allow_redirects=False,
        timeout=5,
    )
    assert r.status_code == 200
    assert active(pub) == ["ada@example.com"]


def test_the_confirmation_form_posts_the_token_in_its_body(pub: Config, server: str) -> None:
    r = requests.post(
        f"{server}/unsubscribe", data={"t": token()}, allow_redirects=False, timeout=5
    )
    assert r.status_code == 200
    assert active(pub) == ["bob@example.org"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        token()[:-2] + ("AA" if not token().endswith("AA") else "BA"),  # tampered signature
        unsubscribe.Signer(b"some other secret").token("ada@example.com", "weekly"),  # forged
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_tokens_get_400_and_change_nothing(
    pub: Config, server: str, bad: str, method: str
) -> None:
    before = sorted(p.name for p in (pub.root / "subscribers").iterdir())
    r = requests.request(
        method,
        f"{server}/unsubscribe",
        params={"t": bad} if bad else None,
        data="List-Unsubscribe=One-Click" if method == "POST" else None,
        allow_redirects=False,
        timeout=5,
    )
    assert r.status_code == 400
    assert "does not work" in r.text
    assert sorted(p.name for p in (pub.root / "subscribers").iterdir()) == before
    assert active(pub) == ["ada@example.com", "bob@example.org"]


def test_unknown_path_is_404_and_other_methods_405(server: str) -> None:
    assert requests.get(f"{server}/", timeout=5).status_code == 404
    assert requests.post(f"{server}/admin?t={token()}", timeout=5).status_code == 404
    r = requests.put(f"{server}/unsubscribe?t={token()}", timeout=5)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, POST"


def test_the_page_escapes_what_the_token_carries(pub: Config, server: str) -> None:
    evil = unsubscribe.Signer(SECRET).token("ada@example.com", "<script>alert(1)</script>")
    r = requests.get(f"{server}/unsubscribe", params={"t": evil}, timeout=5)
    assert r.status_code == 200
    assert "<script>" not in r.text
    assert "&lt;script&gt;" in r.text


def test_configured_unsubscribe_path_is_served(tmp_path: Path) -> None:
    pub = make_publication(
        tmp_path / "p", sending="unsubscribe_url: https://theduran.example/u/leave\n"
    )
    with running(make_app(pub, secret=SECRET, clock=lambda: NOW)) as base:
        assert requests.get(f"{base}/u/leave?t={token()}", timeout=5).status_code == 200
        assert requests.post(f"{base}/u/leave?t={token()}", timeout=5).status_code == 200
    assert subscribers.load_suppressed(pub) == {"ada@example.com"}


def test_the_cli_server_end_to_end(pub: Config) -> None:
    env = {**os.environ, "PRESSROOM_SECRET": SECRET.decode()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pressroom.cli import main; main()",
            "--config",
            str(pub.path),
            "unsubscribe-server",
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/unsubscribe", line)
        assert m, line
        base = f"http://127.0.0.1:{m.group(1)}/unsubscribe"
        assert requests.get(base, params={"t": token()}, timeout=5).status_code == 200
        r = requests.post(base, params={"t": token()}, data="List-Unsubscribe=One-Click", timeout=5)
        assert r.status_code == 200
        assert requests.post(base, params={"t": "x.y"}, timeout=5).status_code == 400
        assert active(pub) == ["bob@example.org"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    # the access log never shows the token (it would let anyone unsubscribe that reader)
    assert "GET /unsubscribe 200" in err
    assert token() not in err
