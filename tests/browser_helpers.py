"""Helpers for the preview-server tests: a demo publication, a running server, headless Chromium."""

from __future__ import annotations

import functools
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pressroom.preview import server as preview_server

NOW = "2026-11-25T09:00"
SEED = "2026-11-20-no-us-boots-on-the-ground.txt"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def date_seed(root: Path) -> Path:
    """Put the scraped seed article inside the pinned week (.txt files date from their mtime)."""
    seed = root / "content" / SEED
    when = datetime(2026, 11, 20, 12, 0, tzinfo=ZoneInfo("Europe/London")).timestamp()
    os.utime(seed, (when, when))
    return root / "config.yaml"


@contextmanager
def in_thread(serve: Callable[..., None], name: str) -> Iterator[str]:
    """Run ``serve(ready=, stop=)`` in a thread until it calls ``ready(url)``; yield the URL,
    then set ``stop`` and require ``serve`` to return. An error in ``serve`` is raised here."""
    stop = threading.Event()
    url: list[str] = []
    failure: list[BaseException] = []
    got_url = threading.Event()

    def ready(u: str) -> None:
        url.append(u)
        got_url.set()

    def run() -> None:
        try:
            serve(ready=ready, stop=stop)
        except BaseException as e:  # handed to the test thread below
            failure.append(e)
            got_url.set()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    got_url.wait(30)
    try:
        if failure:
            raise failure[0]
        assert url, f"{name} did not call ready() within 30 s"
        yield url[0]
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "serve() did not return after stop was set"


@contextmanager
def serving(config: Path, *, now_pinned: str | None = NOW, **kwargs: Any) -> Iterator[str]:
    """``preview_server.serve`` on a free port in a thread; yields its URL, stops it after."""

    def serve(**seams: Any) -> None:
        preview_server.serve(config, now_pinned=now_pinned, port=0, **seams, **kwargs)

    with in_thread(serve, "preview-under-test") as url:
        yield url


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy (the watcher polls every 0.5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def chromium_or_skip() -> None:
    """Skip (with the reason shown by ``-ra``) when Debian's chromium or chromedriver is absent."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            pytest.skip(
                f"chromium not installed: {path} is missing "
                f"(apt-get install {package}; .ci/run does this)"
            )


def chrome(profile: Path, width: int = 1500, height: int = 1100) -> Any:
    """Headless Debian Chromium through Selenium; never selenium-manager, never a download."""
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must not fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        # no network but 127.0.0.1: the images and links point at the publication's
        # site, which a test must not contact (they show as broken images, alt text visible)
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    return driver


def png(width: int, height: int, rgb: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    """A solid-colour PNG of ``width`` x ``height`` pixels (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height, 9))
        + chunk(b"IEND", b"")
    )


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def image_host(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (the publication's images, offline); yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wide.png").write_bytes(png(1200, 675))
    (folder / "logo.png").write_bytes(png(360, 80, (200, 30, 30)))
    handler = functools.partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def local_images(root: Path, base: str) -> int:
    """Point the publication's logo and every article image at ``base``; how many articles."""
    config = root / "config.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r"(?m)^(\s*logo:).*$", rf"\1 {base}logo.png", text), "utf-8")
    changed = 0
    for article in (root / "content").glob("*.md"):
        body = article.read_text(encoding="utf-8")
        new, n = re.subn(r"(?m)^image:.*$", f"image: {base}wide.png", body, count=1)
        if n:
            article.write_text(new, encoding="utf-8")
            changed += 1
    return changed
