"""Run a WSGI app of ours on a threaded server that never logs query strings (tokens)."""

from __future__ import annotations

import socketserver
import sys
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from pressroom.errors import UsageError


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow client cannot hold up the others."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """Logs method, path and status, but never the query string (it holds the token)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        sys.stderr.write(f"{self.command} {path} {code}\n")


def serve(app: Any, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve ``app`` on host:port until interrupted; ``ready`` gets the base URL."""
    try:
        server = make_server(
            host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
    except OSError as e:
        raise UsageError(
            f"cannot listen on {host}:{port}: {e.strerror}; try another --port"
        ) from None
    with server:
        ready(f"http://{host}:{server.server_port}")
        server.serve_forever()
