"""Complete RFC 5322 messages, built cheaply for each recipient.

``content_for`` turns the configuration and a rendered issue into the ``Content`` every
recipient shares; ``recipient_for`` gives one subscriber's fields and headers; ``build``
makes the raw bytes of one multipart/alternative message (text + HTML).

``email.message.EmailMessage`` costs several milliseconds per message and has two traps
that break bulk mail: it folds a long ``List-Unsubscribe`` URL into an RFC 2047 encoded-word
(invalid there: one-click unsubscribe stops working), and ``make_msgid()`` without a domain
says ``@localhost``. So the constant parts of each variant are assembled once, every header
we write is written raw (only display names and the subject are encoded, and only when they
are not ASCII), and per recipient only the fields are filled and the bodies encoded
(quoted-printable, lines ≤ 76 characters, CRLF).
"""

from __future__ import annotations

import binascii
import email.utils
import hashlib
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pressroom.audience import tokens as unsubscribe
from pressroom.config import Config
from pressroom.delivery.providers.base import Content, Provider, Recipient
from pressroom.models import Personaliser, RenderedIssue, Subscriber

CRLF = "\r\n"


# --- what every recipient shares ---------------------------------------------------------


def list_id_value(config: Config) -> str:
    """The ``List-Id`` header value: ``"Name list" <list.host>`` (RFC 2919)."""
    from pressroom.audience.tokens import list_id

    return list_id(config)


def domain_of(address: str) -> str:
    """The domain of a ``Name <addr>`` address, for Message-IDs."""
    addr = email.utils.parseaddr(address)[1]
    return addr.rpartition("@")[2].lower() or "localhost"


def content_for(
    config: Config,
    rendered: RenderedIssue,
    *,
    provider: Provider | type[Provider] | None = None,
    now: datetime | None = None,
    subject_prefix: str = "",
) -> Content:
    """The shared part of every message of ``rendered``: addresses, subject, fixed headers."""
    headers: dict[str, str] = {}
    if now is not None:
        headers["Date"] = email.utils.format_datetime(now)
    headers["List-Id"] = list_id_value(config)
    managed = provider is not None and provider.manages_unsubscribe
    # RFC 8058 one-click is defined for HTTPS unsubscribe URLs only
    if not managed and unsubscribe.base_url(config).startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers["Precedence"] = "bulk"
    headers["X-Pressroom-Issue"] = str(rendered.number)
    return Content(
        issue=rendered.number,
        subject=subject_prefix + rendered.subject,
        from_=config.sending.from_,
        reply_to=config.sending.reply_to,
        variants=MappingProxyType({v.key: v for v in rendered.variants}),
        headers=MappingProxyType(headers),
        tag=f"issue-{rendered.number}",
        message_id_domain=domain_of(config.sending.from_),
    )


# --- one recipient -----------------------------------------------------------------------


def view_online_url(config: Config, number: int) -> str:
    """The web copy of issue ``number``."""
    base = config.digest.archive_url or config.publication.url + "issues/"
    if not base.endswith("/"):
        base += "/"
    return f"{base}{number}/"


@dataclass(frozen=True)
class RecipientFactory:
    """Everything ``recipient_for`` needs that does not change between recipients."""

    config: Config
    rendered: RenderedIssue
    signer: unsubscribe.Signer
    manages_unsubscribe: bool = False
    list_: str | None = None  # the frozen issue's list (tokens); default sending.list

    def __post_init__(self) -> None:
        # the URL and header are the same strings around the token for every recipient:
        # build them once with a marker and only splice the token in per recipient
        config = self.config
        url = unsubscribe.unsubscribe_url(config, _MARK)
        header = unsubscribe.list_unsubscribe_headers(config, url).get("List-Unsubscribe", "")
        url_pre, _, url_post = url.partition(_MARK)
        head_pre, _, head_post = header.partition(url)
        set_ = object.__setattr__
        set_(self, "_url", (url_pre, url_post))
        set_(self, "_head", (head_pre, head_post) if url in header else None)
        prefs_pre, _, prefs_post = unsubscribe.preferences_url(config, _MARK).partition(_MARK)
        set_(self, "_prefs", (prefs_pre, prefs_post))
        set_(self, "_list", self.list_ or config.sending.list)
        set_(self, "_online", view_online_url(config, self.rendered.number))

    def make(self, email_: str, name: str, variant: str) -> Recipient:
        """The recipient ``email_`` with its own unsubscribe token and URLs."""
        tok = self.signer.token(email_, self._list)  # type: ignore[attr-defined]
        pre, post = self._url  # type: ignore[attr-defined]
        unsub = pre + tok + post
        prefs_pre, prefs_post = self._prefs  # type: ignore[attr-defined]
        fields = {
            "name": name,
            "email": email_,
            "unsubscribe_url": unsub,
            "preferences_url": prefs_pre + self.signer.preferences.token(email_) + prefs_post,
            "view_online_url": self._online,  # type: ignore[attr-defined]
        }
        headers: Mapping[str, str] = _NO_HEADERS
        head = self._head  # type: ignore[attr-defined]
        if head is not None and not self.manages_unsubscribe:
            headers = {"List-Unsubscribe": head[0] + unsub + head[1]}
        return Recipient(email_, name, variant, fields, headers)


_MARK = "PRESSROOM0TOKEN0MARK"
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def recipient_for(
    config: Config,
    rendered: RenderedIssue,
    signer: Any,
    subscriber: Subscriber,
    *,
    variant: str | None = None,
    manages_unsubscribe: bool = False,
) -> Recipient:
    """One subscriber as a ``Recipient``: fields, List-Unsubscribe, the variant they get."""
    key = variant or rendered.variant_for(subscriber.tags).key
    factory = RecipientFactory(config, rendered, signer, manages_unsubscribe)
    return factory.make(subscriber.email, subscriber.name, key)


# --- raw bytes ---------------------------------------------------------------------------


def _clean(value: str) -> str:
    """A header value on one line (no header injection through names or subjects)."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def _encoded(name: str, value: str) -> str:
    """``Name: value`` folded, with RFC 2047 words only where the value is not ASCII."""
    value = _clean(value)
    if value.isascii():
        return _folded(name, value)
    if name in _ADDRESS_HEADERS:
        mailboxes = email.utils.getaddresses([value])
        if len(mailboxes) == 1 and mailboxes[0][1]:  # one mailbox: encode its name only
            display, addr = mailboxes[0]
            return _fold_tokens(name, [*_phrase_tokens(display), f"<{addr}>"])
    return _fold_tokens(name, _unstructured_tokens(value))


_ADDRESS_HEADERS = frozenset({"From", "To", "Reply-To", "Sender", "Cc"})
# RFC 2047 section 2: an encoded-word is at most 75 characters, and a header line at most 78
# (RFC 5322 2.1.1). 42 bytes of UTF-8 are 56 characters of base64, a 68-character word, which
# fits even on the first line after "Reply-To: " (so no fold right after the header name)
_WORD_BYTES = 42


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 base64 encoded-words (≤ 68 characters), split between characters.

    A multi-byte character is never split across two words (RFC 2047 section 5); the space
    between adjacent encoded-words is dropped by decoders (section 6.2), so the words
    together decode to exactly ``text``.
    """
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(_b_word(bytes(chunk)))
            chunk.clear()
        chunk += data
    if chunk:
        words.append(_b_word(bytes(chunk)))
    return words


def _b_word(data: bytes) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode("ascii") + "?="


def _unstructured_tokens(value: str) -> list[str]:
    """A ``Subject``-like value as tokens: ASCII words raw, runs of other words encoded."""
    # a raw word that looks like an encoded-word would be decoded by readers: encode it
    return _tokens(value, lambda word: word.isascii() and "=?" not in word)


def _phrase_tokens(name: str) -> list[str]:
    """A display name (RFC 5322 phrase) as tokens: plain atoms raw, the rest encoded."""
    return _tokens(name, lambda word: bool(word) and all(c in _ATEXT for c in word))


_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)


def _tokens(value: str, raw: Callable[[str], bool]) -> list[str]:
    """Words of ``value`` kept raw where ``raw`` says so; each run of others as encoded-words.

    Whitespace between two encoded-words is not part of the text (RFC 2047 6.2), so a run of
    words that must be encoded is encoded as one string, spaces included.
    """
    tokens: list[str] = []
    run: list[str] = []
    for word in value.split(" "):
        if raw(word) and "=?" not in word:
            if run:
                tokens += _encoded_words(" ".join(run))
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        tokens += _encoded_words(" ".join(run))
    return tokens


def _fold_tokens(name: str, tokens: list[str]) -> str:
    """``Name: t1 t2 …`` folded between tokens so that lines stay ≤ 78 where tokens allow."""
    line = f"{name}:"
    lines = []
    for token in tokens:
        if len(line) > len(name) + 1 and len(line) + 1 + len(token) > 78:
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return CRLF.join(lines) + CRLF


def _folded(name: str, value: str) -> str:
    """``Name: value`` folded only at spaces inside the value, lines ≤ 78 where words allow.

    The email package folds some long values (a subject with a colon) right after the
    ``Name:``, which parsers then read with a leading space; RFC 5322 (2.2.3) folding keeps
    the first words on the header's own line.
    """
    line = f"{name}:"
    lines = []
    for i, word in enumerate(value.split(" ")):
        if i and len(line) + 1 + len(word) > 78:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return CRLF.join(lines) + CRLF


def _address(name: str, addr: str) -> str:
    """A ``To``-style address with the display name quoted or encoded as needed."""
    name = _clean(name)
    if not name:
        return addr
    return email.utils.formataddr((name, addr), charset="utf-8")


def _to(name: str, addr: str) -> str:
    """The ``To:`` header line(s): the name quoted, or encoded in ≤ 75-character words."""
    name = _clean(name)
    if not (name.isascii() and addr.isascii()):
        # formataddr refuses a non-ASCII address, which SMTPUTF8 (RFC 6531/6532) carries raw
        if not name:
            return f"To: {addr}{CRLF}"
        return _fold_tokens("To", [*_phrase_tokens(name), f"<{addr}>"])
    line = f"To: {_address(name, addr)}"
    if len(line) <= 78:  # the common case, kept cheap
        return line + CRLF
    return _folded("To", line[4:])


def _raw(name: str, value: str) -> str:
    """A header written as-is; a long list (``<a>, <b>``) is folded only after its commas."""
    value = _clean(value)
    line = f"{name}: {value}"
    if len(line) <= 78 or ", " not in value:
        return line + CRLF
    return line.replace(", ", "," + CRLF + " ") + CRLF


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends and lines ≤ 76 characters."""
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


class _Compiled:
    """One variant of one ``Content`` with its constant bytes assembled once."""

    __slots__ = (
        "after_headers",
        "end",
        "has_date",
        "html",
        "middle",
        "middle_bytes",
        "prefix",
        "text",
    )

    def __init__(self, content: Content, key: str) -> None:
        variant = content.variants[key]
        self.text = Personaliser(variant.text, is_html=False)
        self.html = Personaliser(variant.html, is_html=True)
        seed = hashlib.sha1(f"{content.issue}/{key}/{content.subject}".encode()).hexdigest()
        # "=_" can never occur in quoted-printable output, so the boundary is always safe
        boundary = f"=_pressroom_{seed[:24]}"
        head = [_encoded("From", content.from_)]
        self.prefix = "".join(head)
        rest = [_encoded("Subject", content.subject)]
        if content.reply_to:
            rest.append(_encoded("Reply-To", content.reply_to))
        for name, value in content.headers.items():
            rest.append(_raw(name, value))
        self.has_date = "Date" in content.headers
        self.middle = "".join(rest)
        self.after_headers = (
            "MIME-Version: 1.0"
            + CRLF
            + "Content-Type: multipart/alternative;"  # folded: the line would be 80
            + CRLF
            + f' boundary="{boundary}"'
            + CRLF
            + CRLF
            + f"--{boundary}"
            + CRLF
            + 'Content-Type: text/plain; charset="utf-8"'
            + CRLF
            + "Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
        ).encode("ascii")
        self.middle_bytes = (
            CRLF
            + f"--{boundary}"
            + CRLF
            + 'Content-Type: text/html; charset="utf-8"'
            + CRLF
            + "Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
        ).encode("ascii")
        self.end = (CRLF + f"--{boundary}--" + CRLF).encode("ascii")


_cache: dict[tuple[int, str], tuple[weakref.ref[Content], _Compiled]] = {}
_cache_lock = threading.Lock()


def _compiled(content: Content, key: str) -> _Compiled:
    cache_key = (id(content), key)
    hit = _cache.get(cache_key)
    if hit is not None and hit[0]() is content:
        return hit[1]
    compiled = _Compiled(content, key)
    with _cache_lock:
        if len(_cache) > 64:  # old issues: drop the dead entries
            for k in [k for k, (ref, _) in _cache.items() if ref() is None]:
                del _cache[k]
        _cache[cache_key] = (weakref.ref(content), compiled)
    return compiled


def message_id(content: Content, email_address: str) -> str:
    """The Message-ID of ``content`` for one recipient: ``<pressroom.N.HASH@domain>``.

    Derived from the issue, the recipient and whether it is a test copy, not from the clock:
    a preview is reproducible, and a message resent after an uncertain attempt carries the
    same id, which lets receiving servers and mail apps drop the duplicate.
    """
    key = f"{content.issue}\0{email_address.lower()}\0{content.tag}\0{content.test}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return f"<pressroom.{content.issue}.{digest}@{content.message_id_domain}>"


def build(content: Content, recipient: Recipient, *, msgid: str | None = None) -> bytes:
    """The complete raw message for one recipient (CRLF line ends)."""
    try:
        c = _compiled(content, recipient.variant)
    except KeyError:
        c = _compiled(content, next(iter(content.variants)))
    headers = [c.prefix, _to(recipient.name, recipient.email), c.middle]
    if not c.has_date:
        headers.append(f"Date: {email.utils.formatdate(time.time())}{CRLF}")
    headers.append(f"Message-ID: {msgid or message_id(content, recipient.email)}{CRLF}")
    for name, value in recipient.headers.items():
        headers.append(_raw(name, value))
    head = "".join(headers)
    encoded_head = head.encode("ascii") if head.isascii() else head.encode("utf-8")
    fields = recipient.fields
    return b"".join(
        (
            encoded_head,
            c.after_headers,
            _qp(c.text.fill(fields)),
            c.middle_bytes,
            _qp(c.html.fill(fields)),
            c.end,
        )
    )


def message_id_of(data: bytes) -> str | None:
    """The Message-ID of a message made by ``build``."""
    start = data.find(b"\r\nMessage-ID: ")
    if start < 0:
        return None
    end = data.find(b"\r\n", start + 2)
    return data[start + 14 : end].decode("ascii", "replace")
