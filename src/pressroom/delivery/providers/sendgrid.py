"""SendGrid: ``POST /v3/mail/send`` with one personalization per recipient.

Each recipient is a personalization with its own ``to``, its own ``headers`` (List-Unsubscribe
with its token) and ``substitutions`` for the body's field tokens (``-pr-<field>-`` in text and
subject, ``-pr-html-<field>-`` with the HTML-escaped value in the HTML part, since SendGrid
substitutes values as given). The request body is assembled from a JSON prefix fixed once per
issue and the serialised personalizations, so a 1,000-recipient call costs one ``json.dumps``.

Documentation the limits and error handling come from:
- Mail Send API (base URLs: ``https://api.sendgrid.com``, EU subusers
  ``https://api.eu.sendgrid.com``; 202 Accepted with ``X-Message-Id``):
  https://www.twilio.com/docs/sendgrid/api-reference/mail-send
- Mail Send errors (1,000 personalizations and 1,000 recipients per request, each address
  once, 400 bodies ``{"errors": [{"message", "field"}]}`` naming ``personalizations.N``):
  https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors
- Status codes (401 auth, 403 blocked, 413 payload too large, 429, 5xx):
  https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors
- Rate limits (429 with ``X-RateLimit-Reset``, an epoch time, which becomes ``retry_after`` so
  the send loop slows down instead of burning retries):
  https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits
- Request schema: SendGrid's OpenAPI file ``tsg_mail_v3.json`` (../shared/provider-specs/).

Webhooks (``POST /hooks/sendgrid``, the Signed Event Webhook): the body is a JSON array of
events; ``X-Twilio-Email-Event-Webhook-Signature`` is a base64 ECDSA (P-256, SHA-256)
signature over ``X-Twilio-Email-Event-Webhook-Timestamp`` + the raw body, checked with the
verification key (base64 DER SubjectPublicKeyInfo, as the account settings show it):
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/
getting-started-event-webhook-security-features ; event fields: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event

A 400 naming personalizations fails exactly those recipients and sends the rest again; a 413
splits the batch in halves; any other 400 fails the batch with SendGrid's messages.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import html
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from pressroom.audience import events as feedback
from pressroom.audience.events import Event
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
    Wire,
    batch_result,
    check_settings,
    classify_http,
    http_exception_result,
    retry_after_seconds,
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
from pressroom.errors import ProviderConfigError, ProviderError, WebhookMalformed, WebhookRejected
from pressroom.models import FIELDS, Personaliser

MAX_BATCH = 1000
_SKIP_HEADERS = frozenset({"date", "message-id"})  # SendGrid stamps its own when it sends
_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)\b")


def _key(field: str, is_html: bool) -> str:
    return f"-pr-html-{field}-" if is_html else f"-pr-{field}-"


@dataclass(frozen=True)
class SendGridSettings:
    """``providers.sendgrid`` in config.yaml."""

    base_url: str = "https://api.sendgrid.com"  # EU subusers: https://api.eu.sendgrid.com
    api_key_env: str = "SENDGRID_API_KEY"
    # the Signed Event Webhook's verification key (base64 DER or PEM), for POST /hooks/sendgrid
    webhook_public_key_env: str = "SENDGRID_WEBHOOK_PUBLIC_KEY"
    batch_size: int = MAX_BATCH
    timeout: PositiveFloat = PositiveFloat(30.0)  # seconds, per request
    tracking: bool = False  # SendGrid click/open tracking (rewrites links)
    ip_pool: str | None = None
    sandbox: bool = False  # mail_settings.sandbox_mode: validated by SendGrid, never delivered
    # the unsubscribe group (ASM group id) every issue is sent with; its suppressions are pulled
    unsubscribe_group: int | None = None

    def __post_init__(self) -> None:
        check_settings(self, MAX_BATCH, "personalizations")


@register
class SendGrid(Provider):
    """SendGrid Mail Send with personalizations (see the module docstring)."""

    name = "sendgrid"
    Settings = SendGridSettings
    max_batch = MAX_BATCH
    secret_envs = ("api_key_env",)
    receives_webhooks = True
    webhook_envs = ("webhook_public_key_env",)
    settings: SendGridSettings

    def setup(self) -> None:
        self.base = self.settings.base_url.rstrip("/")
        self.session.headers["Authorization"] = f"Bearer {self.secrets.get('api_key_env', '')}"

    def receive_webhook(self, request: WebhookRequest, now: datetime) -> WebhookResult:
        """Verify the ECDSA signature over timestamp + raw body, then read the events."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        signature = request.header("X-Twilio-Email-Event-Webhook-Signature")
        timestamp = request.header("X-Twilio-Email-Event-Webhook-Timestamp")
        if not signature or not timestamp:
            raise WebhookRejected("sendgrid webhook: the signature headers are missing", 401)
        key = _public_key(self.secrets.get("webhook_public_key_env", ""), self.settings)
        try:
            der = base64.b64decode(signature, validate=True)
            key.verify(der, timestamp.encode("utf-8") + request.body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise WebhookRejected("sendgrid webhook: signature does not verify") from None
        try:
            items = json_body(request.body)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise WebhookMalformed("sendgrid webhook: expected a JSON array of events")
        events: list[Event] = []
        ignored: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise WebhookMalformed(f"sendgrid webhook: event {i} is not an object")
            event = _event(item, i)
            if event is None:
                ignored.append(str(item.get("event", "?")))
            else:
                events.append(event)
        return WebhookResult(events, ignored=ignored)

    def open(self, content: Content) -> None:
        """Fix the shared part of every request body once: content, sender, settings."""
        super().open(content)
        subject = Personaliser(content.subject, is_html=False)
        text_syntax = {f: _key(f, False) for f in FIELDS}
        html_syntax = {f: _key(f, True) for f in FIELDS}
        self._text_fields: set[str] = set(subject.fields)
        self._html_fields: set[str] = set()
        self._prefix: dict[str, bytes] = {}
        for key, variant in content.variants.items():
            h = Personaliser(variant.html, is_html=True)
            t = Personaliser(variant.text, is_html=False)
            self._html_fields |= h.fields
            self._text_fields |= t.fields
            body: dict[str, Any] = {
                "from": _address(content.from_),
                "subject": subject.translate(text_syntax),
                # SendGrid requires text/plain before text/html
                "content": [
                    {"type": "text/plain", "value": t.translate(text_syntax)},
                    {"type": "text/html", "value": h.translate(html_syntax)},
                ],
                "custom_args": {"pressroom_issue": str(content.issue)},
                **(
                    {"asm": {"group_id": self.settings.unsubscribe_group}}
                    if self.settings.unsubscribe_group is not None
                    else {}
                ),
                "tracking_settings": {
                    "click_tracking": {"enable": self.settings.tracking},
                    "open_tracking": {"enable": self.settings.tracking},
                    # pressroom's own one-click unsubscribe, not SendGrid's footer link
                    "subscription_tracking": {"enable": False},
                },
            }
            if content.reply_to:
                body["reply_to"] = _address(content.reply_to)
            headers = {k: v for k, v in content.headers.items() if k.lower() not in _SKIP_HEADERS}
            if headers:
                body["headers"] = headers
            if content.tag:
                body["categories"] = [content.tag[:255]]
            if self.settings.ip_pool:
                body["ip_pool_name"] = self.settings.ip_pool
            if self.settings.sandbox:
                body["mail_settings"] = {"sandbox_mode": {"enable": True}}
            encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            # the body ends with personalizations: prefix + [ ... ] + "}"
            self._prefix[key] = (encoded[:-1] + ',"personalizations":').encode("utf-8")

    def personalization(self, r: Recipient) -> dict[str, Any]:
        """One recipient's personalization: address, headers, substitutions."""
        to = {"email": r.email, "name": r.name} if r.name else {"email": r.email}
        subs = {_key(f, False): r.fields.get(f, "") for f in self._text_fields}
        for f in self._html_fields:
            subs[_key(f, True)] = html.escape(r.fields.get(f, ""), quote=True)
        p: dict[str, Any] = {"to": [to], "substitutions": subs}
        if r.headers:
            p["headers"] = dict(r.headers)
        return p

    def build_request(self, batch: Sequence[Recipient]) -> bytes:
        """The JSON body of one call (all recipients of ``batch`` share one variant)."""
        people = json.dumps(
            [self.personalization(r) for r in batch], ensure_ascii=False, separators=(",", ":")
        )
        return self._prefix[batch[0].variant] + people.encode("utf-8") + b"}"

    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        """Send ``batch`` (one request per variant); one result per recipient, in order."""
        return send_by_variant(batch, lambda group: self._send_group(group, wire, retries_left=2))

    def _send_group(
        self, group: Sequence[Recipient], wire: Wire, retries_left: int
    ) -> list[SendResult]:
        body = self.build_request(group)
        try:
            response = self.post_on_wire(
                wire, group, f"{self.base}/v3/mail/send", body, {"Content-Type": "application/json"}
            )
        except requests.RequestException as e:
            outcome, reason = http_exception_result(e, self)
            return settle(wire, batch_result(group, outcome, reason))
        if response.status_code in (200, 202):
            mid = response.headers.get("X-Message-Id")
            if response.status_code == 200 and not mid:
                # SendGrid accepts with 202 (and names the message): a bare 200 came from
                # something else (a proxy, a captive portal, a base_url that is a web site),
                # which may or may not have passed the request on. Not "sent": that loses them
                kind = response.headers.get("Content-Type", "no content type").split(";")[0]
                reason = (
                    f"HTTP 200 without a SendGrid message id ({kind.strip()}): not SendGrid's "
                    "answer; check providers.sendgrid.base_url and any proxy on the way"
                )
                return settle(wire, batch_result(group, Outcome.UNCERTAIN, reason))
            return settle(wire, batch_result(group, Outcome.SENT, message_id=mid))
        outcome, reason, retry_after = classify_http(response, self)
        errors = _errors(response)
        if errors:
            reason = f"HTTP {response.status_code}: " + "; ".join(
                self.redact(e.get("message") or "") for e in errors[:3]
            )
        if outcome is Outcome.RETRY:
            # 429 carries X-RateLimit-Reset (epoch): the loop waits instead of retrying blind
            retry_after = retry_after or retry_after_seconds(response.headers)
            return settle(wire, batch_result(group, outcome, reason, retry_after))
        if response.status_code == 413 and len(group) > 1:
            # refused whole (too large): nothing went out; send it in halves
            wire.returned(group)
            half = len(group) // 2
            return self._send_group(group[:half], wire, retries_left) + self._send_group(
                group[half:], wire, retries_left
            )
        bad = _bad_personalizations(errors, len(group))
        if bad and retries_left > 0:
            # the rest of the batch was fine: fail the named recipients, send the others again
            failed = [
                SendResult(group[i].email, Outcome.PERMANENT, error=msg) for i, msg in bad.items()
            ]
            rest = [r for i, r in enumerate(group) if i not in bad]
            wire.settled(failed)
            if rest:
                wire.returned(rest)
            sent = self._send_group(rest, wire, retries_left - 1) if rest else []
            merged = {r.email: r for r in sent} | {r.email: r for r in failed}
            return [merged[r.email] for r in group]
        return settle(wire, batch_result(group, outcome, reason))

    def check(self) -> str:
        """List the API key's scopes (``GET /v3/scopes``); fails without ``mail.send``."""
        try:
            response = self.session.get(f"{self.base}/v3/scopes", timeout=self.settings.timeout)
        except requests.RequestException as e:
            raise ProviderError(
                f"sendgrid: cannot reach {self.base}: {self.redact(str(e))}"
            ) from None
        if response.status_code != 200:
            _, reason, _ = classify_http(response, self, self.settings.api_key_env)
            raise ProviderError(f"sendgrid: key check failed: {reason}")
        scopes = _json(response).get("scopes") or []
        if "mail.send" not in scopes:
            raise ProviderError(
                f"sendgrid: the key in {self.settings.api_key_env} lacks the mail.send scope "
                f"(it has {len(scopes)} scopes); create a key with Mail Send access"
            )
        return (
            f"sendgrid: key from {self.settings.api_key_env} accepted, mail.send allowed "
            f"({len(scopes)} scopes), endpoint {self.base}"
        )

    # --- suppression pull -----------------------------------------------------------------
    # GET /v3/suppression/{bounces,spam_reports,blocks,invalid_emails,unsubscribes}
    # (https://www.twilio.com/docs/sendgrid/api-reference/bounces-api/retrieve-all-bounces and
    # its siblings): ``start_time`` (Unix seconds, inclusive), ``limit`` (≤ 500) and ``offset``;
    # each answer is a JSON array of ``{"created", "email", ...}``, and an empty one ends the
    # list. Bounces with a 4.x.x status and blocks (refusals by the receiving server, which
    # SendGrid does not suppress) count as soft bounces. The unsubscribe group's suppressions
    # (GET /v3/asm/groups/{group_id}/suppressions) are one undated array of addresses: they are
    # dated by the sync's clock and keyed by group and address, so a second sync adds nothing.

    suppression_lists = (
        "bounces",
        "spam_reports",
        "blocks",
        "invalid_emails",
        "unsubscribes",
        "group_unsubscribes",
    )
    suppression_page_size = 500

    def pull_suppressions(
        self, list_: str, since: datetime | None, now: datetime
    ) -> Iterator[Sequence[Event]]:
        """Each page of one suppression list, by ``offset`` from ``start_time``."""
        if list_ == "group_unsubscribes":
            yield from self._group_suppressions(now)
            return
        url = f"{self.base}/v3/suppression/{list_}"
        offset = 0
        previous: list[Any] | None = None
        while True:
            params: dict[str, int] = {"limit": self.suppression_page_size, "offset": offset}
            if since is not None:
                params["start_time"] = int(since.timestamp())
            data = pull.fetch_page(
                self,
                functools.partial(
                    self.session.get, url, params=params, timeout=self.settings.timeout
                ),
                f"{list_} (offset {offset})",
                message=_error_messages,
            )
            if not isinstance(data, list):
                raise ProviderError(f"sendgrid: {list_}: expected a JSON array of entries")
            if not data:
                return
            if data == previous:  # the offset is not honoured: the same page, forever
                raise ProviderError(
                    f"sendgrid: {list_}: offset {offset} answered the same entries as offset "
                    f"{offset - len(data)}; the list does not page, so the sync stopped"
                )
            previous = data
            offset += len(data)
            page = []
            for item in data:
                if not isinstance(item, dict):
                    continue
                when = pull.parse_time(item.get("created"))
                address = str(item.get("email") or "")
                if when is None or not address:
                    continue
                status = str(item.get("status") or "")
                kind = _PULL_KIND[list_]
                if list_ == "bounces" and status.startswith("4"):
                    kind = feedback.SOFT_BOUNCE
                reason = " ".join(x for x in (status, str(item.get("reason") or "")) if x)
                page.append(Event(self.name, kind, address, when, reason=reason))
            yield page

    def _group_suppressions(self, now: datetime) -> Iterator[Sequence[Event]]:
        group = self.settings.unsubscribe_group
        if group is None:
            return
        data = pull.fetch_page(
            self,
            functools.partial(
                self.session.get,
                f"{self.base}/v3/asm/groups/{group}/suppressions",
                timeout=self.settings.timeout,
            ),
            f"unsubscribe group {group}",
            message=_error_messages,
        )
        if not isinstance(data, list):
            raise ProviderError(f"sendgrid: unsubscribe group {group}: expected an array")
        reason = f"unsubscribe group {group}"
        yield [
            Event(self.name, feedback.UNSUBSCRIBE, a, now, reason=reason, id=f"asm:{group}:{a}")
            for a in data
            if isinstance(a, str) and a
        ]


def _address(value: str) -> dict[str, str]:
    name, addr = email.utils.parseaddr(value)
    return {"email": addr, "name": name} if name else {"email": addr}


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _errors(response: requests.Response) -> list[dict[str, Any]]:
    errors = _json(response).get("errors")
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _bad_personalizations(errors: list[dict[str, Any]], size: int) -> dict[int, str]:
    """Index -> SendGrid's message, for errors that name a personalization of the batch."""
    bad: dict[int, str] = {}
    for e in errors:
        m = _PERSONALIZATION.match(str(e.get("field") or ""))
        if not m:
            return {}  # an error about the whole request: nothing to single out
        i = int(m.group(1))
        if i < size:
            bad.setdefault(i, f"HTTP 400: {e.get('message') or 'rejected'} ({e.get('field')})")
    return bad


_KINDS: dict[str, str] = {
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
    "delivered": "delivered",
}


def _event(item: dict[str, Any], i: int) -> Event | None:
    """One Event Webhook object as a ``Event`` (None: an event with no effect here).

    ``bounce`` with ``type: bounce`` is permanent; ``type: blocked`` (the receiver refused this
    time, e.g. a reputation block) counts as a soft bounce. ``deferred`` is SendGrid still
    retrying, ``dropped`` a message SendGrid never sent (the address was already suppressed).
    """
    name = item.get("event")
    kind: str
    if name is not None and not isinstance(name, str):  # a list or object: unhashable
        raise WebhookMalformed(
            f"sendgrid webhook: event {i}: expected an event name, got {name!r:.40}"
        )
    if name == "bounce":
        kind = "soft_bounce" if item.get("type") == "blocked" else "hard_bounce"
    elif name in _KINDS:
        kind = _KINDS[str(name)]
    else:
        return None
    address, key = item.get("email"), item.get("sg_event_id")
    if not isinstance(address, str) or not address or not isinstance(key, str) or not key:
        raise WebhookMalformed(
            f"sendgrid webhook: event {i} ({name}) needs 'email' and 'sg_event_id'"
        )
    mid = item.get("sg_message_id")
    return Event(
        "sendgrid",
        kind,
        address,
        epoch(item.get("timestamp"), f"sendgrid webhook: event {i} timestamp"),
        id=key,
        reason=str(item.get("reason") or item.get("status") or "")[:500],
        issue=issue_number(item.get("pressroom_issue")),
        message_id=str(mid) if mid else None,
    )


def _public_key(value: str, settings: SendGridSettings) -> Any:
    """The verification key from its env var: base64 DER (as SendGrid shows it) or PEM."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    try:
        if "BEGIN PUBLIC KEY" in value:
            key = load_pem_public_key(value.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode("".join(value.split()), validate=True))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ProviderConfigError(
            f"sendgrid: {settings.webhook_public_key_env} does not hold an ECDSA public key; copy "
            "the Signed Event Webhook's verification key from SendGrid's mail settings"
        )
    return key


_PULL_KIND = {
    "bounces": feedback.HARD_BOUNCE,
    "spam_reports": feedback.COMPLAINT,
    "blocks": feedback.SOFT_BOUNCE,
    "invalid_emails": feedback.HARD_BOUNCE,
    "unsubscribes": feedback.UNSUBSCRIBE,
}


def _error_messages(response: requests.Response) -> str:
    """SendGrid's ``{"errors": [{"message"}]}`` as one line."""
    return "; ".join(str(e.get("message")) for e in _errors(response) if e.get("message"))
