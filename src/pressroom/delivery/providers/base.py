"""The provider interface and the one place that classifies delivery failures.

A provider adapter turns a batch of recipients of one frozen issue into the provider's
requests. It is handed its validated ``Settings``, the secrets it declared (``secret_envs``,
read from the environment by the caller), and an HTTP session; it never reads config.yaml or
the environment itself. The send loop (``pressroom.send``) owns batching, rate limiting,
retries and the ledger; an adapter only says, per recipient, what happened:

    Outcome.SENT       accepted by the provider (``message_id`` when it gives one)
    Outcome.RETRY      try again later: nothing went out (429, 5xx, 4xx SMTP reply, a
                       connection that could not be made, a drop before the message was sent)
    Outcome.UNCERTAIN  the request may have reached the provider but no answer came back
                       (read timeout, connection dropped after the request or the SMTP DATA
                       went out): sending again could mail the recipient twice
    Outcome.PERMANENT  this recipient failed for good (4xx other than 429, 5xx SMTP reply)
    Outcome.FATAL      the run must stop (401/403 auth failure) -> raise ProviderAuthError

A whole-batch failure is expressed by returning the same outcome for every recipient
(``batch_result``); ``ProviderAuthError`` is raised instead, because nothing else can go on.

Who owns the split: the send loop hands ``send`` a batch of ONE audience variant and at most
``batch_limit`` recipients, grouped so that a batch is one provider request. Where a request
must still carry fewer recipients than the batch (a per-message API such as SES ``SendEmail``
or SMTP, a split-in-halves retry after a refusal that names no recipient, an oversized body),
the adapter owns that split, and reports every request it makes through the ``Wire`` it is
given: ``wire.sending(part)`` once the request for ``part`` is built and right before it goes
out (the loop waits for the rate limit there and marks exactly ``part`` in flight in the
ledger), then ``wire.settled(results)`` as soon as that request's outcome is known (the loop
records it in the ledger at once), or ``wire.returned(part)`` when the provider refused the
whole request and the adapter will send ``part`` again in smaller pieces. So an exception
raised after some requests of a batch were accepted never discards their results, and after
a crash exactly the recipients of requests that were on the wire are uncertain. A recipient
never passed to ``wire.sending`` certainly did not go out. ``wire.sending`` raises
``Cancelled`` when the run is stopping: let it propagate (the request must not go out).
HTTP adapters send through ``Provider.post_on_wire``, which prepares the request in full
before it calls ``wire.sending``, so that only the socket write follows the mark.
"""

from __future__ import annotations

import base64
import email.utils
import enum
import math
import socket
import ssl
import time
import unicodedata
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

import requests
from urllib3.exceptions import ConnectTimeoutError, ProtocolError, ReadTimeoutError

from pressroom.answers import bound_answers
from pressroom.audience import events
from pressroom.delivery.webhooks import WebhookRequest, WebhookResult
from pressroom.errors import ProviderAuthError, ProviderConfigError
from pressroom.models import RenderedVariant


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    UNCERTAIN = "uncertain"  # the request may have reached the provider; no answer came back
    PERMANENT = "permanent"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One addressee of a batch, with the values of its per-subscriber fields."""

    email: str
    name: str
    variant: str  # RenderedVariant.key this recipient receives
    fields: Mapping[str, str]  # models.FIELDS -> value (unsubscribe_url, preferences_url, …)
    headers: Mapping[str, str]  # per-recipient headers (List-Unsubscribe)


@dataclass(frozen=True)
class Content:
    """What every recipient of one send shares: the frozen issue and the fixed headers."""

    issue: int
    subject: str
    from_: str  # "Name <addr>"
    reply_to: str | None
    variants: Mapping[str, RenderedVariant]
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tag: str = ""  # provider-side campaign tag, e.g. "issue-42"
    message_id_domain: str = "localhost"
    test: bool = False  # a `--test-to` copy, not a delivery: kept apart where adapters can
    # a one-off message to one reader (signup confirmation, welcome), not an issue
    transactional: bool = False


@dataclass(frozen=True, slots=True)
class SendResult:
    email: str
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None  # provider's reason, secrets removed
    retry_after: float | None = None  # seconds, when the provider said when to come back
    suppress: bool = False  # provider says never mail again (hard bounce, inactive recipient)


class Cancelled(Exception):
    """Raised by ``Wire.sending``: the run is stopping, so this request must not go out."""


class Wire:
    """What an adapter tells the send loop about each request (see the module docstring).

    This base does nothing: it is what ``send`` gets outside the ledger (``--test-to``,
    adapter tests). The send loop passes its own, which waits for the rate limit and writes
    the ledger.
    """

    def sending(self, recipients: Sequence[Recipient]) -> None:
        """The request for ``recipients`` is built and about to go out."""

    def settled(self, results: Sequence[SendResult]) -> None:
        """The outcome of one request (one result per recipient it carried)."""

    def returned(self, recipients: Sequence[Recipient]) -> None:
        """The provider refused the whole request for ``recipients``; nothing went out and the
        adapter will send them again in smaller requests."""


NO_WIRE = Wire()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the provider says about one recipient whose send was uncertain."""

    email: str
    accepted: bool | None  # True: it took the message; False: it did not; None: cannot tell yet
    how: str  # what was asked and found, for the report
    message_id: str | None = None


def send_by_variant(
    batch: Sequence[Recipient], send_group: Callable[[Sequence[Recipient]], list[SendResult]]
) -> list[SendResult]:
    """Send ``batch`` one audience variant at a time (a provider call carries one body);
    one result per recipient, in the batch's order.

    The send loop already hands adapters one variant per batch; this keeps a mixed batch
    (a direct caller) correct, one request per variant.
    """
    groups: dict[str, list[Recipient]] = {}
    for r in batch:
        groups.setdefault(r.variant, []).append(r)
    if len(groups) == 1:
        return send_group(batch)
    results = {res.email: res for group in groups.values() for res in send_group(group)}
    return [results[r.email] for r in batch]


def settle(wire: Wire, results: list[SendResult]) -> list[SendResult]:
    """Report one request's ``results`` to ``wire`` and return them."""
    wire.settled(results)
    return results


def batch_result(
    batch: Sequence[Recipient],
    outcome: Outcome,
    error: str | None = None,
    retry_after: float | None = None,
    message_id: str | None = None,
) -> list[SendResult]:
    """The same result for every recipient of a batch."""
    return [SendResult(r.email, outcome, message_id, error, retry_after) for r in batch]


class Provider(ABC):
    """A mail service adapter. Subclasses set the class attributes and implement ``send``.

    ``max_batch``: the documented maximum recipients per call (1 for per-message APIs).
    ``secret_envs``: settings fields whose values name env vars holding secrets; the caller
    resolves them into ``secrets`` (field name -> secret) before constructing the adapter.
    ``manages_unsubscribe``: the provider adds its own unsubscribe handling (e.g. Postmark
    broadcast streams), so pressroom's List-Unsubscribe is not sent.
    ``can_reconcile``: ``reconcile`` can ask the provider whether it accepted a message.
    ``receives_webhooks``: ``receive_webhook`` is implemented (``POST /hooks/<name>``);
    ``webhook_envs``: settings naming the env vars of the webhook's own secrets (a signing
    key, Basic-auth credentials), read by ``for_webhooks`` instead of the sending secrets.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[Any]]
    max_batch: ClassVar[int] = 1
    secret_envs: ClassVar[tuple[str, ...]] = ()
    manages_unsubscribe: ClassVar[bool] = False
    receives_webhooks: ClassVar[bool] = False
    can_reconcile: ClassVar[bool] = False
    webhook_envs: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        settings: Any,
        *,
        secrets: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.secrets = dict(secrets or {})
        self.session = session or requests.Session()
        # an API call is never redirected: following one would hand the request (a key in a
        # header of its own, the subscribers) to another host, and turn a POST into a GET
        # whose 200 reads as "accepted". Every caller sees the 3xx itself (``classify_http``).
        self.session.get_redirect_target = _no_redirect  # type: ignore[method-assign,assignment]
        # every answer whole within its timeout and 32 MB: one trickled a byte at a time held
        # a send (its readers in flight) or a sync for as long as the server liked
        bound_answers(self.session)
        self.setup()

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Adapter hook, run once settings and secrets are in place: auth, endpoints, headers."""

    @classmethod
    def env_names(cls, settings: Any) -> dict[str, str]:
        """Setting name -> the env var it names, for every secret this provider needs."""
        return {f: getattr(settings, f) for f in cls.secret_envs}

    @classmethod
    def from_env(
        cls, settings: Any, env: Mapping[str, str], session: requests.Session | None = None
    ) -> Provider:
        """Build the adapter with its secrets taken from ``env``; names a missing variable."""
        secrets = {}
        for setting, var in cls.env_names(settings).items():
            value = env.get(var)
            if not value:
                # set but empty (`export KEY=$(cat missing-file)`): say so, not "not set"
                state = "is not set" if value is None else "is set but empty"
                raise ProviderConfigError(
                    f"{cls.name}: environment variable {var} {state}; export it with your "
                    f"{cls.name} credentials (or set providers.{cls.name}.{setting})"
                )
            secrets[setting] = cls.checked_secret(var, value)
        return cls(settings, secrets=secrets, session=session)

    @classmethod
    def checked_secret(cls, var: str, value: str) -> str:
        """``value`` of ``var``, refused (without showing it) when it carries a line break,
        a control character or a space at either end: no key has one, and an HTTP library
        that refuses such a header quotes it, key and all, into its error message."""
        odd = value != value.strip() or any(
            unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value
        )
        if odd:
            raise ProviderConfigError(
                f"{cls.name}: environment variable {var} has a line break, control character "
                "or space around the credential (copied with its newline?); set it to the "
                "credential alone"
            )
        return value

    @classmethod
    def for_webhooks(
        cls, settings: Any, env: Mapping[str, str], session: requests.Session | None = None
    ) -> Provider:
        """The adapter as a webhook receiver: only the webhook secrets, each named if unset."""
        secrets = {}
        for setting in cls.webhook_envs:
            var = getattr(settings, setting)
            value = env.get(var)
            if not value:
                raise ProviderConfigError(
                    f"{cls.name}: environment variable {var} is not set; export the webhook "
                    f"secret from your {cls.name} account (or set providers.{cls.name}.{setting})"
                )
            secrets[setting] = value  # a PEM public key spans lines: only checked, never sent
        return cls(settings, secrets=secrets, session=session)

    def receive_webhook(self, request: WebhookRequest, now: datetime) -> WebhookResult:
        """Check the provider's proof of origin, then read the events (``receives_webhooks``).

        Raises ``WebhookRejected`` before reading anything when the proof is missing, wrong or
        stale, and ``WebhookMalformed`` when a verified body is not in the documented format.
        """
        raise NotImplementedError(f"{self.name} receives no webhooks")

    def reconcile(
        self, issue: int, attempts: Sequence[tuple[str, datetime]], now: datetime
    ) -> list[Verdict]:
        """Ask the provider about each (address, time of the uncertain attempt) of ``issue``.

        Only where ``can_reconcile``; raises ``ProviderError`` when the provider cannot be
        asked. An answer that may still change (a log that lags) is ``accepted=None``.
        """
        raise NotImplementedError(f"{self.name} cannot say which messages it accepted")

    def open(self, content: Content) -> None:
        """Prepare for sending ``content`` (e.g. convert field tokens to provider syntax once)."""
        self.content = content

    @abstractmethod
    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        """Send one batch (≤ ``max_batch``); one result per recipient, in order.

        Every request goes through ``wire`` (``sending`` before, ``settled`` after): see the
        module docstring.
        """

    def check(self) -> str:
        """Verify settings and credentials without sending; return what was found."""
        return f"{self.name}: settings valid (no credential check available)"

    @property
    def batch_limit(self) -> int:
        """Recipients per ``send`` call: ``max_batch``, lowered by a ``batch_size`` setting."""
        configured = getattr(self.settings, "batch_size", None)
        return min(self.max_batch, configured) if configured else self.max_batch

    def post_on_wire(
        self,
        wire: Wire,
        recipients: Sequence[Recipient],
        url: str,
        data: bytes,
        headers: Mapping[str, str],
        sign: Callable[[requests.PreparedRequest], None] | None = None,
    ) -> requests.Response:
        """POST ``data`` for ``recipients``: prepared in full first, then announced to ``wire``
        (the rate limit, the in-flight mark), then sent, so that as little as possible lies
        between the mark and the bytes leaving. ``sign`` (SES) signs the prepared request at
        that moment, so that no wait for the rate limit can outlast the signature."""
        session = self.session
        prepared = session.prepare_request(
            requests.Request("POST", url, data=data, headers=dict(headers))
        )
        options = session.merge_environment_settings(prepared.url, {}, None, None, None)
        wire.sending(recipients)
        if sign is not None:
            sign(prepared)
        timeout = getattr(self.settings, "timeout", None)
        return session.send(prepared, timeout=timeout, **options)

    def close(self) -> None:
        self.session.close()

    # --- suppression pull (``pressroom suppressions sync``) -------------------------------

    # the provider's suppression lists ``pull_suppressions`` reads, in order; () = none
    suppression_lists: ClassVar[tuple[str, ...]] = ()

    def pull_suppressions(
        self, list_: str, since: datetime | None, now: datetime
    ) -> Iterator[Sequence[events.Event]]:
        """Each page of the provider's ``list_`` (entries since ``since``; None: all) as events.

        ``now`` (the run's clock) dates an entry the provider gives no date of its own.

        Pages are read to the end through the provider's documented paging; a failure raises
        ``ProviderError`` (its message names the provider and the cause, without secrets).
        The caller applies each page before asking for the next, and keeps the cursor.
        """
        raise NotImplementedError(f"{self.name}: no suppression list to pull")

    @classmethod
    def pulls_from(cls, config: Any) -> bool:
        """Whether this provider has suppression lists to pull under ``config``."""
        return bool(cls.suppression_lists)

    def acknowledge(self, list_: str) -> None:  # noqa: B027 - optional hook
        """The last page ``pull_suppressions`` gave for ``list_`` was applied (a dry run
        never says so): a source that keeps what it read (a mailbox) may file it away."""

    def redact(self, text: str) -> str:
        """``text`` with every secret of this adapter blanked out, in any form it travels in."""
        for form in self.secret_forms():
            text = text.replace(form, "*****")
        return text

    def secret_forms(self) -> list[str]:
        """Each secret as sent: raw, base64 (alone and as ``user:secret`` of the session's
        Basic auth, e.g. Mailgun's ``api:<key>``), and URL-encoded; longest first.

        A provider that echoes the request back in an error (the Authorization header, a
        query string) would otherwise leak the key in a form an exact match misses.
        """
        values = [s for s in self.secrets.values() if s]
        auth = getattr(self.session, "auth", None)
        if isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(a, str) for a in auth):
            user, password = auth
            if password:
                values += [password, f"{user}:{password}"]
        return secret_forms(values)


def _no_redirect(response: requests.Response) -> None:
    """``Session.get_redirect_target`` that never finds one: no redirect is followed."""
    return None


def secret_forms(values: Sequence[str]) -> list[str]:
    """``values`` raw, base64 (standard and URL-safe, padded or not) and URL-encoded."""
    forms: set[str] = set()
    for value in values:
        if not value:
            continue
        data = value.encode("utf-8")
        forms.add(value)
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            text = encoded.decode("ascii")
            forms.update((text, text.rstrip("=")))
        quote = urllib.parse.quote
        forms.update((quote(value, safe=""), quote(value), urllib.parse.quote_plus(value)))
    # longest first: "api:key" in base64 is blanked whole before any shorter form matches
    return sorted((f for f in forms if f), key=len, reverse=True)


def check_settings(settings: Any, maximum: int, unit: str) -> None:
    """The check every HTTP adapter's Settings shares (raised as ``field: problem``);
    ``timeout`` is a ``config.PositiveFloat``, checked by the config loader."""
    if not 1 <= settings.batch_size <= maximum:
        raise ValueError(f"batch_size: expected 1 to {maximum} {unit} per call")


# --- HTTP failure classification (shared by every HTTP adapter) -------------------------


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta or HTTP date) or a rate-limit reset header;
    None when neither says something usable (a finite, non-negative number of seconds)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value:
        value = value.strip()
        # ASCII digits only: "²" passes str.isdigit() and then fails float()
        if value.isascii() and value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - (now if now is not None else time.time()))
    reset = headers.get("X-RateLimit-Reset") or headers.get("x-ratelimit-reset")
    if reset:
        try:
            r = float(reset)
        except ValueError:
            return None
        if not math.isfinite(r) or r < 0:
            return None
        current = now if now is not None else time.time()
        # providers send either an epoch timestamp or seconds from now
        return max(0.0, r - current) if r > 1_000_000_000 else r
    return None


def classify_http(
    response: requests.Response, provider: Provider, env_hint: str = ""
) -> tuple[Outcome, str, float | None]:
    """Outcome, reason and retry delay for a non-2xx answer; raises on auth failure."""
    status = response.status_code
    # redacted before it is cut short, so that no secret is left cut in two
    body = provider.redact(response.text[:2000]).strip().replace("\n", " ")[:300]
    reason = f"HTTP {status}: {body}" if body else f"HTTP {status}"
    if 200 <= status < 300:
        # a success the adapter does not know for this call: the provider may have the request
        return Outcome.UNCERTAIN, f"{reason} (not the documented answer)", None
    if 300 <= status < 400:
        # nothing was accepted; every request would be redirected alike: stop, readers pending
        where = provider.redact(response.headers.get("Location", "?"))[:200]
        raise ProviderConfigError(
            f"{provider.name}: the API answered HTTP {status}, a redirect to {where}, which "
            f"pressroom does not follow; set providers.{provider.name}.base_url to the API's "
            "address (or remove it for the default)"
        )
    if status in (401, 403):
        names = ", ".join(provider.env_names(provider.settings).values())
        raise ProviderAuthError(
            f"{provider.name}: the provider rejected the credentials ({reason}); "
            f"check {env_hint or names or 'its API key env var'}"
        )
    if status == 429 or status >= 500 or status == 408:
        return Outcome.RETRY, reason, retry_after_seconds(response.headers)
    return Outcome.PERMANENT, reason, None


def http_exception_result(
    exc: requests.RequestException, provider: Provider
) -> tuple[Outcome, str]:
    """RETRY when the request cannot have gone out, else UNCERTAIN; the reason has no secret.

    Safe to retry: the connection was never made (refused, DNS, connect timeout, a TLS
    certificate refused in the handshake) or the request could not even be built. Uncertain:
    a read timeout, or a connection dropped once it was up (RemoteDisconnected, reset,
    "Connection aborted"): the provider may have accepted the batch and lost only its answer.
    A keep-alive socket the server closed while idle is caught by urllib3 before reuse
    (``is_connection_dropped``) and replaced by a fresh one, so what is left is a real race
    that nothing on this side can tell apart from a drop after processing.
    """
    reason = provider.redact(f"{type(exc).__name__}: {exc}")[:300]
    return (Outcome.RETRY if _not_sent(exc) else Outcome.UNCERTAIN), reason


def _not_sent(exc: requests.RequestException) -> bool:
    """Whether ``exc`` proves the request never reached the provider."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ),
    ):
        return True  # raised while preparing the request (bad URL, header, body): never sent
    for cause in _causes(exc):
        # NewConnectionError (refused, unreachable; NameResolutionError too) subclasses
        # ConnectTimeoutError in urllib3 2: both mean no connection was made
        if isinstance(cause, (ConnectTimeoutError, socket.gaierror)):
            return True
        if isinstance(cause, (ConnectionRefusedError, ssl.SSLCertVerificationError)):
            return True
        if isinstance(cause, (ReadTimeoutError, ProtocolError)):
            return False  # the connection was up: the request (or part of it) went out
    return False  # unknown: assume it may have gone out (never mail anyone twice)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (exception args, urllib3's ``reason``, chained causes)."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(out) < 20:
        e = todo.pop(0)
        if e is None or any(e is seen for seen in out):
            continue
        out.append(e)
        todo.extend(a for a in e.args if isinstance(a, BaseException))
        reason = getattr(e, "reason", None)
        todo.append(reason if isinstance(reason, BaseException) else None)
        todo.extend((e.__cause__, e.__context__))
    return out
