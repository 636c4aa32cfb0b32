"""What a provider's webhook hands over, once its proof of origin has been checked.

Every adapter that can receive webhooks implements ``Provider.receive_webhook``: it checks the
provider's documented authenticity proof first (a signature, a key, credentials), then reads
the body into ``audience.events.Event`` records. It raises ``WebhookRejected`` (401/403, nothing was
read) or ``WebhookMalformed`` (400) and never touches state itself: the receiver in
``pressroom.web.hooks`` remembers one-time values (``WebhookResult.nonce``) and hands the
events to the one event policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pressroom.answers import json_body as json_body  # the webhooks' JSON reader
from pressroom.audience.events import Event
from pressroom.errors import WebhookMalformed


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One POST as received: the raw body (signatures cover bytes), headers, Basic auth."""

    body: bytes
    headers: Mapping[str, str]  # names lower-cased
    basic_auth: tuple[str, str] | None = None  # (user, password) from the Authorization header

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class WebhookResult:
    """What one verified webhook delivery carried."""

    events: Sequence[Event] = ()
    nonce: str | None = None  # a one-time value (Mailgun's token) never to be accepted twice
    fingerprint: str = ""  # what the nonce was seen with: the same body again is a duplicate
    note: str = ""  # said in the 200 answer (e.g. "subscription confirmed")
    ignored: list[str] = field(default_factory=list)  # event types with no effect here


def epoch(value: object, where: str) -> datetime:
    """A Unix timestamp (int, float or numeric string) as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(float(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise WebhookMalformed(f"{where}: expected a Unix timestamp, got {value!r}") from None


def iso_time(value: object, where: str) -> datetime:
    """An ISO 8601 time (``2014-08-01T13:28:10.2735393-04:00``, ``…Z``) as an aware datetime."""
    text = str(value or "")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # .NET writes seven fractional digits; Python takes at most six
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        when = datetime.fromisoformat(text)
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        when.astimezone(UTC)  # year 1 at +14:00 is no time in UTC (events are keyed in UTC)
    except (ValueError, OverflowError):
        raise WebhookMalformed(f"{where}: expected an ISO 8601 time, got {value!r}") from None
    return when


def issue_number(value: object) -> int | None:
    """The pressroom issue number a message carried (metadata / variables), if any."""
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
