"""``/preferences``: a reader changes their lists and name, or leaves everything.

The link in every footer carries a signed preferences token (no expiry, its own context).
``GET`` shows the reader's lists as checkboxes and their name; ``POST`` saves (atomically,
under the subscriber file's lock) or, with "Unsubscribe from everything", suppresses the
address like the one-click link. Changing the address itself is not offered: subscribe
the new address and leave with the old one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from pressroom.audience import signups, subscribers
from pressroom.errors import TokenError
from pressroom.web.app import over_page_limit
from pressroom.web.signup import MAX_NAME, _clean_name, _masked, offered_lists

if TYPE_CHECKING:
    from pressroom.web.app import Site

log = logging.getLogger("pressroom.web")


def preferences(site: Site, request: Request) -> Response:
    """``GET`` shows the reader's lists; ``POST`` saves them or unsubscribes from everything."""
    config = site.config
    link_token = (request.args.get("t", "") or request.form.get("t", "")).strip()
    if not link_token:
        return site.page(request, "preferences_bad", 400, missing=True)
    try:
        address = site.tokens.preferences.verify(link_token)
    except TokenError:
        return site.page(request, "preferences_bad", 400, missing=False)
    over_page_limit(site, request)  # what follows reads every subscriber file
    offered = offered_lists(config)
    found = signups.row_of(config, address)
    standing = signups.standing(config, address)
    if found is None or standing not in (None, "", "active"):
        return site.page(request, "preferences_none", email=address)
    _path, cells = found
    current = signups.lists_of(config, cells)
    name = cells.get("name", "").strip()
    context: dict[str, Any] = {
        "email": address,
        "lists": offered,
        "token": link_token,
        "max_name": MAX_NAME,
    }
    if request.method != "POST":
        return site.page(request, "preferences", chosen=current, name=name, error=None, **context)
    if request.form.get("action") == "unsubscribe":
        subscribers.suppress(
            config,
            address,
            reason="unsubscribed",
            when=site.clock().isoformat(timespec="seconds"),
            list_=config.sending.list,
            signed=True,  # the address comes from our own signed token
        )
        log.info("preferences: unsubscribed from everything (%s)", _masked(address))
        return site.page(request, "unsubscribed", email=address)
    chosen = frozenset(v for v in request.form.getlist("list") if v in offered)
    new_name = _clean_name(request.form["name"]) if "name" in request.form else name
    if not chosen:
        return site.page(
            request,
            "preferences",
            400,
            chosen=chosen,
            name=new_name,
            error="Choose at least one list, or press “Unsubscribe from everything”.",
            **context,
        )
    signups.set_preferences(
        config, address, lists=chosen, offered=frozenset(offered), name=new_name
    )
    log.info("preferences: saved (%s)", _masked(address))
    return site.page(
        request, "preferences", chosen=chosen, name=new_name, error=None, saved=True, **context
    )
