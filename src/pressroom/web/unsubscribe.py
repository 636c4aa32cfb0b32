"""The one-click unsubscribe endpoint (RFC 8058), as a WSGI app.

A GET shows a confirmation page and changes nothing (mail scanners follow links); a POST (the
mail client's one-click ``List-Unsubscribe=One-Click``, or the page's form) records the
unsubscribe and answers 200, never a redirect, with no cookie or login. A bad or tampered
token gets 400 and changes nothing.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pressroom.audience import subscribers
from pressroom.audience.tokens import Signer, base_url
from pressroom.errors import SubscriberError, TokenError

if TYPE_CHECKING:
    from pressroom.config import Config

log = logging.getLogger(__name__)


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
