"""Run the web app under waitress, a production WSGI server (``pressroom serve``).

waitress parses HTTP itself: a malformed request line gets its 400 and a header block over
``MAX_HEADER`` its 431, both before the app sees anything; the app answers 414 for a request
line over ``app.MAX_URI``. waitress keeps no access log; the app logs method, path and
status, never a query string (it carries tokens).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from pressroom.errors import UsageError

MAX_HEADER = 64 * 1024  # request line + headers; the app's own URI limit (8 KiB) is lower
MAX_BODY = 10 * 1024 * 1024  # waitress's cap; each route's own limit is lower (413 page)


def serve(
    app: Any,
    host: str,
    port: int,
    threads: int,
    ready: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Serve ``app`` on host:port until interrupted (or ``stop`` is set); ``ready`` gets the URL."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" chatter
    try:
        server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            max_request_header_size=MAX_HEADER,
            max_request_body_size=MAX_BODY,
            expose_tracebacks=False,
            ident="pressroom",
            clear_untrusted_proxy_headers=False,  # the app decides whom to believe
        )
    except OSError as e:
        raise UsageError(
            f"cannot listen on {host}:{port}: {e.strerror}; try another --port"
        ) from None
    except ValueError:  # waitress: a host that is no address and no name it can resolve
        raise UsageError(
            f"cannot listen on {host}:{port}: {host!r} is not an address of this machine nor a "
            "name that resolves; give an IP address (127.0.0.1, ::1, 0.0.0.0) with --host or "
            "serve.host"
        ) from None
    ready(_url(server, host))
    if stop is None:
        server.run()  # until Ctrl-C or SIGTERM
        return
    # a stoppable loop (tests, embedding): waitress's own loop, one poll at a time
    socket_map = getattr(server, "_map", None) or server.map
    try:
        while not stop.is_set():
            wasyncore.loop(timeout=0.1, map=socket_map, count=1)
    finally:
        server.task_dispatcher.shutdown()
        for dispatcher in list(socket_map.values()):
            dispatcher.close()


def _url(server: Any, host: str) -> str:
    """The base URL the server listens on (the real port when ``--port 0`` was asked)."""
    if hasattr(server, "effective_port"):
        port = server.effective_port
    else:  # several sockets (a host name with IPv4 and IPv6): name the first
        port = server.effective_listen[0][1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
