"""The SMTP bounce mailbox: `pressroom suppressions sync` reads bounces over IMAP with TLS.

A real IMAP server (pymap, in-memory backend) runs on 127.0.0.1 with STARTTLS and a
certificate made by the test (trusted through ``bounces.imap.ca_file``). The real-world
samples in tests/bounces/ are appended to its INBOX; the sync recognises the DSNs
(flufl.bounce) and the ARF report, applies them with the one policy and moves them to the
processed folder, leaving a reader's ordinary reply where it is.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import email
import imaplib
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pressroom.cli import main
from pressroom.delivery.mailbox import Unreadable, read_report
from tests.send_helpers import make_config

SAMPLES = Path(__file__).parent / "bounces"
USER, PASSWORD = "bounces", "imap-pass"
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
REPLY = b"From: Reader <reader@example.org>\r\nTo: bounces@theduran.example\r\nSubject: Re: The Duran weekly\r\nMessage-ID: <reply-1@example.org>\r\nDate: Wed, 25 Nov 2026 08:00:00 +0000\r\n\r\nThanks for the issue!\r\n"  # noqa: E501

EXPECTED = {
    "xxxxx@local.ie": "bounced",  # postfix.eml
    "delangen@its.tudelft.nl": "bounced",  # exim.eml
    "internetsailing@gmail.com": "bounced",  # gmail.eml
    "djbennett@ikon.com": "bounced",  # outlook.eml
    "user@example.com": "complained",  # arf.eml
}


@dataclass
class Imap:
    port: int
    ca_file: Path

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.starttls(ssl_context=ssl.create_default_context(cafile=str(self.ca_file)))
        conn.login(USER, PASSWORD)
        return conn

    def append(self, *messages: bytes) -> None:
        conn = self.client()
        for raw in messages:
            status, _ = conn.append('"INBOX"', None, None, raw)
            assert status == "OK"
        conn.logout()

    def subjects(self, folder: str) -> list[str]:
        conn = self.client()
        status, _ = conn.select(f'"{folder}"')
        if status != "OK":
            conn.logout()
            return []
        _, data = conn.uid("SEARCH", None, "ALL")  # type: ignore[arg-type]
        out = []
        for uid in data[0].split():
            _, got = conn.uid("FETCH", uid.decode(), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out.append(str(email.message_from_bytes(got[0][1])["Subject"]))
        conn.logout()
        return sorted(out)


def _certificate(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "imap-cert.pem", tmp / "imap-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def imap(tmp_path: Path) -> Iterator[Imap]:
    cert, key = _certificate(tmp_path)
    port = _free_port()
    run = "import sys; from pymap.main import main; sys.exit(main())"
    args = [sys.executable, "-c", run, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--cert", str(cert), "--key", str(key), "--no-service", "admin"]
    args += ["dict", "--demo-user", USER, "--demo-password", PASSWORD]
    log = tmp_path / "pymap.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"pymap did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield Imap(port, cert)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def publication(root: Path, server: Imap) -> Path:
    make_config(
        root,
        sending="provider: smtp\n",
        extra=(
            "bounces:\n  imap:\n    host: 127.0.0.1\n"
            f"    port: {server.port}\n    user: {USER}\n    security: starttls\n"
            f"    ca_file: {server.ca_file}\n    password_env: TEST_IMAP_PASSWORD\n"
            "    processed_folder: Processed\n"
        ),
    )
    return root / "config.yaml"


def sync(config: Path, *args: str, password: str = PASSWORD) -> Any:
    return CliRunner().invoke(
        main,
        ["--config", str(config), "suppressions", "sync", *args],
        env={"TEST_IMAP_PASSWORD": password},
    )


def suppressed(root: Path) -> dict[str, str]:
    path = root / "subscribers" / "suppressed.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as f:
        return {row["email"].lower(): row["reason"] for row in csv.DictReader(f)}


def samples() -> list[bytes]:
    return [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]


# --- reading the samples ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "address"),
    [
        ("postfix.eml", "hard_bounce", "xxxxx@local.ie"),
        ("exim.eml", "hard_bounce", "delangen@its.tudelft.nl"),
        ("gmail.eml", "hard_bounce", "internetsailing@gmail.com"),
        ("gmail-delay.eml", "soft_bounce", "luis.hiam@gmail.com"),
        ("outlook.eml", "hard_bounce", "DJBENNETT@IKON.COM"),
        ("arf.eml", "complaint", "user@example.com"),
    ],
)
def test_each_sample_is_recognised(name: str, kind: str, address: str) -> None:
    [event] = read_report((SAMPLES / name).read_bytes(), NOW)
    assert (event.provider, event.kind, event.address) == ("imap", kind, address)
    assert event.id and event.time.tzinfo is not None


def test_a_reply_is_no_report() -> None:
    assert read_report(REPLY, NOW) == []


# --- the mailbox over IMAP ------------------------------------------------------------------


def test_sync_reads_the_mailbox_applies_and_files_away(tmp_path: Path, imap: Imap) -> None:
    root = tmp_path / "pub"
    config = publication(root, imap)
    imap.append(*samples(), REPLY)
    result = sync(config, "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    assert suppressed(root) == EXPECTED
    assert "5 newly suppressed (4 bounced, 1 complained)" in result.output
    # the reports were moved; the reader's reply stays for a person to read
    assert imap.subjects("INBOX") == ["Re: The Duran weekly"]
    assert len(imap.subjects("Processed")) == 6
    # nothing new: a second sync reads nothing and changes nothing
    before = (root / "subscribers" / "suppressed.csv").read_bytes()
    again = sync(config, "--now", "2026-11-25T10:00")
    assert again.exit_code == 0, again.output
    assert "0 newly suppressed" in again.output
    assert (root / "subscribers" / "suppressed.csv").read_bytes() == before


def test_a_dry_run_moves_nothing(tmp_path: Path, imap: Imap) -> None:
    root = tmp_path / "pub"
    config = publication(root, imap)
    imap.append(*samples())
    result = sync(config, "--dry-run", "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    assert suppressed(root) == {}
    assert len(imap.subjects("INBOX")) == 6 and imap.subjects("Processed") == []


def test_a_redelivered_report_changes_nothing(tmp_path: Path, imap: Imap) -> None:
    root = tmp_path / "pub"
    config = publication(root, imap)
    imap.append((SAMPLES / "postfix.eml").read_bytes())
    assert sync(config, "--now", "2026-11-25T09:00").exit_code == 0
    imap.append((SAMPLES / "postfix.eml").read_bytes())  # the same DSN again
    again = sync(config, "--now", "2026-11-25T10:00")
    assert again.exit_code == 0, again.output
    assert "0 newly suppressed" in again.output
    assert suppressed(root) == {"xxxxx@local.ie": "bounced"}


def test_a_wrong_password_is_a_warning_naming_the_variable(tmp_path: Path, imap: Imap) -> None:
    root = tmp_path / "pub"
    config = publication(root, imap)
    imap.append(*samples())
    result = sync(config, password="wrong-password")
    assert result.exit_code == 1
    assert "TEST_IMAP_PASSWORD" in result.output
    assert "wrong-password" not in result.output
    assert suppressed(root) == {} and len(imap.subjects("INBOX")) == 6


def test_an_untrusted_certificate_is_refused(tmp_path: Path, imap: Imap) -> None:
    root = tmp_path / "pub"
    config = publication(root, imap)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        "\n".join(line for line in text.splitlines() if "ca_file" not in line) + "\n",
        encoding="utf-8",
    )
    imap.append(*samples())
    result = sync(config)
    assert result.exit_code == 1
    assert "cannot connect securely" in result.output
    assert suppressed(root) == {}


def test_smtp_without_a_bounce_mailbox_has_nothing_to_pull(tmp_path: Path) -> None:
    make_config(tmp_path, sending="provider: smtp\n")
    result = CliRunner().invoke(
        main,
        ["--config", str(tmp_path / "config.yaml"), "suppressions", "sync", "--provider", "smtp"],
    )
    assert result.exit_code == 2
    assert "smtp keeps no suppression list to pull" in result.output


# --- the envelope sender ------------------------------------------------------------------


class _Envelopes:
    """An aiosmtpd handler that records each transaction's envelope sender."""

    def __init__(self) -> None:
        self.senders: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.senders.append(envelope.mail_from)
        return "250 2.0.0 accepted"


@pytest.mark.parametrize(
    ("return_path", "expected"),
    [
        ("bounces@theduran.example", "bounces@theduran.example"),
        (None, "newsletter@theduran.example"),
    ],
)
def test_the_envelope_sender_is_the_configured_return_path(
    return_path: str | None, expected: str
) -> None:
    from aiosmtpd.controller import Controller

    from pressroom.delivery.providers.base import Content, Recipient
    from pressroom.delivery.providers.smtp import SmtpProvider, SmtpSettings
    from pressroom.models import RenderedVariant

    handler = _Envelopes()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        provider = SmtpProvider(
            SmtpSettings(
                host="127.0.0.1",
                port=controller.port,
                security="none",
                timeout=5.0,
                return_path=return_path,
            )
        )
        variant = RenderedVariant(key="all", html="<p>Hi</p>", text="Hi")
        provider.open(
            Content(
                issue=3,
                subject="Issue 3",
                from_="The Duran <newsletter@theduran.example>",
                reply_to=None,
                variants={"all": variant},
            )
        )
        [result] = provider.send([Recipient("reader@example.org", "", "all", {}, {})])
        provider.close()
    finally:
        controller.stop()
    assert result.outcome.value == "sent", result.error
    assert handler.senders == [expected]


def test_weekly_reads_the_mailbox_before_it_sends(demo: Path, imap: Imap) -> None:
    """A bounce waiting in the mailbox keeps its address out of the next issue."""
    from aiosmtpd.controller import Controller

    from tests.send_helpers import write_subscribers

    handler = _Envelopes()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        cfg = demo / "config.yaml"
        text = cfg.read_text(encoding="utf-8").replace("provider: file", "provider: smtp")
        cfg.write_text(
            text + f"providers:\n  smtp:\n    host: 127.0.0.1\n    port: {controller.port}\n"
            "    security: none\n    return_path: bounces@theduran.example\n"
            "bounces:\n  imap:\n    host: 127.0.0.1\n"
            f"    port: {imap.port}\n    user: {USER}\n    security: starttls\n"
            f"    ca_file: {imap.ca_file}\n    password_env: TEST_IMAP_PASSWORD\n",
            encoding="utf-8",
        )
        readers = ["a@example.org", "xxxxx@local.ie", "b@example.org"]
        write_subscribers(demo, [f"{e},Reader,weekly,,active," for e in readers])
        imap.append((SAMPLES / "postfix.eml").read_bytes())
        result = CliRunner().invoke(
            main,
            ["--config", str(cfg), "weekly", "--yes", "--now", "2026-11-25T09:00"],
            env={"TEST_IMAP_PASSWORD": PASSWORD, "PRESSROOM_SECRET": "s3cret"},
        )
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert "1 newly suppressed (1 bounced)" in result.output
    assert handler.senders == ["bounces@theduran.example"] * 2  # a@ and b@, not the bounce
    assert suppressed(demo)["xxxxx@local.ie"] == "bounced"


@contextlib.contextmanager
def _implicit_tls(server: Imap, cert: Path, key: Path) -> Iterator[int]:
    """A port that speaks implicit TLS (like 993) and relays to the IMAP server in the clear."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()
    opened: list[socket.socket] = []

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not done.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                tls = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", server.port))
            opened.extend((tls, upstream))
            for a, b in ((tls, upstream), (upstream, tls)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(timeout=2)
        listener.close()
        for sock in opened:
            sock.close()


def test_implicit_tls_the_default(tmp_path: Path, imap: Imap) -> None:
    """``security: tls`` (port 993 in production) wraps the connection in TLS from the start."""
    root = tmp_path / "pub"
    config = publication(root, imap)
    imap.append((SAMPLES / "exim.eml").read_bytes())
    key = imap.ca_file.with_name("imap-key.pem")
    with _implicit_tls(imap, imap.ca_file, key) as port:
        text = config.read_text(encoding="utf-8")
        text = text.replace(f"port: {imap.port}", f"port: {port}")
        config.write_text(text.replace("security: starttls", "security: tls"), encoding="utf-8")
        result = sync(config, "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    assert suppressed(root) == {"delangen@its.tudelft.nl": "bounced"}
    assert imap.subjects("INBOX") == []


# a message with no From header (flufl.bounce's Yale detector fails on it), and an ARF report
# whose Original-Rcpt-To is an SMTPUTF8 address in raw UTF-8 (the email package hands back a
# Header object for it)
NO_FROM = b"To: bounces@theduran.example\r\nSubject: no sender\r\nMessage-ID: <nofrom-1@example.org>\r\n\r\nhello\r\n"  # noqa: E501
ARF_8BIT = (
    (SAMPLES / "arf.eml")
    .read_bytes()
    .replace(
        b"Original-Rcpt-To: <user@example.com>",
        b"Original-Rcpt-To: <\xc3\xa9l\xc3\xa9@example.com>",
    )
    .replace(b"Message-ID: <arf-1@example.com>", b"Message-ID: <arf-8bit@example.com>")
)


@pytest.mark.parametrize("raw", [NO_FROM, ARF_8BIT, b"", b"\xff\xfe\x00garbage"])
def test_a_message_nobody_can_read_never_crashes_the_reader(raw: bytes) -> None:
    try:
        found = read_report(raw, NOW)
    except Unreadable:
        return  # left in the folder for a person
    assert all(isinstance(e.address, str) for e in found)


def test_a_report_dated_outside_utcs_calendar_is_applied_dated_now(
    tmp_path: Path, imap: Imap
) -> None:
    # 31 Dec 9999 at -14:00 is year 10000 in UTC, where events are keyed and stored
    raw = re.sub(
        rb"(?m)^Date: .*$",
        b"Date: Fri, 31 Dec 9999 23:59:59 -1400",
        (SAMPLES / "arf.eml").read_bytes(),
        count=1,
    )
    assert read_report(raw, NOW)[0].time == NOW
    root = tmp_path / "pub"
    config = publication(root, imap)
    imap.append(raw)
    result = sync(config, "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert suppressed(root) == {"user@example.com": "complained"}
    assert imap.subjects("INBOX") == []


def test_an_unreadable_message_does_not_stop_the_sync(tmp_path: Path, imap: Imap) -> None:
    root = tmp_path / "pub"
    config = publication(root, imap)
    imap.append(NO_FROM, ARF_8BIT, (SAMPLES / "postfix.eml").read_bytes())
    result = sync(config, "--now", "2026-11-25T09:00")
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert suppressed(root) == {"xxxxx@local.ie": "bounced", "élé@example.com": "complained"}
    assert imap.subjects("INBOX") == ["no sender"]  # left for a person to read
    again = sync(config, "--now", "2026-11-25T10:00")
    assert again.exit_code == 0, again.output
