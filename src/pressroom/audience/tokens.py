"""Signed reader tokens for one-click unsubscribe, and the List-* header values.

A token is ``base64url(email NUL list) "." base64url(HMAC-SHA256(secret, that)[:16])``: it
carries its own email and list, so the server needs no database, and nobody without the
secret can make one. The secret comes from ``PRESSROOM_SECRET`` (``sending.secret_env``) or,
for a publication that never set one, from ``<state>/secret`` (generated once, mode 0600).

The page that takes the click is ``pressroom.web.unsubscribe``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pressroom.errors import ConfigError, TokenError

if TYPE_CHECKING:
    from pressroom.config import Config

log = logging.getLogger(__name__)

_SIG_BYTES = 16  # 128-bit truncated HMAC-SHA256: unforgeable, and keeps the URL short
_CONTEXT = b"pressroom-unsubscribe-v1\0"  # so the secret can sign other things one day
MAX_TOKEN = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Makes and checks unsubscribe tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise TokenError("the unsubscribe secret is empty")
        self._mac = hmac.new(secret, _CONTEXT, hashlib.sha256)

    def _sign(self, payload: bytes) -> bytes:
        mac = self._mac.copy()  # the keyed state is precomputed: one copy+update per token
        mac.update(payload)
        return mac.digest()[:_SIG_BYTES]

    def token(self, email: str, list_: str) -> str:
        """A URL-safe token naming ``email`` and ``list_``."""
        if "\0" in email or "\0" in list_:
            raise TokenError("an email or list name cannot contain a NUL character")
        payload = f"{email}\0{list_}".encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def verify(self, token: str) -> tuple[str, str]:
        """(email, list) of a genuine token; TokenError for anything else."""
        if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise TokenError("malformed unsubscribe token")
        body, _, sig = token.partition(".")
        try:
            payload = _unb64(body)
            given = _unb64(sig)
        except (binascii.Error, ValueError):
            raise TokenError("malformed unsubscribe token") from None
        if _b64(payload) != body or _b64(given) != sig:  # one spelling per token, no variants
            raise TokenError("malformed unsubscribe token")
        if not hmac.compare_digest(given, self._sign(payload)):
            raise TokenError("unsubscribe token does not verify (tampered, or another secret)")
        try:
            email, list_ = payload.decode("utf-8").split("\0")
        except (UnicodeDecodeError, ValueError):
            raise TokenError("malformed unsubscribe token") from None
        return email, list_


def load_secret(config: Config, env: Mapping[str, str], info: Callable[[str], None]) -> bytes:
    """The signing secret: the env var, else ``<state>/secret`` (made once, mode 0600)."""
    value = env.get(config.sending.secret_env, "")
    if value:
        return value.encode("utf-8")
    path = config.state / "secret"
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ConfigError(
            f"cannot read {path} ({e.strerror}); set {config.sending.secret_env} instead"
        ) from e
    # write aside, then link into place: two first runs at once agree on one secret
    tmp = config.state / f".secret.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        config.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise ConfigError(
            f"cannot create {path} ({e.strerror}); set {config.sending.secret_env} instead"
        ) from e
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            created = True
        except FileExistsError:
            created = False
    finally:
        os.unlink(tmp)
    if created:
        info(
            f"no {config.sending.secret_env} set; generated one in {_show_state(config, path)} "
            f"(keep it: it signs the unsubscribe links; set {config.sending.secret_env} "
            "on servers)"
        )
    return _read_secret(path)


def _read_secret(path: os.PathLike[str]) -> bytes:
    with open(path, encoding="ascii") as f:
        value = f.read().strip()
    if not value:
        raise TokenError(f"{path} is empty; delete it and a new secret is generated")
    return value.encode("ascii")


def _show_state(config: Config, path: os.PathLike[str]) -> str:
    try:
        return str(os.path.relpath(path, config.root))
    except ValueError:
        return str(path)


# --- headers ---------------------------------------------------------------------------


def base_url(config: Config) -> str:
    """Where the unsubscribe server answers (``sending.unsubscribe_url``)."""
    return config.sending.unsubscribe_url or f"{config.publication.url}unsubscribe"


def unsubscribe_url(config: Config, token: str) -> str:
    """The unsubscribe URL for ``token`` (keeps a query string already in the base URL)."""
    base = base_url(config)
    head, _, fragment = base.partition("#")
    joiner = "&" if "?" in head else "?"
    if head.endswith(("?", "&")):
        joiner = ""
    return f"{head}{joiner}t={token}" + (f"#{fragment}" if fragment else "")


def list_unsubscribe_headers(config: Config, url: str) -> dict[str, str]:
    """``List-Unsubscribe`` (+ ``-Post`` for https, RFC 8058) for one recipient's URL."""
    targets = [f"<{url}>"]
    if config.sending.unsubscribe_mailto:
        mailto = config.sending.unsubscribe_mailto.removeprefix("mailto:")
        sep = "&" if "?" in mailto else "?"
        targets.append(f"<mailto:{mailto}{sep}subject=unsubscribe>")
    headers = {"List-Unsubscribe": ", ".join(targets)}
    if url.startswith("https://"):  # RFC 8058 one-click is defined for HTTPS URIs only
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def list_id(config: Config) -> str:
    """The ``List-Id`` value (RFC 2919): ``The Duran weekly <weekly.theduran.example>``."""
    ident = config.sending.list_id
    if not ident:
        host = (urlsplit(config.publication.url).hostname or "localhost").lower()
        ident = f"{config.sending.list}.{host}"
    description = f"{config.publication.name} {config.sending.list}".strip()
    return f"{_phrase(description)} <{ident}>"


def _phrase(text: str) -> str:
    if not text.isascii():
        # an RFC 2047 encoded-word is allowed as a phrase; keep each word short
        return " ".join(
            "=?utf-8?b?" + base64.b64encode(text[i : i + 12].encode()).decode() + "?="
            for i in range(0, len(text), 12)
        )
    if any(c in text for c in '()<>[]:;@\\,."'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
