"""Amazon SNS message verification, for SES bounce and complaint notifications.

SNS signs every message it POSTs (``Notification``, ``SubscriptionConfirmation``,
``UnsubscribeConfirmation``) with RSA: ``SignatureVersion`` 1 over SHA1, 2 over SHA256, of a
string made of named fields in a fixed order (each ``Name\\nValue\\n``). The public key is in
the certificate at ``SigningCertURL``, which is fetched only when it is https on a host
``sns.<region>.amazonaws.com`` (no port, no credentials, no redirects followed) and then
cached; ``SubscribeURL`` is fetched only under the same rule. The rule is not a setting: what
tests change is the HTTP session (the transport and the certificate authorities it trusts).

Documentation: https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html ,
https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html ,
https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.prepare.html
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from pressroom.errors import ProviderError, WebhookMalformed, WebhookRejected

HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
MAX_CERTS = 32  # SNS rotates its signing certificate rarely: a handful of URLs at most


def trusted_url(url: object) -> bool:
    """Whether ``url`` is https on ``sns.<region>.amazonaws.com`` (the only host fetched)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and parts.username is None
        and parts.password is None
        and HOST.fullmatch(parts.hostname or "") is not None
        and "@" not in parts.netloc
    )


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed: the type's fields, in order, each ``Name\\nValue\\n``."""
    fields = SIGNED_FIELDS[str(message.get("Type"))]
    out = []
    for name in fields:
        if name in message and message[name] is not None:
            out.append(f"{name}\n{message[name]}\n")
        elif name != "Subject":  # the only optional one
            raise WebhookMalformed(f"ses webhook: SNS message lacks {name}")
    return "".join(out).encode("utf-8")


class SNSVerifier:
    """Verifies SNS messages; keeps the certificates it fetched (one per URL)."""

    def __init__(self, session: requests.Session, timeout: float = 10.0) -> None:
        self.session = session
        self.timeout = timeout
        self._certs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.fetched = 0  # certificates fetched (the rest came from the cache)

    def verify(self, message: Mapping[str, Any], now: datetime) -> None:
        """Raise ``WebhookRejected`` unless ``message`` carries a valid SNS signature."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        if message.get("Type") not in SIGNED_FIELDS:
            raise WebhookMalformed(f"ses webhook: unknown SNS message Type {message.get('Type')!r}")
        version = str(message.get("SignatureVersion", ""))
        algorithm: hashes.HashAlgorithm
        if version == "1":
            algorithm = hashes.SHA1()  # SNS SignatureVersion 1 is defined over SHA1
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            raise WebhookRejected(f"ses webhook: unsupported SignatureVersion {version!r}")
        url = message.get("SigningCertURL")
        if not trusted_url(url):
            raise WebhookRejected(
                f"ses webhook: SigningCertURL {str(url)[:200]!r} is not https on "
                "sns.<region>.amazonaws.com; not fetched"
            )
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected("ses webhook: Signature is not base64") from None
        data = string_to_sign(message)
        cert = self._certificate(str(url))
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise WebhookRejected("ses webhook: the signing certificate is not valid now")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRejected("ses webhook: the signing certificate has no RSA key")
        try:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise WebhookRejected("ses webhook: SNS signature does not verify") from None

    def confirm(self, message: Mapping[str, Any]) -> str:
        """Visit ``SubscribeURL`` of a verified ``SubscriptionConfirmation``."""
        url = message.get("SubscribeURL")
        if not trusted_url(url):
            raise WebhookRejected(
                "ses webhook: SubscribeURL is not https on sns.<region>.amazonaws.com; not visited"
            )
        try:
            response = self.session.get(str(url), timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as e:
            raise ProviderError(f"ses webhook: cannot confirm the subscription: {e}") from None
        if response.status_code != 200:
            raise ProviderError(
                f"ses webhook: confirming the subscription answered HTTP {response.status_code}"
            )
        return f"subscribed to {message.get('TopicArn')}"

    def _certificate(self, url: str) -> Any:
        from cryptography import x509

        with self._lock:
            cert = self._certs.get(url)
        if cert is not None:
            return cert
        try:
            response = self.session.get(url, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as e:
            raise ProviderError(f"ses webhook: cannot fetch the signing certificate: {e}") from None
        if response.status_code != 200:
            raise ProviderError(
                f"ses webhook: the signing certificate URL answered HTTP {response.status_code}"
            )
        try:
            cert = x509.load_pem_x509_certificate(response.content)
        except ValueError:
            raise WebhookRejected("ses webhook: SigningCertURL holds no PEM certificate") from None
        with self._lock:
            if len(self._certs) >= MAX_CERTS:
                self._certs.pop(next(iter(self._certs)))
            self._certs[url] = cert
            self.fetched += 1
        return cert
