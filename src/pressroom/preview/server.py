"""The local preview server: ``pressroom digest preview --serve``.

Serves the issue as a subscriber would get it, on 127.0.0.1 only: desktop and mobile frames side
by side, a dark-mode view, the plain-text part, the raw ``.eml`` and the preflight report. A
watcher thread polls the config file, the source folders and the templates; when one changes it
re-runs the pipeline, and the index page (which polls ``/version``) reloads itself. A render
error is shown on the page and the server keeps running, so a typo in a template is one save
away from being fixed.

Routes: ``/`` index, ``/html`` and ``/mobile`` (the HTML part), ``/dark``, ``/text`` (the text
part in a ``<pre>`` page), ``/issue.txt``, ``/issue.eml``, ``/preflight.json``, ``/version``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback
import webbrowser
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pressroom.config import Config
from pressroom.errors import PressroomError, UsageError
from pressroom.models import Personaliser
from pressroom.preview.pages import (
    Snapshot,
    error_page,
    force_dark,
    index_page,
    text_page,
)

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
POLL_SECONDS = 0.5

Clock = Callable[[tzinfo], datetime]
Renderer = Callable[[], Snapshot]


def parse_now(pinned: str | None) -> datetime | None:
    """``--now`` as a datetime (naive until the publication's timezone is known)."""
    if not pinned:
        return None
    try:
        return datetime.fromisoformat(pinned)
    except ValueError:
        raise UsageError(
            f'--now: expected an ISO date like "2026-11-25T09:00", got "{pinned}"'
        ) from None


def check_host(host: str) -> str:
    """``host`` when it is a loopback name; anything else is refused (the preview is local)."""
    if host not in LOCAL_HOSTS:
        raise UsageError(
            f"host {host}: the preview server listens on 127.0.0.1, localhost or ::1 only "
            "(it shows subscriber data); use an SSH tunnel to look from another machine"
        )
    return host


# --- watching for changes -----------------------------------------------------------------


# (path, mtime, size, inode) of one file or folder; the inode catches an editor's atomic save
# that keeps the size, and a folder's mtime catches a file deleted or renamed
Stamp = tuple[str, int, int, int]


def signature(paths: Iterable[Path]) -> tuple[Stamp, ...]:
    """A stamp of every file and folder under ``paths``: changes when any of them does."""
    seen: list[Stamp] = []
    for path in paths:
        _scan(path, seen)
    return tuple(sorted(seen))


def _scan(path: Path, out: list[Stamp]) -> None:
    try:
        st = path.stat()
    except OSError:
        out.append((str(path), -1, -1, -1))  # missing: appearing later is a change too
        return
    if not path.is_dir():
        out.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
        return
    out.append((str(path), st.st_mtime_ns, -1, st.st_ino))
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        # editor swap files and hidden folders (.git, .pressroom) are not content
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        _scan(Path(entry.path), out)


# --- the pipeline ------------------------------------------------------------------------


def watched_paths(config: Config) -> list[Path]:
    """What a preview depends on: config, source folders, templates, subscribers, state."""
    from pressroom import defaults

    paths = [config.path]
    for source in config.sources:
        # any source with a local ``path`` setting (the files source) is watched; remote
        # sources are not polled, they are read again whenever something local changes
        local = getattr(source.settings, "path", None)
        if isinstance(local, Path):
            paths.append(local)
    paths += [
        config.digest.templates,
        defaults.templates(),
        config.subscribers.path,
        # a send in another terminal moves the next issue's window; the ledger is in WAL
        # mode, so a commit may touch only the -wal file until the next checkpoint
        config.state_db,
        config.state_db.with_name(config.state_db.name + "-wal"),
    ]
    return list(dict.fromkeys(paths))


class PipelineRenderer:
    """Runs the digest pipeline for the preview: config → issue → preflight → one subscriber.

    The config is loaded afresh on every render, so an edit to config.yaml takes effect at
    once; an error anywhere (config, articles, template, nothing new) becomes the snapshot's
    ``error``, worded as the CLI would word it.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        now_pinned: str | None,
        as_email: str | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config_path = Path(config_path).absolute()
        self._pinned = parse_now(now_pinned)
        self._as_email = as_email
        # A long-running server reads the clock on each render (the window moves); the CLI
        # hands it in (nothing below the CLI reads the time itself), --now pins it.
        self._clock = clock
        self._env = os.environ if env is None else env
        self._watched: list[Path] = [self.config_path]

    def watched(self) -> list[Path]:
        """The inputs named by the last config that loaded (at first, just the config file)."""
        return self._watched

    def now(self, tz: tzinfo) -> datetime:
        """The render's clock reading: --now (naive means the publication's zone) or the clock."""
        if self._pinned is None:
            if self._clock is None:
                raise UsageError("the preview needs --now or a clock from its caller")
            return self._clock(tz)
        return self._pinned if self._pinned.tzinfo else self._pinned.replace(tzinfo=tz)

    def __call__(self) -> Snapshot:
        try:
            return self._render()
        except PressroomError as e:
            return Snapshot(error=e.message)

    def _render(self) -> Snapshot:
        from pressroom import config as config_mod
        from pressroom.audience import tokens as unsubscribe
        from pressroom.delivery import message
        from pressroom.delivery.ledger import last_sent
        from pressroom.digest import preflight
        from pressroom.digest import prepare as digest
        from pressroom.preview import files as preview

        config = config_mod.load(self.config_path)
        self._watched = watched_paths(config)
        now = self.now(config.publication.tz)
        notes: list[str] = []  # duplicates and the like: shown on the page, as the CLI warns
        prepared = digest.prepare(
            config, now, warn=notes.append, last_sent=last_sent(config.state_db)
        )
        rendered = prepared.rendered
        skipped = [f"skipped {e.message}" for e in prepared.articles_errors]
        findings = tuple(preflight.check(rendered, config))

        # the same filling as `digest preview` and delivery: what you see is what they get
        subscriber = preview.find_subscriber(config, self._as_email)
        signer = unsubscribe.Signer(unsubscribe.load_secret(config, self._env, lambda m: None))
        recipient = message.recipient_for(config, rendered, signer, subscriber)
        variant = next(v for v in rendered.variants if v.key == recipient.variant)
        html = Personaliser(variant.html, is_html=True).fill(recipient.fields)
        text = Personaliser(variant.text, is_html=False).fill(recipient.fields)
        eml = message.build(message.content_for(config, rendered, now=now), recipient)
        return Snapshot(
            number=rendered.number,
            subject=rendered.subject,
            preheader=rendered.preheader,
            html=html,
            text=text,
            eml=eml,
            recipient=subscriber.email,
            variant=variant.key,
            variants=tuple(v.key for v in rendered.variants),
            findings=findings,
            notes=tuple(skipped + notes),
        )


# --- the server ---------------------------------------------------------------------------


class PreviewServer:
    """An HTTP server on a loopback address plus the watcher that keeps its snapshot fresh.

    ``render`` produces a Snapshot (never raises for bad input: it returns one with ``error``);
    ``watched`` lists the paths whose changes trigger a re-render (asked again after each render,
    since a config change can point at other folders).
    """

    def __init__(
        self,
        render: Renderer,
        watched: Callable[[], list[Path]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        poll: float = POLL_SECONDS,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.host = check_host(host)
        self._render = render
        self._watched = watched
        self._poll = poll
        self._log = log or (lambda message: None)
        self._lock = threading.Lock()
        self._snapshot = Snapshot(error="not rendered yet").with_version()
        self.renders = 0
        self._seen: tuple[Stamp, ...] = ()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._port = port

    # state

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the preview server is not started")
        # the address actually bound, not "localhost", which a browser may try as ::1 first
        address, port = self._httpd.server_address[:2]
        address = address.decode() if isinstance(address, bytes) else address
        shown = f"[{address}]" if ":" in address else address
        return f"http://{shown}:{port}/"

    def refresh(self) -> Snapshot:
        """Re-run the pipeline now and publish the result."""
        # The inputs' state is read *before* rendering, so an edit made while the pipeline
        # runs is seen as a change on the next poll rather than lost.
        paths = list(self._watched())
        seen = signature(paths)
        started = time.time_ns()
        try:
            snap = self._render()
        except Exception as e:  # a bug, not bad input: keep serving, say what broke
            traceback.print_exc(file=sys.stderr)
            snap = Snapshot(error=f"internal error while rendering: {type(e).__name__}: {e}")
        after = list(self._watched())
        if after != paths:  # first render, or the config now names other folders
            seen = signature(after)
            if any(stamp[1] >= started for stamp in seen):
                seen = ()  # something changed while rendering: render again on the next poll
        self._seen = seen
        snap = snap.with_version()
        with self._lock:
            changed = snap.version != self._snapshot.version
            self._snapshot = snap
            self.renders += 1
        if changed:
            if snap.error:
                self._log(f"render failed: {snap.error}")
            else:
                errors = sum(f.level == "error" for f in snap.findings)
                warnings = len(snap.findings) - errors
                self._log(f"rendered issue {snap.number}: {errors} error(s), {warnings} warning(s)")
        return snap

    # lifecycle

    def start(self) -> None:
        """Bind, render once, then serve and watch in background threads."""
        self._httpd = _bind(self.host, self._port, self)  # a taken port fails before any work
        self.refresh()
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, name="preview-http", daemon=True),
            threading.Thread(target=self._watch, name="preview-watch", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop serving and watching; returns when both threads are done."""
        self._stopping.set()
        if self._httpd is not None:
            if self._threads:  # shutdown() waits for serve_forever, so only when it runs
                self._httpd.shutdown()
            self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> PreviewServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _watch(self) -> None:
        while not self._stopping.wait(self._poll):
            if signature(self._watched()) != self._seen:
                # a save can be several writes; let them settle before rendering
                self._stopping.wait(min(self._poll, 0.1))
                self.refresh()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    preview: PreviewServer


def _bind(host: str, port: int, preview: PreviewServer) -> _HTTPServer:
    bind_host = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    server_cls = type("_Bound", (_HTTPServer,), {"address_family": family})
    try:
        httpd: _HTTPServer = server_cls((bind_host, port), _Handler)
    except OSError as e:
        raise UsageError(
            f"--port {port}: cannot listen on {host}:{port} ({e.strerror or e}); "
            "pick another port, or 0 for any free one"
        ) from e
    httpd.preview = preview
    return httpd


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "pressroom-preview"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows renders and errors, not every poll of /version

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def _dispatch(self, *, head: bool) -> None:
        # DNS rebinding: a remote page that resolves its own name to 127.0.0.1 must not be
        # able to read the preview (it holds a subscriber's address and unsubscribe link)
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in LOCAL_HOSTS:
            self._send(HTTPStatus.FORBIDDEN, "text/plain", b"preview is local only\n", head)
            return
        path = urlsplit(self.path).path
        route = _ROUTES.get(path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", f"no page {path}\n".encode(), head)
            return
        status, ctype, body, extra = route(self.server.preview.snapshot, self.server.preview)
        self._send(status, ctype, body, head, extra)

    def _send(
        self,
        status: HTTPStatus,
        ctype: str,
        body: bytes,
        head: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        textual = ctype.startswith("text/")
        self.send_header("Content-Type", f"{ctype}; charset=utf-8" if textual else ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


Response = tuple[HTTPStatus, str, bytes, dict[str, str] | None]


def _unavailable(snap: Snapshot) -> Response:
    body = error_page(snap.error or "no issue rendered").encode()
    return HTTPStatus.INTERNAL_SERVER_ERROR, "text/html", body, None


def _route_index(snap: Snapshot, server: PreviewServer) -> Response:
    return HTTPStatus.OK, "text/html", index_page(snap, server.renders).encode(), None


def _route_html(snap: Snapshot, server: PreviewServer) -> Response:
    if snap.error:
        return _unavailable(snap)
    return HTTPStatus.OK, "text/html", snap.html.encode(), None


def _route_dark(snap: Snapshot, server: PreviewServer) -> Response:
    if snap.error:
        return _unavailable(snap)
    return HTTPStatus.OK, "text/html", force_dark(snap.html).encode(), None


def _route_text_page(snap: Snapshot, server: PreviewServer) -> Response:
    if snap.error:
        return _unavailable(snap)
    return HTTPStatus.OK, "text/html", text_page(snap.text).encode(), None


def _route_text(snap: Snapshot, server: PreviewServer) -> Response:
    if snap.error:
        return HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", f"{snap.error}\n".encode(), None
    return HTTPStatus.OK, "text/plain", snap.text.encode(), None


def _route_eml(snap: Snapshot, server: PreviewServer) -> Response:
    if snap.error:
        return HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", f"{snap.error}\n".encode(), None
    name = f"issue-{snap.number}.eml"
    return (
        HTTPStatus.OK,
        "message/rfc822",
        snap.eml,
        {"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _route_preflight(snap: Snapshot, server: PreviewServer) -> Response:
    report = {
        "number": snap.number,
        "error": snap.error,
        "errors": sum(f.level == "error" for f in snap.findings),
        "warnings": sum(f.level != "error" for f in snap.findings),
        "findings": [
            {"level": f.level, "code": f.code, "message": f.message} for f in snap.findings
        ],
        "notes": list(snap.notes),
    }
    return HTTPStatus.OK, "application/json", json.dumps(report, indent=2).encode(), None


def _route_version(snap: Snapshot, server: PreviewServer) -> Response:
    body = json.dumps({"version": snap.version, "renders": server.renders, "error": snap.error})
    return HTTPStatus.OK, "application/json", body.encode(), None


_ROUTES: dict[str, Callable[[Snapshot, PreviewServer], Response]] = {
    "/": _route_index,
    "/index.html": _route_index,
    "/html": _route_html,
    "/mobile": _route_html,
    "/dark": _route_dark,
    "/text": _route_text_page,
    "/issue.txt": _route_text,
    "/issue.eml": _route_eml,
    "/preflight.json": _route_preflight,
    "/version": _route_version,
}


# --- the entry point ----------------------------------------------------------------------


def serve(
    config_path: Path,
    *,
    now_pinned: str | None,
    host: str = "127.0.0.1",
    port: int = 8025,
    as_email: str | None = None,
    open_browser: bool = False,
    ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
    clock: Clock | None = None,
) -> None:
    """Serve the live preview on ``host:port`` until Ctrl-C or ``stop`` is set."""
    check_host(host)
    renderer = PipelineRenderer(config_path, now_pinned=now_pinned, as_email=as_email, clock=clock)
    server = PreviewServer(renderer, renderer.watched, host=host, port=port, log=log)
    try:
        server.start()
        if ready is not None:
            ready(server.url)
        if open_browser:
            webbrowser.open(server.url)
        stop = stop or threading.Event()
        # wake up now and then: a bare wait() would hold off Ctrl-C on some platforms
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a preview session ends
    finally:
        server.stop()
