"""A fake Postmark (``POST /email``, ``POST /email/batch``, ``GET /server``,
``GET /message-streams/{id}``) on 127.0.0.1.

Postmark publishes no machine-readable spec; the validator checks each message against its
documented fields (tests/contracts/README.md): only ``From``, ``To``, ``Cc``, ``Bcc``,
``Subject``, ``HtmlBody``, ``TextBody``, ``ReplyTo``, ``Headers`` (list of ``{Name, Value}``),
``Tag``, ``Metadata``, ``MessageStream``, ``TrackOpens``, ``TrackLinks``, with their types; at
most 50 recipients per message and 500 messages per batch; JSON with ``Accept`` and
``Content-Type: application/json``. A batch answers 200 with one result per message, in order;
``fail_recipient(email, code)`` makes that message's element carry ``ErrorCode`` ``code``
(406: inactive recipient, 300: invalid request…).

Every accepted message is kept for the outbound message search, ``GET /messages/outbound``:
``count`` (at most 500) and ``offset`` required, count + offset at most 10,000, filters
``recipient``, ``tag``, ``messagestream`` and ``metadata_<key>``; answered as
``{"TotalCount", "Messages": [{MessageID, To, Recipients, Metadata, Status, …}]}``, newest first.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from typing import Any

from tests.fakes.server import (
    FakeProviderServer,
    Request,
    Response,
    addresses,
    split_addresses,
)

MAX_BATCH = 500
_DUMP = re.compile(r"^/message-streams/([^/]+)/suppressions/dump$")
_DUMP_PARAMS: dict[str, tuple[str, ...]] = {
    "SuppressionReason": ("HardBounce", "SpamComplaint", "ManualSuppression"),
    "Origin": ("Recipient", "Customer", "Admin"),
    "fromdate": (),
    "todate": (),
    "EmailAddress": (),
}
MAX_PAYLOAD = 50 * 1000 * 1000
MAX_RECIPIENTS = 50
FIELDS: dict[str, type | tuple[type, ...]] = {
    "From": str,
    "To": str,
    "Cc": str,
    "Bcc": str,
    "Subject": str,
    "HtmlBody": str,
    "TextBody": str,
    "ReplyTo": str,
    "Headers": list,
    "Tag": str,
    "Metadata": dict,
    "MessageStream": str,
    "TrackOpens": bool,
    "TrackLinks": str,
}
TRACK_LINKS = ("None", "HtmlAndText", "HtmlOnly", "TextOnly")
MESSAGES = {
    300: "Invalid email request",
    406: "You tried to send to recipient(s) that have been marked as inactive. Found inactive "
    "addresses: {to}. Inactive recipients are ones that have generated a hard bounce, a spam "
    "complaint, or a manual suppression.",
    429: "Rate limit exceeded",
}


def message_problems(message: Any, where: str = "") -> list[str]:
    """How one message breaks Postmark's documented fields."""
    if not isinstance(message, dict):
        return [f"{where}expected a JSON object, got {type(message).__name__}"]
    problems = []
    for key, value in message.items():
        if key not in FIELDS:
            problems.append(f"{where}{key}: not a documented Postmark field")
        elif not isinstance(value, FIELDS[key]) or (FIELDS[key] is str and isinstance(value, bool)):
            problems.append(f"{where}{key}: expected {FIELDS[key].__name__}")  # type: ignore[union-attr]
    for key in ("From", "To"):
        if not message.get(key):
            problems.append(f"{where}{key}: required")
    if not (message.get("HtmlBody") or message.get("TextBody")):
        problems.append(f"{where}provide either TextBody or HtmlBody or both")
    count = sum(len(split_addresses(str(message.get(k) or ""))) for k in ("To", "Cc", "Bcc"))
    if count > MAX_RECIPIENTS:
        problems.append(f"{where}{count} recipients; Postmark allows 50 per message")
    for i, header in enumerate(message.get("Headers") or []):
        if (
            not isinstance(header, dict)
            or set(header) != {"Name", "Value"}
            or not all(isinstance(v, str) for v in header.values())
        ):
            problems.append(f"{where}Headers.{i}: expected {{Name, Value}} strings")
    if message.get("TrackLinks") not in (None, *TRACK_LINKS):
        problems.append(f"{where}TrackLinks: one of {', '.join(TRACK_LINKS)}")
    return problems


class PostmarkFake(FakeProviderServer):
    provider = "postmark"

    def __init__(
        self,
        *,
        server_token: str = "pm-test-token",
        streams: dict[str, str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.server_token = server_token
        # stream id -> MessageStreamType ("Transactional" | "Broadcasts")
        self.streams = streams or {"outbound": "Transactional", "broadcast": "Broadcasts"}
        self.suppressions: dict[str, list[dict[str, Any]]] = {}  # stream -> dump entries
        self.outbound: list[dict[str, Any]] = []  # accepted messages, oldest first

    def error_body(self, status: int, message: str) -> Any:
        return {"ErrorCode": 300 if status == 400 else status, "Message": message}

    # --- contract -------------------------------------------------------------------------

    def contract_problems(self, request: Request) -> list[str]:
        if _DUMP.match(request.path):
            return self.dump_problems(request)
        if request.method != "POST" or request.path not in ("/email", "/email/batch"):
            return []
        problems = []
        if len(request.body) > MAX_PAYLOAD:
            problems.append(f"{len(request.body):,} bytes; a batch may be at most 50 MB")
        if "application/json" not in request.content_type:
            problems.append(f"Content-Type must be application/json, got {request.content_type!r}")
        if "application/json" not in request.headers.get("accept", ""):
            problems.append("Accept: application/json is required")
        try:
            body = json.loads(request.body)
        except ValueError as e:
            return [*problems, f"body is not JSON: {e}"]
        if request.path == "/email":
            return problems + message_problems(body)
        if not isinstance(body, list):
            return [*problems, "/email/batch takes a JSON array of messages"]
        if len(body) > MAX_BATCH:
            problems.append(f"{len(body)} messages; /email/batch takes at most 500")
        for i, message in enumerate(body):
            problems += message_problems(message, f"[{i}].")
            if len(problems) > 5:
                return [*problems[:5], "…"]
        return problems

    # --- behaviour ------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        if request.headers.get("x-postmark-server-token") != self.server_token:
            return Response(
                401, {"ErrorCode": 10, "Message": "Request does not contain a valid Server token."}
            )
        if request.method == "GET" and request.path == "/server":
            return Response(
                200,
                {
                    "ID": 1,
                    "Name": "Pressroom test server",
                    "Color": "Blue",
                    "ServerLink": "https://account.postmarkapp.com/servers/1",
                },
            )
        if m := _DUMP.match(request.path):
            return self._dump(request, m.group(1))
        if request.method == "GET" and request.path.startswith("/message-streams/"):
            stream = request.path.rsplit("/", 1)[1]
            if stream not in self.streams:
                return Response(
                    422,
                    {
                        "ErrorCode": 1226,
                        "Message": "The message stream for the "
                        f"provided 'ID' was not found: {stream}",
                    },
                )
            return Response(
                200,
                {
                    "ID": stream,
                    "ServerID": 1,
                    "Name": stream,
                    "MessageStreamType": self.streams[stream],
                },
            )
        if request.method == "GET" and request.path == "/messages/outbound":
            return self._search(request.query)
        if request.method == "POST" and request.path in ("/email", "/email/batch"):
            body = request.json()
            if request.path == "/email":
                result = self._one(request, body)
                return Response(200 if result["ErrorCode"] == 0 else 422, result)
            return Response(200, [self._one(request, m) for m in body])
        return Response(404, {"ErrorCode": 404, "Message": "not found"})

    def _one(self, request: Request, m: dict[str, Any]) -> dict[str, Any]:
        to = addresses(split_addresses(m.get("To", "")))
        stream = m.get("MessageStream", "outbound")
        if stream not in self.streams:
            return {"ErrorCode": 1235, "Message": f"The message stream '{stream}' was not found."}
        with self.lock:
            codes = [self.recipient_failures.get(a.lower()) for a in to]
        code = next((c for c in codes if c), None)
        if code:
            return {
                "ErrorCode": code,
                "Message": MESSAGES.get(code, "error").format(to=", ".join(to)),
            }
        mid = str(uuid.uuid4())
        headers = {h["Name"]: h["Value"] for h in m.get("Headers") or []}
        if m.get("ReplyTo"):
            headers["Reply-To"] = m["ReplyTo"]
        for address in to:
            self.deliver(
                request,
                address,
                m.get("Subject", ""),
                m.get("HtmlBody", ""),
                m.get("TextBody", ""),
                headers,
                mid,
                m.get("From", ""),
                m.get("Tag", ""),
            )
        if self.record == "full":
            with self.lock:
                self.outbound.append(
                    {
                        "Tag": m.get("Tag", ""),
                        "MessageID": mid,
                        "MessageStream": stream,
                        "To": [{"Email": a, "Name": None} for a in to],
                        "Cc": [],
                        "Bcc": [],
                        "Recipients": to,
                        "ReceivedAt": datetime.datetime.now(datetime.UTC).isoformat(),
                        "From": m.get("From", ""),
                        "Subject": m.get("Subject", ""),
                        "Attachments": [],
                        "Status": "Sent",
                        "TrackOpens": m.get("TrackOpens", False),
                        "TrackLinks": m.get("TrackLinks", "None"),
                        "Metadata": dict(m.get("Metadata") or {}),
                        "Sandboxed": False,
                    }
                )
        return {
            "To": m.get("To"),
            "SubmittedAt": "2026-11-25T09:00:00.0000000Z",
            "MessageID": mid,
            "ErrorCode": 0,
            "Message": "OK",
        }

    # --- suppressions: GET /message-streams/{stream}/suppressions/dump ----------------------
    # Documented (postmarkapp.com/developer/api/suppressions-api): Accept: application/json and
    # the server token; query ``SuppressionReason`` (HardBounce, SpamComplaint,
    # ManualSuppression), ``Origin`` (Recipient, Customer, Admin), ``fromdate``/``todate``
    # (YYYY-MM-DD, inclusive), ``EmailAddress``; the answer is ``{"Suppressions": [...]}``.

    def add_suppression(
        self, stream: str, address: str, reason: str, created_at: str, origin: str = "Recipient"
    ) -> None:
        """Add an entry to ``stream``'s suppression dump (``created_at`` ISO 8601)."""
        with self.lock:
            self.suppressions.setdefault(stream, []).append(
                {
                    "EmailAddress": address,
                    "SuppressionReason": reason,
                    "Origin": origin,
                    "CreatedAt": created_at,
                }
            )

    def dump_problems(self, request: Request) -> list[str]:
        """The documented query rules of the suppression dump."""
        if request.method != "GET":
            return [f"{request.method} {request.path}: the dump is read with GET"]
        if "application/json" not in request.headers.get("accept", ""):
            return ["Accept: application/json is required"]
        q = {k: v[-1] for k, v in request.query.items()}
        problems = [f"unknown parameter {k}" for k in sorted(set(q) - set(_DUMP_PARAMS))]
        for name, allowed in _DUMP_PARAMS.items():
            if name in q and allowed and q[name] not in allowed:
                problems.append(f"{name}: expected one of {', '.join(allowed)}, got {q[name]!r}")
        for name in ("fromdate", "todate"):
            if name in q:
                try:
                    datetime.date.fromisoformat(q[name])
                except ValueError:
                    problems.append(f"{name}: expected a date like 2020-02-01, got {q[name]!r}")
        return problems

    def _dump(self, request: Request, stream: str) -> Response:
        if stream not in self.streams:
            return Response(
                422,
                {
                    "ErrorCode": 1226,
                    "Message": f"The message stream for the provided 'ID' was not found: {stream}",
                },
            )
        q = {k: v[-1] for k, v in request.query.items()}
        with self.lock:
            items = list(self.suppressions.get(stream, []))
        for name, field in (("SuppressionReason", "SuppressionReason"), ("Origin", "Origin")):
            if name in q:
                items = [i for i in items if i[field] == q[name]]
        if "EmailAddress" in q:
            items = [i for i in items if i["EmailAddress"].lower() == q["EmailAddress"].lower()]
        day = lambda i: i["CreatedAt"][:10]  # noqa: E731 - the entry's own calendar date
        if "fromdate" in q:
            items = [i for i in items if day(i) >= q["fromdate"]]
        if "todate" in q:
            items = [i for i in items if day(i) <= q["todate"]]
        return Response(200, {"Suppressions": items})

    def _search(self, query: dict[str, list[str]]) -> Response:
        """The outbound message search (https://postmarkapp.com/developer/api/messages-api)."""
        q = {k: v[-1] for k, v in query.items()}
        try:
            count, offset = int(q["count"]), int(q["offset"])
        except (KeyError, ValueError):
            return Response(422, {"ErrorCode": 300, "Message": "count and offset are required"})
        if not 1 <= count <= 500 or offset < 0 or count + offset > 10_000:
            return Response(
                422, {"ErrorCode": 300, "Message": "count at most 500; count + offset ≤ 10000"}
            )
        metadata = {k[len("metadata_") :]: v for k, v in q.items() if k.startswith("metadata_")}
        with self.lock:
            found = [
                m
                for m in reversed(self.outbound)
                if (
                    "recipient" not in q
                    or q["recipient"].lower() in [r.lower() for r in m["Recipients"]]
                )
                and q.get("tag", m["Tag"]) == m["Tag"]
                and q.get("messagestream", m["MessageStream"]) == m["MessageStream"]
                and all(str(m["Metadata"].get(k)) == v for k, v in metadata.items())
            ]
        return Response(200, {"TotalCount": len(found), "Messages": found[offset : offset + count]})
