"""A fake Amazon SES API v2 (``SendBulkEmail``, ``SendEmail``, ``GetAccount``) on 127.0.0.1.

Checks every request's SigV4 signature with botocore (so a wrong secret gets SES's 403), and
validates the body against botocore's own ``sesv2`` model: ``ParamValidator`` for the shape
(required members, types, enums, ``min``) plus the ``max`` lengths/counts and patterns it does
not enforce, and SES's documented 50 entries per ``SendBulkEmail`` call. Templates render like
SES's Handlebars: ``{{x}}`` escapes HTML, ``{{{x}}}`` inserts as is, ``\\{{`` is a literal
``{{``; a variable no data defines is a rendering failure, reported as a contract problem.
``fail_recipient(email, "MESSAGE_REJECTED" | "TRANSIENT_FAILURE" | …)`` sets that entry's
``Status`` in the bulk answer.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import re
import uuid
from functools import cache
from typing import Any
from urllib.parse import quote

from tests.fakes.server import FakeProviderServer, Request, Response, addresses

BULK = "/v2/email/outbound-bulk-emails"
SINGLE = "/v2/email/outbound-emails"
ACCOUNT = "/v2/email/account"
SUPPRESSED = "/v2/email/suppression/addresses"
MAX_BULK_ENTRIES = 50
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([^,]+), Signature=([0-9a-f]+)"
)
_VAR = re.compile(r"\\\{\{|\{\{\{\s*([\w.:-]+)\s*\}\}\}|\{\{\s*([\w.:-]+)\s*\}\}")


@cache
def _model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sesv2")


def shape_problems(operation: str, params: Any) -> list[str]:
    """``params`` against the botocore model: ParamValidator, then max sizes and patterns."""
    from botocore.validate import ParamValidator

    shape = _model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    problems = [line.strip() for line in report.generate_report().splitlines() if line.strip()]
    _limits(shape, params, operation, problems)
    return problems


def _limits(shape: Any, value: Any, where: str, problems: list[str]) -> None:
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _limits(member, value[name], f"{where}.{name}", problems)
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: {len(value)} items, at most {meta['max']}")
        for i, item in enumerate(value):
            _limits(shape.member, item, f"{where}[{i}]", problems)
    elif shape.type_name == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: {len(value)} characters, at most {meta['max']}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            problems.append(f"{where}: {value[:60]!r} does not match {meta['pattern']}")


def render(template: str, data: dict[str, Any], missing: set[str] | None = None) -> str:
    """SES-style Handlebars substitution (variables only; no helpers or blocks)."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "\\{{":
            return "{{"
        name = m.group(1) or m.group(2)
        if name not in data:
            if missing is not None:
                missing.add(name)
            return ""
        value = str(data[name])
        return value if m.group(1) else html.escape(value, quote=True)

    return _VAR.sub(one, template)


class SESFake(FakeProviderServer):
    provider = "ses"

    def __init__(
        self,
        *,
        access_key_id: str = "AKIAFAKEFAKEFAKE",
        secret_access_key: str = "fake-secret",
        region: str = "eu-west-1",
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.region = region
        # the account-level suppression list: EmailAddress -> (Reason, LastUpdateTime epoch)
        self.suppressed: dict[str, tuple[str, float]] = {}
        self.page_size = 1000  # at most this many per page, whatever PageSize asks

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def _error(self, status: int, kind: str, message: str) -> Response:
        return Response(status, {"message": message}, {"x-amzn-ErrorType": f"{kind}:"})

    # --- signature ------------------------------------------------------------------------

    def _signature_problem(self, request: Request) -> Response | None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        m = _AUTH.fullmatch(request.headers.get("authorization", ""))
        if not m:
            return self._error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        key_id, day, region, service, signed, signature = m.groups()
        if key_id != self.access_key_id:
            return self._error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        if region != self.region or service != "ses":
            return self._error(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region ({self.region}) and service 'ses'",
            )
        names = signed.split(";")
        headers = {n: request.headers.get(n, "") for n in names if n != "host"}
        # the query as SigV4 canonicalises it: each key and value percent-encoded (RFC 3986)
        query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
            for k, vs in request.query.items()
            for v in vs
        )
        url = f"http://{request.headers.get('host', '')}{request.path}" + (
            f"?{query}" if query else ""
        )
        aws = AWSRequest(request.method, url, data=request.body, headers=headers)
        aws.context["timestamp"] = request.headers.get("x-amz-date", "")
        signer = SigV4Auth(Credentials(self.access_key_id, self.secret_access_key), "ses", region)
        canonical = signer.canonical_request(aws)
        expected = signer.signature(signer.string_to_sign(aws, canonical), aws)
        if expected != signature or not aws.context["timestamp"].startswith(day):
            return self._error(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    # --- contract -------------------------------------------------------------------------

    def contract_problems(self, request: Request) -> list[str]:
        if request.path == SUPPRESSED:
            return self.suppressed_problems(request)
        operation = {BULK: "SendBulkEmail", SINGLE: "SendEmail"}.get(request.path)
        if operation is None or request.method != "POST":
            return []
        if "application/json" not in request.content_type:
            return [f"Content-Type must be application/json, got {request.content_type!r}"]
        try:
            params = request.json()
        except ValueError as e:
            return [f"body is not JSON: {e}"]
        problems = shape_problems(operation, params)
        if problems or not isinstance(params, dict):
            return problems[:6]
        # SES Destination: "the local part ... may only contain 7-bit ASCII characters. If the
        # domain part ... contains non-ASCII characters, they must be encoded using Punycode"
        dests = [params.get("Destination") or {}] + [
            e.get("Destination") or {} for e in params.get("BulkEmailEntries") or []
        ]
        for dest in dests:
            for address in addresses(dest.get("ToAddresses") or []):
                if not address.isascii():
                    problems.append(f"ToAddresses: {address!r} is not 7-bit ASCII (Punycode)")
        if operation == "SendBulkEmail":
            entries = params["BulkEmailEntries"]
            if len(entries) > MAX_BULK_ENTRIES:
                problems.append(f"{len(entries)} BulkEmailEntries; SES takes at most 50 per call")
            template = params["DefaultContent"].get("Template") or {}
            content = template.get("TemplateContent")
            if not (content or template.get("TemplateName") or template.get("TemplateArn")):
                problems.append("DefaultContent.Template needs TemplateContent or TemplateName")
            for i, entry in enumerate(entries):
                data = self._data(template, entry)
                if isinstance(data, str):
                    problems.append(f"BulkEmailEntries[{i}]: {data}")
                elif content:
                    missing: set[str] = set()
                    for part in content.values():
                        render(part, data, missing)
                    if missing:
                        problems.append(f"BulkEmailEntries[{i}]: no data for {sorted(missing)}")
                if len(problems) > 5:
                    break
        return problems[:6]

    @staticmethod
    def _data(template: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any] | str:
        try:
            data = json.loads(template.get("TemplateData") or "{}")
            raw = (entry.get("ReplacementEmailContent") or {}).get("ReplacementTemplate") or {}
            data.update(json.loads(raw.get("ReplacementTemplateData") or "{}"))
        except (ValueError, AttributeError) as e:
            return f"template data is not a JSON object: {e}"
        return data

    # --- behaviour ------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        problem = self._signature_problem(request)
        if problem is not None:
            return problem
        if request.method == "GET" and request.path == ACCOUNT:
            return Response(
                200,
                {
                    "SendingEnabled": True,
                    "ProductionAccessEnabled": True,
                    "EnforcementStatus": "HEALTHY",
                    "DedicatedIpAutoWarmupEnabled": False,
                    "SendQuota": {
                        "Max24HourSend": 200000.0,
                        "MaxSendRate": 100.0,
                        "SentLast24Hours": float(self.total_accepted),
                    },
                },
            )
        if request.method == "GET" and request.path == SUPPRESSED:
            return self._suppressed(request)
        if request.method == "POST" and request.path == BULK:
            return Response(200, {"BulkEmailEntryResults": self._bulk(request, request.json())})
        if request.method == "POST" and request.path == SINGLE:
            return self._single(request, request.json())
        return self._error(404, "NotFoundException", f"no route {request.method} {request.path}")

    def _bulk(self, request: Request, params: dict[str, Any]) -> list[dict[str, Any]]:
        template = params["DefaultContent"]["Template"]
        content = template.get("TemplateContent") or {}
        defaults = {h["Name"]: h["Value"] for h in template.get("Headers") or []}
        reply_to = ", ".join(params.get("ReplyToAddresses") or [])
        results = []
        for entry in params["BulkEmailEntries"]:
            dest = entry["Destination"]
            to = addresses(
                dest.get("ToAddresses", [])
                + dest.get("CcAddresses", [])
                + dest.get("BccAddresses", [])
            )
            with self.lock:
                status = next(
                    (
                        self.recipient_failures[a.lower()]
                        for a in to
                        if a.lower() in self.recipient_failures
                    ),
                    None,
                )
            if status:
                results.append({"Status": status, "Error": f"{status.replace('_', ' ').lower()}"})
                continue
            mid = f"0102{uuid.uuid4().hex}-000000"
            data = self._data(template, entry)
            assert isinstance(data, dict)
            headers = {
                **defaults,
                **{h["Name"]: h["Value"] for h in entry.get("ReplacementHeaders") or []},
            }
            if reply_to:
                headers["Reply-To"] = reply_to
            for address in to:
                if self.record != "full":
                    self.deliver(request, address, message_id=mid)
                    continue
                self.deliver(
                    request,
                    address,
                    render(content.get("Subject", ""), data),
                    render(content.get("Html", ""), data),
                    render(content.get("Text", ""), data),
                    headers,
                    mid,
                    params.get("FromEmailAddress", ""),
                    ",".join(
                        f"{t['Name']}={t['Value']}" for t in params.get("DefaultEmailTags") or []
                    ),
                )
            results.append({"Status": "SUCCESS", "MessageId": mid})
        return results

    def _single(self, request: Request, params: dict[str, Any]) -> Response:
        dest = params.get("Destination") or {}
        to = addresses(dest.get("ToAddresses", []))
        with self.lock:
            status = next(
                (
                    self.recipient_failures[a.lower()]
                    for a in to
                    if a.lower() in self.recipient_failures
                ),
                None,
            )
        if status:
            return self._error(400, "MessageRejected", f"Email address is not verified. ({status})")
        simple = params["Content"]["Simple"]
        headers = {h["Name"]: h["Value"] for h in simple.get("Headers") or []}
        if params.get("ReplyToAddresses"):
            headers["Reply-To"] = ", ".join(params["ReplyToAddresses"])
        mid = f"0102{uuid.uuid4().hex}-000000"
        body = simple["Body"]
        for address in to:
            self.deliver(
                request,
                address,
                simple["Subject"]["Data"],
                (body.get("Html") or {}).get("Data", ""),
                (body.get("Text") or {}).get("Data", ""),
                headers,
                mid,
                params.get("FromEmailAddress", ""),
            )
        return Response(200, {"MessageId": mid})

    # --- ListSuppressedDestinations: GET /v2/email/suppression/addresses -------------------
    # botocore's sesv2 model: querystring ``Reason`` (list, BOUNCE | COMPLAINT), ``StartDate``
    # and ``EndDate`` (timestamps, ISO 8601 in a query), ``NextToken``, ``PageSize``; output
    # ``SuppressedDestinationSummaries`` ({EmailAddress, Reason, LastUpdateTime}) and
    # ``NextToken``. A token this fake did not issue is InvalidNextTokenException (400).

    def suppressed_problems(self, request: Request) -> list[str]:
        """The query against the model's input shape."""
        if request.method != "GET":
            return [f"{request.method} {SUPPRESSED}: ListSuppressedDestinations is a GET"]
        q = request.query
        names = {"Reason": "Reasons", "StartDate": "StartDate", "EndDate": "EndDate"}
        names |= {"NextToken": "NextToken", "PageSize": "PageSize", "TenantName": "TenantName"}
        unknown = sorted(set(q) - set(names))
        if unknown:
            return [f"unknown query parameter {unknown[0]}"]
        params: dict[str, Any] = {}
        for key, values in q.items():
            if key == "Reason":
                params["Reasons"] = values
            elif key == "PageSize":
                if not values[-1].isdigit():
                    return [f"PageSize: expected an integer, got {values[-1]!r}"]
                params["PageSize"] = int(values[-1])
            elif key in ("StartDate", "EndDate"):
                try:
                    params[key] = datetime.datetime.fromisoformat(values[-1].replace("Z", "+00:00"))
                except ValueError:
                    return [f"{key}: expected an ISO 8601 time, got {values[-1]!r}"]
            else:
                params[names[key]] = values[-1]
        return shape_problems("ListSuppressedDestinations", params)

    def _suppressed(self, request: Request) -> Response:
        q = request.query
        reasons = set(q.get("Reason") or ["BOUNCE", "COMPLAINT"])
        start = q.get("StartDate", [""])[-1]
        since = (
            datetime.datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp()
            if start
            else 0.0
        )
        with self.lock:
            rows = sorted(
                (a, r, t) for a, (r, t) in self.suppressed.items() if r in reasons and t >= since
            )
        token = q.get("NextToken", [""])[-1]
        offset = 0
        if token:
            try:
                offset = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
            except ValueError:
                return self._error(400, "InvalidNextTokenException", "The NextToken is invalid.")
        size = min(int(q.get("PageSize", ["1000"])[-1]), self.page_size)
        chosen = rows[offset : offset + size]
        body: dict[str, Any] = {
            "SuppressedDestinationSummaries": [
                {"EmailAddress": a, "Reason": r, "LastUpdateTime": t} for a, r, t in chosen
            ]
        }
        if offset + size < len(rows):
            body["NextToken"] = base64.urlsafe_b64encode(f"o:{offset + size}".encode()).decode()
        return Response(200, body)
