"""Signed reader tokens (unsubscribe, confirm, preferences), and the List-* header values.

Every link a reader gets carries a token naming its own payload, so the web app needs no
database or login, and nobody without the secret can make one. Each kind has its own
signing context, so a token of one kind never verifies as another:

- unsubscribe: ``base64url(email NUL list) "." base64url(HMAC-SHA256(secret, ctx + that)[:16])``.
  This format is older than the others and is kept as it is: links in readers' inboxes
  must keep working.
- confirm (double opt-in): itsdangerous, salt ``pressroom-confirm-v1``, with a timestamp;
  expires after ``signup.confirm_expiry`` (7 days).
- preferences: itsdangerous, salt ``pressroom-preferences-v1``, no expiry.

The secret comes from ``PRESSROOM_SECRET`` (``sending.secret_env``) or, for a publication
that never set one, from ``<state>/secret`` (generated once, mode 0600). The pages that take
the clicks are in ``pressroom.web``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import itsdangerous

from pressroom.errors import ConfigError, TokenError, TokenExpired

if TYPE_CHECKING:
    from pressroom.config import Config

log = logging.getLogger(__name__)

_SIG_BYTES = 16  # 128-bit truncated HMAC-SHA256: unforgeable, and keeps the URL short
_CONTEXT = b"pressroom-unsubscribe-v1\0"  # so the secret can sign other things one day
MAX_TOKEN = 2048
# the web app's shortest secret: anyone who guesses the secret can make every kind of token
# (subscribe any address without its consent, read and change anyone's preferences), and a
# short word falls to an offline guess from one link in any reader's inbox
MIN_SECRET = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Makes and checks unsubscribe tokens under one secret (and, as ``preferences``, the
    preferences tokens that sit beside them in every footer)."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise TokenError("the unsubscribe secret is empty")
        self._mac = hmac.new(secret, _CONTEXT, hashlib.sha256)
        self.preferences = PreferenceTokens(secret)

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


# --- confirm and preferences tokens (itsdangerous, one salt per context) -------------------

CONFIRM_SALT = "pressroom-confirm-v1"
PREFERENCES_SALT = "pressroom-preferences-v1"


@dataclass(frozen=True, slots=True)
class SignupRequest:
    """What a confirmation link carries: who asked, under which name, for which lists."""

    email: str
    name: str
    lists: frozenset[str]
    issued: datetime | None = None  # when the link was made (a verified token says)


class _ClockedSigner(itsdangerous.TimestampSigner):
    """A TimestampSigner that reads the injected clock, not ``time.time()``."""

    def __init__(self, *args: Any, clock: Callable[[], datetime], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


class ReaderTokens:
    """Makes and checks every kind of reader token under one secret."""

    def __init__(
        self,
        secret: bytes,
        clock: Callable[[], datetime],
        confirm_expiry: timedelta = timedelta(days=7),
    ) -> None:
        self.secret = secret  # for keyed hashes elsewhere (signup limits); never shown
        self.unsubscribe = Signer(secret)
        self._max_age = int(confirm_expiry.total_seconds())
        self._confirm = itsdangerous.URLSafeTimedSerializer(
            secret,
            salt=CONFIRM_SALT,
            signer=_ClockedSigner,
            signer_kwargs={"clock": clock, "digest_method": hashlib.sha256},
        )
        self.preferences = self.unsubscribe.preferences

    def confirm(self, email: str, name: str, lists: Iterable[str]) -> str:
        """A confirmation token for a signup (expires after ``confirm_expiry``)."""
        return str(self._confirm.dumps({"e": email, "n": name, "l": sorted(lists)}))

    def verify_confirm(self, token: str) -> SignupRequest:
        """The signup a genuine, unexpired confirmation token names; TokenError otherwise."""
        _check_size(token)
        try:
            data, issued = self._confirm.loads(token, max_age=self._max_age, return_timestamp=True)
        except itsdangerous.SignatureExpired:
            raise TokenExpired("this confirmation link has expired") from None
        except itsdangerous.BadData:
            raise TokenError("confirmation token does not verify") from None
        try:
            return SignupRequest(
                str(data["e"]), str(data["n"]), frozenset(map(str, data["l"])), issued
            )
        except (KeyError, TypeError):
            raise TokenError("malformed confirmation token") from None


class _KeyedSigner(itsdangerous.Signer):
    """An itsdangerous Signer that derives its key once (a token per recipient per send)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key = super().derive_key()

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        return self._key if secret_key is None else super().derive_key(secret_key)


class PreferenceTokens:
    """Preferences tokens: ``base64url(email) "." HMAC-SHA256`` (itsdangerous, own salt)."""

    def __init__(self, secret: bytes) -> None:
        self._signer = _KeyedSigner(secret, salt=PREFERENCES_SALT, digest_method=hashlib.sha256)

    def token(self, email: str) -> str:
        """The preferences token of ``email`` (no expiry: it sits in every issue's footer)."""
        return self._signer.sign(_b64(email.encode("utf-8"))).decode("ascii")

    def verify(self, token: str) -> str:
        """The address a genuine preferences token names; TokenError otherwise."""
        _check_size(token)
        try:
            body = self._signer.unsign(token).decode("ascii")
            email = _unb64(body).decode("utf-8")
        except (itsdangerous.BadData, binascii.Error, UnicodeError, ValueError):
            raise TokenError("preferences token does not verify") from None
        if not email or _b64(email.encode("utf-8")) != body:
            raise TokenError("malformed preferences token")
        return email


def _check_size(token: str) -> None:
    if not token or len(token) > MAX_TOKEN:
        raise TokenError("malformed token")


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
    except OSError as e:  # a full disk: nothing half-written is left to sign with
        raise ConfigError(
            f"cannot create {path} ({e.strerror or e}); free space in {config.state}, or set "
            f"{config.sending.secret_env} instead"
        ) from e
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    if created:
        info(
            f"no {config.sending.secret_env} set; generated one in {_show_state(config, path)} "
            f"(keep it: it signs the unsubscribe links; set {config.sending.secret_env} "
            "on servers)"
        )
    return _read_secret(path)


def check_secret(config: Config, secret: bytes) -> None:
    """ConfigError (one line, never the secret) when ``secret`` is too short to sign the web
    app's tokens: a few letters ("s3cret") are guessed offline from any one link."""
    if len(secret) >= MIN_SECRET:
        return
    raise ConfigError(
        f"{config.sending.secret_env} is {len(secret)} characters; the web app needs at "
        f"least {MIN_SECRET} (anyone who guesses it can make unsubscribe, confirm and "
        "preferences links for any address): set a random one, e.g. the output of "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


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
    return with_token(base_url(config), token)


def app_url(config: Config) -> str:
    """Where the reader-facing web app answers (``serve.url``, else ``publication.url``)."""
    url = config.serve.url or config.publication.url
    return url if url.endswith("/") else url + "/"


def preferences_base(config: Config) -> str:
    """The preferences page (``sending.preferences_url``, else ``<app>/preferences``)."""
    return config.sending.preferences_url or f"{app_url(config)}preferences"


def preferences_url(config: Config, token: str) -> str:
    """The preferences URL for ``token``."""
    return with_token(preferences_base(config), token)


def confirm_url(config: Config, token: str) -> str:
    """The confirmation URL for ``token`` (``<app>/confirm?t=…``)."""
    return with_token(f"{app_url(config)}confirm", token)


def with_token(base: str, token: str) -> str:
    """``base`` with ``t=token`` added to its query (a query or fragment already there stays)."""
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
