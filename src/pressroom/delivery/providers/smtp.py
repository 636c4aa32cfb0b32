"""The ``smtp`` provider: any SMTP server or relay, one complete message per recipient.

Security is ``starttls`` (port 587, RFC 3207), ``tls`` (implicit TLS, port 465, RFC 8314) or
``none`` (a local relay). The login comes from the env vars named by ``username_env`` and
``password_env``. Each worker thread keeps one connection and reuses it for every message,
reconnecting when the server drops it.

Per-recipient outcomes follow the reply codes of RFC 5321 (section 4.2): 421 and every other
4xx (451 local error, 452 insufficient storage, 454 TLS/auth temporarily unavailable) and a
connection that fails before the message data was handed over (connect, EHLO, STARTTLS,
MAIL, RCPT, DATA) are retried; a timeout or drop after the data went out but before the
final reply is ``UNCERTAIN`` (the server may have queued it: RFC 1047), and so is a reply to
the data without a 2xx, 4xx or 5xx code (it cannot be read, and a retry could mail twice); 5xx fails
that recipient (an enhanced status ``5.1.x``, RFC 3463 "bad destination address", also
suppresses it); 535 (RFC 4954, credentials invalid) and 530 (authentication required) stop
the run.

Bounces: ``return_path`` is the envelope sender (``MAIL FROM``), where receiving servers send
their bounces; with ``bounces.imap`` set, the adapter's suppression list is that mailbox
(``pressroom.delivery.mailbox``), read by ``pressroom suppressions sync``.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pressroom.audience.events import Event
from pressroom.config import ImapConfig, PositiveFloat
from pressroom.delivery.providers import register
from pressroom.delivery.providers.base import (
    NO_WIRE,
    Outcome,
    Provider,
    Recipient,
    SendResult,
    Wire,
    secret_forms,
)
from pressroom.errors import ProviderAuthError, ProviderConfigError, ProviderError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import requests

    from pressroom.config import Config
    from pressroom.delivery.mailbox import BounceMailbox

AUTH_CODES = (530, 534, 535)


@dataclass(frozen=True)
class SmtpSettings:
    """``providers.smtp``: where and how to connect."""

    host: str = "localhost"
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username_env: str | None = None  # no login when unset (a local relay)
    password_env: str = "PRESSROOM_SMTP_PASSWORD"
    timeout: PositiveFloat = PositiveFloat(30.0)
    ca_file: Path | None = None  # a private CA for the server's certificate
    batch_size: int = 50  # messages per ledger batch (each is its own SMTP transaction)
    local_hostname: str | None = None  # the EHLO name; default: this machine's FQDN
    # the envelope sender (MAIL FROM), where bounces go; default: the From address
    return_path: str | None = None
    bounce_mailbox: ImapConfig | None = None  # filled from bounces.imap


def _reply(code: int, msg: bytes | str) -> str:
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return f"SMTP {code}: {' '.join(text.split())}"[:300]


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: lines starting with "." doubled, CRLF line ends, the final "." line."""
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def classify(code: int, msg: bytes | str) -> tuple[Outcome, bool]:
    """(outcome, suppress) for an SMTP reply code (RFC 5321 4.2.1, RFC 3463)."""
    if 400 <= code < 500:
        return Outcome.RETRY, False
    if code >= 500:
        text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
        bad_address = re.match(r"\s*5\.1\.\d", text) is not None
        return Outcome.PERMANENT, bad_address
    return Outcome.RETRY, False


@register
class SmtpProvider(Provider):
    """Sends each message with its own SMTP transaction over a per-thread connection."""

    name = "smtp"
    Settings = SmtpSettings
    max_batch = 100
    suppression_lists = ("mailbox",)  # the bounce mailbox (bounces.imap), when there is one

    def __init__(self, settings: Any, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._local = threading.local()
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._stop: ProviderError | None = None

    @classmethod
    def pulls_from(cls, config: Config) -> bool:
        """Only with a bounce mailbox (``bounces.imap``) to read."""
        return config.bounces.imap is not None

    @classmethod
    def from_env(
        cls, settings: Any, env: Mapping[str, str], session: requests.Session | None = None
    ) -> Provider:
        """Like ``Provider.from_env``, plus the bounce mailbox's password when it is set."""
        provider = super().from_env(settings, env, session)
        box = settings.bounce_mailbox
        if box is not None and env.get(box.password_env):
            provider.secrets["imap_password"] = env[box.password_env]
        return provider

    @classmethod
    def env_names(cls, settings: Any) -> dict[str, str]:
        if not settings.username_env:
            return {}
        return {"username_env": settings.username_env, "password_env": settings.password_env}

    def redact(self, text: str) -> str:
        """Blank out the password and the user name (a login is half a credential).

        Also their base64 forms: AUTH LOGIN sends each alone, AUTH PLAIN as
        "\\0user\\0password" (RFC 4616), and a server may echo either back in a reply. A user
        name under 4 characters is left alone: it would blank letters out of every word.
        """
        password = self.secrets.get("password_env", "")
        user = self.secrets.get("username_env", "")
        values = [f"\0{user}\0{password}", password] if password else []
        if self.secrets.get("imap_password"):
            values.append(self.secrets["imap_password"])
        if len(user) >= 4:
            values.append(user)
        for form in secret_forms(values):
            text = text.replace(form, "*****")
        return text

    @property
    def batch_limit(self) -> int:
        return max(1, min(self.max_batch, int(self.settings.batch_size)))

    # --- connections ------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        cafile = str(self.settings.ca_file) if self.settings.ca_file else None
        return ssl.create_default_context(cafile=cafile)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            conn: smtplib.SMTP
            if s.security == "tls":
                conn = smtplib.SMTP_SSL(
                    s.host,
                    s.port,
                    local_hostname=s.local_hostname,
                    timeout=s.timeout,
                    context=self._context(),
                )
            else:
                conn = smtplib.SMTP(
                    s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout
                )
                if s.security == "starttls":
                    conn.ehlo()
                    if not conn.has_extn("starttls"):
                        conn.close()
                        raise ProviderConfigError(
                            f"smtp: {s.host}:{s.port} does not offer STARTTLS; set "
                            "providers.smtp.security to tls (port 465) or none (local relay)"
                        )
                    conn.starttls(context=self._context())
                    conn.ehlo()
            if s.username_env:
                try:
                    conn.login(self.secrets["username_env"], self.secrets["password_env"])
                except smtplib.SMTPAuthenticationError as e:
                    conn.close()
                    raise ProviderAuthError(
                        f"smtp: {s.host} rejected the login "
                        f"({self.redact(_reply(e.smtp_code, e.smtp_error))});"
                        f" check {s.username_env} and {s.password_env}"
                    ) from None
                except smtplib.SMTPNotSupportedError:
                    conn.close()
                    raise ProviderConfigError(
                        f"smtp: {s.host}:{s.port} offers no login (AUTH) on this connection; "
                        "use security: starttls or tls, or unset username_env"
                    ) from None
        except ssl.SSLError as e:
            raise ProviderConfigError(f"smtp: TLS with {s.host}:{s.port} failed: {e}") from e
        with self._lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = getattr(self._local, "conn", None)
        if conn is None or conn.sock is None:  # smtplib sets sock = None after 421 / close
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    # --- sending ----------------------------------------------------------------------

    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        """Each message its own transaction; the batch is announced to ``wire`` once.

        One in-flight mark per batch, not per message: the mark is an fsync, which per message
        would cap a relay at a few hundred messages a second. After a crash the batch in hand
        (``batch_size``, 50 by default) is uncertain.
        """
        from pressroom.delivery.message import build, message_id, message_id_of

        if self._stop is not None:  # raised at the start of a batch: nothing of it went out
            raise self._stop
        wire.sending(batch)
        sender = self.settings.return_path or parseaddr(self.content.from_)[1]
        results: list[SendResult] = []
        for r in batch:
            msgid = message_id(self.content, r.email)
            data = build(self.content, r, msgid=msgid)
            try:
                results.append(self._send_one(sender, r.email, data, message_id_of(data)))
            except ProviderError as e:
                if not results:
                    raise
                # some messages of this batch went out: report them, and stop on the next call
                self._stop = e
                results.extend(
                    SendResult(x.email, Outcome.RETRY, error=e.message)
                    for x in batch[len(results) :]
                )
                break
        wire.settled(results)
        return results

    def _send_one(self, sender: str, to: str, data: bytes, msgid: str | None) -> SendResult:
        # one transaction step by step (not smtplib.sendmail) so that a failure is known to
        # have happened before the message was handed over (safe to retry) or after (it may
        # have been delivered: uncertain)
        try:
            conn = self._conn()
            conn.ehlo_or_helo_if_needed()
            options = [f"SIZE={len(data)}"] if conn.does_esmtp and conn.has_extn("size") else []
            if not (sender.isascii() and to.isascii()):
                # an internationalised address (RFC 6531) can only travel with SMTPUTF8; a
                # server without it can never take this recipient: fail them, not the run
                if not (conn.does_esmtp and conn.has_extn("smtputf8")):
                    return self._refused(
                        to,
                        f"smtp: {self.settings.host} does not offer SMTPUTF8 (RFC 6531), "
                        "which a non-ASCII address needs",
                    )
                options.append("SMTPUTF8")
                if conn.has_extn("8bitmime"):
                    options.append("BODY=8BITMIME")  # the headers carry the address as UTF-8
            code, msg = conn.mail(sender, options)
            if code != 250:
                return self._failed(to, code, msg)
            code, msg = conn.rcpt(to)
            if code not in (250, 251):
                return self._failed(to, code, msg)
            code, msg = conn.docmd("DATA")
            if code != 354:
                return self._failed(to, code, msg)
            # a send that fails has not handed over the final "." line that ends the message
            # (RFC 5321 4.1.1.4); without it the server has no message: still safe to retry
            conn.send(_dot_stuffed(data))
        except ProviderError:
            raise
        except smtplib.SMTPResponseException as e:  # a refused greeting or EHLO
            return self._failed(to, e.smtp_code, e.smtp_error)
        except (OSError, smtplib.SMTPException) as e:  # SMTPServerDisconnected, timeouts
            return self._lost(to, Outcome.RETRY, e)
        try:
            code, msg = conn.getreply()
        except (OSError, smtplib.SMTPException) as e:
            # the whole message went out and the server's verdict was lost: it may have
            # queued it (RFC 1047, "Duplicate messages and SMTP", is about exactly this)
            return self._lost(to, Outcome.UNCERTAIN, e, "no reply after the message data: ")
        if 200 <= code < 300:  # RFC 5321 4.2.1: the first digit says what happened
            return SendResult(to, Outcome.SENT, message_id=msgid)
        if 400 <= code < 600:  # a refusal: the server did not take the message
            return self._failed(to, code, msg)
        # no reply code (smtplib's -1), or one that answers another command (354): the
        # message went out whole and the verdict cannot be read, so the server may have queued
        # it; and where the dialogue stands is unknown, so the connection goes too
        self._drop()
        return SendResult(
            to,
            Outcome.UNCERTAIN,
            error=self.redact(f"unreadable reply after the message data: {_reply(code, msg)}"),
        )

    def _lost(self, to: str, outcome: Outcome, e: BaseException, what: str = "") -> SendResult:
        """The connection broke: drop it (the next message reconnects) and say so."""
        self._drop()
        return SendResult(to, outcome, error=self.redact(f"{what}{type(e).__name__}: {e}")[:300])

    def _refused(self, to: str, reason: str) -> SendResult:
        """``to`` can never be sent over this server: fail it for good, keep the connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            try:
                conn.rset()  # a MAIL FROM may have been accepted already
            except (smtplib.SMTPException, OSError):
                self._drop()
        return SendResult(to, Outcome.PERMANENT, error=self.redact(reason)[:300])

    def _failed(self, to: str, code: int, msg: bytes | str) -> SendResult:
        if code in AUTH_CODES:
            s = self.settings
            hint = (
                f"check {s.username_env} and {s.password_env}"
                if s.username_env
                else ("the server wants a login: set providers.smtp.username_env and password_env")
            )
            raise ProviderAuthError(f"smtp: {s.host}: {_reply(code, msg)}; {hint}")
        if code == 421:
            self._drop()  # the server is closing the connection (RFC 5321 3.8)
        outcome, suppress = classify(code, msg)
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            try:
                conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
        return SendResult(to, outcome, error=self.redact(_reply(code, msg)), suppress=suppress)

    def check(self) -> str:
        """Connect (TLS and login as configured) and send NOOP; one line saying what happened."""
        s = self.settings
        try:
            conn = self._conn()
            code, _ = conn.noop()
        except ProviderError:
            raise
        except smtplib.SMTPResponseException as e:  # a refused greeting, EHLO or STARTTLS
            reply = _reply(e.smtp_code, e.smtp_error)
            raise ProviderError(
                f"smtp: {s.host}:{s.port} refused the connection ({reply}); "
                "check providers.smtp.host/port"
            ) from None
        except (OSError, smtplib.SMTPException) as e:  # refused, unreachable, DNS, timeout
            reason = self.redact(f"{type(e).__name__}: {e}")[:200]
            raise ProviderError(
                f"smtp: cannot reach {s.host}:{s.port}: {reason}; check providers.smtp.host/port"
            ) from None
        finally:
            self.close()
        login = f" as ${s.username_env}" if s.username_env else " without login"
        return f"smtp: connected to {s.host}:{s.port} ({s.security}){login}; NOOP answered {code}"

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                if conn.sock is not None:
                    conn.quit()
            except (smtplib.SMTPException, OSError):
                with contextlib.suppress(OSError):
                    conn.close()
        self._local = threading.local()
        super().close()

    # --- the bounce mailbox (``pressroom suppressions sync``) ---------------------------------

    def pull_suppressions(
        self, list_: str, since: datetime | None, now: datetime
    ) -> Iterator[Sequence[Event]]:
        """Every report in the bounce mailbox's folder, a page at a time (``since`` is not
        needed: whatever is still in the folder has not been applied)."""
        from pressroom.delivery.mailbox import BounceMailbox

        box = self.settings.bounce_mailbox
        if box is None:
            raise ProviderConfigError(
                "smtp: no bounce mailbox; set bounces.imap (host, user, password_env)"
            )
        password = self.secrets.get("imap_password")
        if not password:
            raise ProviderConfigError(
                f"smtp: environment variable {box.password_env} is not set; export the bounce "
                "mailbox's password (or set bounces.imap.password_env)"
            )
        self._mailbox: BounceMailbox | None = BounceMailbox(box, password)
        self._read: list[bytes] = []
        try:
            self._mailbox.open()
            for events, uids in self._mailbox.pages(now):
                self._read = uids
                yield events
        finally:
            mailbox, self._mailbox = self._mailbox, None
            if mailbox is not None:
                mailbox.close()

    def acknowledge(self, list_: str) -> None:
        """The last page was applied: file its messages away (a dry run never calls this)."""
        mailbox = getattr(self, "_mailbox", None)
        if mailbox is not None:
            mailbox.file_away(self._read)
            self._read = []
