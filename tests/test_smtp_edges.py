"""The smtp provider's edges against a real aiosmtpd server: an unreachable server in
``providers check``, and internationalised (SMTPUTF8, RFC 6531) addresses."""

from __future__ import annotations

import base64
import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner

from pressroom.cli import main
from pressroom.delivery import send as send_mod
from tests.test_smtp import Recorder, free_port, provider_for, setup_run

NOW = ("--now", "2026-11-25T09:00")


def smtp_config(demo: Path, port: int) -> Path:
    cfg = demo / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"providers:\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n"
        "    security: none\n    timeout: 5\n",
        encoding="utf-8",
    )
    return cfg


def test_check_names_an_unreachable_server_in_one_line(demo: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = s.getsockname()[1]
        cfg = smtp_config(demo, port)
        result = CliRunner().invoke(main, ["--config", str(cfg), "providers", "check", "smtp"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert f"smtp: cannot reach 127.0.0.1:{port}: ConnectionRefusedError" in lines[0]
    assert lines[0].endswith("check providers.smtp.host/port")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_reports_a_reachable_server(demo: Path) -> None:
    controller = Controller(Recorder(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        cfg = smtp_config(demo, controller.port)
        result = CliRunner().invoke(main, ["--config", str(cfg), "providers", "check", "smtp"])
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert f"connected to 127.0.0.1:{controller.port}" in result.output


@pytest.fixture
def utf8_server() -> Iterator[tuple[Controller, Recorder]]:
    """An aiosmtpd server that offers SMTPUTF8 (RFC 6531)."""
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=True)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def test_a_non_ascii_address_goes_out_with_smtputf8_when_offered(
    tmp_path: Path, utf8_server: tuple[Controller, Recorder]
) -> None:
    controller, handler = utf8_server
    emails = ["josé@example.com", "reader1@example.org", "zoë.ünïcode@example.org"]
    provider = provider_for(controller.port)
    ledger, frozen, factory, options = setup_run(tmp_path, emails, provider, concurrency=1)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    provider.close()
    assert summary.sent == 3 and summary.failed == 0
    assert sorted(r for r, _ in handler.received) == sorted(emails)
    raw = dict(handler.received)["josé@example.com"]
    msg = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "josé@example.com"
    assert "To: Reader <josé@example.com>\r\n".encode() in raw  # RFC 6532: raw UTF-8


def test_a_non_ascii_address_fails_alone_when_smtputf8_is_not_offered(
    demo: Path, tmp_path: Path
) -> None:
    import json

    handler = Recorder()
    # aiosmtpd's Controller offers SMTPUTF8 unless told not to
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    try:
        with (demo / "subscribers" / "intl.csv").open("w", encoding="utf-8") as f:
            f.write("email,name,lists,tags,status,subscribed_at\n")
            f.write("josé@example.com,José,weekly,,active,2026-01-12\n")
        cfg = smtp_config(demo, controller.port)
        result = CliRunner().invoke(
            main,
            ["--config", str(cfg), "digest", "send", "--provider", "smtp", "--yes", *NOW],
            env={"PRESSROOM_SECRET": "utf8"},
        )
    finally:
        controller.stop()
    assert result.exit_code == 1, result.output  # one recipient failed; no traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    received = [r for r, _ in handler.received]
    assert "josé@example.com" not in received
    assert "ada@example.com" in received and len(received) == len(set(received))
    report = json.loads(next((demo / "reports").glob("issue-1-*.json")).read_text())
    [failure] = report["failures"]
    assert failure["email"] == "josé@example.com"
    assert "does not offer SMTPUTF8" in failure["reason"]
    assert report["counts"]["sent"] == len(received)
    assert report["status"] == "complete"


def check_login(demo: Path, refuse: Any, user: str, password: str) -> Any:
    """`providers check smtp` with ``user``/``password`` against a server that answers its
    AUTH with ``refuse``; the CLI result."""
    controller = Controller(
        Recorder(),
        hostname="127.0.0.1",
        port=free_port(),
        auth_require_tls=False,
        authenticator=refuse,
    )
    controller.start()
    try:
        cfg = smtp_config(demo, controller.port)
        cfg.write_text(
            cfg.read_text(encoding="utf-8")
            + "    username_env: T_USER\n    password_env: T_PASS\n",
            encoding="utf-8",
        )
        return CliRunner().invoke(
            main,
            ["--config", str(cfg), "providers", "check", "smtp"],
            env={"T_USER": user, "T_PASS": password},
        )
    finally:
        controller.stop()


def test_a_password_echoed_back_in_base64_is_blanked(demo: Path) -> None:
    password = "hunter2+/secret=="
    user = "ed"
    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()  # AUTH PLAIN
    alone = base64.b64encode(password.encode()).decode()  # AUTH LOGIN

    def refuse(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        # a server that quotes what it got back to the client
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 no: {plain} {alone}")

    result = check_login(demo, refuse, user, password)
    assert result.exit_code == 1, result.output
    assert "rejected the login (SMTP 535: 5.7.8 no: ***** *****)" in result.output
    for form in (password, plain, alone):
        assert form not in result.output


USER = "newsletter@mg.example.org"


def test_the_smtp_user_name_is_blanked_like_the_password(demo: Path) -> None:
    alone = base64.b64encode(USER.encode()).decode()  # AUTH LOGIN sends it on its own

    def refuse(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 {USER} ({alone}) no")

    result = check_login(demo, refuse, USER, "pw-0123")
    assert result.exit_code == 1, result.output
    assert "rejected the login (SMTP 535: 5.7.8 ***** (*****) no)" in result.output
    assert USER not in result.output and alone not in result.output


def test_a_reply_that_quotes_the_user_name_is_blanked_in_the_ledger(tmp_path: Path) -> None:
    handler = Recorder()
    handler.reject["a@example.org"] = f"550 5.7.1 {USER} may not relay to a@example.org"
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        auth_require_tls=False,
        authenticator=lambda *a: AuthResult(success=True),
    )
    controller.start()
    try:
        provider = provider_for(controller.port, username_env="U", password_env="P")
        provider = type(provider).from_env(provider.settings, {"U": USER, "P": "pw-0123"})
        ledger, frozen, factory, options = setup_run(tmp_path, ["a@example.org"], provider)
        send_mod.run(ledger, frozen, provider, factory, options)
        provider.close()
    finally:
        controller.stop()
    [(email_, reason)] = ledger.failures(frozen.number)
    assert email_ == "a@example.org"
    assert "***** may not relay" in reason and USER not in reason
