"""The one WSGI application readers reach: its routing table, headers, errors and access log.

``make_app(config, secret=…, clock=…)`` builds it; ``create()`` is the entry point a WSGI
server names (``gunicorn 'pressroom.web.app:create()'``), and ``pressroom serve`` runs it
under waitress. Every route is one line of ``routes()``: a path, the handler, the methods.
A handler is ``handler(site, request, **url_values) -> Response``.

Every response, errors included, carries the security headers (``security_headers``); only
``/subscribe`` may be framed, and only by the publication's own origin. Bodies over
``serve.max_body`` get 413, URLs over ``MAX_URI`` 414, unknown paths 404, wrong methods 405,
and anything unexpected a plain 500 page: never a traceback, never a token in the log.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jinja2
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    RequestEntityTooLarge,
    RequestURITooLarge,
    TooManyRequests,
)
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from pressroom.audience.tokens import (
    ReaderTokens,
    base_url,
    check_secret,
    load_secret,
    preferences_base,
)
from pressroom.delivery.transactional import Mailer
from pressroom.digest.render import environment, render_template
from pressroom.errors import PressroomError

if TYPE_CHECKING:
    from pressroom.config import Config

log = logging.getLogger("pressroom.web")

MAX_URI = 8 * 1024  # like nginx's default header buffer: a longer request line gets 414
# requests with a genuine token that read the subscriber files (/preferences, POST /confirm)
# per client address (an IPv6 /64) per window are ``serve.per_client``: one leaked or
# forwarded link must not let a client make the server read every subscriber file
# thousands of times a second
PAGE_WINDOW = timedelta(minutes=1)
MAX_CLIENTS = 10_000  # clients remembered at once (memory stays bounded under a flood)
StartResponse = Callable[..., Any]
Handler = Callable[..., Response]


@dataclass
class Site:
    """What every handler is handed: the config, tokens, clock, templates, mail, limits."""

    config: Config
    tokens: ReaderTokens
    clock: Callable[[], datetime]
    templates: jinja2.Environment
    env: Mapping[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)  # per-feature state (mailer, limits)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """Render ``web/<template>.html.j2`` as a complete HTML response."""
        html = render_template(
            self.templates,
            f"web/{template}.html.j2",
            {
                "publication": self.config.publication,
                "stylesheet": f"{request.script_root}/assets/web.css",
                "subscribe_url": f"{request.script_root}/subscribe",
                **context,
            },
        )
        return Response(html, status=status, content_type="text/html; charset=utf-8")


class ClientLimit:
    """A sliding-window count per client address, in memory (per process): ``limit`` hits
    per ``window``. Cheap on purpose: it guards pages that would otherwise read files."""

    def __init__(self, limit: int, window: timedelta, max_clients: int = MAX_CLIENTS) -> None:
        self.limit = limit
        self.window = window.total_seconds()
        self.max_clients = max_clients
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: datetime) -> bool:
        """Count one hit of ``client`` (its /64 for IPv6) if under the limit; False if over."""
        from pressroom.audience.signups import client_key

        if self.limit <= 0:  # 0: no limit
            return True
        key, at = client_key(client), now.timestamp()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_clients:
                    self._forget(at)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= at - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(at)
            return True

    def _forget(self, at: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= at - self.window]:
            del self._hits[key]
        while len(self._hits) >= self.max_clients:  # all recent: drop the oldest client
            del self._hits[next(iter(self._hits))]


def over_page_limit(site: Site, request: Request) -> None:
    """TooManyRequests (429) when this client read the reader pages too often lately."""
    limit: ClientLimit = site.extras["pages"]
    if not limit.take(request.remote_addr or "", site.clock()):
        log.warning(
            "%s %s: limit of %d per client per %d min reached",
            request.method,
            shown_path(request),
            limit.limit,
            max(1, int(limit.window // 60)),
        )
        raise TooManyRequests(retry_after=int(limit.window))


def _ip(address: str) -> str:
    """``address`` in one spelling (``0:0::1`` is ``::1``, ``::ffff:10.0.0.1`` is
    ``10.0.0.1``), so that the trusted proxy is recognised however either side writes it."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def routes(config: Config) -> list[Rule]:
    """The routing table: one line per route (path, handler, methods)."""
    from pressroom.web import hooks, pages, preferences, signup, unsubscribe

    rules = [
        Rule("/healthz", endpoint=pages.healthz, methods=["GET"]),
        Rule("/assets/web.css", endpoint=pages.stylesheet, methods=["GET"]),
        Rule("/subscribe", endpoint=signup.subscribe, methods=["GET", "POST"]),
        Rule("/confirm", endpoint=signup.confirm, methods=["GET", "POST"]),
        Rule("/preferences", endpoint=preferences.preferences, methods=["GET", "POST"]),
        Rule("/unsubscribe", endpoint=unsubscribe.unsubscribe, methods=["GET", "POST"]),
        Rule("/hooks/<provider>", endpoint=hooks.hook, methods=["POST"]),
    ]
    # links already in readers' inboxes may use configured paths: serve those too
    for url, handler in (
        (base_url(config), unsubscribe.unsubscribe),
        (preferences_base(config), preferences.preferences),
    ):
        path = urlsplit(url).path or "/"
        if path not in {r.rule for r in rules}:
            rules.append(Rule(path, endpoint=handler, methods=["GET", "POST"]))
    return rules


def shown_path(request: Request) -> str:
    """The request's path for the log: at most 200 characters, control characters escaped
    (``/%0A…`` decodes to a line break, which would let a request write log lines of its
    own: a forged "confirm: added" or a fake 200)."""
    path = request.path[:200]
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in path)


def frame_origin(config: Config) -> str:
    """The publication's origin (scheme://host[:port]), the only one that may frame /subscribe."""
    parts = urlsplit(config.publication.url)
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(config: Config, path: str) -> dict[str, str]:
    """The headers every response carries; ``/subscribe`` may be framed by the publication."""
    frame = (
        f"frame-ancestors {frame_origin(config)}"
        if path == "/subscribe"
        else ("frame-ancestors 'none'")
    )
    headers = {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
            f"form-action 'self'; base-uri 'none'; {frame}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # page URLs carry tokens
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
    if path != "/subscribe":
        headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    return headers


class WebApp:
    """The WSGI callable: routing, limits, headers, error pages and a token-free access log."""

    def __init__(self, site: Site, rules: Iterable[Rule]) -> None:
        self.site = site
        # no redirects at all: Werkzeug's "merge slashes" answer is a 308 whose Location it
        # builds from the Host header; a doubled slash is just a path that is not there
        self.url_map = Map(list(rules), strict_slashes=False, merge_slashes=False)
        self.max_body = site.config.serve.max_body
        proxy = site.config.serve.trusted_proxy
        self._proxy = proxy if proxy in (None, "*") else _ip(proxy)
        self._behind_proxy = ProxyFix(self._app, x_for=1, x_proto=1, x_host=1)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR", "")
        if self._proxy and (self._proxy == "*" or _ip(peer) == self._proxy):
            return self._behind_proxy(environ, start_response)
        return self._app(environ, start_response)

    def body_limit(self, path: str) -> int:
        """The largest body ``path`` takes: provider webhooks post batches of events (SendGrid
        sends up to hundreds per request), so they get their own limit."""
        from pressroom.web.hooks import MAX_BODY, PREFIX

        return max(self.max_body, MAX_BODY) if path.startswith(PREFIX) else self.max_body

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = self.body_limit(request.path)
        response = self.respond(request)
        for name, value in security_headers(self.site.config, request.path).items():
            response.headers.setdefault(name, value)
        # method, path and status only: the query string and body carry tokens
        log.info("%s %s %s", request.method, shown_path(request), response.status_code)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        """The response for ``request``, every failure turned into a page."""
        try:
            uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
            if len(uri) > MAX_URI or len(request.query_string) > MAX_URI:
                raise RequestURITooLarge()
            if (request.content_length or 0) > self.body_limit(request.path):
                raise RequestEntityTooLarge()
            adapter = self.url_map.bind_to_environ(request.environ)
            handler, values = adapter.match()
            return handler(self.site, request, **values)  # type: ignore[no-any-return]
        except HTTPException as e:
            return self.error_page(request, e)
        except PressroomError as e:
            log.error("%s %s failed: %s", request.method, shown_path(request), e.message)
            return self.error_page(request, InternalServerError())
        except Exception as e:
            log.error(
                "%s %s failed: %s: %s", request.method, shown_path(request), type(e).__name__, e
            )
            log.debug("details", exc_info=True)
            return self.error_page(request, InternalServerError())

    def error_page(self, request: Request, error: HTTPException) -> Response:
        """A page for an HTTP error (its own status; ``Allow`` for 405)."""
        code = error.code or 500
        try:
            response = self.site.page(request, "error", code, code=code, title=_TITLES.get(code))
        except PressroomError as e:  # a broken error template must not hide the error
            log.error("the error page itself failed: %s", e.message)
            response = Response(f"{code} {error.name}\n", status=code, content_type="text/plain")
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        if isinstance(error, TooManyRequests) and error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response


_TITLES = {
    400: "This request does not work",
    404: "Nothing here",
    405: "Method not allowed",
    413: "Too much data",
    414: "This address is too long",
    429: "Too many requests",
    500: "Something went wrong",
}


def make_app(
    config: Config,
    *,
    secret: bytes,
    clock: Callable[[], datetime],
    env: Mapping[str, str] | None = None,
    extras: Mapping[str, Any] | None = None,
    mailer: Mailer | None = None,
) -> WebApp:
    """The WSGI app for ``config``: every reader page under one routing table."""
    tokens = ReaderTokens(secret, clock, config.signup.confirm_expiry)
    site = Site(
        config=config,
        tokens=tokens,
        clock=clock,
        templates=environment(config),
        env=dict(os.environ if env is None else env),
        extras={"pages": ClientLimit(config.serve.per_client, PAGE_WINDOW), **(extras or {})},
    )
    from pressroom.web import signup

    signup.setup(site, mailer)  # a broken confirmation template stops the start, not a signup
    return WebApp(site, routes(config))


def create(config_path: str | None = None) -> WebApp:
    """The deployment entry point: config from ``$PRESSROOM_CONFIG``, secret from its env var."""
    from pressroom import config as config_mod
    from pressroom import defaults

    config = config_mod.load(config_path or defaults.default_path())
    secret = load_secret(config, os.environ, log.warning)
    check_secret(config, secret)
    tz = config.publication.tz

    def clock() -> datetime:
        return datetime.now(tz)

    app = make_app(config, secret=secret, clock=clock)
    from pressroom.web.signup import closed_because

    closed = closed_because(app.site)
    if closed:
        log.error("signups are closed until this is fixed: %s", closed)
    return app
