"""A fake Mailgun (``POST /v3/{domain}/messages``, ``GET /v4/domains/{domain}``) on 127.0.0.1.

Validates every send against Mailgun's published OpenAPI file (multipart/form-data only) and
the documented batch rules (at most 1,000 ``to``; ``recipient-variables`` naming every
recipient; ``o:``/``h:``/``v:``/``t:`` options at most 16 KB), applies ``%recipient.x%``
substitution to subject, bodies and ``h:`` headers, and records each recipient's message.
Per-recipient failures (``fail_recipient(email, "invalid")``) behave like Mailgun: the whole
call is refused with 400 "'to' parameter is not a valid address".

Every accepted recipient also gets an ``accepted`` event (with its ``v:`` variables, after
substitution, as ``user-variables``), served by ``GET /v3/{domain}/events``: the documented
filters ``begin``/``end``/``ascending``/``limit`` (at most 300)/``event``/``recipient``, plus
``user-variables`` (a JSON object the event's variables must contain), paged through
``paging.next`` URLs until a page comes back empty.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

from tests.fakes.server import (
    FakeProviderServer,
    Request,
    Response,
    addresses,
    openapi_problems,
    parse_multipart,
    split_addresses,
)

SPEC = "mailgun-openapi.yaml"
MAX_RECIPIENTS = 1000
MAX_OPTIONS_BYTES = 16 * 1024
_VAR = re.compile(r"%recipient\.([A-Za-z0-9_\-]+)%")
_SEND = re.compile(r"^/v3/([^/]+)/messages$")
_DOMAIN = re.compile(r"^/v4/domains/([^/]+)$")
_SUPPRESSION = re.compile(r"^/v3/([^/]+)/(bounces|complaints|unsubscribes)$")
_LIST_PARAMS = frozenset({"limit", "page", "address", "term"})
_EVENTS = re.compile(r"^/v3/([^/]+)/events(?:/([A-Za-z0-9_=-]+))?$")
MAX_EVENTS_PAGE = 300


class MailgunFake(FakeProviderServer):
    provider = "mailgun"

    def __init__(self, *, domain: str = "mg.example.org", api_key: str = "key-test", **kw: Any):
        super().__init__(**kw)
        self.domain = domain
        self.api_key = api_key
        # suppression lists: name -> {address: item}; pages hold at most page_size items
        self.suppression_lists: dict[str, dict[str, dict[str, Any]]] = {
            "bounces": {},
            "complaints": {},
            "unsubscribes": {},
        }
        self.page_size = 1000
        self.events: list[dict[str, Any]] = []  # the events log, oldest first

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def _authorised(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return False
        try:
            user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == "api" and key == self.api_key

    # --- contract -------------------------------------------------------------------------

    def contract_problems(self, request: Request) -> list[str]:
        if _SUPPRESSION.match(request.path):
            return self.suppression_problems(request)
        if not _SEND.match(request.path) or request.method != "POST":
            return []
        problems = openapi_problems(SPEC, request, "https://api.mailgun.net")
        if problems:
            return problems
        return batch_rule_problems(parse_multipart(request.body, request.content_type))

    # --- behaviour ------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response(401, "Forbidden", content_type="text/plain")
        if m := _SUPPRESSION.match(request.path):
            return self._suppressions(request, m.group(1), m.group(2))
        if m := _DOMAIN.match(request.path):
            if request.method != "GET":
                return Response(405, self.error_body(405, "method not allowed"))
            if m.group(1) != self.domain:
                return Response(404, self.error_body(404, "Domain not found"))
            return Response(
                200,
                {
                    "domain": {
                        "name": self.domain,
                        "state": "active",
                        "type": "custom",
                        "created_at": "Thu, 13 Oct 2011 18:02:00 GMT",
                    },
                    "receiving_dns_records": [],
                    "sending_dns_records": [],
                },
            )
        if (m := _EVENTS.match(request.path)) and request.method == "GET":
            if m.group(1) != self.domain:
                return Response(404, self.error_body(404, f"Domain not found: {m.group(1)}"))
            return self._events(m.group(2), request.query)
        m = _SEND.match(request.path)
        if not m or request.method != "POST":
            return Response(404, self.error_body(404, "not found"))
        if m.group(1) != self.domain:
            return Response(404, self.error_body(404, f"Domain not found: {m.group(1)}"))
        try:
            fields = parse_multipart(request.body, request.content_type)
        except ValueError as e:
            return Response(400, self.error_body(400, str(e)))
        return self._send(request, fields)

    def _send(self, request: Request, fields: list[tuple[str, str]]) -> Response:
        single: dict[str, str] = {}
        to: list[str] = []
        headers: dict[str, str] = {}
        for name, value in fields:
            if name == "to":
                to.extend(v.strip() for v in split_addresses(value))
            elif name.startswith("h:"):
                headers[name[2:]] = value
            else:
                single.setdefault(name, value)
        if not to:
            return Response(400, self.error_body(400, "to parameter is missing"))
        with self.lock:
            bad = [a for a in addresses(to) if a.lower() in self.recipient_failures]
        if bad:
            return Response(
                400,
                self.error_body(
                    400, "'to' parameter is not a valid address. please check documentation"
                ),
            )
        variables = json.loads(single.get("recipient-variables") or "{}")
        mid = f"<{self.next_message_id()[1:-1].split('@')[0]}@{self.domain}>"
        subject, html, text = (
            single.get("subject", ""),
            single.get("html", ""),
            single.get("text", ""),
        )
        user_variables = {n[2:]: v for n, v in fields if n.startswith("v:")}
        for recipient in addresses(to):
            if self.record != "full":
                self.deliver(request, recipient, message_id=mid)
                continue
            values = variables.get(recipient, {})

            def sub(s: str, values: dict[str, Any] = values) -> str:
                return _VAR.sub(lambda m: str(values.get(m.group(1), m.group(0))), s)

            self._log_event(recipient, {k: sub(v) for k, v in user_variables.items()}, mid, single)
            self.deliver(
                request,
                recipient,
                subject=sub(subject),
                html=sub(html),
                text=sub(text),
                headers={k: sub(v) for k, v in headers.items()},
                message_id=mid,
                from_=single.get("from", ""),
                tag=single.get("o:tag", ""),
            )
        return Response(200, {"id": mid, "message": "Queued. Thank you."})

    # --- suppressions: GET /v3/{domain}/bounces | complaints | unsubscribes ----------------
    # Documented shape (Mailgun OpenAPI "List all bounces"; api-suppressions docs): query
    # ``limit`` (≤ 1,000, default 100), ``page`` (first/next/previous/last), ``address`` (the
    # pivot for next/previous), ``term`` (prefix filter). The answer is ``{"items": [...],
    # "paging": {"first", "last", "next", "previous"}}`` in alphabetical order of address;
    # errors are ``{"message": ...}``. A page holds at most ``page_size`` items.

    def add_suppression(self, list_: str, address: str, created_at: str, **extra: Any) -> None:
        """Put ``address`` on one of the fake's suppression lists (``created_at`` RFC 2822)."""
        with self.lock:
            self.suppression_lists[list_][address] = {
                "address": address,
                **extra,
                "created_at": created_at,
            }

    def suppression_problems(self, request: Request) -> list[str]:
        """The documented query rules of the list endpoints."""
        if request.method != "GET":
            return [f"{request.method} {request.path}: only GET lists a suppression list"]
        q = {k: v[-1] for k, v in request.query.items()}
        problems = [f"unknown parameter {k}" for k in sorted(set(q) - _LIST_PARAMS)]
        limit = q.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            problems.append(f"limit: expected 1 to 1000, got {limit!r}")
        page = q.get("page", "")
        if page not in ("", "first", "next", "previous", "last"):
            problems.append(f"page: expected first, next, previous or last, got {page!r}")
        if page in ("next", "previous") and "address" not in q:
            problems.append("page=next|previous needs the pivot address")
        return problems

    def _suppressions(self, request: Request, domain: str, list_: str) -> Response:
        if domain != self.domain:
            return Response(404, self.error_body(404, f"Domain not found: {domain}"))
        q = {k: v[-1] for k, v in request.query.items()}
        limit = int(q.get("limit", "100"))
        with self.lock:
            items = sorted(self.suppression_lists[list_].values(), key=lambda i: i["address"])
        term = q.get("term", "")
        items = [i for i in items if i["address"].startswith(term)]
        size = min(limit, self.page_size)
        page, pivot = q.get("page", ""), q.get("address", "")
        if page == "next":
            chosen = [i for i in items if i["address"] > pivot][:size]
        elif page == "previous":
            chosen = [i for i in items if i["address"] < pivot][-size:]
        elif page == "last":
            chosen = items[-size:]
        else:
            chosen = items[:size]
        base = f"{self.url}/v3/{domain}/{list_}?limit={limit}" + (f"&term={term}" if term else "")
        first = chosen[0]["address"] if chosen else pivot
        last = chosen[-1]["address"] if chosen else pivot
        paging = {
            "first": f"{base}&page=first",
            "last": f"{base}&page=last",
            "next": f"{base}&page=next&address={quote(last)}",
            "previous": f"{base}&page=previous&address={quote(first)}",
        }
        return Response(200, {"items": chosen, "paging": paging})

    # --- the events log -----------------------------------------------------------------

    def _log_event(
        self, recipient: str, variables: dict[str, str], mid: str, single: dict[str, str]
    ) -> None:
        event = {
            "event": "accepted",
            "id": uuid.uuid4().hex[:22],
            "timestamp": time.time(),
            "log-level": "info",
            "recipient": recipient,
            "recipient-domain": recipient.rpartition("@")[2],
            "tags": [single["o:tag"]] if "o:tag" in single else [],
            "user-variables": variables,
            "flags": {"is-test-mode": False},
            "message": {
                "headers": {
                    "to": recipient,
                    "message-id": mid.strip("<>"),
                    "from": single.get("from", ""),
                    "subject": single.get("subject", ""),
                },
                "size": 0,
            },
        }
        with self.lock:
            self.events.append(event)

    def _events(self, token: str | None, query: dict[str, list[str]]) -> Response:
        if token is not None:  # a paging URL: the query and offset it was made for
            state = json.loads(base64.urlsafe_b64decode(token))
            params, offset = state["q"], state["o"]
        else:
            params, offset = {k: v[-1] for k, v in query.items()}, 0
        try:
            limit = int(params.get("limit", 100))
        except ValueError:
            return Response(400, self.error_body(400, "limit must be an integer"))
        if not 1 <= limit <= MAX_EVENTS_PAGE:
            return Response(400, self.error_body(400, "limit must be between 1 and 300"))
        if "end" not in params and params.get("ascending") not in ("yes", "no"):
            return Response(
                400, self.error_body(400, "'ascending' must be given when 'end' is not")
            )
        wanted = json.loads(params.get("user-variables") or "{}")
        with self.lock:
            log = list(self.events)
        chosen = [
            e
            for e in log
            if ("begin" not in params or e["timestamp"] >= float(params["begin"]))
            and ("end" not in params or e["timestamp"] <= float(params["end"]))
            and params.get("event", e["event"]) == e["event"]
            and params.get("recipient", e["recipient"]).lower() == e["recipient"].lower()
            and all(e["user-variables"].get(k) == v for k, v in wanted.items())
        ]
        if params.get("ascending") == "no":
            chosen.reverse()
        page = chosen[offset : offset + limit]

        def url(at: int) -> str:
            state = json.dumps({"q": params, "o": at}).encode()
            return f"{self.url}/v3/{self.domain}/events/{base64.urlsafe_b64encode(state).decode()}"

        paging = {
            "first": url(0),
            "last": url(max(0, len(chosen) - limit)),
            "next": url(offset + len(page)),
            "previous": url(max(0, offset - limit)),
        }
        return Response(200, {"items": page, "paging": paging})


def batch_rule_problems(fields: list[tuple[str, str]]) -> list[str]:
    """Mailgun's documented batch-sending rules that its OpenAPI file cannot express."""
    problems = []
    to = [a for n, v in fields if n == "to" for a in split_addresses(v)]
    if len(to) > MAX_RECIPIENTS:
        problems.append(f"{len(to)} recipients in one call; Mailgun's batch limit is 1,000")
    options = sum(
        len(n.encode()) + len(v.encode()) for n, v in fields if n[:2] in ("o:", "h:", "v:", "t:")
    )
    if options > MAX_OPTIONS_BYTES:
        problems.append(f"send options (o:, h:, v:, t:) total {options} bytes; limit 16 KB")
    if not any(n in ("text", "html", "amp-html", "template") for n, _ in fields):
        problems.append("need at least one of 'text', 'html', 'amp-html' or 'template'")
    raw_vars = [v for n, v in fields if n == "recipient-variables"]
    if len(to) > 1 and not raw_vars:
        # without recipient-variables every recipient sees the whole To: list
        problems.append("batch without recipient-variables exposes every address to all")
    if raw_vars:
        try:
            variables = json.loads(raw_vars[0])
        except ValueError as e:
            return [*problems, f"recipient-variables is not valid JSON: {e}"]
        if not isinstance(variables, dict):
            return [*problems, "recipient-variables must be a JSON object keyed by address"]
        used = {m for n, v in fields if n not in ("recipient-variables",) for m in _VAR.findall(v)}
        for address in addresses(to):
            values = variables.get(address)
            if values is None:
                problems.append(f"recipient-variables has no entry for {address}")
                continue
            missing = used - set(values)
            if missing:
                problems.append(f"{address}: no value for %recipient.{sorted(missing)[0]}%")
        if len(problems) > 5:
            problems = [*problems[:5], f"… and {len(problems) - 5} more"]
    return problems
