"""Postmark: ``POST /email/batch`` with up to 500 complete messages per call.

Postmark has no batch substitution for raw content, so every recipient gets a full message.
To keep that cheap, each part is compiled once per variant into JSON-escaped pieces split at
the field tokens; a message is then a join of constant pieces and the recipient's escaped
values (no per-recipient ``json.dumps`` of a 20 KB body). The call answers 200 even when some
messages fail: every element's ``ErrorCode`` is checked, in order.

Unsubscribes: by default each message carries pressroom's own List-Unsubscribe header. With
``unsubscribe: postmark`` (a Broadcasts stream whose unsubscribe handling is Postmark's), the
adapter says so (``manages_unsubscribe``), sends no List-Unsubscribe of its own and puts
Postmark's ``{{{ pm:unsubscribe }}}`` link where the issue has its unsubscribe URL; Postmark
then adds the one-click headers and suppresses unsubscribers itself, which come back here as
ErrorCode 406 (inactive recipient: permanent, and added to pressroom's suppression list).

Documentation the limits and error codes come from:
- Email API (batch of at most 500 messages and 50 MB, larger batches are split; 50
  recipients per message; fields):
  https://postmarkapp.com/developer/api/email-api
- HTTP status and API error codes (401, 422 + ErrorCode, 429, 500, 503; ErrorCode 10 bad
  token, 300 invalid request, 400/401 sender signature, 405 not allowed to send, 406 inactive
  recipient, 409/410 JSON and batch size, 412/413 account may not send, 429 rate limit):
  https://postmarkapp.com/developer/api/overview#error-codes
- ErrorCode 300 causes: https://postmarkapp.com/support/article/1180-what-does-errorcode-300-mean
- Servers (``GET /server``) and message streams (``GET /message-streams/{id}``):
  https://postmarkapp.com/developer/api/server-api ,
  https://postmarkapp.com/developer/api/message-streams-api

Reconciliation (``digest send --reconcile``): every message carries ``Metadata`` {issue,
recipient}; an uncertain recipient is looked up with the outbound message search
(``GET /messages/outbound`` with ``recipient``, ``messagestream`` and ``metadata_issue``):
https://postmarkapp.com/developer/api/messages-api

Webhooks (``POST /hooks/postmark``): Postmark signs nothing; its documented protection is
HTTP Basic credentials in the webhook URL (``https://user:password@host/hooks/postmark``).
They are compared, in constant time, with ``user:password`` from the env var
``webhook_credentials_env``. Record types: ``Bounce`` (``Type`` HardBounce, SoftBounce, …),
``SpamComplaint``, ``Delivery``, ``SubscriptionChange``:
https://postmarkapp.com/developer/webhooks/webhooks-overview ,
https://postmarkapp.com/developer/webhooks/bounce-webhook ,
https://postmarkapp.com/developer/webhooks/spam-complaint-webhook ,
https://postmarkapp.com/developer/webhooks/subscription-change-webhook
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import html
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests

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
    Verdict,
    Wire,
    batch_result,
    check_settings,
    classify_http,
    http_exception_result,
    settle,
)
from pressroom.delivery.webhooks import (
    WebhookRequest,
    WebhookResult,
    iso_time,
    issue_number,
    json_body,
)
from pressroom.errors import ProviderAuthError, ProviderError, WebhookMalformed, WebhookRejected
from pressroom.models import FIELDS, Personaliser

MAX_BATCH = 500
MAX_PAYLOAD = 50 * 1000 * 1000  # bytes per /email/batch call (documented: 50 MB)
PM_UNSUBSCRIBE = "{{{ pm:unsubscribe }}}"
RETRY_CODES = frozenset({100, 429})  # maintenance, rate limit
SUPPRESS_CODES = frozenset({406})  # inactive recipient: hard bounce, complaint, suppression
# the account or sender cannot send at all: stop the run instead of failing everyone
STOP_CODES = {
    10: "the server token was rejected",
    400: "the sender signature was not found",
    401: "the sender signature is not confirmed",
    405: "the account is not allowed to send (out of credits?)",
    412: "the account is pending approval",
    413: "the account may not send",
    1235: "the message stream was not found",
}
_MARK = re.compile("\ue000([a-z_]+)\ue001")
METADATA_VALUE_MAX = 80  # Postmark's limit on one metadata value (keys: 20 characters)
# Postmark documents no delay for its message search; a margin before "not found" settles
SEARCH_LAG = timedelta(minutes=10)
_SKIP_HEADERS = frozenset({"date", "message-id"})  # Postmark stamps its own


class _JsonPart:
    """A part as a JSON string literal split at its field tokens, for per-recipient filling."""

    __slots__ = ("fields", "is_html", "pieces")

    def __init__(self, part: Personaliser, is_html: bool, fixed: Mapping[str, str]) -> None:
        marked = part.translate({f: fixed.get(f) or f"\ue000{f}\ue001" for f in FIELDS})
        encoded = json.dumps(marked, ensure_ascii=False)
        split = _MARK.split(encoded)
        self.pieces = split[0::2]
        self.fields = split[1::2]
        self.is_html = is_html

    def fill(self, values: Mapping[str, str]) -> str:
        pieces = self.pieces
        out = [pieces[0]]
        for i, name in enumerate(self.fields, 1):
            value = values.get(name, "")
            if self.is_html:
                value = html.escape(value, quote=True)
            out.append(json.dumps(value, ensure_ascii=False)[1:-1])
            out.append(pieces[i])
        return "".join(out)


@dataclass(frozen=True)
class PostmarkSettings:
    """``providers.postmark`` in config.yaml."""

    base_url: str = "https://api.postmarkapp.com"
    server_token_env: str = "POSTMARK_SERVER_TOKEN"
    # "user:password" that the webhook URL carries (https://user:password@host/hooks/postmark)
    webhook_credentials_env: str = "POSTMARK_WEBHOOK_CREDENTIALS"
    message_stream: str = "outbound"  # a Broadcasts stream for newsletters, e.g. "broadcast"
    unsubscribe: Literal["pressroom", "postmark"] = "pressroom"  # who handles unsubscribes
    batch_size: int = MAX_BATCH
    timeout: PositiveFloat = PositiveFloat(
        60.0
    )  # seconds, per request (a full batch can be ~10 MB)
    track_opens: bool = False
    track_links: Literal["None", "HtmlAndText", "HtmlOnly", "TextOnly"] = "None"

    def __post_init__(self) -> None:
        check_settings(self, MAX_BATCH, "messages")


@register
class Postmark(Provider):
    """Postmark batch sending, one full message per recipient (see the module docstring)."""

    name = "postmark"
    Settings = PostmarkSettings
    max_batch = MAX_BATCH
    secret_envs = ("server_token_env",)
    receives_webhooks = True
    webhook_envs = ("webhook_credentials_env",)
    can_reconcile = True
    settings: PostmarkSettings

    def setup(self) -> None:
        self.base = self.settings.base_url.rstrip("/")
        # Postmark's broadcast streams add their own unsubscribe link and one-click headers
        self.manages_unsubscribe = self.settings.unsubscribe == "postmark"  # type: ignore[misc]
        self.session.headers.update(
            {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "X-Postmark-Server-Token": self.secrets.get("server_token_env", ""),
            }
        )

    def open(self, content: Content) -> None:
        """Compile subject and bodies per variant; fix the fields every message shares."""
        super().open(content)
        fixed = {"unsubscribe_url": PM_UNSUBSCRIBE} if self.manages_unsubscribe else {}
        self._subject = _JsonPart(Personaliser(content.subject, is_html=False), False, fixed)
        self._bodies = {
            key: (
                _JsonPart(Personaliser(v.html, is_html=True), True, fixed),
                _JsonPart(Personaliser(v.text, is_html=False), False, fixed),
            )
            for key, v in content.variants.items()
        }
        shared: dict[str, Any] = {"From": content.from_}
        if content.reply_to:
            shared["ReplyTo"] = content.reply_to
        if content.tag:
            shared["Tag"] = content.tag[:1000]
        self._issue = str(content.issue)
        shared["MessageStream"] = self.settings.message_stream
        shared["TrackOpens"] = self.settings.track_opens
        shared["TrackLinks"] = self.settings.track_links
        self._shared = json.dumps(shared, ensure_ascii=False)[1:-1]
        self._headers = [
            {"Name": k, "Value": v}
            for k, v in content.headers.items()
            if k.lower() not in _SKIP_HEADERS
            and not (self.manages_unsubscribe and k.lower().startswith("list-unsubscribe"))
        ]

    def message(self, r: Recipient) -> str:
        """One recipient's complete message as a JSON object."""
        html_part, text_part = self._bodies[r.variant]
        headers = list(self._headers)
        if not self.manages_unsubscribe:
            headers.extend({"Name": k, "Value": v} for k, v in r.headers.items())
        to = _mailbox(r.name, r.email)
        # what reconciliation (and webhooks) read back: the issue and, when it fits, the address
        metadata = {"issue": self._issue}
        if len(r.email) <= METADATA_VALUE_MAX:
            metadata["recipient"] = r.email
        return (
            f'{{{self._shared},"To":{json.dumps(to, ensure_ascii=False)},'
            f'"Metadata":{json.dumps(metadata, ensure_ascii=False)},'
            f'"Subject":{self._subject.fill(r.fields)},'
            f'"HtmlBody":{html_part.fill(r.fields)},"TextBody":{text_part.fill(r.fields)},'
            f'"Headers":{json.dumps(headers, ensure_ascii=False)}}}'
        )

    def build_request(self, batch: Sequence[Recipient]) -> bytes:
        """The JSON array of one ``/email/batch`` call."""
        return ("[" + ",".join(self.message(r) for r in batch) + "]").encode("utf-8")

    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        """Send ``batch``; one result per recipient, from each element's ``ErrorCode``."""
        body = self.build_request(batch)
        if len(body) > MAX_PAYLOAD and len(batch) > 1:  # a very large issue: two calls
            del body  # built, never sent: nothing of it is on the wire
            half = len(batch) // 2
            return self.send(batch[:half], wire) + self.send(batch[half:], wire)
        try:
            response = self.post_on_wire(wire, batch, f"{self.base}/email/batch", body, {})
        except requests.RequestException as e:
            outcome, reason = http_exception_result(e, self)
            return settle(wire, batch_result(batch, outcome, reason))
        if response.status_code == 200:
            elements = _json(response)
            if isinstance(elements, list) and len(elements) == len(batch):
                return settle(wire, self._per_message(batch, elements))
            # accepted, but which messages went out is unknown: resending could mail twice
            return settle(
                wire,
                batch_result(
                    batch,
                    Outcome.UNCERTAIN,
                    "Postmark answered 200 without one result per message",
                ),
            )
        answer = _json(response)
        code = answer.get("ErrorCode") if isinstance(answer, dict) else None
        if response.status_code == 422 and type(code) is int:
            reason = self.redact(f"ErrorCode {code}: {answer.get('Message', '')}")
            if code == 410 and len(batch) > 1:  # too many messages: halve and go on
                wire.returned(batch)
                half = len(batch) // 2
                return self.send(batch[:half], wire) + self.send(batch[half:], wire)
            if code in STOP_CODES:
                self._stop(code, reason)
            outcome = Outcome.RETRY if code in RETRY_CODES else Outcome.PERMANENT
            return settle(wire, batch_result(batch, outcome, reason))
        if response.status_code == 413 and len(batch) > 1:
            wire.returned(batch)
            half = len(batch) // 2
            return self.send(batch[:half], wire) + self.send(batch[half:], wire)
        outcome, reason, retry_after = classify_http(response, self)
        return settle(wire, batch_result(batch, outcome, reason, retry_after))

    def _per_message(self, batch: Sequence[Recipient], elements: list[Any]) -> list[SendResult]:
        results: list[SendResult] = []
        stopped: tuple[int, str] | None = None
        for r, element in zip(batch, elements, strict=True):
            element = element if isinstance(element, dict) else {}
            code = element.get("ErrorCode")
            if type(code) is not int:
                # 0 is Postmark's "accepted": a result without a number is no proof either way
                why = "Postmark's result for this message has no ErrorCode"
                results.append(SendResult(r.email, Outcome.UNCERTAIN, error=why))
                continue
            reason = self.redact(f"ErrorCode {code}: {element.get('Message', '')}".strip())
            if code == 0:
                results.append(SendResult(r.email, Outcome.SENT, element.get("MessageID")))
            elif code in SUPPRESS_CODES:
                results.append(SendResult(r.email, Outcome.PERMANENT, error=reason, suppress=True))
            elif code in STOP_CODES:
                stopped = (code, reason)
                results.append(SendResult(r.email, Outcome.RETRY, error=reason))
            elif code in RETRY_CODES:
                results.append(SendResult(r.email, Outcome.RETRY, error=reason))
            else:
                results.append(SendResult(r.email, Outcome.PERMANENT, error=reason))
        if stopped and not any(res.outcome is Outcome.SENT for res in results):
            self._stop(*stopped)
        return results

    def _stop(self, code: int, reason: str) -> None:
        raise ProviderAuthError(
            f"postmark: {STOP_CODES[code]} ({reason}); check {self.settings.server_token_env}, "
            f"the From address's sender signature and providers.postmark.message_stream"
        )

    def check(self) -> str:
        """Read the server (``GET /server``) and the message stream the issue goes to."""
        try:
            server = self.session.get(f"{self.base}/server", timeout=self.settings.timeout)
            if server.status_code != 200:
                _, reason, _ = classify_http(server, self, self.settings.server_token_env)
                raise ProviderError(f"postmark: server check failed: {reason}")
            stream_id = self.settings.message_stream
            stream = self.session.get(
                f"{self.base}/message-streams/{stream_id}", timeout=self.settings.timeout
            )
        except requests.RequestException as e:
            raise ProviderError(
                f"postmark: cannot reach {self.base}: {self.redact(str(e))}"
            ) from None
        if stream.status_code != 200:
            raise ProviderError(
                f'postmark: message stream "{stream_id}" not found on this server; '
                "set providers.postmark.message_stream to one of its streams' IDs"
            )
        server_data, stream_data = _json(server), _json(stream)
        for answer, data, wanted in (
            (server, server_data, "Name"),
            (stream, stream_data, "MessageStreamType"),
        ):
            if not isinstance(data, dict) or wanted not in data:
                kind = answer.headers.get("Content-Type", "no content type").split(";")[0]
                raise ProviderError(
                    f"postmark: {answer.url} answered 200 without its {wanted} "
                    f"({kind.strip()}): not the Postmark API; check providers.postmark.base_url "
                    "and any proxy on the way"
                )
        kind = str(stream_data.get("MessageStreamType", "?"))
        if self.manages_unsubscribe and kind != "Broadcasts":
            raise ProviderError(
                f'postmark: unsubscribe: postmark needs a Broadcasts stream; "{stream_id}" is '
                f"{kind}; use your broadcast stream or unsubscribe: pressroom"
            )
        name = server_data.get("Name", "?")
        who = "Postmark" if self.manages_unsubscribe else "pressroom"
        return (
            f'postmark: server "{name}" accepted the token from {self.settings.server_token_env}; '
            f'stream "{stream_id}" ({kind}), unsubscribes handled by {who}, endpoint {self.base}'
        )

    # --- reconciliation ---------------------------------------------------------------------

    def reconcile(
        self, issue: int, attempts: Sequence[tuple[str, datetime]], now: datetime
    ) -> list[Verdict]:
        """Search the outbound messages of ``issue`` to each uncertain recipient."""
        out = []
        for email, at in attempts:
            found = self._search(issue, email)
            if found is not None:
                out.append(
                    Verdict(
                        email,
                        True,
                        f"postmark has message {found.get('MessageID')} for it "
                        f"({found.get('Status', '?')}, received {found.get('ReceivedAt', '?')})",
                        found.get("MessageID"),
                    )
                )
            elif now - at >= SEARCH_LAG:
                out.append(Verdict(email, False, "postmark's message search has no message"))
            else:
                out.append(
                    Verdict(email, None, "not in postmark's message search yet; try again later")
                )
        return out

    def _search(self, issue: int, email: str) -> dict[str, Any] | None:
        """The first outbound message of ``issue`` to ``email``, or None."""
        params: dict[str, str | int] = {
            "count": 50,
            "offset": 0,
            "recipient": email,
            "messagestream": self.settings.message_stream,
            "metadata_issue": str(issue),
        }
        try:
            response = self.session.get(
                f"{self.base}/messages/outbound", params=params, timeout=self.settings.timeout
            )
        except requests.RequestException as e:
            raise ProviderError(
                f"postmark: cannot search the messages: {self.redact(str(e))}"
            ) from None
        if response.status_code != 200:
            _, reason, _ = classify_http(response, self, self.settings.server_token_env)
            raise ProviderError(f"postmark: message search failed: {reason}")
        data = _json(response) or {}
        for message in data.get("Messages") or []:
            if not isinstance(message, dict):
                continue
            metadata = message.get("Metadata") or {}
            recipients = [str(r).lower() for r in message.get("Recipients") or []]
            if str(metadata.get("issue")) == str(issue) and email.lower() in recipients:
                return message
        return None

    # --- webhooks ---------------------------------------------------------------------------

    def receive_webhook(self, request: WebhookRequest, now: datetime) -> WebhookResult:
        """Check the Basic credentials in constant time, then read the one record."""
        if request.basic_auth is None:
            raise WebhookRejected("postmark webhook: no credentials; put them in the URL", 401)
        given = ":".join(request.basic_auth).encode("utf-8")
        expected = self.secrets.get("webhook_credentials_env", "").encode("utf-8")
        # compare digests: equal length, so the time taken says nothing about either value
        if not expected or not hmac.compare_digest(
            hashlib.sha256(given).digest(), hashlib.sha256(expected).digest()
        ):
            raise WebhookRejected("postmark webhook: credentials do not match", 401)
        try:
            item = json_body(request.body)
        except ValueError:
            item = None
        if not isinstance(item, dict) or not isinstance(item.get("RecordType"), str):
            raise WebhookMalformed("postmark webhook: expected a JSON object with 'RecordType'")
        event = _event(item)
        if event is None:
            return WebhookResult(ignored=[f"{item['RecordType']} {item.get('Type', '')}".strip()])
        return WebhookResult([event])

    # --- suppression pull -----------------------------------------------------------------
    # GET /message-streams/{stream}/suppressions/dump (https://postmarkapp.com/developer/api/
    # suppressions-api): ``fromdate``/``todate`` (dates, inclusive), answer ``{"Suppressions":
    # [{"EmailAddress", "SuppressionReason", "Origin", "CreatedAt"}]}`` with no paging of its
    # own, so a sync from a cursor walks the days to today in windows of ``window_days``, one
    # request each (the first sync, with no cursor, asks once for everything). HardBounce is a
    # hard bounce, SpamComplaint a complaint, ManualSuppression (a reader's unsubscribe on a
    # broadcast stream, or one made in Postmark's UI) an unsubscribe.

    suppression_lists = ("suppressions",)
    window_days = 7

    def pull_suppressions(
        self, list_: str, since: datetime | None, now: datetime
    ) -> Iterator[Sequence[Event]]:
        """Each window of days of the stream's suppression dump, oldest first."""
        stream = self.settings.message_stream
        url = f"{self.base}/message-streams/{urllib.parse.quote(stream, safe='')}/suppressions/dump"
        windows: list[dict[str, str]] = [{}]
        if since is not None:
            windows = []
            day, last = since.astimezone(UTC).date(), now.astimezone(UTC).date()
            while day <= last:
                end = min(day + timedelta(days=self.window_days - 1), last)
                windows.append({"fromdate": day.isoformat(), "todate": end.isoformat()})
                day = end + timedelta(days=1)
        for params in windows:
            data = pull.fetch_page(
                self,
                functools.partial(
                    self.session.get, url, params=params, timeout=self.settings.timeout
                ),
                f"the suppressions of stream {stream}"
                + (f" ({params['fromdate']} to {params['todate']})" if params else ""),
                message=lambda r: pull.json_message(r, "Message"),
            )
            items = data.get("Suppressions") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ProviderError(f"postmark: stream {stream}: the answer has no Suppressions")
            page = []
            for item in items:
                if not isinstance(item, dict):
                    continue
                kind = _SUPPRESSION.get(str(item.get("SuppressionReason")))
                when = pull.parse_time(item.get("CreatedAt"))
                address = str(item.get("EmailAddress") or "")
                if kind is None or when is None or not address:
                    continue
                reason = f"{item.get('SuppressionReason')} ({item.get('Origin', '?')})"
                page.append(Event(self.name, kind, address, when, reason=reason))
            yield page


# Bounce Type values (https://postmarkapp.com/developer/api/bounce-api#bounce-types)
_HARD = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
_SOFT = frozenset({"SoftBounce", "Transient", "DnsError", "Blocked", "SMTPApiError"})
_SUPPRESSION: dict[str, str] = {
    "HardBounce": "hard_bounce",
    "SpamComplaint": "complaint",
    "ManualSuppression": "unsubscribe",
}


def _event(item: dict[str, Any]) -> Event | None:
    """One webhook record as a ``Event`` (None: a record with no effect here)."""
    record = item["RecordType"]
    kind: str
    address = item.get("Email") or item.get("Recipient")
    key = f"{record}:{item.get('ID', '')}"
    when = item.get("BouncedAt")
    reason = str(item.get("Description") or item.get("Details") or "")
    if record == "Bounce":
        bounce = str(item.get("Type", ""))
        if bounce in _HARD:
            kind = "hard_bounce"
        elif bounce in _SOFT:
            kind = "soft_bounce"
        elif bounce == "SpamComplaint":
            kind = "complaint"
        elif bounce == "Unsubscribe":
            kind = "unsubscribe"
        else:
            return None
        reason = str(item.get("Details") or item.get("Description") or bounce)
    elif record == "SpamComplaint":
        kind = "complaint"
    elif record == "Delivery":
        kind, when = "delivered", item.get("DeliveredAt")
        key = f"Delivery:{item.get('MessageID', '')}:{address}"
        reason = str(item.get("Details") or "")
    elif record == "SubscriptionChange":
        if not item.get("SuppressSending"):
            return None  # reactivated: pressroom's suppressions are the editor's to lift
        found = _SUPPRESSION.get(str(item.get("SuppressionReason")))
        if found is None:
            return None
        kind, when = found, item.get("ChangedAt")
        key = f"SubscriptionChange:{item.get('MessageID', '')}:{address}:{when}"
        reason = str(item.get("SuppressionReason"))
    else:
        return None
    if not isinstance(address, str) or not address or key.endswith(":"):
        raise WebhookMalformed(f"postmark webhook: a {record} record needs its address and ID")
    metadata = item.get("Metadata") or {}
    mid = item.get("MessageID")
    return Event(
        "postmark",
        kind,
        address,
        iso_time(when, f"postmark webhook: {record} time"),
        id=key,
        reason=reason[:500],
        issue=issue_number(metadata.get("issue")) if isinstance(metadata, dict) else None,
        message_id=str(mid) if mid else None,
    )


def _mailbox(name: str, address: str) -> str:
    if not name:
        return address
    # Postmark needs punctuation in display names quoted (ErrorCode 300 otherwise)
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
