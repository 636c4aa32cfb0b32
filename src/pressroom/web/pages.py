"""Small routes every deployment has: the health check and the pages' stylesheet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from pressroom.web.app import Site

STYLESHEET = "web/web.css"


def healthz(site: Site, request: Request) -> Response:
    """``GET /healthz``: 200 "ok" while the app can answer (for load balancers and systemd)."""
    return Response("ok\n", content_type="text/plain; charset=utf-8")


def stylesheet(site: Site, request: Request) -> Response:
    """``GET /assets/web.css``: the pages' one stylesheet (CSP allows no inline style)."""
    css = site.extras.get("stylesheet")
    if css is None:
        assert site.templates.loader is not None
        css, _, _ = site.templates.loader.get_source(site.templates, STYLESHEET)
        site.extras["stylesheet"] = css
    response = Response(css, content_type="text/css; charset=utf-8")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
