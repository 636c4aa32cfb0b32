"""Shared by the web app tests: the real waitress server on 127.0.0.1 in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pressroom.web import serve


@contextmanager
def running(app: Any, threads: int = 4) -> Iterator[str]:
    """``app`` under waitress (``pressroom serve``'s server) on a free port; yields its URL."""
    stop = threading.Event()
    url: list[str] = []
    failure: list[BaseException] = []
    got_url = threading.Event()

    def ready(u: str) -> None:
        url.append(u)
        got_url.set()

    def run() -> None:
        try:
            serve.serve(app, "127.0.0.1", 0, threads, ready, stop)
        except BaseException as e:  # handed to the test thread below
            failure.append(e)
            got_url.set()

    thread = threading.Thread(target=run, name="web-under-test", daemon=True)
    thread.start()
    got_url.wait(30)
    try:
        if failure:
            raise failure[0]
        assert url, "the server did not call ready() within 30 s"
        yield url[0]
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "serve() did not return after stop was set"
