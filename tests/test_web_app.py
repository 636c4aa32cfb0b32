"""The web app's frame: routing, security headers, limits and errors (in-process and waitress)."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from werkzeug.test import Client

from pressroom.audience import tokens
from pressroom.config import Config
from pressroom.web.app import MAX_URI, make_app
from tests.subscribers_helpers import HEADER, make_publication, write
from tests.web_helpers import mails as sent
from tests.web_helpers import running, signup_publication

SECRET = b"web-app-test-secret-0123456789abcdef"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture
def pub(tmp_path: Path) -> Config:
    pub = make_publication(tmp_path / "pub")
    write(pub.root / "subscribers/subscribers.csv", HEADER + "ada@example.com,Ada,,,,\n")
    return pub


@pytest.fixture
def client(pub: Config) -> Client:
    return Client(make_app(pub, secret=SECRET, clock=lambda: NOW))


def unsub_token(email: str = "ada@example.com") -> str:
    return tokens.Signer(SECRET).token(email, "weekly")


def test_healthz(client: Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_data(as_text=True) == "ok\n"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/assets/web.css", 200),
        ("GET", "/nowhere", 404),
        ("DELETE", "/unsubscribe", 405),
        ("GET", f"/unsubscribe?t={unsub_token()}", 200),
        ("GET", "/unsubscribe?t=forged", 400),
    ],
)
def test_every_response_carries_the_security_headers(
    client: Client, method: str, path: str, status: int
) -> None:
    r = client.open(path, method=method)
    assert r.status_code == status
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # no script at all: default-src 'none' covers it
    assert "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in r.headers


def test_error_pages_are_pages_not_tracebacks(client: Client) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Nothing here</h1>" in r.get_data(as_text=True)
    r = client.put("/healthz")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD"
    assert "Traceback" not in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/subscribe//", "/unsubscribe//", "/preferences///x"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_doubled_slashes_get_a_page_never_a_redirect(
    pub: Config, client: Client, path: str, method: str
) -> None:
    # a redirect would be an error page with status 308 and no Location (or, built from the
    # Host header, one that points anywhere)
    r = client.open(f"{path}?t={unsub_token()}", method=method, headers={"Host": "evil.example"})
    assert r.status_code in (200, 400, 404), r.status_code
    assert "Location" not in r.headers
    assert not pub.subscribers.suppressed.exists()


def test_a_body_over_the_limit_gets_413_and_changes_nothing(pub: Config, client: Client) -> None:
    r = client.post(
        f"/unsubscribe?t={unsub_token()}",
        data={"List-Unsubscribe": "One-Click", "pad": "x" * pub.serve.max_body},
    )
    assert r.status_code == 413
    assert "Too much data" in r.get_data(as_text=True)
    assert not pub.subscribers.suppressed.exists()


def test_an_over_long_url_gets_414(client: Client) -> None:
    r = client.get("/unsubscribe?t=" + "A" * (MAX_URI + 1))
    assert r.status_code == 414
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_an_unexpected_failure_is_a_500_page_and_one_log_line(
    pub: Config, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # the suppressed file's folder is a file: the write fails deep inside
    pub.subscribers.suppressed.parent.joinpath("suppressed.csv").mkdir()
    with caplog.at_level(logging.INFO, logger="pressroom.web"):
        r = client.post(f"/unsubscribe?t={unsub_token()}", data="List-Unsubscribe=One-Click")
    assert r.status_code == 500
    body = r.get_data(as_text=True)
    assert "Something went wrong" in body and "Traceback" not in body
    assert unsub_token() not in caplog.text
    assert "POST /unsubscribe 500" in caplog.text


@pytest.mark.parametrize(
    ("trusted", "peer", "mails"),
    [
        (None, "10.0.0.2", 1),  # no proxy configured: X-Forwarded-For is ignored
        ("10.0.0.2", "10.0.0.2", 2),  # the proxy: its X-Forwarded-For names the reader
        ("10.0.0.2", "10.0.0.3", 1),  # anyone else: ignored, so nobody can forge an address
        ("*", "10.0.0.9", 2),
    ],
)
def test_only_the_trusted_proxy_is_believed(
    tmp_path: Path, trusted: str | None, peer: str, mails: int
) -> None:
    extra = "signup:\n  per_ip: 1\n" + (
        f"serve:\n  trusted_proxy: '{trusted}'\n" if trusted else ""
    )
    pub = signup_publication(tmp_path / "p", extra=extra)
    client = Client(make_app(pub, secret=SECRET, clock=lambda: NOW))
    for i, reader in enumerate(("203.0.113.1", "203.0.113.2")):
        client.post(
            "/subscribe",
            data={"email": f"r{i}@example.org", "list": "weekly"},
            headers={"X-Forwarded-For": f"198.51.100.1, {reader}"},
            environ_base={"REMOTE_ADDR": peer},
        )
    client.application.site.extras["signup"].wait()  # type: ignore[attr-defined]
    assert len(sent(pub)) == mails


def _raw(base: str, data: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                got = s.recv(65536)
            except ConnectionResetError:
                break
            if not got:
                break
            chunks.append(got)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /unsubscribe?t=TOKEN HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"414"),
        (b"POST /unsubscribe?t=TOKEN HTTP/1.0\r\nContent-Length: 0\r\n\r\n", b"414"),
        (b"GET /\x00\x01 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"404"),
        (b"GET /unsubscribe?t=TOKEN HTTP/9.9 extra\r\nHost: x\r\n\r\n", b"400"),
    ],
)
def test_over_long_or_malformed_request_lines_get_an_answer(
    pub: Config, request_bytes: bytes, status: bytes
) -> None:
    data = request_bytes.replace(b"TOKEN", unsub_token().encode() + b"A" * (MAX_URI * 3))
    with running(make_app(pub, secret=SECRET, clock=lambda: NOW)) as base:
        answer = _raw(base, data)
    assert re.match(rb"HTTP/1\.[01] " + status + rb" ", answer), answer[:200]
    assert b"Traceback" not in answer
    assert unsub_token().encode() not in answer


def test_serve_cli_answers_bad_requests_and_never_logs_a_token(pub: Config) -> None:
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
            "--threads",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    tok = unsub_token()
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        base = f"http://127.0.0.1:{m.group(1)}"
        assert requests.get(f"{base}/healthz", timeout=5).text == "ok\n"
        long_line = f"GET /unsubscribe?t={tok}{'A' * MAX_URI} HTTP/1.0\r\n\r\n".encode()
        assert re.match(rb"HTTP/1\.[01] 414 ", _raw(base, long_line))
        huge = f"GET /unsubscribe?t={tok}{'A' * 70_000} HTTP/1.0\r\n\r\n".encode()
        assert re.match(rb"HTTP/1\.[01] 431 ", _raw(base, huge))
        assert re.match(rb"HTTP/1\.[01] 400 ", _raw(base, b"\x16\x03\x01 not http\r\n\r\n"))
        r = requests.post(f"{base}/unsubscribe", params={"t": tok}, timeout=5)
        assert r.status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "GET /healthz 200" in err
    assert "GET /unsubscribe 414" in err
    assert "POST /unsubscribe 200" in err
    assert tok not in err
    assert tok[:20] not in err
    assert "Traceback" not in err


def test_create_is_the_deployment_entry_point(pub: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from pressroom.web.app import create

    monkeypatch.setenv("PRESSROOM_CONFIG", str(pub.path))
    monkeypatch.setenv("PRESSROOM_SECRET", SECRET.decode())
    client = Client(create())
    assert client.get("/healthz").status_code == 200
    # the secret came from the environment: a token made with it works
    assert client.get(f"/unsubscribe?t={unsub_token()}").status_code == 200


def test_a_path_cannot_write_log_lines_of_its_own(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # /%0A… decodes to a line break: logged as it is, it would forge whole log lines
    forged = "/x%0A2026-11-25 confirm: added (a***@example.org)%0DPOST /unsubscribe 200"
    with caplog.at_level(logging.INFO, logger="pressroom.web"):
        assert client.get(forged).status_code == 404
    [record] = [r for r in caplog.records if " 404" in r.getMessage()]
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line
    assert line == (
        "GET /x\\x0a2026-11-25 confirm: added (a***@example.org)\\x0dPOST /unsubscribe 200 404"
    )


@pytest.mark.parametrize("host", ["999.1.1.1", "no-such-host.invalid"])
def test_serve_on_a_host_that_is_no_address_is_one_line(pub: Config, host: str) -> None:
    from click.testing import CliRunner

    from pressroom.cli import main

    result = CliRunner().invoke(
        main,
        ["--config", str(pub.path), "serve", "--host", host, "--port", "0"],
        env={"PRESSROOM_SECRET": "s" * 32},
    )
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on {host}:0: {host!r} is not an address of this machine nor a "
        "name that resolves; give an IP address (127.0.0.1, ::1, 0.0.0.0) with --host or "
        "serve.host"
    )


@pytest.mark.parametrize("short", ["s3cret", "rate-test", "x" * 15])
def test_serve_refuses_a_short_secret_in_one_line(pub: Config, short: str) -> None:
    from click.testing import CliRunner

    from pressroom.cli import main

    # a few letters are guessed offline from any link: then anyone can confirm any address
    # onto the list or read and change anyone's preferences
    result = CliRunner().invoke(
        main,
        ["--config", str(pub.path), "serve", "--port", "0"],
        env={"PRESSROOM_SECRET": short},
    )
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: PRESSROOM_SECRET is {len(short)} characters; ")
    assert "at least 16" in line
    assert short not in result.output


def test_create_refuses_a_short_secret(pub: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from pressroom.errors import ConfigError
    from pressroom.web.app import create

    monkeypatch.setenv("PRESSROOM_CONFIG", str(pub.path))
    monkeypatch.setenv("PRESSROOM_SECRET", "s3cret")
    with pytest.raises(ConfigError, match="PRESSROOM_SECRET is 6 characters") as caught:
        create()
    assert "s3cret" not in caught.value.message


def test_a_trusted_proxy_that_is_no_ip_address_is_a_config_error(tmp_path: Path) -> None:
    # compared with each request's peer address, "localhost" never matched: every reader
    # silently shared the proxy's signup and page limits
    from pressroom.errors import ConfigError

    with pytest.raises(ConfigError, match=r"serve\.trusted_proxy: expected the proxy's IP"):
        signup_publication(tmp_path / "p", extra="serve:\n  trusted_proxy: localhost\n")


@pytest.mark.parametrize(
    ("trusted", "peer"), [("0:0::1", "::1"), ("127.0.0.1", "::ffff:127.0.0.1"), ("[::1]", "::1")]
)
def test_the_trusted_proxy_is_recognised_however_it_is_spelt(
    tmp_path: Path, trusted: str, peer: str
) -> None:
    extra = f"signup:\n  per_ip: 1\nserve:\n  trusted_proxy: '{trusted}'\n"
    pub = signup_publication(tmp_path / "p", extra=extra)
    client = Client(make_app(pub, secret=SECRET, clock=lambda: NOW))
    for i, reader in enumerate(("203.0.113.1", "203.0.113.2")):
        client.post(
            "/subscribe",
            data={"email": f"r{i}@example.org", "list": "weekly"},
            headers={"X-Forwarded-For": reader},
            environ_base={"REMOTE_ADDR": peer},
        )
    client.application.site.extras["signup"].wait()  # type: ignore[attr-defined]
    assert len(sent(pub)) == 2  # two readers, each under their own limit
