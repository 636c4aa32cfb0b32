"""One-click unsubscribe: signed tokens, the List-* headers and a small WSGI server.

A token is ``base64url(email NUL list) "." base64url(HMAC-SHA256(secret, that)[:16])``: it
carries its own email and list, so the server needs no database, and nobody without the
secret can make one. The secret comes from ``PRESSROOM_SECRET`` (``sending.secret_env``) or,
for a publication that never set one, from ``<state>/secret`` (generated once, mode 0600).

The WSGI app follows RFC 8058: a GET shows a confirmation page and changes nothing (mail
scanners follow links); a POST (the mail client's one-click ``List-Unsubscribe=One-Click``,
or the page's form) records the unsubscribe and answers 200, never a redirect, with no
cookie or login. A bad or tampered token gets 400 and changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pressroom import subscribers
from pressroom.errors import ConfigError, SubscriberError, TokenError

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


# --- the WSGI app ----------------------------------------------------------------------

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_MAX_BODY = 16 * 1024

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title} – {publication}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
line-height:1.5;color:#222}}button{{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:4px;
background:#b00020;color:#fff;cursor:pointer}}</style>
</head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def make_app(config: Config, signer: Signer, clock: Callable[[], datetime]) -> WsgiApp:
    """The unsubscribe WSGI app: GET confirms, POST (one-click or form) unsubscribes."""
    publication = html.escape(config.publication.name)
    lang = html.escape(config.publication.language)
    paths = {"/unsubscribe", urlsplit(base_url(config)).path or "/"}

    def page(title: str, body: str) -> bytes:
        return _PAGE.format(
            lang=lang, title=html.escape(title), publication=publication, body=body
        ).encode()

    def respond(
        start: StartResponse, status: str, content: bytes, extra: Sequence[tuple[str, str]] = ()
    ) -> list[bytes]:
        start(
            status,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(content))),
                ("Cache-Control", "no-store"),
                ("Referrer-Policy", "no-referrer"),  # the URL carries the token
                ("X-Content-Type-Options", "nosniff"),
                (
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
                ),
                *extra,
            ],
        )
        return [content]

    def bad_token(start: StartResponse, why: str) -> list[bytes]:
        return respond(
            start,
            "400 Bad Request",
            page(
                "This unsubscribe link does not work",
                f"<p>{html.escape(why)}. Copy the whole link from the email, or reply to the "
                "email and ask to be removed.</p>",
            ),
        )

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if environ.get("PATH_INFO", "/") not in paths:
            return respond(start, "404 Not Found", page("Not found", "<p>Nothing here.</p>"))
        if method not in ("GET", "HEAD", "POST"):
            return respond(
                start,
                "405 Method Not Allowed",
                page("Method not allowed", "<p>Use the link in the email.</p>"),
                [("Allow", "GET, HEAD, POST")],
            )
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        form: dict[str, list[str]] = {}
        if method == "POST":
            form = _read_form(environ)
        token = (query.get("t") or form.get("t") or [""])[0]
        if not token:
            return bad_token(start, "The link has no unsubscribe token")
        try:
            email, list_ = signer.verify(token)
        except TokenError:
            return bad_token(start, "The link is damaged or was not made by us")
        shown = html.escape(email)
        if method in ("GET", "HEAD"):
            content = page(
                "Unsubscribe?",
                f"<p>Stop sending <strong>{html.escape(config.publication.name)}</strong> "
                f"({html.escape(list_)}) to <strong>{shown}</strong>?</p>\n"
                f'<form method="post" action="?t={html.escape(token)}">'
                f'<input type="hidden" name="t" value="{html.escape(token)}">'
                '<button type="submit">Unsubscribe</button></form>',
            )
            out = respond(start, "200 OK", content)
            return [b""] if method == "HEAD" else out
        try:
            subscribers.suppress(
                config,
                email,
                reason="unsubscribed",
                when=clock().isoformat(timespec="seconds"),
                list_=list_,
            )
        except SubscriberError as e:
            log.error("unsubscribe could not be recorded: %s", e)
            return respond(
                start,
                "500 Internal Server Error",
                page(
                    "Something went wrong",
                    "<p>Please try again later, or reply to the email and ask to be removed.</p>",
                ),
            )
        return respond(
            start,
            "200 OK",
            page(
                "You are unsubscribed",
                f"<p><strong>{shown}</strong> will get no more email from "
                f"{html.escape(config.publication.name)}.</p>",
            ),
        )

    return app


def _read_form(environ: Mapping[str, Any]) -> dict[str, list[str]]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return {}
    data = environ["wsgi.input"].read(min(length, _MAX_BODY))
    # RFC 8058 allows urlencoded or multipart bodies; the token is in the URL either way
    if b"=" not in data or b"\r\n" in data:
        return {}
    return parse_qs(data.decode("utf-8", "replace"), keep_blank_values=True)
