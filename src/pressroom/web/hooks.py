"""``POST /hooks/<provider>``: provider webhooks, verified before anything is read or changed.

The adapter of the named provider checks the provider's proof of origin and reads the body
(``Provider.receive_webhook``); this module only turns its verdict into an HTTP answer,
refuses a one-time value (Mailgun's token) seen before, and hands the events to the one
event policy (``apply``). Answers:

    200  verified; the events were applied (a duplicate changes nothing and is still 200);
         the JSON answer counts them: events, new, duplicates, suppressed
    400  verified, but the body is not in the provider's documented format
    401  no credentials (Postmark) or no signature headers (SendGrid)
    403  wrong, stale or replayed proof: nothing was read
    404  no such provider, or it is not the one configured / takes no webhooks
    405  not a POST (the routing table's answer)
    413  body over ``MAX_BODY``
    503  pressroom's side is not ready (the webhook secret's env var is unset, the
         signing certificate cannot be fetched): the provider retries later
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from pressroom.audience import events as events_mod
from pressroom.audience.events import Applied, Event
from pressroom.config import Config
from pressroom.delivery import feedback
from pressroom.delivery.providers.base import Provider
from pressroom.delivery.webhooks import WebhookRequest
from pressroom.errors import PressroomError, ProviderError, WebhookError, WebhookRejected

MAX_BODY = 10 * 1024 * 1024  # SendGrid posts batches of events; 10 MB is far above one
PREFIX = "/hooks/"
NONCE_DAYS = 2  # one-time values are kept this long (far longer than any freshness window)

if TYPE_CHECKING:
    from pressroom.web.app import Site

Apply = Callable[[Sequence[Event]], Applied]  # the one event policy, bound to a config


class NonceStore:
    """One-time values already accepted, per provider, in the state database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        db.execute(
            "CREATE TABLE IF NOT EXISTS webhook_nonces (provider TEXT NOT NULL, "
            "nonce TEXT NOT NULL, fingerprint TEXT NOT NULL, seen REAL NOT NULL, "
            "PRIMARY KEY (provider, nonce))"
        )
        return db

    def claim(self, provider: str, nonce: str, fingerprint: str, now: float) -> str | None:
        """Record ``nonce``; None when new, else the fingerprint it was first seen with."""
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM webhook_nonces WHERE seen < ?", (now - NONCE_DAYS * 86400,))
            row = db.execute(
                "SELECT fingerprint FROM webhook_nonces WHERE provider = ? AND nonce = ?",
                (provider, nonce),
            ).fetchone()
            if row is not None:
                return str(row[0])
            row = (provider, nonce, fingerprint, now)
            db.execute("INSERT INTO webhook_nonces VALUES (?, ?, ?, ?)", row)
            return None

    def release(self, provider: str, nonce: str) -> None:
        """Forget ``nonce`` (applying its events failed: the provider's retry must work)."""
        with self._lock, self._connect() as db:
            db.execute(
                "DELETE FROM webhook_nonces WHERE provider = ? AND nonce = ?", (provider, nonce)
            )


class HookReceiver:
    """Answers ``POST /hooks/<provider>`` for the providers config.yaml configures."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], datetime],
        env: Mapping[str, str],
        session: requests.Session | None = None,
        apply: Apply | None = None,
    ) -> None:
        self.config = config
        self.apply = apply or self.policy
        self.clock = clock
        self.env = env
        self.session = session  # for SES: SNS certificates and subscription confirmations
        self.nonces = NonceStore(config.state_db)
        self._adapters: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def policy(self, found: Sequence[Event]) -> Applied:
        """The one event policy, with issues attributed from the ledger where none is named."""
        # an event that names no issue (SES, a Postmark record without metadata) counts for
        # the last issue the ledger sent to that address, as pulled entries do
        issue_of = feedback.issue_attribution(self.config, found)
        return events_mod.apply(self.config, found, now=self.clock(), issue_of=issue_of)

    def names(self) -> list[str]:
        """Providers with a webhook here: the one sending uses and any configured ones."""
        from pressroom.delivery import providers

        wanted = {self.config.sending.provider, *self.config.providers}
        return sorted(n for n in wanted if providers.get(n).receives_webhooks)

    def adapter(self, name: str) -> Provider:
        """The provider's adapter as a webhook receiver, built once (it caches certificates)."""
        from pressroom.delivery import providers

        with self._lock:
            found = self._adapters.get(name)
            if found is None:
                cls = providers.get(name)
                settings = self.config.provider_settings(name)
                found = cls.for_webhooks(settings, self.env, self.session)
                self._adapters[name] = found
            return found

    def __call__(self, request: Request, provider: str) -> Response:
        """The answer to one webhook delivery."""
        if provider not in self.names():
            # the same answer for every name: which providers this publication uses (and so
            # which webhook secrets to go after) is nobody's business who is not one of them
            return _answer(404, "no such webhook here")
        request.max_content_length = MAX_BODY
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return _answer(413, f"body over {MAX_BODY} bytes")
        auth = request.authorization
        basic = (
            (auth.username or "", auth.password or "")
            if auth is not None and auth.type == "basic"
            else None
        )
        hook = WebhookRequest(
            body, {k.lower(): v for k, v in request.headers.items()}, basic_auth=basic
        )
        now = self.clock()
        try:
            adapter = self.adapter(provider)
            result = adapter.receive_webhook(hook, now)
        except WebhookRejected as e:
            _log(provider, e.status, e.message)
            extra = {"WWW-Authenticate": 'Basic realm="pressroom"'} if e.status == 401 else {}
            return _answer(e.status, "verification failed", headers=extra)
        except WebhookError as e:
            _log(provider, e.status, e.message)
            return _answer(e.status, e.message)
        except (ProviderError, PressroomError) as e:
            # our side is not ready (env var unset, certificate host unreachable): retry later
            _log(provider, 503, e.message)
            return _answer(503, "webhook receiver not ready; see the server log")
        nonce = result.nonce
        if nonce is not None:
            seen = self.nonces.claim(provider, nonce, result.fingerprint, now.timestamp())
            if seen is not None and seen != result.fingerprint:
                _log(provider, 403, "a signature token was reused with another body")
                return _answer(403, "verification failed")
            if seen is not None:
                return _answer(200, {"events": len(result.events), "new": 0, "duplicate": True})
        try:
            applied = self.apply(result.events) if result.events else Applied()
        except Exception as e:
            # nothing was applied: the provider's retry must not be taken for a duplicate
            if nonce is not None:
                self.nonces.release(provider, nonce)
            if not isinstance(e, PressroomError):
                raise
            _log(provider, 503, e.message)
            return _answer(503, "events not applied; see the server log")
        body_out: dict[str, Any] = {
            "events": len(result.events),
            "new": applied.new,
            "duplicates": applied.duplicates,
            "suppressed": len(applied.suppressed),
        }
        if applied.invalid:
            body_out["invalid"] = len(applied.invalid)
        if result.note:
            body_out["note"] = result.note
        if result.ignored:
            body_out["ignored"] = sorted(set(result.ignored))
        return _answer(200, body_out)


def hook(site: Site, request: Request, provider: str) -> Response:
    """``POST /hooks/<provider>`` in the app's routing table (one receiver per app)."""
    receiver = site.extras.get("hooks")
    if receiver is None:
        receiver = site.extras["hooks"] = HookReceiver(
            site.config, site.clock, site.env, session=site.extras.get("hooks_session")
        )
    assert isinstance(receiver, HookReceiver)
    return receiver(request, provider)


def _answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    payload = body if isinstance(body, dict) else {"status": status, "message": body}
    return Response(
        json.dumps(payload), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


def _log(provider: str, status: int, message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f"{stamp} webhook {provider}: {status}: {message}\n")
