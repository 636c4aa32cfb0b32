"""Mailgun: batch sending through ``POST /v3/{domain}/messages`` with recipient variables.

One call carries up to 1,000 ``to`` addresses (one comma-separated field) and a
``recipient-variables`` JSON object; the issue's field tokens become ``%recipient.<field>%``
(``%recipient.<field>_h%``, HTML-escaped, in the HTML part: Mailgun substitutes values raw),
and each recipient's own headers (List-Unsubscribe with its token) go out as
``h:<Name>: %recipient.h<N>%``. The multipart body is assembled from bytes encoded once per
variant, so a call costs one ``json.dumps`` of the variables and a join.

Documentation the limits and error handling come from:
- Batch sending, 1,000 recipients per call, recipient variables:
  https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/batch-sending
- Request format (multipart/form-data only; options ``o:``/``h:``/``v:``/``t:`` ≤ 16 KB):
  Mailgun OpenAPI, ``POST /v3/{domain_name}/messages`` (../shared/provider-specs/)
- Response codes (400 JSON ``message``; 401/403 auth; 429 "retry as defined in the response";
  500 retry with backoff): https://documentation.mailgun.com/docs/mailgun/quickstart-guide/responses
- Regions: US ``https://api.mailgun.net``, EU ``https://api.eu.mailgun.net`` (OpenAPI servers).

Webhooks (``POST /hooks/mailgun``): each delivery carries ``signature`` {timestamp, token,
signature}, the hex HMAC-SHA256 of timestamp + token under the webhook signing key; the
timestamp must be within ``WEBHOOK_MAX_AGE`` of now and the token is returned as a one-time
nonce (the receiver refuses it a second time). ``event-data`` events: ``failed`` with
``severity`` permanent/temporary, ``complained``, ``unsubscribed``, ``delivered``.
- Securing webhooks:
  https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
- Event structure: https://documentation.mailgun.com/docs/mailgun/user-manual/events/events

Reconciliation (``digest send --reconcile``): every message carries ``v:pressroom_issue`` and
``v:pressroom_recipient`` (a recipient variable), which Mailgun keeps as ``user-variables`` in
its events. An uncertain recipient is looked up in ``GET /v3/{domain}/events`` (``event``
accepted, ``recipient``, ``begin`` before the attempt, paging by ``paging.next``); many are
looked up by one scan of the accepted events around the attempts. Mailgun's event log may lag
(its event-polling guide allows 30 minutes), so "no event" settles only an older attempt:
https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/events ,
https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-polling

A 400 for a batch names no recipient ("'to' parameter is not a valid address"), so a batch
refused for an address is split in halves until the bad address is alone: one typo fails one
recipient, not a thousand. Any other 400 fails the whole batch with Mailgun's message.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import hmac
import html
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import requests

from pressroom.audience.events import COMPLAINT, HARD_BOUNCE, UNSUBSCRIBE, Event
from pressroom.config import PositiveFloat
from pressroom.delivery.providers import _pull as pull
from pressroom.delivery.providers import register
from pressroom.delivery.providers.base import (
    NO_WIRE,
    Content,
    Outcome,
    Provider,
    Recipient,
    SendResult,
    Verdict,
    Wire,
    batch_result,
    check_settings,
    classify_http,
    http_exception_result,
    send_by_variant,
    settle,
)
from pressroom.delivery.webhooks import (
    WebhookRequest,
    WebhookResult,
    epoch,
    issue_number,
    json_body,
)
from pressroom.errors import ProviderError, WebhookMalformed, WebhookRejected
from pressroom.models import FIELDS, Personaliser

MAX_BATCH = 1000
REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
_ADDRESS_PROBLEM = re.compile(r"'?to'? parameter|not a valid address|recipient", re.I)
_SKIP_HEADERS = frozenset({"date", "message-id"})  # Mailgun stamps its own when it sends
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')  # RFC 5322 specials: such names get quoted
_RETRY_IN = re.compile(r"try again (?:after|in) (\d+) seconds?", re.I)
WEBHOOK_MAX_AGE = 300.0  # seconds between Mailgun signing a webhook and pressroom reading it
ISSUE_VARIABLE = "pressroom_issue"  # v:pressroom_issue on every message (reconcile, webhooks)
RECIPIENT_VARIABLE = "pressroom_recipient"
EVENT_LAG = timedelta(minutes=30)  # an "accepted" event can show up this late in the log
EVENT_PAGE = 300  # the events API's documented maximum page size
SCAN_OVER = 20  # more uncertain recipients than this: one scan of the issue's events
CLOCK_SLACK = timedelta(days=1)  # how far this machine's clock may be off Mailgun's
MAX_PAGES = 200


@dataclass(frozen=True)
class MailgunSettings:
    """``providers.mailgun`` in config.yaml."""

    domain: str  # the sending domain, e.g. mg.example.org
    region: Literal["us", "eu"] = "us"
    base_url: str | None = None  # default: the region's endpoint
    api_key_env: str = "MAILGUN_API_KEY"
    webhook_signing_key_env: str = "MAILGUN_WEBHOOK_SIGNING_KEY"  # for POST /hooks/mailgun
    batch_size: int = MAX_BATCH
    timeout: PositiveFloat = PositiveFloat(30.0)  # seconds, per request
    tracking: bool = False  # Mailgun click/open tracking (rewrites links)

    def __post_init__(self) -> None:
        check_settings(self, MAX_BATCH, "recipients")
        if not self.domain or "/" in self.domain:
            raise ValueError('domain: expected a sending domain like "mg.example.org"')

    @property
    def endpoint(self) -> str:
        return (self.base_url or REGIONS[self.region]).rstrip("/")


@register
class Mailgun(Provider):
    """Mailgun batch sending with recipient variables (see the module docstring)."""

    name = "mailgun"
    Settings = MailgunSettings
    max_batch = MAX_BATCH
    secret_envs = ("api_key_env",)
    receives_webhooks = True
    webhook_envs = ("webhook_signing_key_env",)
    can_reconcile = True
    settings: MailgunSettings

    def setup(self) -> None:
        self.session.auth = ("api", self.secrets.get("api_key_env", ""))
        self.url = f"{self.settings.endpoint}/v3/{self.settings.domain}/messages"

    def open(self, content: Content) -> None:
        """Translate the field tokens to ``%recipient.x%`` once and fix the shared fields."""
        super().open(content)
        self._parts: dict[str, tuple[str, str]] = {}
        html_fields: set[str] = set()
        text_fields: set[str] = set()
        subject = Personaliser(content.subject, is_html=False)
        text_fields |= subject.fields
        raw = {f: f"%recipient.{f}%" for f in FIELDS}
        escaped = {f: f"%recipient.{f}_h%" for f in FIELDS}
        for key, variant in content.variants.items():
            h = Personaliser(variant.html, is_html=True)
            t = Personaliser(variant.text, is_html=False)
            html_fields |= h.fields
            text_fields |= t.fields
            self._parts[key] = (h.translate(escaped), t.translate(raw))
        self._html_fields = sorted(html_fields)
        self._text_fields = sorted(text_fields)
        common: list[tuple[str, str]] = [
            ("from", content.from_),
            ("subject", subject.translate(raw)),
        ]
        if content.reply_to:
            common.append(("h:Reply-To", content.reply_to))
        common.extend(
            (f"h:{k}", v) for k, v in content.headers.items() if k.lower() not in _SKIP_HEADERS
        )
        # what reconciliation and webhooks read back from Mailgun's events
        common.append((f"v:{ISSUE_VARIABLE}", str(content.issue)))
        common.append((f"v:{RECIPIENT_VARIABLE}", f"%recipient.{RECIPIENT_VARIABLE}%"))
        if content.tag:
            common.append(("o:tag", content.tag))
        if not self.settings.tracking:
            common.append(("o:tracking", "no"))
        # the multipart body is assembled by hand: the fields shared by every call are encoded
        # once per variant, and the recipients go in one comma-separated "to" field
        self._boundary = _boundary(
            [v for _, v in common] + [p for parts in self._parts.values() for p in parts]
        )
        self._prefix = {
            key: b"".join(
                self._field(n, v) for n, v in [*common, ("html", html_part), ("text", text_part)]
            )
            for key, (html_part, text_part) in self._parts.items()
        }
        self._content_type = f"multipart/form-data; boundary={self._boundary}"

    def _field(self, name: str, value: str) -> bytes:
        head = f'--{self._boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        return head.encode("utf-8") + value.encode("utf-8") + b"\r\n"

    def build_request(self, batch: Sequence[Recipient]) -> bytes:
        """The multipart body of one call (all recipients of ``batch`` share one variant)."""
        parts = [self._prefix[batch[0].variant]]
        # headers identical for the whole batch go out once; the others per recipient
        names = sorted({n for r in batch for n in r.headers})
        per_recipient: list[tuple[str, str]] = []  # (header, variable)
        for i, name in enumerate(names):
            seen = {r.headers.get(name, "") for r in batch}
            if len(seen) == 1:
                parts.append(self._field(f"h:{name}", seen.pop()))
            else:
                per_recipient.append((name, f"h{i}"))
                parts.append(self._field(f"h:{name}", f"%recipient.h{i}%"))
        variables: dict[str, dict[str, str]] = {}
        to = []
        for r in batch:
            to.append(_mailbox(r.name, r.email))
            values = {f: r.fields.get(f, "") for f in self._text_fields}
            for f in self._html_fields:
                values[f"{f}_h"] = html.escape(r.fields.get(f, ""), quote=True)
            for name, var in per_recipient:
                values[var] = r.headers.get(name, "")
            values[RECIPIENT_VARIABLE] = r.email
            variables[r.email] = values
        parts.append(self._field("to", ", ".join(to)))
        parts.append(
            self._field("recipient-variables", json.dumps(variables, separators=(",", ":")))
        )
        parts.append(f"--{self._boundary}--\r\n".encode())
        return b"".join(parts)

    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        """Send ``batch`` (one request per variant); one result per recipient, in order."""
        return send_by_variant(batch, lambda group: self._send_group(group, wire))

    def _send_group(self, group: Sequence[Recipient], wire: Wire) -> list[SendResult]:
        body = self.build_request(group)
        try:
            response = self.post_on_wire(
                wire, group, self.url, body, {"Content-Type": self._content_type}
            )
        except requests.RequestException as e:
            outcome, reason = http_exception_result(e, self)
            return settle(wire, batch_result(group, outcome, reason))
        if response.status_code == 200:
            mid = _json(response).get("id")
            if not isinstance(mid, str) or not mid:
                # Mailgun's 200 always names the message: this one came from something else
                # (a proxy, a captive portal, a base_url that is a web site), which may or may
                # not have passed the request on. Not "sent": that would lose the readers
                return settle(wire, batch_result(group, Outcome.UNCERTAIN, _not_mailgun(response)))
            return settle(wire, batch_result(group, Outcome.SENT, message_id=mid))
        outcome, reason, retry_after = classify_http(response, self)
        message = self.redact(str(_json(response).get("message") or ""))
        if message:
            reason = f"HTTP {response.status_code}: {message}"
        if outcome is Outcome.RETRY and retry_after is None and (m := _RETRY_IN.search(message)):
            retry_after = float(m.group(1))
        if outcome is Outcome.PERMANENT and len(group) > 1 and _ADDRESS_PROBLEM.search(message):
            # refused whole for one address: nothing went out; halves until it is alone
            wire.returned(group)
            half = len(group) // 2
            return self._send_group(group[:half], wire) + self._send_group(group[half:], wire)
        return settle(wire, batch_result(group, outcome, reason, retry_after))

    def check(self) -> str:
        """Look the sending domain up (``GET /v4/domains/{domain}``) with the API key."""
        url = f"{self.settings.endpoint}/v4/domains/{self.settings.domain}"
        try:
            response = self.session.get(url, timeout=self.settings.timeout)
        except requests.RequestException as e:
            raise ProviderError(
                f"mailgun: cannot reach {self.settings.endpoint}: {self.redact(str(e))}"
            ) from None
        if response.status_code == 404:
            raise ProviderError(
                f'mailgun: domain "{self.settings.domain}" not found in this account '
                f"({self.settings.region.upper()} region, {self.settings.endpoint}); "
                "check providers.mailgun.domain and providers.mailgun.region"
            )
        if response.status_code != 200:
            _, reason, _ = classify_http(response, self, self.settings.api_key_env)
            raise ProviderError(f"mailgun: domain check failed: {reason}")
        domain = _json(response).get("domain")
        if not isinstance(domain, dict):
            kind = response.headers.get("Content-Type", "no content type").split(";")[0].strip()
            raise ProviderError(
                f"mailgun: {self.settings.endpoint} answered 200 without a domain record "
                f"({kind}): not the Mailgun API; check providers.mailgun.base_url and any "
                "proxy on the way"
            )
        return (
            f"mailgun: domain {domain.get('name', self.settings.domain)} is "
            f"{domain.get('state', 'unknown')} ({domain.get('type', '?')}), "
            f"endpoint {self.settings.endpoint}, key from {self.settings.api_key_env}"
        )

    # --- reconciliation ---------------------------------------------------------------------

    def reconcile(
        self, issue: int, attempts: Sequence[tuple[str, datetime]], now: datetime
    ) -> list[Verdict]:
        """Look each uncertain recipient up among the issue's ``accepted`` events."""
        # the attempt times are this machine's clock, the events Mailgun's: a clock hours off
        # (no NTP yet after a boot, a VM resumed) must not hide an acceptance, which would
        # send that reader the issue again. The issue filter keeps the wider window exact
        slack = CLOCK_SLACK
        if len(attempts) > SCAN_OVER:
            begin = min(at for _, at in attempts) - slack
            end = max(at for _, at in attempts) + slack
            found = self._accepted(issue, {"begin": begin, "end": end})
        else:
            found = {}
            for email, at in attempts:
                found.update(self._accepted(issue, {"begin": at - slack, "recipient": email}))
        out = []
        for email, at in attempts:
            item = found.get(email.lower())
            if item is not None:
                when = datetime.fromtimestamp(float(item.get("timestamp") or 0), at.tzinfo)
                mid = ((item.get("message") or {}).get("headers") or {}).get("message-id")
                out.append(
                    Verdict(
                        email,
                        True,
                        f"mailgun logged it accepted at {when:%Y-%m-%d %H:%M:%S} "
                        f"(event {item.get('id')})",
                        f"<{mid}>" if mid else None,
                    )
                )
            elif now - at >= EVENT_LAG:
                out.append(
                    Verdict(email, False, f"no accepted event in mailgun's log since {at:%H:%M}")
                )
            else:
                out.append(
                    Verdict(
                        email,
                        None,
                        "no accepted event yet, but mailgun's log may lag 30 minutes; "
                        "reconcile again later",
                    )
                )
        return out

    def _accepted(self, issue: int, query: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Lower-cased recipient -> its ``accepted`` event for ``issue``, over every page."""
        params: dict[str, Any] = {
            "event": "accepted",
            "ascending": "yes",
            "limit": EVENT_PAGE,
            "user-variables": json.dumps({ISSUE_VARIABLE: str(issue)}),
        }
        for k, v in query.items():
            params[k] = str(int(v.timestamp())) if isinstance(v, datetime) else v
        url: str | None = f"{self.settings.endpoint}/v3/{self.settings.domain}/events"
        found: dict[str, dict[str, Any]] = {}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            try:
                response = self.session.get(url, params=params, timeout=self.settings.timeout)
            except requests.RequestException as e:
                raise ProviderError(
                    f"mailgun: cannot read the events log: {self.redact(str(e))}"
                ) from None
            if response.status_code != 200:
                _, reason, _ = classify_http(response, self, self.settings.api_key_env)
                raise ProviderError(f"mailgun: reading the events log failed: {reason}")
            data = _json(response)
            items = data.get("items") or []
            for item in items:
                if not isinstance(item, dict):
                    continue
                variables = item.get("user-variables") or {}
                if str(variables.get(ISSUE_VARIABLE)) == str(issue):
                    found.setdefault(str(item.get("recipient", "")).lower(), item)
            paging = data.get("paging") or {}
            url, params = (paging.get("next") if items else None), {}
        return found

    # --- webhooks ---------------------------------------------------------------------------

    def receive_webhook(self, request: WebhookRequest, now: datetime) -> WebhookResult:
        """Verify the HMAC signature and freshness, then read ``event-data``."""
        try:
            data = json_body(request.body)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("signature"), dict):
            raise WebhookMalformed("mailgun webhook: expected a JSON object with 'signature'")
        sig = data["signature"]
        timestamp, token, given = (str(sig.get(k, "")) for k in ("timestamp", "token", "signature"))
        key = self.secrets.get("webhook_signing_key_env", "").encode("utf-8")
        expected = hmac.new(key, (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
        # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500)
        if not token or not hmac.compare_digest(
            expected.encode("ascii"), given.lower().encode("utf-8")
        ):
            raise WebhookRejected("mailgun webhook: signature does not match the signing key")
        try:
            age = now.timestamp() - float(timestamp)
        except ValueError:
            raise WebhookRejected("mailgun webhook: signature timestamp is not a number") from None
        if not abs(age) <= WEBHOOK_MAX_AGE:  # NaN compares false both ways: refused too
            raise WebhookRejected(
                f"mailgun webhook: signature is {age:.0f} s old (limit {WEBHOOK_MAX_AGE:.0f} s)"
            )
        fingerprint = hashlib.sha256(request.body).hexdigest()
        item = data.get("event-data")
        if not isinstance(item, dict):
            raise WebhookMalformed("mailgun webhook: 'event-data' must be an object")
        event = _event(item)
        events = [event] if event is not None else []
        ignored = [] if event is not None else [str(item.get("event", "?"))]
        return WebhookResult(events, nonce=token, fingerprint=fingerprint, ignored=ignored)

    # --- suppression pull -----------------------------------------------------------------
    # GET /v3/{domain}/bounces | /complaints | /unsubscribes (Mailgun OpenAPI in
    # ../shared/provider-specs; https://documentation.mailgun.com/en/latest/api-suppressions.html):
    # alphabetical by address, ``limit`` ≤ 1,000, each answer's ``paging.next`` is the URL of
    # the next page; an empty ``items`` ends the list. The lists cannot be filtered by date, so
    # every sync walks them whole and drops entries older than ``since`` itself. The bounce
    # list holds permanent failures only (soft bounces never reach it).

    suppression_lists = ("bounces", "complaints", "unsubscribes")
    suppression_page_size = 1000

    def pull_suppressions(
        self, list_: str, since: datetime | None, now: datetime
    ) -> Iterator[Sequence[Event]]:
        """Each page of bounces, complaints or unsubscribes, following ``paging.next``."""
        kind = _KIND[list_]
        base = f"{self.settings.endpoint}/v3/{self.settings.domain}/{list_}"
        url: str | None = f"{base}?limit={self.suppression_page_size}"
        seen: set[str] = set()
        while url is not None and url not in seen:
            seen.add(url)
            page_url = url
            data = pull.fetch_page(
                self,
                functools.partial(self.session.get, page_url, timeout=self.settings.timeout),
                f"{list_} ({page_url.split('?')[0]})",
                message=lambda r: pull.json_message(r, "message"),
            )
            items = data.get("items") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ProviderError(f"mailgun: {list_}: the answer has no items list")
            if not items:
                return
            out = []
            for item in items:
                if not isinstance(item, dict):
                    continue  # not an entry (the fake of a fake); the rest are read
                when = pull.parse_time(item.get("created_at"))
                address = str(item.get("address") or "")
                if when is None or not address or (since is not None and when < since):
                    continue
                code, error = item.get("code"), item.get("error")
                reason = " ".join(str(x) for x in (code, error) if x)
                out.append(Event(self.name, kind, address, when, reason=reason))
            yield out
            paging = data.get("paging")
            url = self._same_origin(paging.get("next") if isinstance(paging, dict) else None, list_)

    def _same_origin(self, url: object, list_: str) -> str | None:
        """The paging URL, refused unless it is on the configured endpoint (the API key is
        sent with it)."""
        if not isinstance(url, str) or not url:
            return None
        if not url.startswith(f"{self.settings.endpoint}/"):
            raise ProviderError(
                f"mailgun: {list_}: the next page is on another host ({url.split('?')[0]}); "
                f"not following it with the API key"
            )
        return url


def _event(item: dict[str, Any]) -> Event | None:
    """One ``event-data`` object as a ``Event`` (None: an event with no effect)."""
    name = item.get("event")
    kind: str
    if name is not None and not isinstance(name, str):  # a list or object: unhashable
        raise WebhookMalformed(
            "mailgun webhook: event-data.event: expected an event name, got {name!r:.40}"
        )
    if name == "failed":
        kind = "hard_bounce" if item.get("severity") == "permanent" else "soft_bounce"
    elif name in _KINDS:
        kind = _KINDS[name]
    else:
        return None
    address, key = item.get("recipient"), item.get("id")
    if not isinstance(address, str) or not address or not isinstance(key, str) or not key:
        raise WebhookMalformed(f"mailgun webhook: a {name} event needs 'recipient' and 'id'")
    status = item.get("delivery-status") or {}
    status = status if isinstance(status, dict) else {}
    reason = str(status.get("description") or status.get("message") or item.get("reason") or "")
    variables = item.get("user-variables") or {}
    message = item.get("message") or {}
    headers = message.get("headers") if isinstance(message, dict) else None
    mid = headers.get("message-id") if isinstance(headers, dict) else None
    return Event(
        "mailgun",
        kind,
        address,
        epoch(item.get("timestamp"), "mailgun webhook: event-data.timestamp"),
        id=key,
        reason=reason[:500],
        issue=issue_number(variables.get(ISSUE_VARIABLE)) if isinstance(variables, dict) else None,
        message_id=str(mid) if mid else None,
    )


_KINDS: dict[str, str] = {
    "complained": "complaint",
    "unsubscribed": "unsubscribe",
    "delivered": "delivered",
}

# suppression list -> the event each entry is (the bounce list holds permanent failures only)
_KIND = {"bounces": HARD_BOUNCE, "complaints": COMPLAINT, "unsubscribes": UNSUBSCRIBE}


def _mailbox(name: str, address: str) -> str:
    """``Name <address>``, quoted or RFC 2047-encoded only when the name needs it."""
    if not name:
        return address
    if name.isascii() and not _SPECIALS.search(name):
        return f"{name} <{address}>"
    # formataddr quotes or encodes the name, but refuses a non-ASCII address (SMTPUTF8),
    # which Mailgun takes as it is: the name is formatted beside a stand-in address
    return email.utils.formataddr((name, "a@b")).removesuffix("<a@b>") + f"<{address}>"


def _boundary(values: list[str]) -> str:
    """A multipart boundary that occurs in none of ``values``."""
    while True:
        candidate = f"pressroom-{uuid.uuid4().hex}"
        if not any(candidate in v for v in values):
            return candidate


def _not_mailgun(response: requests.Response) -> str:
    kind = response.headers.get("Content-Type", "no content type").split(";")[0].strip()
    return (
        f"HTTP 200 without a Mailgun message id ({kind}, {len(response.content)} bytes): not "
        f"Mailgun's answer; check providers.mailgun.base_url and any proxy on the way"
    )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
