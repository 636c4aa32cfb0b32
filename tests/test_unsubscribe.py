"""pressroom.audience.tokens: tokens, the secret, URLs and the List-* header values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import subprocess
import sys
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from pressroom.audience import tokens as unsubscribe
from pressroom.config import Config
from pressroom.errors import ConfigError, TokenError
from tests.subscribers_helpers import make_publication

SECRET = b"correct horse battery staple, 32+"


@pytest.fixture
def pub(tmp_path: Path) -> Config:
    return make_publication(tmp_path / "pub")


# --- tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "list_"),
    [
        ("ada@example.com", "weekly"),
        ("Bob.O'Brien+news@Mail.Example.org", "breaking news"),
        ("josé@exämple.org", "wöchentlich"),
        ("a@b.co", ""),
    ],
)
def test_token_round_trips_and_is_url_safe(email: str, list_: str) -> None:
    signer = unsubscribe.Signer(SECRET)
    token = signer.token(email, list_)
    assert signer.verify(token) == (email, list_)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    # deterministic: the same recipient gets the same link in every issue
    assert unsubscribe.Signer(SECRET).token(email, list_) == token


def test_token_is_the_documented_hmac() -> None:
    token = unsubscribe.Signer(SECRET).token("ada@example.com", "weekly")
    body, sig = token.split(".")
    payload = b"ada@example.com\0weekly"
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)) == payload
    mac = hmac.new(SECRET, b"pressroom-unsubscribe-v1\0" + payload, hashlib.sha256).digest()[:16]
    assert base64.urlsafe_b64decode(sig + "==") == mac


def _flip(text: str, i: int) -> str:
    c = text[i]
    return text[:i] + ("B" if c != "B" else "C") + text[i + 1 :]


def test_tampered_tokens_are_rejected() -> None:
    signer = unsubscribe.Signer(SECRET)
    token = signer.token("ada@example.com", "weekly")
    sig = token.split(".")[1]
    for i in range(len(token)):
        if token[i] == ".":
            continue
        bad = _flip(token, i)
        with pytest.raises(TokenError):
            signer.verify(bad)
    # someone else's address with ada's signature
    other = base64.urlsafe_b64encode(b"bob@example.org\0weekly").rstrip(b"=").decode()
    with pytest.raises(TokenError, match="does not verify"):
        signer.verify(f"{other}.{sig}")
    # another list with ada's signature
    other = base64.urlsafe_b64encode(b"ada@example.com\0breaking").rstrip(b"=").decode()
    with pytest.raises(TokenError, match="does not verify"):
        signer.verify(f"{other}.{sig}")


def test_token_from_another_secret_is_rejected() -> None:
    forged = unsubscribe.Signer(b"attacker's guess").token("ada@example.com", "weekly")
    with pytest.raises(TokenError, match="does not verify"):
        unsubscribe.Signer(SECRET).verify(forged)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot-at-all",
        "a.b.c",
        ".",
        "!!!.???",
        "YWRh.",  # empty signature
        "x" * 5000 + ".abc",
        # a valid signature over a payload without the NUL separator
        "__signed_without_separator__",
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    signer = unsubscribe.Signer(SECRET)
    if token == "__signed_without_separator__":
        payload = b"ada@example.com"
        mac = hmac.new(SECRET, b"pressroom-unsubscribe-v1\0" + payload, hashlib.sha256).digest()[
            :16
        ]
        b64 = [base64.urlsafe_b64encode(x).decode().rstrip("=") for x in (payload, mac)]
        token = ".".join(b64)
    with pytest.raises(TokenError):
        signer.verify(token)


def test_names_with_nul_and_empty_secret_are_refused() -> None:
    with pytest.raises(TokenError):
        unsubscribe.Signer(SECRET).token("a@example.org\0x", "weekly")
    with pytest.raises(TokenError):
        unsubscribe.Signer(b"")


# --- the secret --------------------------------------------------------------------------


def test_secret_from_the_environment_wins(pub: Config) -> None:
    said: list[str] = []
    assert (
        unsubscribe.load_secret(pub, {"PRESSROOM_SECRET": "s3cret-from-env"}, said.append)
        == b"s3cret-from-env"
    )
    assert said == []
    assert not (pub.state / "secret").exists()


def test_secret_env_var_name_comes_from_config(tmp_path: Path) -> None:
    pub = make_publication(tmp_path / "pub", sending="secret_env: MY_SECRET\n")
    assert (
        unsubscribe.load_secret(pub, {"MY_SECRET": "abc", "PRESSROOM_SECRET": "x"}, print) == b"abc"
    )


def test_secret_is_generated_once_with_mode_0600_and_reused_silently(pub: Config) -> None:
    said: list[str] = []
    first = unsubscribe.load_secret(pub, {}, said.append)
    path = pub.state / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert said == [
        "no PRESSROOM_SECRET set; generated one in .pressroom/secret (keep it: it signs the "
        "unsubscribe links; set PRESSROOM_SECRET on servers)"
    ]
    assert first.decode() not in said[0]
    again = unsubscribe.load_secret(pub, {"PRESSROOM_SECRET": ""}, said.append)
    assert again == first
    assert len(said) == 1
    # tokens made before are still good after a restart
    token = unsubscribe.Signer(first).token("ada@example.com", "weekly")
    assert unsubscribe.Signer(again).verify(token) == ("ada@example.com", "weekly")
    assert [p.name for p in pub.state.iterdir()] == ["secret"]


RACE = """
import sys
from pressroom import config
from pressroom.audience import tokens as unsubscribe
cfg = config.load(sys.argv[1])
sys.stdout.write(unsubscribe.load_secret(cfg, {}, lambda m: None).decode())
"""


def test_first_runs_at_the_same_time_agree_on_one_secret(pub: Config) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PRESSROOM_SECRET"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(pub.path)], stdout=subprocess.PIPE, env=env
        )
        for _ in range(6)
    ]
    outs = {p.communicate()[0] for p in procs}
    assert len(outs) == 1
    assert outs == {(pub.state / "secret").read_bytes().strip()}


# --- URLs and headers --------------------------------------------------------------------


def test_unsubscribe_url_default_and_configured(tmp_path: Path, pub: Config) -> None:
    assert (
        unsubscribe.unsubscribe_url(pub, "TOK.en")
        == "https://theduran.example/unsubscribe?t=TOK.en"
    )
    with_query = make_publication(
        tmp_path / "q", sending="unsubscribe_url: https://lists.example.org/u?pub=duran\n"
    )
    assert (
        unsubscribe.unsubscribe_url(with_query, "T") == "https://lists.example.org/u?pub=duran&t=T"
    )


def test_list_unsubscribe_headers_with_mailto(tmp_path: Path) -> None:
    pub = make_publication(
        tmp_path / "pub", sending="unsubscribe_mailto: unsubscribe@theduran.example\n"
    )
    url = unsubscribe.unsubscribe_url(pub, "TOKEN")
    assert unsubscribe.list_unsubscribe_headers(pub, url) == {
        "List-Unsubscribe": "<https://theduran.example/unsubscribe?t=TOKEN>, "
        "<mailto:unsubscribe@theduran.example?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_list_unsubscribe_headers_without_mailto_and_for_plain_http(
    tmp_path: Path, pub: Config
) -> None:
    assert unsubscribe.list_unsubscribe_headers(pub, "https://x.example/u?t=A") == {
        "List-Unsubscribe": "<https://x.example/u?t=A>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    # RFC 8058 one-click needs HTTPS: over plain http the -Post header would be a lie
    assert unsubscribe.list_unsubscribe_headers(pub, "http://127.0.0.1:8080/unsubscribe?t=A") == {
        "List-Unsubscribe": "<http://127.0.0.1:8080/unsubscribe?t=A>"
    }


def test_list_id(tmp_path: Path, pub: Config) -> None:
    assert unsubscribe.list_id(pub) == "The Duran weekly <weekly.theduran.example>"
    custom = make_publication(tmp_path / "c", sending="list_id: news.duran.example\n")
    assert unsubscribe.list_id(custom) == "The Duran weekly <news.duran.example>"
    odd = tmp_path / "odd"
    make_publication(odd)
    text = (
        (odd / "config.yaml").read_text().replace("name: The Duran", 'name: "Smith, Jones & Co."')
    )
    (odd / "config.yaml").write_text(text)
    from pressroom import config

    encoded = tmp_path / "enc"
    make_publication(encoded)
    text = (encoded / "config.yaml").read_text()
    (encoded / "config.yaml").write_text(text.replace("The Duran", "Die Zeitung für Österreich"))
    value = unsubscribe.list_id(config.load(encoded / "config.yaml"))
    assert value.isascii()
    assert value.endswith(" <weekly.theduran.example>")
    assert str(make_header(decode_header(value))) == (
        "Die Zeitung für Österreich weekly <weekly.theduran.example>"
    )
    assert (
        unsubscribe.list_id(config.load(odd / "config.yaml"))
        == '"Smith, Jones & Co. weekly" <weekly.theduran.example>'
    )


def test_unwritable_state_folder_names_the_env_var(tmp_path: Path) -> None:
    pub = make_publication(tmp_path / "pub")
    (pub.root / ".pressroom").write_text("a file where the state folder should be")
    with pytest.raises(
        ConfigError, match=r"cannot (read|create) .*secret .*; set PRESSROOM_SECRET instead"
    ):
        unsubscribe.load_secret(pub, {}, print)
