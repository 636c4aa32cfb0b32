"""The one policy for URLs and slugs that come from outside (front matter, feeds, WordPress).

Every link, image, enclosure and author URL a source hands over goes through ``public_url``:
a relative URL is resolved against the first base that applies (the article's own URL, then
the feed's or the site's), and only ``http``/``https`` survive (``mailto:`` only where an
e-mail address belongs). Anything else — ``javascript:``, ``data:``, ``vbscript:``, a Windows
path like ``C:\\Users\\…``, a URL holding spaces or control characters — raises ``BadURL``
with the reason, and the source drops the value with a warning naming the file and line or
the feed entry. Bodies are not handled here: their links go through the HTML sanitiser
(``text.sanitise``), which applies the same schemes.

``slugify`` is the one slug rule, for article paths and for category and author feeds alike.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from urllib.parse import quote, urljoin, urlsplit

from anyascii import anyascii

from pressroom.settings import ascii_host, web_host

WEB_SCHEMES = frozenset({"http", "https"})

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# C0 and C1 controls, DEL and every kind of white space (a URL holds none of them written out)
_UNSAFE_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029\u00a0\ufeff]")
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


class BadURL(ValueError):
    """A URL that the policy refuses; ``str()`` says why, for the warning."""


def absolute_url(url: str, base_url: str) -> str:
    """``url`` resolved against ``base_url``, with characters a URI cannot hold (spaces,
    non-ASCII) percent-encoded and existing escapes kept."""
    url = url.strip()
    if not _SCHEME.match(url):
        url = urljoin(base_url, url)
    return _requote(url)


def public_url(value: object, *bases: str, email: bool = False) -> str:
    """``value`` as an absolute http(s) URL, resolved against the first of ``bases``.

    With ``email`` a ``mailto:`` address is kept too (an author's contact, never a link
    target). Raises ``BadURL`` saying what is wrong; the caller warns and drops the value.
    """
    if not isinstance(value, str):
        raise BadURL(f"expected a URL, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise BadURL("is empty")
    bad = _UNSAFE_CHAR.search(text)
    if bad:
        what = "a space" if bad.group().isspace() else f"control character U+{ord(bad.group()):04X}"
        raise BadURL(f'"{_shown(text)}" holds {what}; write it percent-encoded (%20 for a space)')
    if _WINDOWS_PATH.match(text) or "\\" in text:
        raise BadURL(f'"{_shown(text)}" is a Windows file path, not a URL')
    scheme = _SCHEME.match(text)
    if scheme is None:
        base = next((b for b in bases if _is_web(b)), None)
        if base is None:
            raise BadURL(f'"{_shown(text)}" is relative and there is no http(s) URL to resolve it')
        try:
            text = urljoin(base, text)
        except ValueError as e:
            raise BadURL(f'"{_shown(text)}": {e}') from None
        scheme = _SCHEME.match(text)
    name = scheme.group(1).lower() if scheme else ""
    if name == "mailto" and email:
        return _requote(text)
    if name not in WEB_SCHEMES:
        allowed = "http, https or mailto" if email else "http or https"
        raise BadURL(f'"{_shown(text)}": {name or "no"} scheme is not allowed (only {allowed})')
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError as e:  # a port out of range, a broken [IPv6] literal
        raise BadURL(f'"{_shown(text)}": {e}') from None
    if not host:
        raise BadURL(f'"{_shown(text)}" has no host name')
    if "@" in parts.netloc:  # https://paypal.com@evil.example/ reads as PayPal and is not
        raise BadURL(
            f'"{_shown(text)}" holds a user name or password before the host (…@); '
            "link to the page itself"
        )
    if port == 0:
        raise BadURL(f'"{_shown(text)}": port 0 is no port a browser connects to')
    try:  # the host as every client sends it: lower-case, an IDN in Punycode
        host = ascii_host(host)
    except UnicodeError:
        raise BadURL(f'"{_shown(text)}" has an invalid host name') from None
    if not web_host(f"[{host}]" if ":" in host else host):
        raise BadURL(f'"{_shown(text)}" has an invalid host name')
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    path = parts.path
    if "/." in path:  # "/a/../../etc/" → "/etc/": no dot segments in a URL we publish
        # one leading slash: urljoin would read "//x/../" as a host name
        path = urlsplit(urljoin("http://h/", "/" + path.lstrip("/"))).path
    return _requote(parts._replace(scheme=name, netloc=netloc, path=path).geturl())


def _is_web(url: str) -> bool:
    scheme = _SCHEME.match(url)
    return scheme is not None and scheme.group(1).lower() in WEB_SCHEMES


def _shown(text: str, limit: int = 60) -> str:
    """``text`` safe to put in a one-line message: controls escaped, long values cut."""
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# --- slugs ---------------------------------------------------------------------------------

_SLUG_READY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SLUG_DROP = re.compile(r"[^\w\s-]")
_SLUG_DASH = re.compile(r"[-\s_]+")
_NAME_DASH = re.compile(r"[^\w]+|_+")


def ascii_fold(text: str) -> str:
    """``text`` with accents removed and Latin letters spelt in ASCII (``ø`` → ``o``, ``ß``
    → ``ss``); other scripts (Cyrillic, Greek, CJK) are kept as they are."""
    if text.isascii():
        return text
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", text):
        if char.isascii():
            out.append(char)
        elif unicodedata.combining(char):
            continue
        elif unicodedata.name(char, "").startswith("LATIN"):
            out.append(anyascii(char))
        else:
            out.append(char)
    return "".join(out)


def slugify(text: str) -> str:
    """An article slug: punctuation dropped, words joined by dashes, ASCII where the name
    allows (``Q&A: Zoë`` → ``qa-zoe``, ``søren kierkegaard`` → ``soren-kierkegaard``);
    other scripts are kept (``Россия`` → ``россия``)."""
    if _SLUG_READY.fullmatch(text):  # most file names already are slugs
        return text
    slug = _SLUG_DASH.sub("-", _SLUG_DROP.sub("", ascii_fold(text)).strip().lower()).strip("-")
    return slug or "article"


# File systems allow 255 bytes a name; a long name is cut well below, with its hash kept
_NAME_SLUG_BYTES = 80


def name_slug(name: str) -> str:
    """The folder of a category or author feed: punctuation separates words (``Arts &
    Culture`` → ``arts-culture``); a name with nothing left (``+++``) gets a stable hash,
    and one too long for a folder name is cut and given one."""
    text = _NAME_DASH.sub("-", ascii_fold(name).lower()).strip("-")
    if len(text.encode()) > _NAME_SLUG_BYTES:
        cut = text.encode()[: _NAME_SLUG_BYTES - 9].decode(errors="ignore").rstrip("-")
        # of the key: the same folder whichever spelling of the name comes first
        return f"{cut}-{uuid.uuid5(uuid.NAMESPACE_URL, name_key(name)).hex[:8]}"
    return text or "x" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:8]


def name_key(name: str) -> str:
    """What makes two category or author names the same one: case and accents do not count."""
    return " ".join(ascii_fold(name).casefold().split())


def slug_path(text: str) -> str:
    """A written slug as a URL path, kept as written otherwise: spaces become dashes, Latin
    letters ASCII, the rest percent-encoded; never a ``..`` or ``.`` segment or a leading ``/``.
    """
    segments = (s for s in re.split(r"[/\\]+", text) if s.strip() not in ("", ".", ".."))
    return "/".join(quote(ascii_fold("-".join(s.split())), safe="-._~") for s in segments)


def _requote(url: str) -> str:
    """requests' ``requote_uri``: escape what must be, keep existing escapes. Imported on first
    use, because importing requests costs ~0.1 s that a run over cached files never needs."""
    from requests.utils import requote_uri

    return requote_uri(url)
