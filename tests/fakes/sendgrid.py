"""A fake SendGrid (``POST /v3/mail/send``, ``GET /v3/scopes``) on 127.0.0.1.

Validates every send against SendGrid's published OpenAPI file and the rules of its Mail Send
errors page that the file cannot express (1,000 recipients in total, each address once,
substitutions ≤ 10,000 bytes per personalization, text/plain before text/html, reserved
headers), applies each personalization's substitutions and headers, and records what each
recipient would receive. ``fail_recipient(email, "invalid")`` makes SendGrid refuse the call
with a 400 naming that personalization (``personalizations.N.to.0.email``), as it does.

Spec quirk (tests/contracts/README.md): the file types the top-level ``custom_args``
as a string while the API takes an object; the validator checks that field itself (an object
of strings) and hands openapi-core the body without it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.server import FakeProviderServer, Request, Response, openapi_problems

SPEC = "sendgrid-mail-v3.json"
LISTS = ("bounces", "spam_reports", "blocks", "invalid_emails", "unsubscribes")
_LIST_PARAMS = frozenset({"start_time", "end_time", "limit", "offset"})
_GROUP = re.compile(r"^/v3/asm/groups/(\d+)/suppressions$")
MAX_RECIPIENTS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
    )
)


class SendGridFake(FakeProviderServer):
    provider = "sendgrid"

    def __init__(
        self,
        *,
        api_key: str = "SG.test",
        scopes: tuple[str, ...] = ("mail.send", "user.profile.read"),
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.api_key = api_key
        self.scopes = scopes
        # suppression lists: name -> entries as SendGrid returns them; pages ≤ page_size
        self.suppression_lists: dict[str, list[dict[str, Any]]] = {n: [] for n in LISTS}
        self.groups: dict[int, list[str]] = {}
        self.asm_groups: list[int | None] = []  # asm.group_id of each accepted send
        self.page_size = 500

    def error_body(self, status: int, message: str) -> Any:
        return {"errors": [{"message": message, "field": None, "help": None}]}

    # --- contract -------------------------------------------------------------------------

    def contract_problems(self, request: Request) -> list[str]:
        if request.path.startswith(("/v3/suppression/", "/v3/asm/")):
            return self.suppression_problems(request)
        if request.path != "/v3/mail/send" or request.method != "POST":
            return []
        try:
            body = json.loads(request.body)
        except ValueError as e:
            return [f"body is not JSON: {e}"]
        problems: list[str] = []
        if isinstance(body, dict) and "custom_args" in body:
            # the spec's quirk: check the object here, validate the rest with openapi-core
            args = body.pop("custom_args")
            if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
                problems.append("custom_args: expected an object of string values")
            stripped = Request(
                request.method,
                request.path,
                request.query,
                request.headers,
                json.dumps(body).encode(),
            )
        else:
            stripped = request
        problems += openapi_problems(SPEC, stripped, "https://api.sendgrid.com")
        if problems or not isinstance(body, dict):
            return problems
        return rule_problems(body)

    # --- behaviour ------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Response(
                401,
                self.error_body(
                    401, "The provided authorization grant is invalid, expired, or revoked"
                ),
            )
        if request.path == "/v3/scopes" and request.method == "GET":
            return Response(200, {"scopes": list(self.scopes)})
        if request.path.startswith(("/v3/suppression/", "/v3/asm/")):
            return self._suppressions(request)
        if request.path != "/v3/mail/send" or request.method != "POST":
            return Response(404, self.error_body(404, "not found"))
        if "mail.send" not in self.scopes:
            return Response(403, self.error_body(403, "access forbidden"))
        body = json.loads(request.body)
        errors = []
        with self.lock:
            for i, p in enumerate(body.get("personalizations", [])):
                for j, to in enumerate(p.get("to", [])):
                    if to.get("email", "").lower() in self.recipient_failures:
                        errors.append(
                            {
                                "message": "Does not contain a valid address.",
                                "field": f"personalizations.{i}.to.{j}.email",
                                "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to",
                            }
                        )
        if errors:
            return Response(400, {"errors": errors})
        with self.lock:
            self.asm_groups.append((body.get("asm") or {}).get("group_id"))
        message_id = self.next_message_id()[1:-1].split("@")[0]
        self._deliver_all(request, body, message_id)
        return Response(202, b"", {"X-Message-Id": message_id}, content_type="text/plain")

    def _deliver_all(self, request: Request, body: dict[str, Any], message_id: str) -> None:
        content = {c["type"]: c["value"] for c in body.get("content", [])}
        common_headers = dict(body.get("headers") or {})
        if body.get("reply_to"):
            common_headers["Reply-To"] = body["reply_to"]["email"]
        sender = body.get("from", {}).get("email", "")
        tag = ",".join(body.get("categories") or [])
        for p in body.get("personalizations", []):
            for to in p.get("to", []):
                if self.record != "full":
                    self.deliver(request, to["email"], message_id=message_id)
                    continue
                subs = p.get("substitutions") or {}

                def sub(s: str, subs: dict[str, str] = subs) -> str:
                    for key, value in subs.items():
                        s = s.replace(key, value)
                    return s

                self.deliver(
                    request,
                    to["email"],
                    subject=sub(p.get("subject") or body.get("subject", "")),
                    html=sub(content.get("text/html", "")),
                    text=sub(content.get("text/plain", "")),
                    headers={
                        **common_headers,
                        **{k: sub(v) for k, v in (p.get("headers") or {}).items()},
                    },
                    message_id=message_id,
                    from_=sender,
                    tag=tag,
                )

    # --- suppressions -----------------------------------------------------------------------
    # GET /v3/suppression/{bounces,spam_reports,blocks,invalid_emails,unsubscribes}: query
    # ``start_time``/``end_time`` (Unix seconds, inclusive), ``limit`` (1-500), ``offset`` (≥ 0);
    # the answer is a JSON array (newest first). GET /v3/asm/groups/{group_id}/suppressions
    # answers an array of addresses. Errors: ``{"errors": [{"field", "message"}]}``.

    def add_suppression(self, list_: str, email: str, created: int, **extra: Any) -> None:
        """Put ``email`` on a suppression list (``created``: Unix seconds)."""
        with self.lock:
            self.suppression_lists[list_].append({"created": created, "email": email, **extra})

    def suppression_problems(self, request: Request) -> list[str]:
        """The documented query rules of the suppression list endpoints."""
        if request.method != "GET":
            return [f"{request.method} {request.path}: only GET lists suppressions"]
        q = {k: v[-1] for k, v in request.query.items()}
        if request.path.startswith("/v3/asm/"):
            if not _GROUP.match(request.path):
                return [f"{request.path}: not a documented suppression group path"]
            return [f"unknown parameter {k}" for k in sorted(q)]
        if request.path.rsplit("/", 1)[-1] not in LISTS:
            return [f"{request.path}: not a documented suppression list"]
        problems = [f"unknown parameter {k}" for k in sorted(set(q) - _LIST_PARAMS)]
        for name in ("start_time", "end_time", "offset"):
            if name in q and not q[name].isdigit():
                problems.append(f"{name}: expected a whole number, got {q[name]!r}")
        limit = q.get("limit", "500")
        if not limit.isdigit() or not 1 <= int(limit) <= 500:
            problems.append(f"limit: expected 1 to 500, got {limit!r}")
        return problems

    def _suppressions(self, request: Request) -> Response:
        if m := _GROUP.match(request.path):
            group = int(m.group(1))
            with self.lock:
                if group not in self.groups:
                    return Response(404, self.error_body(404, "Unsubscribe group not found"))
                return Response(200, list(self.groups[group]))
        list_ = request.path.rsplit("/", 1)[-1]
        q = {k: v[-1] for k, v in request.query.items()}
        start = int(q.get("start_time", "0"))
        end = int(q.get("end_time", str(2**62)))
        with self.lock:
            items = [i for i in self.suppression_lists[list_] if start <= i["created"] <= end]
        items.sort(key=lambda i: (-i["created"], i["email"]))
        offset = int(q.get("offset", "0"))
        size = min(int(q.get("limit", "500")), self.page_size)
        return Response(200, items[offset : offset + size])


def rule_problems(body: dict[str, Any]) -> list[str]:
    """SendGrid's documented Mail Send rules that its OpenAPI file does not express."""
    problems = []
    personalizations = body.get("personalizations") or []
    if not personalizations:
        problems.append("You must have at least one personalization.")
    seen: set[str] = set()
    total = 0
    for i, p in enumerate(personalizations):
        for kind in ("to", "cc", "bcc"):
            for r in p.get(kind) or []:
                total += 1
                address = r.get("email", "").lower()
                if address in seen:
                    problems.append(f"personalizations.{i}: {address} included more than once")
                seen.add(address)
        subs = p.get("substitutions") or {}
        size = sum(len(k.encode()) + len(v.encode()) for k, v in subs.items())
        if size > MAX_SUBSTITUTION_BYTES:
            problems.append(f"personalizations.{i}.substitutions: {size} bytes > 10,000")
        for name, value in (p.get("headers") or {}).items():
            if name.lower() in RESERVED_HEADERS:
                problems.append(f"personalizations.{i}.headers: {name} is reserved")
            if not isinstance(value, str):
                problems.append(f"personalizations.{i}.headers.{name}: must be a string")
        if not (p.get("subject") or body.get("subject")):
            problems.append(f"personalizations.{i}: subject is required")
    if total > MAX_RECIPIENTS:
        problems.append(f"There is a limit of 1000 total recipients per request; got {total}")
    types = [c.get("type") for c in body.get("content") or []]
    if "text/plain" in types and types[0] != "text/plain":
        problems.append("content: text/plain must come first, then text/html")
    if not types and not body.get("template_id"):
        problems.append("content: at least one content value (or template_id) is required")
    for name, value in (body.get("headers") or {}).items():
        if name.lower() in RESERVED_HEADERS:
            problems.append(f"headers: {name} is reserved")
        if not isinstance(value, str):
            problems.append(f"headers.{name}: must be a string")
    if len(problems) > 5:
        problems = [*problems[:5], f"… and {len(problems) - 5} more"]
    return problems
