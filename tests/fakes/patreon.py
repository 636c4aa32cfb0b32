"""A fake Patreon API v2 (campaign members) on 127.0.0.1, speaking its JSON:API responses.

What it follows, from Patreon's documentation (docs.patreon.com, "APIv2: Resource Endpoints",
"Errors" and "Rate Limits"):

- ``GET /api/oauth2/v2/campaigns/{campaign_id}/members`` with ``Authorization: Bearer``;
  ``include`` and ``fields[member]`` select what comes back (attributes that were not asked
  for are not sent); the documented member fields and includes only.
- Answers ``{"data": [member…], "included": [user…], "links": {"next": …},
  "meta": {"pagination": {"cursors": {"next": …}, "total": N}}}``; every member has a
  ``relationships.user`` pointing at an ``included`` user. The last page has no next cursor.
- Errors are JSON:API error objects (``errors[].code_name``, ``detail``, ``status``,
  ``title``); a bad token gets 401; 429 is the documented ``RequestThrottled`` body with
  ``retry_after_seconds``.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from tests.fakes.server import FakeProviderServer, Request, Response

TOKEN = "creator-access-token-0123456789"
CAMPAIGN = "4242"
PATH = f"/api/oauth2/v2/campaigns/{CAMPAIGN}/members"
MEMBER_FIELDS = {  # the member resource's documented attributes
    "campaign_lifetime_support_cents",
    "currently_entitled_amount_cents",
    "email",
    "full_name",
    "is_follower",
    "is_free_trial",
    "is_gifted",
    "last_charge_date",
    "last_charge_status",
    "lifetime_support_cents",
    "next_charge_date",
    "note",
    "patron_status",
    "pledge_cadence",
    "pledge_relationship_start",
    "will_pay_amount_cents",
}
INCLUDES = {"address", "campaign", "currently_entitled_tiers", "user", "pledge_history"}
PATRON_STATUSES = {"active_patron", "declined_patron", "former_patron", None}


def member(
    email: str | None,
    status: str | None = "active_patron",
    name: str = "",
    cents: int = 500,
    charge: str | None = "Paid",
) -> dict[str, Any]:
    """One member's attributes as the fake keeps them."""
    assert status in PATRON_STATUSES
    return {
        "email": email,
        "full_name": name or (email or "hidden").split("@")[0].title(),
        "patron_status": status,
        "currently_entitled_amount_cents": cents if status == "active_patron" else 0,
        "last_charge_status": charge,
        "last_charge_date": "2026-11-01T10:00:00.000+00:00",
        "lifetime_support_cents": cents * 3,
        "is_follower": False,
    }


class PatreonFake(FakeProviderServer):
    provider = "patreon"

    def __init__(self, members: list[dict[str, Any]], *, page_size: int = 2, **kw: Any) -> None:
        super().__init__(**kw)
        self.members = members
        self.page_size = page_size
        self.token = TOKEN
        self.next_host: str | None = None  # a next link on another origin (hostile answer)
        self.links = True  # False: the next page only as meta.pagination.cursors.next
        self.pages_served = 0

    # JSON:API error objects, as Patreon's "Errors" and "Rate Limits" sections show them
    def error_body(self, status: int, message: str) -> Any:
        error: dict[str, Any] = {
            "code": None,
            "code_name": {401: "Unauthorized", 429: "RequestThrottled"}.get(status, "Error"),
            "detail": message,
            "id": str(uuid.uuid4()),
            "status": str(status),
            "title": message,
        }
        if status == 429:
            error["detail"] = error["title"] = (
                "You have made too many attempts. Please try again later."
            )
            error["retry_after_seconds"] = 0
        return {"errors": [error]}

    def contract_problems(self, request: Request) -> list[str]:
        problems = []
        if request.method != "GET":
            problems.append(f"{request.method}: the members endpoint is GET only")
        if not request.path.startswith("/api/oauth2/v2/campaigns/") or not request.path.endswith(
            "/members"
        ):
            return [f"{request.path}: not a documented endpoint"]
        include = set(",".join(request.query.get("include", [])).split(",")) - {""}
        if include - INCLUDES:
            problems.append(f"include: unknown {sorted(include - INCLUDES)}")
        fields = set(",".join(request.query.get("fields[member]", [])).split(",")) - {""}
        if fields - MEMBER_FIELDS:
            problems.append(f"fields[member]: unknown {sorted(fields - MEMBER_FIELDS)}")
        for key in request.query:
            if key not in ("include", "page[count]", "page[cursor]", "sort") and not (
                key.startswith("fields[")
            ):
                problems.append(f"unknown query parameter {key}")
        cursor = request.query.get("page[cursor]", ["0"])[0]
        if not cursor.isdigit() or int(cursor) % self.page_size:
            problems.append(f"page[cursor]: {cursor!r} is not a cursor this API handed out")
        return problems

    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, self.error_body(401, "The server could not verify your token."))
        if request.path != PATH:
            return Response(404, self.error_body(404, "Campaign not found."))
        include = set(",".join(request.query.get("include", [])).split(","))
        fields = set(",".join(request.query.get("fields[member]", [])).split(",")) - {""}
        start = int(request.query.get("page[cursor]", ["0"])[0])
        page = self.members[start : start + self.page_size]
        data, included = [], []
        for i, attrs in enumerate(page, start):
            user_id = str(100_000 + i)
            item: dict[str, Any] = {
                "attributes": {k: v for k, v in attrs.items() if k in fields},
                "id": str(uuid.UUID(int=i + 1)),
                "type": "member",
            }
            if "user" in include:
                item["relationships"] = {
                    "user": {
                        "data": {"id": user_id, "type": "user"},
                        "links": {"related": f"{self.url}/api/oauth2/v2/user/{user_id}"},
                    }
                }
                included.append({"attributes": {}, "id": user_id, "type": "user"})
            data.append(item)
        end = start + self.page_size
        cursor = str(end) if end < len(self.members) else None
        body: dict[str, Any] = {
            "data": data,
            "included": included,
            "meta": {"pagination": {"cursors": {"next": cursor}, "total": len(self.members)}},
        }
        if cursor is not None and self.links:
            query = {k: v[0] for k, v in request.query.items() if k != "page[cursor]"}
            query["page[cursor]"] = cursor
            host = self.next_host or self.url
            body["links"] = {"next": f"{host}{PATH}?{urlencode(query)}"}
        with self.lock:
            self.pages_served += 1
        return Response(200, body, content_type="application/vnd.api+json")
