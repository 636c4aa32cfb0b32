"""Shared by the webhook tests: a publication with every HTTP provider, signed payloads,
and an HTTPS stand-in for SNS's certificate host on 127.0.0.1 (with its own test CA)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import functools
import hashlib
import hmac
import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter
from werkzeug.test import Client

from pressroom.audience.events import Applied, Event
from pressroom.config import Config, load
from pressroom.web.app import make_app
from pressroom.web.hooks import HookReceiver
from tests.send_helpers import make_config

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
MAILGUN_KEY = "mailgun-signing-key-for-tests"
POSTMARK_CREDS = ("hookuser", "s3cret-pass")
SNS_HOST = "sns.us-east-1.amazonaws.com"
TOPIC = "arn:aws:sns:us-east-1:123456789012:pressroom-bounces"

PROVIDERS = """\
providers:
  mailgun:
    domain: mg.example.org
  sendgrid: {}
  postmark: {}
  ses:
    region: us-east-1
    sns_topic_arn: arn:aws:sns:us-east-1:123456789012:pressroom-bounces
"""


class Recorder:
    """The receiver's own event policy, with a record of every batch it was handed."""

    def __init__(self, config: Config, policy: Callable[[Sequence[Event]], Applied]) -> None:
        self.config = config
        self.policy = policy
        self.calls: list[list[Event]] = []

    def __call__(self, found: Sequence[Event]) -> Applied:
        self.calls.append(list(found))
        return self.policy(found)

    @property
    def events(self) -> list[Event]:
        return [e for call in self.calls for e in call]

    def suppressed(self) -> dict[str, str]:
        """suppressed.csv: address -> reason."""
        path = self.config.subscribers.suppressed
        if not path.exists():
            return {}
        with path.open(encoding="utf-8", newline="") as f:
            return {row["email"]: row["reason"] for row in csv.DictReader(f)}


def ec_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key pair; the public key as SendGrid shows it (base64 DER)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


def sendgrid_headers(private: ec.EllipticCurvePrivateKey, body: bytes, ts: str) -> dict[str, str]:
    signature = private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        "Content-Type": "application/json",
    }


def mailgun_body(
    event: Mapping[str, Any],
    *,
    key: str = MAILGUN_KEY,
    token: str = "t" * 50,
    ts: int | None = None,
) -> bytes:
    timestamp = str(int(NOW.timestamp()) if ts is None else ts)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": dict(event),
        }
    ).encode()


def client(receiver: HookReceiver) -> Client:
    """The app of ``pressroom serve``, in-process, with ``receiver`` answering /hooks/*."""
    app = make_app(
        receiver.config,
        secret=b"s" * 32,
        clock=lambda: NOW,
        env=dict(receiver.env),
        extras={"hooks": receiver},
    )
    return Client(app)


def receiver(
    root: Path, env: Mapping[str, str], session: requests.Session | None = None
) -> tuple[HookReceiver, Recorder]:
    """A receiver for a publication in ``root`` (created once, reused by a second call)."""
    if (root / "config.yaml").exists():
        config = load(root / "config.yaml")
    else:
        config = make_config(root, sending="provider: mailgun\n", extra=PROVIDERS)
    hooks = HookReceiver(config, lambda: NOW, env, session=session)
    rec = Recorder(config, hooks.policy)
    hooks.apply = rec
    return hooks, rec


# --- SNS: a test CA, an HTTPS host for sns.us-east-1.amazonaws.com, a signing cert -------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[str, rsa.RSAPrivateKey] | None = None,
    *,
    ca: bool = False,
    san: str | None = None,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class SNSHost:
    """An HTTPS server on 127.0.0.1 that plays ``sns.us-east-1.amazonaws.com``."""

    port: int
    ca_file: Path
    signing_key: rsa.RSAPrivateKey
    cert_path: str = "/SimpleNotificationService-test.pem"
    hits: list[str] = field(default_factory=list)

    @property
    def cert_url(self) -> str:
        return f"https://{SNS_HOST}{self.cert_path}"

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        """``message`` with SNS's signature fields, signed as SNS signs (v1 SHA1, v2 SHA256)."""
        from pressroom.delivery.sns import string_to_sign

        msg = {**message, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        digest: hashes.HashAlgorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.signing_key.sign(string_to_sign(msg), padding.PKCS1v15(), digest)
        msg["Signature"] = base64.b64encode(signature).decode()
        return msg


@functools.cache
def _rsa(name: str) -> rsa.RSAPrivateKey:
    """One RSA key per role, made once per test run (key generation is the slow part)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextmanager
def sns_host(tmp: Path) -> Iterator[SNSHost]:
    """Serve the signing certificate and SubscribeURL over TLS, trusted by a test CA only."""
    ca_key = _rsa("ca")
    ca = _cert("pressroom test CA", ca_key, ca=True)
    tls_key = _rsa("tls")
    tls = _cert(SNS_HOST, tls_key, ("pressroom test CA", ca_key), san=SNS_HOST)
    signing_key = _rsa("signing")
    signing = _cert("sns.amazonaws.com", signing_key)
    (tmp / "ca.pem").write_bytes(_pem(ca))
    (tmp / "tls.pem").write_bytes(_pem(tls))
    (tmp / "tls.key").write_bytes(
        tls_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    host = SNSHost(0, tmp / "ca.pem", signing_key)
    cert_pem = _pem(signing)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            host.hits.append(self.path)
            if self.path == host.cert_path:
                body, status = cert_pem, 200
            elif self.path.startswith("/?Action=ConfirmSubscription"):
                body, status = b"<ConfirmSubscriptionResponse/>", 200
            else:
                body, status = b"not found", 404
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "tls.pem", tmp / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()


class _ToLocal(HTTPAdapter):
    """Sends ``https://sns.us-east-1.amazonaws.com/…`` to the local host, checking its TLS
    certificate against the test CA under the real host name (like an /etc/hosts entry)."""

    def __init__(self, host: SNSHost, attempts: list[str], trust: bool) -> None:
        self.host = host
        self.attempts = attempts
        self.trust = trust
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = SNS_HOST
        kwargs["assert_hostname"] = SNS_HOST
        super().init_poolmanager(*args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.attempts.append(str(request.url))
        request.url = str(request.url).replace(
            f"https://{SNS_HOST}/", f"https://127.0.0.1:{self.host.port}/", 1
        )
        request.headers["Host"] = SNS_HOST
        kwargs["verify"] = str(self.host.ca_file) if self.trust else True
        return super().send(request, **kwargs)


class _Refuse(HTTPAdapter):
    """Every other URL: recorded and refused (the tests have no network but 127.0.0.1)."""

    def __init__(self, attempts: list[str]) -> None:
        self.attempts = attempts
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.attempts.append(str(request.url))
        raise requests.ConnectionError(f"test network: {request.url} is not reachable")


def sns_session(host: SNSHost, trust: bool = True) -> tuple[requests.Session, list[str]]:
    """A session whose only reachable host is the local SNS stand-in; every URL it was asked
    for is recorded. ``trust``: the test CA is trusted (else only the system's CAs are)."""
    attempts: list[str] = []
    session = requests.Session()
    session.mount("http://", _Refuse(attempts))
    session.mount("https://", _Refuse(attempts))
    session.mount(f"https://{SNS_HOST}/", _ToLocal(host, attempts, trust))
    return session, attempts
