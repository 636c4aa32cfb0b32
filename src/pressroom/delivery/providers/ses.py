"""Amazon SES API v2: ``SendBulkEmail`` with an inline template, or ``SendEmail`` per message.

Bulk (the default): one call carries up to 50 entries. The issue goes out as an inline
template (``DefaultContent.Template.TemplateContent``, no stored template to manage) in which
each field token is ``{{{field}}}`` (``{{{field_h}}}``, HTML-escaped by us, in the HTML part;
triple braces insert as given, so SES's Handlebars never escapes twice and never escapes the
text part); literal ``{{`` in the issue is written ``\\{{``. Each entry has its own
``ReplacementTemplateData`` and ``ReplacementHeaders`` (List-Unsubscribe with its token).
``use_bulk: false`` sends one ``SendEmail`` with simple content per recipient instead.

Requests are signed with botocore's SigV4 (``SigV4Auth``, service ``ses``); pressroom never
signs by hand. Endpoints and request shapes come from botocore's ``sesv2`` model
(``POST /v2/email/outbound-bulk-emails``, ``POST /v2/email/outbound-emails``,
``GET /v2/email/account``).

Documentation the limits and error codes come from:
- SendBulkEmail (50 destinations per call; per-entry ``Status``: SUCCESS, TRANSIENT_FAILURE,
  ACCOUNT_THROTTLED … retry, MESSAGE_REJECTED, INVALID_PARAMETER, FAILED permanent):
  https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendBulkEmail.html ,
  https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_BulkEmailEntryResult.html
- Errors (TooManyRequestsException 429, ThrottlingException, AccountSuspended, SendingPaused,
  MailFromDomainNotVerified, MessageRejected, BadRequest; 403 signature/credentials):
  https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html
- Headers (``MessageHeader``: at most 15, printable ASCII, values ≤ 995 characters):
  https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_MessageHeader.html
- Endpoints ``https://email.<region>.amazonaws.com``:
  https://docs.aws.amazon.com/general/latest/gr/ses.html

Webhooks (``POST /hooks/ses``): SES publishes bounces, complaints and deliveries to an SNS
topic whose HTTPS subscription is this endpoint. Each SNS message is verified first
(``pressroom.delivery.sns``: signature versions 1 and 2, certificate only from
``sns.<region>.amazonaws.com``), a ``SubscriptionConfirmation`` is confirmed, and a
``Notification``'s ``Message`` (identity notifications: ``notificationType``; configuration
set event publishing: ``eventType``) is read:
https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html ,
https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
"""

from __future__ import annotations

import email.utils
import functools
import html
import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import email_validator
import requests

from pressroom.audience import events as feedback
from pressroom.audience.events import Event
from pressroom.config import PositiveFloat
from pressroom.delivery.providers import _pull as pull
from pressroom.delivery.providers import register
from pressroom.delivery.providers._ses_events import notification_events
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
from pressroom.delivery.sns import SNSVerifier
from pressroom.delivery.webhooks import (
    WebhookRequest,
    WebhookResult,
    json_body,
)
from pressroom.errors import (
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    WebhookMalformed,
    WebhookRejected,
)
from pressroom.models import FIELDS, Personaliser

MAX_BATCH = 50
BULK_PATH = "/v2/email/outbound-bulk-emails"
SINGLE_PATH = "/v2/email/outbound-emails"
ACCOUNT_PATH = "/v2/email/account"
ENTRY_RETRY = frozenset({"TRANSIENT_FAILURE", "ACCOUNT_THROTTLED", "ACCOUNT_DAILY_QUOTA_EXCEEDED"})
ENTRY_STOP = frozenset(
    {
        "MAIL_FROM_DOMAIN_NOT_VERIFIED",
        "CONFIGURATION_SET_NOT_FOUND",
        "TEMPLATE_NOT_FOUND",
        "ACCOUNT_SUSPENDED",
        "ACCOUNT_SENDING_PAUSED",
        "CONFIGURATION_SET_SENDING_PAUSED",
        "INVALID_SENDING_POOL_NAME",
    }
)
ERROR_RETRY = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling"})
ERROR_AUTH = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationTokenException",
        "AccessDeniedException",
        "ExpiredTokenException",
    }
)
ERROR_STOP = frozenset(
    {
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
    }
)
_SKIP_HEADERS = frozenset({"date", "message-id"})  # SES stamps its own


@dataclass(frozen=True)
class SESSettings:
    """``providers.ses`` in config.yaml."""

    region: str = "us-east-1"
    base_url: str | None = None  # default: https://email.<region>.amazonaws.com
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    session_token_env: str = "AWS_SESSION_TOKEN"  # used when set (temporary credentials)
    configuration_set: str | None = None
    sns_topic_arn: str | None = None  # POST /hooks/ses accepts only this topic when set
    use_bulk: bool = True  # SendBulkEmail (50 per call); false: one SendEmail per recipient
    batch_size: int = MAX_BATCH
    timeout: PositiveFloat = PositiveFloat(30.0)

    def __post_init__(self) -> None:
        check_settings(self, MAX_BATCH, "bulk entries")
        if not self.region or "/" in self.region:
            raise ValueError(
                f'region: expected an AWS region like "eu-west-1", got "{self.region}"'
            )

    @property
    def endpoint(self) -> str:
        return (self.base_url or f"https://email.{self.region}.amazonaws.com").rstrip("/")


@register
class SES(Provider):
    """Amazon SES v2 bulk or per-message sending (see the module docstring)."""

    name = "ses"
    Settings = SESSettings
    max_batch = MAX_BATCH
    secret_envs = ("access_key_id_env", "secret_access_key_env")
    receives_webhooks = True  # SNS signs with certificates: no webhook secret to configure
    settings: SESSettings

    def setup(self) -> None:
        from botocore.auth import SigV4Auth
        from botocore.credentials import Credentials

        settings = self.settings
        credentials = Credentials(
            self.secrets.get("access_key_id_env", ""),
            self.secrets.get("secret_access_key_env", ""),
            self.secrets.get("session_token_env") or None,
        )
        self._signer = SigV4Auth(credentials, "ses", settings.region)
        self.base = settings.endpoint

    @classmethod
    def from_env(
        cls, settings: Any, env: Mapping[str, str], session: requests.Session | None = None
    ) -> Provider:
        """Like ``Provider.from_env``, plus the session token when its variable is set."""
        provider = super().from_env(settings, env, session)
        token = env.get(settings.session_token_env)
        if not token:
            return provider
        token = cls.checked_secret(settings.session_token_env, token)
        return cls(
            settings, secrets={**provider.secrets, "session_token_env": token}, session=session
        )

    # --- requests -------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None = None) -> requests.Response:
        """A botocore-signed request (SigV4 over method, path, host, date and body)."""
        from botocore.awsrequest import AWSRequest

        url = self.base + path
        headers = {"Content-Type": "application/json"} if body is not None else {}
        aws = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        self._signer.add_auth(aws)
        return self.session.request(
            method, url, data=body, headers=dict(aws.headers.items()), timeout=self.settings.timeout
        )

    def _sign(self, prepared: requests.PreparedRequest) -> None:
        """Sign ``prepared`` with SigV4 as it leaves (``post_on_wire``)."""
        from botocore.awsrequest import AWSRequest

        assert prepared.url is not None and prepared.method is not None
        body = prepared.body if isinstance(prepared.body, bytes) else b""
        aws = AWSRequest(
            method=prepared.method,
            url=prepared.url,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        self._signer.add_auth(aws)
        prepared.headers.update(dict(aws.headers.items()))

    def _post(
        self, wire: Wire, recipients: Sequence[Recipient], path: str, body: bytes
    ) -> requests.Response:
        """A signed ``POST`` of ``body`` for ``recipients`` through ``post_on_wire``."""
        headers = {"Content-Type": "application/json"}
        return self.post_on_wire(wire, recipients, self.base + path, body, headers, self._sign)

    def open(self, content: Content) -> None:
        """Build the inline template (bulk) or the local personalisers (per message) once."""
        super().open(content)
        text_syntax = {f: f"{{{{{{{f}}}}}}}" for f in FIELDS}
        html_syntax = {f: f"{{{{{{{f}_h}}}}}}" for f in FIELDS}
        subject = Personaliser(_literal(content.subject), is_html=False)
        self._text_fields = set(subject.fields)
        self._html_fields: set[str] = set()
        self._templates: dict[str, dict[str, str]] = {}
        self._local: dict[str, tuple[Personaliser, Personaliser]] = {}
        for key, v in content.variants.items():
            h = Personaliser(_literal(v.html), is_html=True)
            t = Personaliser(_literal(v.text), is_html=False)
            self._text_fields |= t.fields
            self._html_fields |= h.fields
            self._templates[key] = {
                "Subject": subject.translate(text_syntax),
                "Text": t.translate(text_syntax),
                "Html": h.translate(html_syntax),
            }
            self._local[key] = (
                Personaliser(v.html, is_html=True),
                Personaliser(v.text, is_html=False),
            )
        self._subject = Personaliser(content.subject, is_html=False)
        self._headers = [
            {"Name": k, "Value": v}
            for k, v in content.headers.items()
            if k.lower() not in _SKIP_HEADERS
        ]
        shared: dict[str, Any] = {"FromEmailAddress": _encoded_address(content.from_)}
        if content.reply_to:
            shared["ReplyToAddresses"] = [_encoded_address(content.reply_to)]
        if self.settings.configuration_set:
            shared["ConfigurationSetName"] = self.settings.configuration_set
        self._shared = shared
        self._tags = [{"Name": "pressroom_issue", "Value": str(content.issue)}]

    def _data(self, r: Recipient) -> str:
        values = {f: r.fields.get(f, "") for f in self._text_fields}
        for f in self._html_fields:
            values[f"{f}_h"] = html.escape(r.fields.get(f, ""), quote=True)
        return json.dumps(values, ensure_ascii=False, separators=(",", ":"))

    def build_bulk_request(self, batch: Sequence[Recipient]) -> dict[str, Any]:
        """``SendBulkEmail`` parameters for one call (one variant per call)."""
        empty = {f: "" for f in self._text_fields} | {f"{f}_h": "" for f in self._html_fields}
        template: dict[str, Any] = {
            "TemplateContent": self._templates[batch[0].variant],
            "TemplateData": json.dumps(empty),
        }
        if self._headers:
            template["Headers"] = self._headers
        entries = []
        for r in batch:
            entry: dict[str, Any] = {
                "Destination": {"ToAddresses": [_encoded_address(r.email, r.name)]},
                "ReplacementEmailContent": {
                    "ReplacementTemplate": {"ReplacementTemplateData": self._data(r)}
                },
            }
            if r.headers:
                entry["ReplacementHeaders"] = [
                    {"Name": k, "Value": v} for k, v in r.headers.items()
                ]
            entries.append(entry)
        return {
            **self._shared,
            "DefaultEmailTags": self._tags,
            "DefaultContent": {"Template": template},
            "BulkEmailEntries": entries,
        }

    def build_single_request(self, r: Recipient) -> dict[str, Any]:
        """``SendEmail`` parameters with simple content filled in locally."""
        h, t = self._local[r.variant]
        headers = self._headers + [{"Name": k, "Value": v} for k, v in r.headers.items()]
        simple: dict[str, Any] = {
            "Subject": {"Data": self._subject.fill(r.fields), "Charset": "UTF-8"},
            "Body": {
                "Text": {"Data": t.fill(r.fields), "Charset": "UTF-8"},
                "Html": {"Data": h.fill(r.fields), "Charset": "UTF-8"},
            },
        }
        if headers:
            simple["Headers"] = headers
        return {
            **self._shared,
            "Destination": {"ToAddresses": [_encoded_address(r.email, r.name)]},
            "Content": {"Simple": simple},
            "EmailTags": self._tags,
        }

    # --- sending --------------------------------------------------------------------------

    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        """Send ``batch``; one result per recipient, from each entry's status.

        Per-message mode makes one request per recipient and reports each to ``wire`` as it
        completes: a stop error on the tenth request keeps the nine accepted before it.
        """
        refused = {r.email for r in batch if _ascii_address(r.email) is None}
        if refused:  # never sent: the rest of the batch goes out without them
            sent = iter(self.send([r for r in batch if r.email not in refused], wire))
            why = "SES takes only 7-bit ASCII before the @ (no SMTPUTF8): send it another way"
            return [
                SendResult(r.email, Outcome.PERMANENT, error=why)
                if r.email in refused
                else next(sent)
                for r in batch
            ]
        if not self.settings.use_bulk:
            return [self._send_single(r, wire) for r in batch]
        return send_by_variant(batch, lambda group: self._send_bulk(group, wire))

    def _send_bulk(self, group: Sequence[Recipient], wire: Wire) -> list[SendResult]:
        body = json.dumps(self.build_bulk_request(group), ensure_ascii=False).encode("utf-8")
        try:
            response = self._post(wire, group, BULK_PATH, body)
        except requests.RequestException as e:
            outcome, reason = http_exception_result(e, self)
            return settle(wire, batch_result(group, outcome, reason))
        if response.status_code != 200:
            outcome, reason, retry_after = self._classify(response)
            return settle(wire, batch_result(group, outcome, reason, retry_after))
        entries = (_json(response) or {}).get("BulkEmailEntryResults")
        if not isinstance(entries, list) or len(entries) != len(group):
            # accepted, but which entries went out is unknown: resending could mail twice
            return settle(
                wire,
                batch_result(
                    group, Outcome.UNCERTAIN, "SES answered 200 without one result per entry"
                ),
            )
        results = []
        stop: str | None = None
        for r, entry in zip(group, entries, strict=True):
            if not isinstance(entry, dict) or not entry.get("Status"):
                # the call was accepted; an entry without a status says nothing of this one
                why = "SES answered 200 without a status for this entry"
                results.append(SendResult(r.email, Outcome.UNCERTAIN, error=why))
                continue
            status = str(entry["Status"])
            reason = self.redact(f"{status}: {entry.get('Error') or ''}".strip().rstrip(":"))
            if status == "SUCCESS":
                results.append(SendResult(r.email, Outcome.SENT, entry.get("MessageId")))
            elif status in ENTRY_RETRY:
                results.append(SendResult(r.email, Outcome.RETRY, error=reason))
            elif status in ENTRY_STOP:
                stop = reason
                results.append(SendResult(r.email, Outcome.RETRY, error=reason))
            else:  # MESSAGE_REJECTED, INVALID_PARAMETER, FAILED
                results.append(SendResult(r.email, Outcome.PERMANENT, error=reason))
        if stop and not any(res.outcome is Outcome.SENT for res in results):
            raise ProviderAuthError(f"ses: the account cannot send ({stop}); {self._fix_hint()}")
        return settle(wire, results)

    def _send_single(self, r: Recipient, wire: Wire) -> SendResult:
        body = json.dumps(self.build_single_request(r), ensure_ascii=False).encode("utf-8")
        try:
            response = self._post(wire, [r], SINGLE_PATH, body)
        except requests.RequestException as e:
            outcome, reason = http_exception_result(e, self)
            return settle(wire, [SendResult(r.email, outcome, error=reason)])[0]
        if response.status_code == 200:
            data = _json(response)
            mid = data.get("MessageId") if isinstance(data, dict) else None
            if not isinstance(mid, str) or not mid:
                # SendEmail's 200 always names the message: this one came from something else
                # (a proxy, a captive portal, a base_url that is a web site). Not "sent": that
                # would lose the reader
                kind = response.headers.get("Content-Type", "no content type").split(";")[0]
                reason = (
                    f"HTTP 200 without an SES MessageId ({kind.strip()}): not SES's answer; "
                    "check providers.ses.base_url/region and any proxy on the way"
                )
                return settle(wire, [SendResult(r.email, Outcome.UNCERTAIN, error=reason)])[0]
            return settle(wire, [SendResult(r.email, Outcome.SENT, mid)])[0]
        outcome, reason, retry_after = self._classify(response)
        return settle(wire, [SendResult(r.email, outcome, error=reason, retry_after=retry_after)])[
            0
        ]

    def _classify(self, response: requests.Response) -> tuple[Outcome, str, float | None]:
        """SES errors by type (``x-amzn-ErrorType``), then by HTTP status."""
        kind = _error_type(response)
        message = self.redact(str((_json(response) or {}).get("message") or ""))[:300]
        reason = f"HTTP {response.status_code} {kind}: {message}".strip()
        if kind in ERROR_AUTH or response.status_code in (401, 403):
            raise ProviderAuthError(
                f"ses: AWS rejected the credentials ({reason}); {self._fix_hint()}"
            )
        if kind in ERROR_STOP:
            raise ProviderAuthError(f"ses: the account cannot send ({reason}); {self._fix_hint()}")
        if kind in ERROR_RETRY:
            return Outcome.RETRY, reason, retry_after_seconds(response.headers)
        outcome, _, retry_after = classify_http(response, self)
        return outcome, reason, retry_after

    def _fix_hint(self) -> str:
        s = self.settings
        return (
            f"check {s.access_key_id_env} / {s.secret_access_key_env}, providers.ses.region "
            f"({s.region}), the verified sender identity and providers.ses.configuration_set"
        )

    def check(self) -> str:
        """Read the account (``GET /v2/email/account``): sending enabled, quota, sandbox."""
        try:
            response = self._request("GET", ACCOUNT_PATH)
        except requests.RequestException as e:
            raise ProviderError(f"ses: cannot reach {self.base}: {self.redact(str(e))}") from None
        if response.status_code != 200:
            _, reason, _ = self._classify(response)
            raise ProviderError(f"ses: account check failed: {reason}")
        account = _json(response) or {}
        quota = account.get("SendQuota") or {}
        if not account.get("SendingEnabled", False):
            raise ProviderError(
                f"ses: sending is disabled for this account in {self.settings.region}"
            )
        sandbox = (
            "" if account.get("ProductionAccessEnabled") else " (sandbox: verified recipients only)"
        )
        daily, rate, sent = (
            float(quota.get(k) or 0) for k in ("Max24HourSend", "MaxSendRate", "SentLast24Hours")
        )
        return (
            f"ses: account in {self.settings.region} can send{sandbox}; quota {daily:,.0f}/24h "
            f"at {rate:g}/s, {sent:,.0f} sent in the last 24h; keys from "
            f"{self.settings.access_key_id_env}, endpoint {self.base}"
        )

    # --- webhooks (SNS) ----------------------------------------------------------------------

    def receive_webhook(self, request: WebhookRequest, now: datetime) -> WebhookResult:
        """Verify the SNS message, confirm a subscription, or read SES's notification."""
        try:
            message = json_body(request.body)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("Type"), str):
            raise WebhookMalformed("ses webhook: expected an SNS message (JSON with 'Type')")
        # the topic is looked at before the signature: checking a signature fetches its
        # certificate, and a message naming another topic must not make this server fetch
        # (and wait for) whatever certificate URL an unauthenticated post names; the
        # signature is still checked below for our own topic
        topic = self.settings.sns_topic_arn
        if not topic:
            # SNS signs the messages of every AWS account's topics alike: without the topic
            # named, anyone could replay a signed notification of their own topic (bounces
            # for any address) or subscribe this endpoint to it
            raise ProviderConfigError(
                f"ses webhook: providers.ses.sns_topic_arn is not set, so a message of your "
                f"topic cannot be told from one of anyone else's; set it to your topic's ARN "
                f"(this message names {str(message.get('TopicArn'))[:256]!r})"
            )
        if message.get("TopicArn") != topic:
            raise WebhookRejected(
                f"ses webhook: topic {str(message.get('TopicArn'))[:256]!r} is not "
                f"providers.ses.sns_topic_arn ({topic})"
            )
        verifier = getattr(self, "_sns", None)
        if verifier is None:
            verifier = self._sns = SNSVerifier(self.session, self.settings.timeout)
        verifier.verify(message, now)
        kind = message["Type"]
        if kind == "SubscriptionConfirmation":
            return WebhookResult(note=verifier.confirm(message))
        if kind != "Notification":
            return WebhookResult(ignored=[kind])
        try:
            notification = json_body(str(message.get("Message")))
        except ValueError:
            notification = None
        if not isinstance(notification, dict):
            raise WebhookMalformed("ses webhook: the SNS Message is not an SES notification")
        events = notification_events(notification, str(message.get("MessageId", "")))
        kind = str(notification.get("notificationType") or notification.get("eventType"))
        return WebhookResult(events, ignored=[] if events else [kind])

    # --- suppression pull -----------------------------------------------------------------
    # ListSuppressedDestinations, GET /v2/email/suppression/addresses (botocore's sesv2 model;
    # https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_ListSuppressedDestinations.html):
    # query ``Reason`` (BOUNCE, COMPLAINT; repeated), ``StartDate`` (ISO 8601: entries added or
    # updated since), ``PageSize``, ``NextToken``; answer ``SuppressedDestinationSummaries``
    # (``EmailAddress``, ``Reason``, ``LastUpdateTime`` in epoch seconds) and ``NextToken``
    # while there is more. SigV4-signed like sending, the query included.

    suppression_lists = ("suppressed",)
    suppression_page_size = 1000

    def pull_suppressions(
        self, list_: str, since: datetime | None, now: datetime
    ) -> Iterator[Sequence[Event]]:
        """Each page of the account-level suppression list, following ``NextToken``."""
        token: str | None = None
        tokens: set[str] = set()
        while True:
            params = [("Reason", "BOUNCE"), ("Reason", "COMPLAINT")]
            params.append(("PageSize", str(self.suppression_page_size)))
            if since is not None:
                stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                params.append(("StartDate", stamp))
            if token:
                params.append(("NextToken", token))
            query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="-_.~")
            data = pull.fetch_page(
                self,
                functools.partial(self._request, "GET", f"{SUPPRESSED}?{query}"),
                "the account's suppression list (ListSuppressedDestinations)",
                message=_pull_message,
            )
            if not isinstance(data, dict):
                raise ProviderError("ses: ListSuppressedDestinations: expected a JSON object")
            summaries = data.get("SuppressedDestinationSummaries") or []
            if not isinstance(summaries, list):
                raise ProviderError(
                    "ses: ListSuppressedDestinations: SuppressedDestinationSummaries is not a list"
                )
            page = []
            for item in summaries:
                if not isinstance(item, dict):
                    continue
                kind = _PULL_KIND.get(str(item.get("Reason")))
                when = pull.parse_time(item.get("LastUpdateTime"))
                address = str(item.get("EmailAddress") or "")
                if kind is None or when is None or not address:
                    continue
                reason = f"SES suppression list: {item.get('Reason')}"
                page.append(Event(self.name, kind, address, when, reason=reason))
            yield page
            next_token = data.get("NextToken") or None
            if next_token is None:
                return
            if not isinstance(next_token, str) or next_token in tokens:
                raise ProviderError(
                    "ses: ListSuppressedDestinations: the NextToken leads back to a page "
                    "already read; the sync stopped"
                )
            token = next_token
            tokens.add(token)


def _literal(part: str) -> str:
    """``part`` with literal ``{{`` protected from SES's Handlebars."""
    return part.replace("{{", "\\{{")


def _encoded_address(value: str, name: str | None = None) -> str:
    """An address SES accepts: a non-ASCII display name becomes an RFC 2047 encoded-word,
    an IDN domain Punycode (``_ascii_address``; the caller leaves out what it refuses)."""
    if name is None:
        name, value = email.utils.parseaddr(value)
    value = _ascii_address(value) or value
    return email.utils.formataddr((name, value)) if name else value


def _ascii_address(address: str) -> str | None:
    """``address`` in the 7-bit ASCII SES documents for a destination (the domain in Punycode,
    IDNA 2008 as the subscriber check reads it); None for a non-ASCII local part (SMTPUTF8),
    which SES cannot send to."""
    if address.isascii():
        return address
    try:
        info = email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return None
    return info.ascii_email


def _error_type(response: requests.Response) -> str:
    kind = response.headers.get("x-amzn-ErrorType") or ""
    if not kind:
        body = _json(response) or {}
        kind = str(body.get("__type") or body.get("code") or body.get("Code") or "")
    return kind.split(":")[0].split("#")[-1]


def _json(response: requests.Response) -> Any:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


SUPPRESSED = "/v2/email/suppression/addresses"
_PULL_KIND = {"BOUNCE": feedback.HARD_BOUNCE, "COMPLAINT": feedback.COMPLAINT}


def _pull_message(response: requests.Response) -> str:
    """SES's error: its type (``x-amzn-ErrorType``) and ``message``."""
    kind = response.headers.get("x-amzn-ErrorType", "").split(":")[0]
    said = pull.json_message(response, "message", "Message")
    return f"{kind}: {said}" if kind and said else kind or said
