"""The one-click unsubscribe endpoint (RFC 8058).

A GET shows a confirmation page and changes nothing (mail scanners follow links); a POST (the
mail client's one-click ``List-Unsubscribe=One-Click``, or the page's form) records the
unsubscribe and answers 200, never a redirect, with no cookie or login. A bad or tampered
token gets 400 and changes nothing. The token format is the one in readers' inboxes
(``audience.tokens.Signer``), so every link ever sent keeps working.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from pressroom.audience import subscribers
from pressroom.errors import SubscriberError, TokenError

if TYPE_CHECKING:
    from pressroom.web.app import Site

log = logging.getLogger("pressroom.web")


def token_of(request: Request) -> str:
    """The ``t`` of the query string, else of a urlencoded or multipart form body."""
    token = request.args.get("t", "")
    if not token and request.method == "POST":
        token = request.form.get("t", "")
    return token.strip()


def unsubscribe(site: Site, request: Request) -> Response:
    """``GET`` asks, ``POST`` (one-click or the form) suppresses the address in the token."""
    token = token_of(request)
    if not token:
        return bad_token(site, request, "The link has no unsubscribe token")
    try:
        email, list_ = site.tokens.unsubscribe.verify(token)
    except TokenError:
        return bad_token(site, request, "The link is damaged or was not made by us")
    if request.method != "POST":
        return site.page(request, "unsubscribe", email=email, list=list_, token=token)
    try:
        subscribers.suppress(
            site.config,
            email,
            reason="unsubscribed",
            when=site.clock().isoformat(timespec="seconds"),
            list_=list_,
            signed=True,  # the address comes from our own signed token
        )
    except SubscriberError as e:
        log.error("unsubscribe could not be recorded: %s", e.message)
        return site.page(request, "error", 500, code=500, title="Something went wrong")
    return site.page(request, "unsubscribed", email=email)


def bad_token(site: Site, request: Request, why: str) -> Response:
    """400: the unsubscribe link is unusable; say how to get out anyway."""
    return site.page(request, "unsubscribe_bad", 400, why=why)
