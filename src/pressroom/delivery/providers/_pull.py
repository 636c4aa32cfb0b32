"""Reading a provider's suppression lists: one page at a time, with the retry policy.

Every adapter's ``pull_suppressions`` fetches its pages through ``fetch_page``: a GET is safe
to repeat, so a connection error, a 429 or a 5xx is retried (``Retry-After`` or the rate-limit
reset header honoured, else backoff with jitter) up to ``ATTEMPTS`` times; 401/403 raises
``ProviderAuthError`` naming the env var (``classify_http``); any other answer raises
``ProviderError`` with the provider's own message. Nothing here knows a provider's name.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from pressroom.answers import json_body
from pressroom.delivery.providers.base import Outcome, Provider, classify_http
from pressroom.errors import ProviderError

ATTEMPTS = 5
MAX_WAIT = 60.0  # seconds; a provider asking for a longer pause is tried at the next sync

Fetch = Callable[[], requests.Response]
Message = Callable[[requests.Response], str]


def fetch_page(
    provider: Provider,
    fetch: Fetch,
    what: str,
    *,
    message: Message | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """The JSON of one page (``fetch()`` makes the request); raises ``ProviderError``."""
    reason = ""
    for attempt in range(ATTEMPTS):
        wait = min(8.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2)
        try:
            response = fetch()
        except requests.RequestException as e:
            reason = provider.redact(f"{type(e).__name__}: {e}")[:300]
        else:
            if 200 <= response.status_code < 300:
                try:
                    return json_body(response.content)  # no lone surrogates: text only
                except ValueError:
                    raise ProviderError(
                        f"{provider.name}: {what}: the answer is not JSON "
                        f"(HTTP {response.status_code}); try again later"
                    ) from None
            outcome, reason, retry_after = classify_http(response, provider)
            said = provider.redact(message(response)) if message else ""
            if said:
                reason = f"HTTP {response.status_code}: {said}"
            if outcome is not Outcome.RETRY:
                raise ProviderError(f"{provider.name}: cannot read {what}: {reason}")
            if retry_after is not None:
                if retry_after > MAX_WAIT:
                    raise ProviderError(
                        f"{provider.name}: cannot read {what}: rate limited for "
                        f"{retry_after:.0f} s; the next sync tries again"
                    )
                wait = retry_after
        if attempt + 1 < ATTEMPTS:
            sleep(wait)
    raise ProviderError(
        f"{provider.name}: cannot read {what} after {ATTEMPTS} tries: {reason}; the next "
        "sync tries again"
    )


def parse_time(value: Any) -> datetime | None:
    """A provider's timestamp (epoch seconds, ISO 8601 or RFC 2822) as an aware datetime."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, UTC)
        text = str(value).strip()
        if not text:
            return None
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            moment = email.utils.parsedate_to_datetime(text.replace(" UTC", " +0000"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)  # year 1 at +14:00 is no time in UTC (events are keyed in UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None  # out of range (1e20, NaN) or not a time at all
    return moment


def json_message(response: requests.Response, *keys: str) -> str:
    """The first of ``keys`` found in a JSON object answer (``message``, ``Message``…)."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    for k in keys:
        value = data.get(k)
        if isinstance(value, str) and value:
            return value
    return ""
