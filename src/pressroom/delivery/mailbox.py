"""The SMTP bounce mailbox: delivery status notifications and feedback reports over IMAP.

Mail sent over SMTP carries ``providers.smtp.return_path`` as its envelope sender, so the
receiving servers' bounces (DSNs, RFC 3464, and the many non-standard ones) and feedback-loop
complaints (ARF, RFC 5965) arrive in one mailbox, ``bounces.imap``. ``pressroom suppressions
sync`` reads every message in its ``folder`` over IMAP with TLS (implicit, or STARTTLS),
recognises it, hands the events to the one policy and then moves it to ``processed_folder``
(IMAP ``MOVE``, RFC 6851, or COPY + delete where the server lacks it). A message that is
neither a bounce nor a report is left where it is, for a person to read.

- DSNs: ``flufl.bounce`` (Mailman's detectors for RFC 3464 and some 40 non-standard
  formats: Postfix, Exim, qmail, Exchange, Gmail…); its permanent failures are hard bounces,
  its temporary ones soft bounces.
- Feedback reports: the standard library's ``email`` parser: the ``message/feedback-report``
  part's ``Feedback-Type`` (``abuse``, ``fraud``, ``other``…; ``not-spam`` is no complaint)
  and the complainer from ``Original-Rcpt-To`` or the returned message's ``To``.
"""

from __future__ import annotations

import contextlib
import email
import email.header
import email.message
import email.policy
import email.utils
import hashlib
import imaplib
import logging
import ssl
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from pressroom.audience.events import COMPLAINT, HARD_BOUNCE, SOFT_BOUNCE, Event
from pressroom.config import ImapConfig
from pressroom.errors import ProviderAuthError, ProviderError

PAGE = 50  # messages read, applied and filed away at a time
NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure"})
# flufl.bounce logs a traceback for every detector that fails on a message; we say it once
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)


class Unreadable(Exception):
    """A message the bounce detectors fail on: left in the folder for a person to read."""


def read_report(raw: bytes, now: datetime) -> list[Event]:
    """The events one message in the bounce mailbox reports (empty: it reports nothing)."""
    from flufl.bounce import all_failures

    msg = email.message_from_bytes(raw)  # compat32: what flufl.bounce's detectors expect
    when = _date(msg, now)
    key = str(msg.get("Message-ID") or "").strip() or hashlib.sha256(raw).hexdigest()[:32]
    complaints = _feedback(msg)
    if complaints is not None:
        kind, addresses = complaints
        return [
            Event("imap", COMPLAINT, a, when, reason=f"feedback report: {kind}", id=f"{key}:{a}")
            for a in addresses
        ]
    try:
        temporary, permanent = all_failures(msg)
    except Exception as e:  # a detector trips over a message it did not expect (no From…)
        raise Unreadable(f"{type(e).__name__}: {e}") from None
    reason = str(msg.get("Subject") or "delivery status notification")[:200]
    out = []
    for kind, found in ((HARD_BOUNCE, permanent), (SOFT_BOUNCE, temporary - permanent)):
        for address in sorted(found):
            text = address.decode("utf-8", "replace") if isinstance(address, bytes) else address
            out.append(Event("imap", kind, text, when, reason=reason, id=f"{key}:{text.lower()}"))
    return out


def _feedback(msg: email.message.Message) -> tuple[str, list[str]] | None:
    """(Feedback-Type, complainers) of an ARF report; None when ``msg`` is not one."""
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "")).lower() != "feedback-report":
        return None
    report: email.message.Message | None = None
    original: email.message.Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        inner = part.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else None
        if ctype == "message/feedback-report":
            report = first if isinstance(first, email.message.Message) else None
        elif ctype in ("message/rfc822", "text/rfc822-headers") and original is None:
            if isinstance(first, email.message.Message):
                original = first
            elif isinstance(inner, str):
                original = email.message_from_string(inner)
    if report is None:
        return None
    kind = str(report.get("Feedback-Type", "")).strip().lower()
    if kind in NOT_COMPLAINTS:
        return kind, []
    rcpts = [_header(a) for a in report.get_all("Original-Rcpt-To") or []]
    found = [a for a in rcpts if a.strip()]
    if not found and original is not None:
        found = [a for _, a in email.utils.getaddresses(original.get_all("To") or []) if a]
    return kind or "abuse", [email.utils.parseaddr(a)[1] or a.strip() for a in found]


def _header(value: object) -> str:
    """A header's text: raw 8-bit bytes (an SMTPUTF8 address, RFC 6532) come back from the
    parser as a Header object; they are read as UTF-8."""
    if isinstance(value, email.header.Header):
        return "".join(
            part.decode("utf-8", "replace") if isinstance(part, bytes) else part
            for part, _ in email.header.decode_header(value)
        )
    return str(value)


def _date(msg: email.message.Message, now: datetime) -> datetime:
    """The report's ``Date``, else ``now``: also for a date that is no time in UTC (31 Dec
    9999 at -14:00 is in year 10000), since events are keyed and stored in UTC."""
    try:
        when = email.utils.parsedate_to_datetime(str(msg.get("Date")))
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        when.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        return now
    return when


class BounceMailbox:
    """One IMAP session on ``bounces.imap``: read page by page, file away what was applied."""

    def __init__(self, settings: ImapConfig, password: str) -> None:
        self.settings = settings
        self.password = password
        self.conn: imaplib.IMAP4 | None = None
        self.unrecognised = 0  # messages left in the folder: neither a bounce nor a report

    def where(self) -> str:
        s = self.settings
        return f"bounces.imap ({s.user}@{s.host}:{self.port}, folder {s.folder!r})"

    @property
    def port(self) -> int:
        default = 993 if self.settings.security == "tls" else 143
        return self.settings.port or default

    def _context(self) -> ssl.SSLContext:
        ca = self.settings.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def open(self) -> None:
        """Connect with TLS, log in, select the folder; ``ProviderError`` says what failed."""
        s = self.settings
        try:
            if s.security == "tls":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    s.host, self.port, ssl_context=self._context(), timeout=s.timeout
                )
            else:
                conn = imaplib.IMAP4(s.host, self.port, timeout=s.timeout)
                conn.starttls(ssl_context=self._context())
        except (OSError, imaplib.IMAP4.error) as e:
            raise ProviderError(f"{self.where()}: cannot connect securely: {e}") from None
        self.conn = conn
        try:
            conn.login(s.user, self.password)
        except imaplib.IMAP4.error as e:
            self.close()
            raise ProviderAuthError(
                f"{self.where()}: login refused ({_text(e)}); check bounces.imap.user and "
                f"{s.password_env}"
            ) from None
        status, data = conn.select(_quote(s.folder))
        if status != "OK":
            self.close()
            raise ProviderError(f"{self.where()}: cannot open the folder: {_text(data)}")

    def pages(self, now: datetime) -> Iterator[tuple[list[Event], list[bytes]]]:
        """(events, UIDs of the messages they came from) for every ``PAGE`` messages."""
        conn = self._conn()
        status, data = conn.uid("SEARCH", None, "ALL")  # type: ignore[arg-type]
        if status != "OK":
            raise ProviderError(f"{self.where()}: SEARCH failed: {_text(data)}")
        uids = data[0].split() if data and data[0] else []
        for start in range(0, len(uids), PAGE):
            chunk = uids[start : start + PAGE]
            found: list[Event] = []
            recognised: list[bytes] = []
            for uid, raw in self._fetch(chunk):
                try:
                    events = read_report(raw, now)
                except Unreadable:
                    self.unrecognised += 1  # not filed away: it may be a bounce nobody read
                    continue
                if events or _is_report(raw):
                    found.extend(events)
                    recognised.append(uid)
                else:
                    self.unrecognised += 1
            yield found, recognised

    def _fetch(self, uids: Sequence[bytes]) -> Iterator[tuple[bytes, bytes]]:
        # one UID FETCH per message: servers put the UID before or after the literal, so a
        # batched answer cannot be matched to its UIDs reliably
        conn = self._conn()
        for uid in uids:
            status, data = conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            if status != "OK":
                raise ProviderError(f"{self.where()}: FETCH failed: {_text(data)}")
            for item in data:
                if isinstance(item, tuple) and len(item) == 2:
                    yield uid, item[1]
                    break

    def file_away(self, uids: Sequence[bytes]) -> None:
        """Move the messages whose events were applied to ``processed_folder``."""
        if not uids:
            return
        conn = self._conn()
        target = _quote(self.settings.processed_folder)
        conn.create(target)  # "already exists" is fine
        ids = b",".join(uids).decode()
        if "MOVE" in self._capabilities():
            status, data = conn.uid("MOVE", ids, target)
        else:
            status, data = conn.uid("COPY", ids, target)
            if status == "OK":
                conn.uid("STORE", ids, "+FLAGS.SILENT", r"(\Deleted)")
                conn.expunge()
        if status != "OK":
            raise ProviderError(
                f"{self.where()}: cannot move read bounces to "
                f"{self.settings.processed_folder!r}: {_text(data)}"
            )

    def _capabilities(self) -> set[str]:
        """What the server offers once logged in (imaplib keeps only the greeting's list)."""
        status, data = self._conn().capability()
        words = b" ".join(d for d in data if isinstance(d, bytes)).upper().split()
        return {w.decode("ascii", "replace") for w in words} if status == "OK" else set()

    def _conn(self) -> imaplib.IMAP4:
        if self.conn is None:
            self.open()
        assert self.conn is not None
        return self.conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()


def _is_report(raw: bytes) -> bool:
    """Whether a message is a delivery or feedback report even when it names no address."""
    msg = email.message_from_bytes(raw)
    return msg.get_content_type() == "multipart/report"


def _quote(folder: str) -> str:
    """A folder name as an IMAP quoted string."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        value = b" ".join(v for v in value if isinstance(v, bytes)) or value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value)[:200]
