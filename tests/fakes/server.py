"""A reusable fake mail-provider HTTP server on 127.0.0.1, for tests and benchmarks.

``FakeProviderServer`` is a ``ThreadingHTTPServer`` that speaks HTTP/1.1 with keep-alive and
sets ``TCP_NODELAY`` on every accepted socket (without it, Nagle's algorithm and delayed ACKs
stall Python's stock ``http.server`` ~40 ms per request). A provider fake subclasses it and
implements ``route`` (answer in the provider's documented format, calling ``deliver`` for every
recipient it accepts) and ``contract_problems`` (check a request against the provider's
published contract). The server then offers, thread-safely:

- ``received``: recipient email -> every message it would have received (subject, html, text,
  headers, after the provider's substitutions); a recipient accepted twice has two entries.
  ``record="count"`` keeps only counts (benchmarks: 100,000 full messages do not fit in RAM).
- counters: ``requests``, ``requests_by_path``, ``payload_bytes``.
- a script of faults for the next N requests: ``fail_next`` (429 with Retry-After, 500, 503…),
  ``slow_next`` (sleep, then answer normally), ``drip_next`` (accept, then send the answer a
  byte at a time), ``drop_next`` (close the socket without an
  answer, before or after accepting the request); ``serve_next`` answers normally, so a
  script can say "accept the first request, refuse the next".
- per-recipient failures (``fail_recipient``) for providers that report them per message.
- ``contract_violations``: every request the validator rejected (answered 400); tests assert
  it is empty. ``validate=False`` switches validation off (benchmarks). ``internal_errors``:
  exceptions raised by a fake's own code (answered 500); tests assert it is empty too.
- ``GET /__fake__/stats``: the counters as JSON, for a server running in another process.

Use it as a context manager (``with MailgunFake(...) as server: server.url``): it serves from a
daemon thread and shuts down on exit.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

STATS_PATH = "/__fake__/stats"


@dataclass(frozen=True)
class Delivery:
    """One message as one recipient would receive it."""

    to: str
    subject: str
    html: str
    text: str
    headers: Mapping[str, str]
    message_id: str
    request: int  # the number of the request that carried it (1-based)
    from_: str = ""
    tag: str = ""


@dataclass
class Request:
    """One HTTP request as the fake saw it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # header names lower-cased
    body: bytes
    number: int = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes | str | Any = b""  # bytes, text, or anything JSON-serialisable
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    drip: float = 0.0  # seconds between the answer's bytes (0: one write)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


@dataclass
class Fault:
    """What to do instead of (or before) answering one request."""

    kind: Literal["status", "slow", "drop", "serve", "drip"]
    status: int = 503
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: the provider's own error format
    delay: float = 0.0
    after_processing: bool = False  # drop: accept the request, then lose the answer
    path: str | None = None  # only requests whose path starts with this


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: requests.Session reuses the connection
    server: FakeProviderServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest output stays readable, benchmarks do not pay for logging

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response = self.server.dispatch(request)
        if response is None:  # a scripted drop: close without a word
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = response.encoded()
        head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
        headers = {"Content-Type": response.content_type, **response.headers}
        headers["Content-Length"] = str(len(payload))
        if self.headers.get("Connection", "").lower() == "close":
            headers["Connection"] = "close"
            self.close_connection = True
        head.extend(f"{k}: {v}" for k, v in headers.items())
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
        try:
            if response.drip:  # the head, then the body a byte at a time
                self.wfile.write(data[: len(data) - len(payload)])
                for i in range(len(payload)):
                    time.sleep(response.drip)
                    self.wfile.write(payload[i : i + 1])
            else:
                self.wfile.write(data)  # one write: no header/body split on the wire
        except OSError:  # the client gave up (timeout) while we were slow
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    406: "Not Acceptable",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class FakeProviderServer(ThreadingHTTPServer):
    """Base of every fake provider; subclasses implement ``route`` and ``contract_problems``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    provider = "fake"

    def __init__(
        self,
        *,
        validate: bool = True,
        record: Literal["full", "count"] = "full",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.validate = validate
        self.record = record
        self.lock = threading.RLock()
        self.received: dict[str, list[Delivery]] = collections.defaultdict(list)
        self.accepted: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.connections = 0  # accepted TCP connections: keep-alive shows as few
        self.nodelay: list[bool] = []  # TCP_NODELAY as read back from each accepted socket
        self.requests_by_path: collections.Counter[str] = collections.Counter()
        self.payload_bytes: list[int] = []
        self.contract_violations: list[tuple[Request, list[str]]] = []
        self.internal_errors: list[str] = []  # exceptions in ``route``: bugs in the fake
        self.recipient_failures: dict[str, Any] = {}
        self._faults: collections.deque[Fault] = collections.deque()
        self._thread: threading.Thread | None = None
        self._ids = 0
        self.held = 0  # connections accepted while holding (see ``hold_connections``)
        self._gate = threading.Event()
        self._gate.set()
        self._drop_held = True

    # --- lifecycle -----------------------------------------------------------------------

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            self.connections += 1
            self.nodelay.append(bool(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
        return conn, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if not self._gate.is_set():
            with self.lock:
                self.held += 1
            self._gate.wait()
            if self._drop_held:
                return  # closed unread: whatever the client sent never reached the provider
        super().finish_request(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeProviderServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._gate.set()  # held connections are let go (closed unread)
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -----------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        retry_after: str | float | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests with ``status`` (429, 500, 503…) instead of serving."""
        ra = None if retry_after is None else str(retry_after)
        with self.lock:
            for _ in range(n):
                self._faults.append(
                    Fault("status", status, ra, dict(headers or {}), body, path=path)
                )

    def slow_next(self, n: int = 1, seconds: float = 1.0, *, path: str | None = None) -> None:
        """Sleep ``seconds`` before serving each of the next ``n`` requests (then serve it)."""
        with self.lock:
            for _ in range(n):
                self._faults.append(Fault("slow", delay=seconds, path=path))

    def drop_next(
        self, n: int = 1, *, after_processing: bool = False, path: str | None = None
    ) -> None:
        """Close the socket without answering the next ``n`` requests.

        ``after_processing=True`` accepts the request first (the recipients are recorded as
        delivered) and loses only the answer: the client cannot know it went out.
        """
        with self.lock:
            for _ in range(n):
                self._faults.append(Fault("drop", after_processing=after_processing, path=path))

    def drip_next(self, n: int = 1, seconds: float = 0.05, *, path: str | None = None) -> None:
        """Serve the next ``n`` requests (accepting their recipients), then send each answer's
        body one byte every ``seconds``: each read is quick, the whole answer is not."""
        with self.lock:
            for _ in range(n):
                self._faults.append(Fault("drip", delay=seconds, path=path))

    def serve_next(self, n: int = 1, *, path: str | None = None) -> None:
        """Serve the next ``n`` requests normally (a step in a script of faults)."""
        with self.lock:
            for _ in range(n):
                self._faults.append(Fault("serve", path=path))

    def hold_connections(self) -> None:
        """Accept each new connection but read nothing from it until ``release_held``.

        The client has sent its request and waits; the provider has not received it (a
        request stuck on the way). Connections already open are served as before.
        """
        with self.lock:
            self._drop_held = True
            self._gate.clear()

    def release_held(self, *, drop: bool = True) -> None:
        """Stop holding. ``drop``: close the held connections unread (those requests never
        reached the provider); otherwise serve them now, as if the network caught up."""
        with self.lock:
            self._drop_held = drop
            self._gate.set()

    def fail_recipient(self, email: str, how: Any) -> None:
        """Make the provider reject ``email`` per recipient (meaning of ``how`` is per fake)."""
        with self.lock:
            self.recipient_failures[email.lower()] = how

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self.recipient_failures.clear()

    # --- recording -----------------------------------------------------------------------

    def next_message_id(self) -> str:
        with self.lock:
            self._ids += 1
            return f"<fake-{self._ids}@{self.provider}.test>"

    def deliver(
        self,
        request: Request,
        to: str,
        subject: str = "",
        html: str = "",
        text: str = "",
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        from_: str = "",
        tag: str = "",
    ) -> str:
        """Record that ``to`` was accepted; returns the message id."""
        mid = message_id or self.next_message_id()
        key = _address(to).lower()
        with self.lock:
            self.accepted[key] += 1
            if self.record == "full":
                self.received[key].append(
                    Delivery(
                        key,
                        subject,
                        html,
                        text,
                        dict(headers or {}),
                        mid,
                        request.number,
                        from_,
                        tag,
                    )
                )
        return mid

    def deliveries(self, email: str) -> list[Delivery]:
        with self.lock:
            return list(self.received.get(email.lower(), []))

    @property
    def total_accepted(self) -> int:
        with self.lock:
            return sum(self.accepted.values())

    def duplicates(self) -> dict[str, int]:
        """Recipients accepted more than once, with their counts."""
        with self.lock:
            return {e: n for e, n in self.accepted.items() if n > 1}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            sizes = self.payload_bytes
            return {
                "provider": self.provider,
                "requests": self.requests,
                "connections": self.connections,
                "requests_by_path": dict(self.requests_by_path),
                "accepted": sum(self.accepted.values()),
                "distinct_recipients": len(self.accepted),
                "duplicates": sum(1 for n in self.accepted.values() if n > 1),
                "contract_violations": len(self.contract_violations),
                "internal_errors": len(self.internal_errors),
                "max_payload_bytes": max(sizes) if sizes else 0,
                "mean_payload_bytes": (sum(sizes) / len(sizes)) if sizes else 0,
            }

    # --- request handling ----------------------------------------------------------------

    def dispatch(self, request: Request) -> Response | None:
        """Faults first, then the contract check, then the provider's own behaviour."""
        if request.path == STATS_PATH:
            return Response(200, self.stats())
        with self.lock:
            self.requests += 1
            request.number = self.requests
            self.requests_by_path[request.path] += 1
            if request.body:
                self.payload_bytes.append(len(request.body))
            fault = self._take_fault(request.path)
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "drip":
                dripping = self._serve(request)
                dripping.drip = fault.delay
                return dripping
            elif fault.kind == "serve":
                pass
            elif fault.kind == "drop":
                if fault.after_processing:
                    self._serve(request)
                return None
            else:
                headers = dict(fault.headers)
                if fault.retry_after is not None:
                    headers["Retry-After"] = fault.retry_after
                body = (
                    fault.body
                    if fault.body is not None
                    else self.error_body(
                        fault.status, _REASONS.get(fault.status, "scripted failure")
                    )
                )
                return Response(fault.status, body, headers)
        return self._serve(request)

    def _take_fault(self, path: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.path is None or path.startswith(fault.path):
                del self._faults[i]
                return fault
        return None

    def _serve(self, request: Request) -> Response:
        if self.validate:
            try:
                problems = self.contract_problems(request)
            except Exception as e:  # a request the validator cannot even read is invalid
                problems = [f"unreadable request ({type(e).__name__}: {e})"]
            if problems:
                with self.lock:
                    self.contract_violations.append((request, problems))
                return Response(400, self.error_body(400, "; ".join(problems)))
        try:
            return self.route(request)
        except Exception as e:  # a bug in the fake: answer 500 and keep it for the test
            with self.lock:
                self.internal_errors.append(f"{type(e).__name__}: {e}")
            return Response(500, self.error_body(500, "fake server error"))

    # --- what a provider fake implements -------------------------------------------------

    def route(self, request: Request) -> Response:
        """The provider's answer to a valid request (subclasses)."""
        return Response(404, self.error_body(404, f"no route {request.method} {request.path}"))

    def contract_problems(self, request: Request) -> list[str]:
        """Ways ``request`` breaks the provider's published contract (empty: valid)."""
        return []

    def error_body(self, status: int, message: str) -> Any:
        """The provider's error format."""
        return {"message": message}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@contextlib.contextmanager
def refusing_url() -> Iterator[str]:
    """An http URL on 127.0.0.1 where every connection is refused, while the block runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound but never listening: ours, and it refuses connections
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@contextlib.contextmanager
def unanswered_url() -> Iterator[str]:
    """An http URL on 127.0.0.1 whose connections time out (never made), while the block runs."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(socket.socket())
        server.bind(("127.0.0.1", 0))
        server.listen(0)  # never accepted: once the backlog is full, Linux drops new SYNs
        address = server.getsockname()
        for _ in range(8):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(address)
        yield f"http://127.0.0.1:{address[1]}"


def _address(value: str) -> str:
    """The bare address of ``"Name <addr>"`` or ``addr``."""
    value = value.strip()
    if value.endswith(">") and "<" in value:
        return value[value.rindex("<") + 1 : -1].strip()
    return value


def split_addresses(value: str) -> list[str]:
    """The addresses of a comma-separated header value (commas in quotes do not split)."""
    # a "to" field may hold several comma-separated addresses; commas inside quotes do not count
    out, buf, quoted = [], [], False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return [a for a in out if a.strip()]


def addresses(values: Iterable[str]) -> list[str]:
    """Bare addresses of a list of ``"Name <addr>"`` / ``addr`` values."""
    return [_address(v) for v in values]


# --- contract validation with openapi-core -------------------------------------------------

SPECS = Path(__file__).resolve().parents[1] / "contracts"  # see its README.md
_SPEC_CACHE: dict[str, Any] = {}
_SPEC_LOCK = threading.Lock()


def openapi(filename: str) -> Any:
    """The openapi-core ``OpenAPI`` object of ``tests/contracts/<filename>`` (cached)."""
    with _SPEC_LOCK:
        if filename not in _SPEC_CACHE:
            from openapi_core import OpenAPI

            path = SPECS / filename
            if not path.is_file():
                raise FileNotFoundError(f"{path}: provider contract not found")
            _SPEC_CACHE[filename] = OpenAPI.from_file_path(str(path))
        return _SPEC_CACHE[filename]


@dataclass
class _OpenAPIRequest:
    """The shape openapi-core's ``Request`` protocol asks for."""

    host_url: str
    path: str
    method: str
    parameters: Any
    content_type: str
    body: bytes

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


def openapi_problems(filename: str, request: Request, host_url: str) -> list[str]:
    """What openapi-core finds wrong with ``request`` against the spec (empty: valid)."""
    from openapi_core.datatypes import RequestParameters
    from werkzeug.datastructures import Headers, ImmutableMultiDict

    params = RequestParameters(
        query=ImmutableMultiDict([(k, v) for k, vs in request.query.items() for v in vs]),
        header=Headers(dict(request.headers)),
        cookie=ImmutableMultiDict(),
        path={},
    )
    oa_request = _OpenAPIRequest(
        host_url, request.path, request.method.lower(), params, request.content_type, request.body
    )
    try:
        openapi(filename).validate_request(oa_request)
    except Exception as e:  # openapi-core's tree of validation errors
        return [_describe(e)]
    return []


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}".rstrip(": ")]
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        errors = getattr(cause, "schema_errors", None)
        if errors:
            parts.extend(
                f"{'/'.join(str(p) for p in err.absolute_path) or '<body>'}: {err.message}"
                for err in errors
            )
        else:
            parts.append(f"{type(cause).__name__}: {cause}"[:500])
        cause = cause.__cause__ or cause.__context__
    return "; ".join(parts)


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """(name, value) pairs of a multipart/form-data body, in order (fast: no email parser)."""
    marker = "boundary="
    if "multipart/form-data" not in content_type or marker not in content_type:
        raise ValueError(f"not multipart/form-data: {content_type!r}")
    boundary = content_type.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    out = []
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        name = ""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-disposition:"):
                for item in line.decode("utf-8").split(";"):
                    key, _, val = item.strip().partition("=")
                    if key == "name":
                        name = val.strip('"')
        if value.endswith(b"\r\n"):
            value = value[:-2]
        out.append((name, value.decode("utf-8")))
    return out
