"""The smtp provider against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from pressroom import config as config_mod
from pressroom.audience.tokens import Signer
from pressroom.delivery import ledger as L
from pressroom.delivery import message
from pressroom.delivery import send as send_mod
from pressroom.delivery.ledger import Ledger
from pressroom.delivery.providers.base import Outcome
from pressroom.delivery.providers.smtp import SmtpProvider, SmtpSettings, classify
from tests.send_helpers import NOW, make_config, rendered_issue


class Recorder:
    """An aiosmtpd handler that records every accepted message and can script replies.

    ``rcpt_script[address]``: replies to give, one per RCPT TO attempt, before accepting;
    ``reject``: address -> a permanent reply given every time.
    """

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.rcpt_script: dict[str, list[str]] = {}
        self.reject: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        with self.lock:
            steps = self.rcpt_script.get(address)
            if steps:
                return steps.pop(0)
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, envelope.original_content))
        return "250 2.0.0 Message accepted"

    def count(self, address: str) -> int:
        return sum(1 for rcpt, _ in self.received if rcpt == address)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Recorder]]:
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def provider_for(port: int, **settings: Any) -> SmtpProvider:
    values = {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5.0, **settings}
    return SmtpProvider(SmtpSettings(**values))


def setup_run(tmp_path: Path, emails: list[str], provider: SmtpProvider, **opts: Any):  # type: ignore[no-untyped-def]
    config = make_config(tmp_path)
    rendered = rendered_issue(2)
    ledger = Ledger(config.state_db)
    frozen = ledger.freeze(
        rendered, [(e, "Reader", "all") for e in emails], window_end=NOW, now=NOW
    )
    signer = Signer(b"smtp-test")
    provider.open(message.content_for(config, rendered, provider=provider, now=NOW))
    factory = message.RecipientFactory(config, rendered, signer)
    values = dict(
        rate=0.0,
        concurrency=3,
        batch_size=5,
        max_attempts=6,
        max_retry_time=60.0,
        max_consecutive_failures=50,
        backoff_base=0.01,
    )
    values.update(opts)
    return ledger, frozen, factory, send_mod.SendOptions(**values)  # type: ignore[arg-type]


def test_every_recipient_gets_one_complete_message(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    controller, handler = smtp_server
    emails = [f"reader{i}@example.org" for i in range(23)]
    provider = provider_for(controller.port)
    ledger, frozen, factory, options = setup_run(tmp_path, emails, provider)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    provider.close()
    assert summary.sent == 23 and summary.failed == 0
    assert sorted(r for r, _ in handler.received) == sorted(emails)
    rcpt, raw = handler.received[0]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == rcpt
    assert msg["Message-ID"].endswith("@theduran.example>")
    assert msg["List-Unsubscribe"].startswith("<https://theduran.example/unsubscribe?t=")
    assert b"=?" not in raw.split(b"List-Unsubscribe:", 1)[1].split(b"\r\n", 1)[0]
    assert msg.get_body(("plain",)).get_content().startswith("Hello Reader")
    # the provider message id in the ledger is the message's own Message-ID
    stored = ledger.db.execute(
        "SELECT message_id FROM deliveries WHERE email=?", (rcpt,)
    ).fetchone()[0]
    assert stored == msg["Message-ID"]


def test_temporary_replies_are_retried_and_550_fails_for_good(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    controller, handler = smtp_server
    emails = [f"reader{i}@example.org" for i in range(12)]
    handler.rcpt_script = {
        "reader1@example.org": ["421 4.7.0 too many connections, closing", "451 4.3.0 try later"],
        "reader2@example.org": ["454 4.7.0 TLS not available now"],
        "reader3@example.org": ["452 4.2.2 mailbox full", "451 4.3.0 try later"],
    }
    handler.reject = {
        "reader5@example.org": "550 5.1.1 no such user",
        "reader6@example.org": "554 5.7.1 rejected as spam",
    }
    provider = provider_for(controller.port)
    ledger, frozen, factory, options = setup_run(tmp_path, emails, provider)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    provider.close()
    assert summary.sent == 10 and summary.failed == 2
    for address in emails:
        expected = 0 if address in handler.reject else 1
        assert handler.count(address) == expected, address
    reasons = dict(ledger.failures(2))
    assert reasons["reader5@example.org"] == "SMTP 550: 5.1.1 no such user"
    assert reasons["reader6@example.org"] == "SMTP 554: 5.7.1 rejected as spam"
    assert summary.retried == 5
    assert ledger.counts(2)[L.SENT] == 10


def test_only_bad_address_bounces_are_suppressed() -> None:
    assert classify(550, b"5.1.1 no such user") == (Outcome.PERMANENT, True)
    assert classify(554, b"5.7.1 spam") == (Outcome.PERMANENT, False)
    assert classify(451, b"4.3.0 later") == (Outcome.RETRY, False)


def test_one_connection_per_worker_is_reused(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    controller, handler = smtp_server
    emails = [f"reader{i}@example.org" for i in range(40)]
    provider = provider_for(controller.port)
    ledger, frozen, factory, options = setup_run(tmp_path, emails, provider, concurrency=2)
    send_mod.run(ledger, frozen, provider, factory, options)
    connections = len(provider._all)
    provider.close()
    assert 1 <= connections <= 2
    assert len(handler.received) == 40


def test_a_dropped_connection_is_reconnected(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    controller, _handler = smtp_server
    provider = provider_for(controller.port)
    ledger, _frozen, factory, _options = setup_run(
        tmp_path, [f"r{i}@example.org" for i in range(4)], provider, concurrency=1, batch_size=2
    )
    rows = ledger.pending(2, 0, 2)
    recipients = [factory.make(r.email, r.name, r.variant) for r in rows]
    assert [r.outcome for r in provider.send(recipients)] == [Outcome.SENT, Outcome.SENT]
    provider._local.conn.sock.close()  # the server side sees the connection drop
    first = provider.send(recipients[:1])[0]
    # the broken socket is noticed and retried, then the next message reconnects
    assert first.outcome in (Outcome.RETRY, Outcome.SENT)
    assert provider.send(recipients[1:])[0].outcome is Outcome.SENT
    provider.close()


def test_rejected_login_stops_the_run_and_names_the_env_vars(tmp_path: Path) -> None:
    handler = Recorder()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        auth_require_tls=False,
        authenticator=lambda *a: AuthResult(success=False, handled=False),
    )
    controller.start()
    try:
        config = make_config(
            tmp_path,
            extra=f"providers:\n  smtp:\n    host: 127.0.0.1\n    port: {controller.port}\n"
            "    security: none\n    username_env: T_SMTP_USER\n    password_env: T_SMTP_PASS\n",
        )
        provider = send_mod.make_provider(
            config, "smtp", {"T_SMTP_USER": "ed", "T_SMTP_PASS": "hunter2-secret"}
        )
        ledger, frozen, factory, options = setup_run(
            tmp_path,
            ["a@example.org", "b@example.org"],
            provider,  # type: ignore[arg-type]
        )
        summary = send_mod.run(ledger, frozen, provider, factory, options)
        provider.close()
    finally:
        controller.stop()
    assert summary.stopped and "T_SMTP_USER" in summary.stopped and "T_SMTP_PASS" in summary.stopped
    assert "535" in summary.stopped
    assert "hunter2-secret" not in summary.stopped
    assert ledger.counts(2)[L.PENDING] == 2 and handler.received == []


def test_login_from_env_vars_is_accepted(tmp_path: Path) -> None:
    seen: list[tuple[bytes, bytes]] = []

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        seen.append((data.login, data.password))
        return AuthResult(success=True)

    handler = Recorder()
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), auth_require_tls=False, authenticator=auth
    )
    controller.start()
    try:
        settings = config_mod.build_settings(
            SmtpSettings,
            {
                "host": "127.0.0.1",
                "port": controller.port,
                "security": "none",
                "username_env": "U",
                "password_env": "P",
            },
            "providers.smtp",
            tmp_path,
        )
        provider = SmtpProvider.from_env(settings, {"U": "editor", "P": "pw"})
        ledger, frozen, factory, options = setup_run(tmp_path, ["a@example.org"], provider)  # type: ignore[arg-type]
        summary = send_mod.run(ledger, frozen, provider, factory, options)
        provider.close()
    finally:
        controller.stop()
    assert summary.sent == 1
    assert seen == [(b"editor", b"pw")]


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_with_a_private_ca(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    handler = Recorder()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_ctx,
        require_starttls=True,
    )
    controller.start()
    try:
        provider = provider_for(controller.port, security="starttls", ca_file=cert)
        ledger, frozen, factory, options = setup_run(
            tmp_path, ["a@example.org", "b@example.org"], provider
        )
        summary = send_mod.run(ledger, frozen, provider, factory, options)
        provider.close()
    finally:
        controller.stop()
    assert summary.sent == 2
    assert sorted(r for r, _ in handler.received) == ["a@example.org", "b@example.org"]


def test_a_server_without_starttls_is_a_config_error(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    controller, _ = smtp_server
    provider = provider_for(controller.port, security="starttls")
    from pressroom.errors import ProviderConfigError

    with pytest.raises(ProviderConfigError, match="does not offer STARTTLS"):
        provider._connect()
    provider.close()


def test_digest_send_over_smtp_end_to_end_with_a_bounce(demo: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from pressroom.audience.subscribers import iter_subscribers, load_suppressed
    from pressroom.cli import main

    controller, handler = smtp_server
    cfg = demo / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"providers:\n  smtp:\n    host: 127.0.0.1\n    port: {controller.port}\n"
        "    security: none\n",
        encoding="utf-8",
    )
    config = config_mod.load(cfg)
    readers = sorted(s.email for s in iter_subscribers(config, list_=config.sending.list))
    bounced = readers[0]
    handler.reject = {bounced: "550 5.1.1 mailbox does not exist"}
    result = CliRunner().invoke(
        main,
        ["--config", str(cfg), "digest", "send", "--provider", "smtp", "--now", "2026-11-25T09:00"],
        env={"PRESSROOM_SECRET": "e2e"},
    )
    assert result.exit_code == 1, result.output  # one recipient failed
    assert sorted(r for r, _ in handler.received) == readers[1:]
    assert f"failed: {bounced}: SMTP 550: 5.1.1 mailbox does not exist" in result.output
    report = json.loads(next((demo / "reports").glob("issue-1-*.json")).read_text())
    assert report["failures"] == [
        {"email": bounced, "reason": "SMTP 550: 5.1.1 mailbox does not exist"}
    ]
    assert report["status"] == "complete"  # failed for good: the issue is settled
    assert bounced in load_suppressed(config)  # a bad address is never mailed again


def test_implicit_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=server_ctx)
    controller.start()
    try:
        provider = provider_for(controller.port, security="tls", ca_file=cert)
        ledger, frozen, factory, options = setup_run(tmp_path, ["a@example.org"], provider)
        summary = send_mod.run(ledger, frozen, provider, factory, options)
        provider.close()
        # without the private CA the certificate is refused: a configuration error, not a retry
        untrusted = provider_for(controller.port, security="tls")
        from pressroom.errors import ProviderConfigError

        with pytest.raises(ProviderConfigError, match="TLS"):
            untrusted._connect()
    finally:
        controller.stop()
    assert summary.sent == 1 and [r for r, _ in handler.received] == ["a@example.org"]


def test_a_connection_setup_error_stops_the_run_with_nothing_uncertain(
    tmp_path: Path,
    smtp_server,  # type: ignore[no-untyped-def]
) -> None:
    from pressroom.errors import ProviderConfigError

    controller, handler = smtp_server
    provider = provider_for(controller.port, security="starttls")  # the server has no STARTTLS
    ledger, frozen, factory, options = setup_run(
        tmp_path, [f"r{i}@example.org" for i in range(12)], provider
    )
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    provider.close()
    assert isinstance(summary.error, ProviderConfigError)
    assert summary.stopped and "STARTTLS" in summary.stopped
    counts = ledger.counts(2)
    assert counts[L.PENDING] == 12 and counts[L.UNCERTAIN] == 0
    assert handler.received == []


# --- where the connection breaks decides: retry (nothing handed over) or uncertain ---------


class Breaking(Recorder):
    """A Recorder that breaks the connection at one point, once per scripted address.

    ``after_data``: the message is received and recorded, then the connection closes with no
    reply; ``silent_after_data``: recorded, then no reply until the client times out;
    ``at_rcpt``: the connection closes at RCPT TO, before any data.
    """

    def __init__(self) -> None:
        super().__init__()
        self.breaks: dict[str, str] = {}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.breaks.get(address) == "at_rcpt":
            del self.breaks[address]
            server.transport.close()
            return "250 OK"  # never reaches the client
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        reply = await super().handle_DATA(server, session, envelope)
        how = self.breaks.pop(envelope.rcpt_tos[0], None)
        if how == "after_data":
            server.transport.close()
        elif how == "silent_after_data":
            await asyncio.sleep(1.5)
        return reply


@pytest.fixture
def breaking_server() -> Iterator[tuple[Controller, Breaking]]:
    handler = Breaking()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.mark.parametrize("how", ["after_data", "silent_after_data"])
def test_no_reply_after_the_message_data_is_uncertain_and_not_resent(
    tmp_path: Path,
    breaking_server: tuple[Controller, Breaking],
    how: str,
) -> None:
    controller, handler = breaking_server
    emails = [f"reader{i}@example.org" for i in range(6)]
    handler.breaks = {"reader2@example.org": how}
    provider = provider_for(controller.port, timeout=0.5)
    ledger, frozen, factory, options = setup_run(tmp_path, emails, provider, concurrency=1)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    provider.close()
    # the server has the message: sending it again would deliver it twice
    assert handler.count("reader2@example.org") == 1
    assert all(handler.count(e) == 1 for e in emails)
    assert summary.sent == 5 and summary.uncertain == 1 and summary.retried == 0
    assert ledger.row_states(2)["reader2@example.org"] == L.UNCERTAIN
    [(email, reason)] = summary.uncertainties
    assert email == "reader2@example.org" and "no reply after the message data" in reason


def test_a_drop_before_the_message_data_is_retried(
    tmp_path: Path, breaking_server: tuple[Controller, Breaking]
) -> None:
    controller, handler = breaking_server
    emails = [f"reader{i}@example.org" for i in range(6)]
    handler.breaks = {"reader3@example.org": "at_rcpt"}
    provider = provider_for(controller.port)
    ledger, frozen, factory, options = setup_run(tmp_path, emails, provider, concurrency=1)
    summary = send_mod.run(ledger, frozen, provider, factory, options)
    provider.close()
    assert summary.sent == 6 and summary.uncertain == 0 and summary.retried == 1
    assert all(handler.count(e) == 1 for e in emails)


def test_a_refused_connection_is_retried(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        provider = provider_for(s.getsockname()[1])
        ledger, _frozen, factory, _options = setup_run(tmp_path, ["a@example.org"], provider)
        [row] = ledger.pending(2, 0, 1)
        [result] = provider.send([factory.make(row.email, row.name, row.variant)])
        provider.close()
    assert result.outcome is Outcome.RETRY
    assert "ConnectionRefusedError" in (result.error or "")


class OddReply(Recorder):
    """Records the message, then answers its data with ``odd[address]`` (once) instead of 250."""

    def __init__(self) -> None:
        super().__init__()
        self.odd: dict[str, str] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        return self.odd.pop(envelope.rcpt_tos[0], reply)


@pytest.mark.parametrize(
    ("reply", "state"),
    [
        ("Queued as 4F2A1", L.UNCERTAIN),  # no reply code at all (smtplib: -1)
        ("299 2.0.0 queued", L.SENT),  # a 2xx that is not 250: done (RFC 5321 4.2.1)
        ("354 go ahead", L.UNCERTAIN),  # a reply that belongs to another command
        ("250-2.0.0 queued\r\n250 2.0.0 as 4F2A1", L.SENT),  # multi-line 250
        ("552 5.3.4 message too big", L.FAILED),  # a refusal after the data is definite
    ],
)
def test_an_odd_reply_after_the_message_data_is_never_retried(
    tmp_path: Path, reply: str, state: str
) -> None:
    handler = OddReply()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        emails = [f"reader{i}@example.org" for i in range(4)]
        handler.odd = {"reader1@example.org": reply}
        provider = provider_for(controller.port, timeout=2)
        ledger, frozen, factory, options = setup_run(tmp_path, emails, provider, concurrency=1)
        summary = send_mod.run(ledger, frozen, provider, factory, options)
        provider.close()
    finally:
        controller.stop()
    # the server has the message: a retry would deliver it a second time
    assert all(handler.count(e) == 1 for e in emails), handler.received
    assert ledger.row_states(2)["reader1@example.org"] == state
    assert summary.retried == 0
    assert summary.sent == (4 if state == L.SENT else 3)
