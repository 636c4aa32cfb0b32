"""Load the articles of every configured source, normalised, newest first.

``load(config, now)`` runs each source of ``config.sources`` (chosen by type from
``pressroom.sources``), collects the articles and the per-article errors, leaves out what
is not yet published, de-duplicates by URL and sorts. The helpers below (dates, slugs, ids,
authors) are the normalisation rules every source shares.
"""

from __future__ import annotations

import email.utils
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pressroom import __version__
from pressroom.content.sources.base import SourceContext
from pressroom.errors import ArticleError, SourceError
from pressroom.models import Article, Author

if TYPE_CHECKING:
    from pressroom.config import Config

Warn = Callable[[str], None]

HTTP_RETRIES = 3  # per request, on connection errors, 429 and 5xx, with backoff


@dataclass(frozen=True)
class LoadResult:
    """What the sources gave: the articles to publish and the articles that were skipped."""

    articles: tuple[Article, ...]
    errors: tuple[ArticleError, ...]


def load(
    config: Config,
    now: datetime,
    *,
    since: datetime | None = None,
    session: requests.Session | None = None,
    warn: Warn | None = None,
) -> LoadResult:
    """Every published article of every source in ``config`` (newest first, one per URL).

    Drafts and articles dated after ``now`` are left out, and those before ``since`` when it
    is given. A broken article becomes an ``ArticleError`` in ``errors``; a source that
    fails as a whole raises ``SourceError``.
    """
    from pressroom.content import sources as source_registry

    own_session = session is None
    http = session if session is not None else make_session()
    say: Warn = warn if warn is not None else (lambda _msg: None)
    context = SourceContext(
        publication=config.publication,
        root=config.root,
        state=config.state,
        session=http,
        now=now,
        warn=say,
    )
    found: list[Article] = []
    errors: list[ArticleError] = []
    try:
        for entry in config.sources:
            cls = source_registry.get(entry.type)
            for item in cls(entry.settings, context).articles(since):
                if isinstance(item, ArticleError):
                    errors.append(item)
                elif item.published <= now and (since is None or item.published >= since):
                    found.append(item)
    finally:
        if own_session:
            http.close()
    return LoadResult(tuple(sort_articles(dedupe(found, say))), tuple(errors))


def make_session(retries: int = HTTP_RETRIES) -> requests.Session:
    """A requests.Session with bounded retries (connection errors, 429, 5xx) and backoff."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # the last response comes back; the source names its status
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = (
        f"pressroom/{__version__} (+https://pypi.org/project/pressroom/)"
    )
    return session


def dedupe(articles: Iterable[Article], warn: Warn) -> list[Article]:
    """One article per URL (and per id): the most recently modified wins, then the first seen."""
    by_url: dict[str, Article] = {}
    for article in articles:
        kept = by_url.get(article.url)
        if kept is None:
            by_url[article.url] = article
            continue
        if _both_local(kept, article):
            warn(f"{article.source}: same URL as {kept.source} ({article.url}); keeping one")
        if article.modified > kept.modified:
            by_url[article.url] = article
    by_id: dict[str, Article] = {}
    for article in by_url.values():
        kept = by_id.get(article.id)
        if kept is not None:
            # feeds need unique GUIDs: two URLs claiming one id would make them invalid
            warn(f"{article.source}: same id as {kept.source} ({article.id}); keeping one")
            if article.modified <= kept.modified:
                continue
        by_id[article.id] = article
    return list(by_id.values())


def _both_local(a: Article, b: Article) -> bool:
    return not a.source.startswith(("http://", "https://")) and not b.source.startswith(
        ("http://", "https://")
    )


def sort_articles(articles: Iterable[Article]) -> list[Article]:
    """Newest first; ties by id so the order never depends on the file system."""
    return sorted(articles, key=lambda a: (-a.published.timestamp(), a.id))


# --- normalisation rules shared by the sources -------------------------------------------

_ISO_LOOSE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(.*)$")
_HUMAN_FORMATS = ("%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%Y/%m/%d")


def parse_date(value: Any, tz: tzinfo) -> datetime:
    """A timezone-aware datetime from a YAML date/datetime or text; naive means ``tz``.

    Accepts ISO 8601 (``2026-11-20``, ``2026-11-20T09:00``, ``…+01:00``, ``…Z``), RFC 822
    (``Fri, 20 Nov 2026 09:00:00 GMT``) and ``20 November 2026``. Raises ValueError.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=tz)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(value)
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        parsed = _parse_other(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _parse_other(text: str) -> datetime:
    loose = _ISO_LOOSE.match(text)  # "2026-11-20 9:00 +0100" and friends
    if loose:
        day, clock, zone = loose.groups()
        hh, rest = clock.split(":", 1)
        return datetime.fromisoformat(f"{day}T{int(hh):02d}:{rest}{zone.replace(' ', '')}")
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is not None:
        return parsed
    for fmt in _HUMAN_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(text)


_SLUG_READY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SLUG_DROP = re.compile(r"[^\w\s-]")
_SLUG_DASH = re.compile(r"[-\s_]+")
# Latin letters that NFKD does not take apart, spelt as Pelican's (and Django's) unidecode
# spells them, so "Straße" is "strasse" there and here
_NO_DECOMPOSITION = str.maketrans(
    {"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
     "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D",
     "ı": "i"}
)  # fmt: skip


def slugify(text: str) -> str:
    """A URL slug: lower case ASCII letters, digits and dashes (``Q&A: Zoë`` → ``qa-zoe``)."""
    if _SLUG_READY.fullmatch(text):  # most file names already are slugs
        return text
    text = text.translate(_NO_DECOMPOSITION)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_DASH.sub("-", _SLUG_DROP.sub("", ascii_text).strip().lower()).strip("-")
    return slug or "article"


def tag_id(publication_url: str, published: datetime, slug: str) -> str:
    """A tag: URI (RFC 4151) that stays the same when the article is edited."""
    return f"tag:{_host(publication_url)},{published.date().isoformat()}:{slug}"


@lru_cache(maxsize=16)
def _host(url: str) -> str:
    return urlsplit(url).hostname or "localhost"


def article_url(publication_url: str, slug: str) -> str:
    """Where an article without an explicit url lives: ``<publication.url><slug>/``."""
    return f"{publication_url.rstrip('/')}/{slug}/"


def parse_authors(value: Any) -> tuple[Author, ...]:
    """Authors from a string, a {name, email, url} mapping, or a list of either.

    Raises ValueError with what is wrong.
    """
    items = value if isinstance(value, list) else [value]
    authors: list[Author] = []
    for item in items:
        if isinstance(item, str) and item.strip():
            authors.append(Author(item.strip()))
        elif isinstance(item, dict):
            unknown = set(item) - {"name", "email", "url"}
            if unknown:
                raise ValueError(f'unknown key "{sorted(unknown)[0]}"; use name, email and url')
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ValueError("each author needs a name")
            email = item.get("email")
            url = item.get("url")
            authors.append(
                Author(
                    name.strip(), str(email).strip() if email else None, str(url) if url else None
                )
            )
        else:
            raise ValueError(
                "expected a name, a list of names, or {name, email, url} mappings, "
                f"got {_describe(item)}"
            )
    return tuple(authors)


def parse_names(value: Any) -> tuple[str, ...]:
    """Categories or tags from a string (comma-separated allowed) or a list of strings."""
    if isinstance(value, str):
        items: list[Any] = [p for p in value.split(",")]
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"expected a name or a list of names, got {_describe(value)}")
    names: list[str] = []
    for item in items:
        if isinstance(item, (dict, list)) or item is None:
            raise ValueError(f"expected a name or a list of names, got {_describe(item)}")
        name = str(item).strip()
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def relative_source(path: Path, root: Path) -> str:
    """``path`` as shown in messages: relative to the config folder when below it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def http_get(
    session: requests.Session,
    url: str,
    *,
    what: str,
    timeout: float,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    ok: tuple[int, ...] = (200,),
) -> requests.Response:
    """GET ``url`` for a remote source; any failure is a SourceError naming URL and cause."""
    try:
        response = session.get(url, params=params, headers=headers, timeout=timeout)
    except requests.exceptions.RetryError as e:
        raise SourceError(f"{what} {url}: gave up after {HTTP_RETRIES} retries: {_cause(e)}") from e
    except requests.exceptions.Timeout as e:
        raise SourceError(f"{what} {url}: timed out after {timeout:g} s") from e
    except requests.exceptions.ConnectionError as e:
        if _timed_out(e):  # a read timeout after the last retry arrives as ConnectionError
            raise SourceError(f"{what} {url}: timed out after {timeout:g} s") from e
        raise SourceError(f"{what} {url}: cannot connect: {_cause(e)}") from e
    except requests.RequestException as e:
        raise SourceError(f"{what} {url}: {_cause(e)}") from e
    if response.status_code not in ok:
        shown = response.url or url
        raise SourceError(
            f"{what} {shown}: HTTP {response.status_code} {response.reason or ''}".rstrip()
        )
    return response


def _timed_out(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        # NewConnectionError subclasses ConnectTimeoutError in urllib3, yet is "refused"
        if isinstance(seen, urllib3.exceptions.NewConnectionError):
            return False
        if isinstance(seen, (urllib3.exceptions.TimeoutError, TimeoutError)):
            return True
        reason = getattr(seen, "reason", None)
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = reason if isinstance(reason, BaseException) else inner
    return False


def _cause(error: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, without the object reprs."""
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        error = reason
    text = str(error)
    # urllib3 wraps the OS error as "<HTTPConnection object at 0x…>: Failed to …"
    return re.sub(r"<[^>]+>: ", "", text)
