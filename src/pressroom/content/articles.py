"""Load the articles of every configured source, normalised, newest first.

``load(config, now)`` runs each source of ``config.sources`` (chosen by type from
``pressroom.sources``), collects the articles and the per-article errors, leaves out what
is not yet published, de-duplicates by URL and sorts. The helpers below (dates, slugs, ids,
authors) are the normalisation rules every source shares.
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pressroom import __version__
from pressroom.answers import MAX_RESPONSE_BYTES as MAX_RESPONSE_BYTES
from pressroom.answers import read_bounded
from pressroom.content.sources.base import SourceContext
from pressroom.content.urls import BadURL, public_url
from pressroom.content.urls import slugify as slugify  # the sources' one slug rule
from pressroom.errors import ArticleError, SourceError
from pressroom.models import Article, Author
from pressroom.textpolicy import CONTROL_CHARS, one_line, strip_controls

if TYPE_CHECKING:
    import requests

    from pressroom.config import Config

Warn = Callable[[str], None]

HTTP_RETRIES = 3  # per request, on connection errors, 429 and 5xx, with backoff


@dataclass(frozen=True)
class LoadResult:
    """What the sources gave: the articles to publish and the articles that were skipped."""

    articles: tuple[Article, ...]
    errors: tuple[ArticleError, ...]
    caches: tuple[Any, ...] = ()
    # what the sources read (``fingerprint``), None when one of them cannot vouch for it
    inputs: str | None = None
    # the same files give the same articles at any time in [window[0], window[1]) (POSIX
    # timestamps; ``sources.base.Clock``)
    window: tuple[float | None, float | None] = (None, None)

    def save_cache(self) -> None:
        """Store what this run parsed in the parse cache, with the HTML rendered since loading
        (call after the feeds; a ``load`` with ``cache=True`` writes nothing before)."""
        for cache in self.caches:
            cache.save()


def load(
    config: Config,
    now: datetime,
    *,
    since: datetime | None = None,
    session: requests.Session | None = None,
    warn: Warn | None = None,
    cache: bool = False,
    out: Path | None = None,
) -> LoadResult:
    """Every published article of every source in ``config`` (newest first, one per URL).

    Drafts and articles dated after ``now`` are left out, and those before ``since`` when it
    is given. A broken article becomes an ``ArticleError`` in ``errors``; a source that
    fails as a whole raises ``SourceError``. Unchanged files come from the parse cache in the
    state database when there is one; ``cache`` lets this run create or update it.
    The feeds' output folders (``feeds.out`` and ``out``) are never read as articles.
    """
    from pressroom.content import sources as source_registry

    opened: list[requests.Session] = []

    def http() -> requests.Session:
        if session is not None:
            return session
        opened.append(make_session())
        return opened[-1]

    say: Warn = warn if warn is not None else (lambda _msg: None)
    context = SourceContext(
        publication=config.publication,
        root=config.root,
        state=config.state,
        http=http,
        now=now,
        warn=say,
        write_cache=cache,
        outputs=_outputs(config, out),
    )
    found: list[Article] = []
    errors: list[ArticleError] = []
    try:
        for entry in config.sources:
            cls = source_registry.get(entry.type)
            for item in cls(entry.settings, context).articles(since):
                if isinstance(item, ArticleError):
                    errors.append(item)
                    continue
                item = clean(item, say)
                context.clock.note(item.published)
                after = since is None or item.published.timestamp() >= since.timestamp()
                if context.clock.passed(item.published) and after:
                    found.append(item)
    finally:
        for own in opened:
            own.close()
    return LoadResult(
        tuple(sort_articles(dedupe(found, say))),
        tuple(errors),
        tuple(context.caches),
        _combined(context.inputs, len(config.sources)),
        (context.clock.last, context.clock.next),
    )


def fingerprint(config: Config, now: datetime, out: Path | None = None) -> str | None:
    """What ``load`` would read, as one digest, found without reading any article (a walk
    and a ``stat`` per file); the same as the ``inputs`` of a ``load`` that read the same
    files. None when a source cannot tell (remote sources) or a file is changing right now.
    """
    from pressroom.content import sources as source_registry

    def no_http() -> requests.Session:
        raise SourceError("fingerprint: sources are not fetched")  # never asked: no remote

    context = SourceContext(
        config.publication,
        config.root,
        config.state,
        no_http,
        now,
        lambda _message: None,
        outputs=_outputs(config, out),
    )
    parts: list[str | None] = []
    for entry in config.sources:
        part = source_registry.get(entry.type)(entry.settings, context).fingerprint()
        if part is None:
            return None
        parts.append(part)
    return _combined(parts, len(config.sources))


def _outputs(config: Config, out: Path | None) -> tuple[Path, ...]:
    return (config.feeds.out,) if out is None else (config.feeds.out, out)


def _combined(parts: list[str | None], sources: int) -> str | None:
    if len(parts) != sources or None in parts:
        return None
    return hashlib.blake2b("\n".join(map(str, parts)).encode(), digest_size=20).hexdigest()


def make_session(retries: int = HTTP_RETRIES) -> requests.Session:
    """A requests.Session with bounded retries (connection errors, 429, 5xx) and backoff."""
    import requests  # loaded by the sources that go online, not by a run over local files
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

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
    """One article per URL and per id, except that two local files never silently lose one.

    Remote sources often carry the same post twice (syndicated, or in two feeds): the most
    recently modified copy wins, then the first seen. Two files that claim one URL are both
    kept and both named in a warning; the later one gets an id of its own, because feeds
    need unique GUIDs. So does the later of two files at different URLs that share an id.
    """
    out: list[Article] = []
    by_url: dict[str, int] = {}
    for article in articles:
        at = by_url.get(article.url)
        if at is None:
            by_url[article.url] = len(out)
            out.append(article)
            continue
        kept = out[at]
        if _both_local(kept, article):
            warn(
                f"{article.source} and {kept.source} both claim the URL {article.url}; "
                "keeping both (give one of them its own url: or slug:)"
            )
            out.append(article)
        elif article.modified > kept.modified:
            out[at] = article
    by_id: dict[str, Article] = {}
    for article in out:
        same = by_id.get(article.id)
        if same is None:
            by_id[article.id] = article
        elif _both_local(same, article) and same.url == article.url:
            unique = f"{article.id}#{hashlib.sha1(article.source.encode()).hexdigest()[:8]}"
            by_id[unique] = dataclasses.replace(article, id=unique)
        elif _both_local(same, article):
            # two files at two URLs with one id: the default tag: id is made of the date and
            # the slug, which Hugo sections (news/roundup.md, sports/roundup.md) or two
            # folders' index.md bundles share. Both are articles; the later one (in walk
            # order) takes the id with a hash of its URL, so neither vanishes from the feeds
            unique = f"{article.id}#{hashlib.sha1(article.url.encode()).hexdigest()[:8]}"
            warn(
                f"{article.source}: same id as {same.source} ({article.id}); keeping both, "
                f"this one as {unique} (give one of them its own id: or slug:)"
            )
            by_id[unique] = dataclasses.replace(article, id=unique)
        else:
            # feeds need unique GUIDs: two URLs claiming one id would make them invalid
            warn(f"{article.source}: same id as {same.source} ({article.id}); keeping one")
            if article.modified > same.modified:
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
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(0, 0))
    elif not isinstance(value, str) or not value.strip():
        raise ValueError(value)
    else:
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            parsed = _parse_other(text)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    # Feeds write four-digit years (RFC 822, RFC 3339), and a date within a day of year 1 or
    # 9999 cannot be compared with the clock or turned to UTC: neither is an article's date.
    if not _YEARS[0] <= parsed.year <= _YEARS[1]:
        raise ValueError(value)
    offset = parsed.utcoffset()
    if offset is not None and offset % _MINUTE:
        # An offset with seconds ("+05:30:15", or a zone's local mean time before standard
        # time: Europe/Amsterdam +00:19:32 until 1937, Africa/Monrovia -00:44:30 until 1972)
        # has no RFC 822 or RFC 3339 spelling; every feed holding it was invalid. The same
        # instant in UTC has one.
        parsed = parsed.astimezone(UTC)
        if not _YEARS[0] <= parsed.year <= _YEARS[1]:
            raise ValueError(value)
    return parsed


_MINUTE = timedelta(minutes=1)


_YEARS = (1000, 9998)


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


def tag_id(publication_url: str, published: datetime, slug: str) -> str:
    """A tag: URI (RFC 4151) that stays the same when the article is edited."""
    return f"tag:{_host(publication_url)},{published.date().isoformat()}:{slug}"


@lru_cache(maxsize=16)
def _host(url: str) -> str:
    return urlsplit(url).hostname or "localhost"


def article_url(publication_url: str, slug: str) -> str:
    """Where an article without an explicit url lives: ``<publication.url><slug>/``."""
    return f"{publication_url.rstrip('/')}/{slug}/"


def parse_authors(value: Any, base: str, warn: Warn) -> tuple[Author, ...]:
    """Authors from a string, a {name, email, url} mapping, or a list of either.

    An invalid e-mail address or URL is dropped with ``warn("email: why")``. Raises
    ValueError with what is wrong.
    """
    items = value if isinstance(value, list) else [value]
    authors: list[Author] = []
    for item in items:
        if isinstance(item, str):
            found = author(item, base=base, warn=warn)
        elif isinstance(item, dict):
            unknown = set(item) - {"name", "email", "url"}
            if unknown:
                raise ValueError(f'unknown key "{sorted(unknown)[0]}"; use name, email and url')
            name = item.get("name")
            if not isinstance(name, (str, int, float)):
                raise ValueError("each author needs a name")
            found = author(name, item.get("email"), item.get("url"), base=base, warn=warn)
            if found is None:  # a name of only white space or control characters
                warn("an author without a name (only blanks or control characters) left out")
        else:
            raise ValueError(
                "expected a name, a list of names, or {name, email, url} mappings, "
                f"got {_describe(item)}"
            )
        if found is not None:
            authors.append(found)
    return tuple(authors)


def author(
    name: Any, email: Any = None, url: Any = None, *, base: str = "", warn: Warn
) -> Author | None:
    """One author by the shared rules, or None when there is no name (only white space or
    control characters). The e-mail address is checked with email-validator and the URL by
    the URL policy (a ``mailto:`` URL is taken as the address); what fails is dropped with
    ``warn("email: why")`` / ``warn("url: why")``."""
    if email and not isinstance(email, str):  # never str(): it may be an alias bomb
        warn(f"email: expected text, got {_describe(email)}; dropped")
        email = None
    address = one_line(email) if email else ""
    # not str(url): a list or mapping written as the URL would be judged by its Python
    # spelling ("holds a space; write it percent-encoded"); the policy names its type
    given: Any = url.strip() if isinstance(url, str) else url
    home = ""
    if isinstance(given, str) and given[:7].lower() == "mailto:":
        address = address or given[7:].split("?", 1)[0]
    elif given:
        try:
            home = public_url(given, base)
        except BadURL as e:
            warn(f"url: dropped: {e}")
    if address:
        # loaded for the first address: a run over cached articles never needs it
        from email_validator import EmailNotValidError, validate_email

        try:
            address = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError as e:
            warn(f'email: "{address}" dropped: {e}')
            address = ""
    shown = one_line(str(name)) if isinstance(name, (str, int, float)) else ""
    if not shown:
        return None
    return Author(shown, address or None, home or None)


# What one_line or strip_controls would change: a control character (tab, newline and CR
# included), other white space than a plain space, two spaces in a row, a bidi control.
_UNTIDY = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]|[^\\S ]|  "
)


def _tidy(article: Article) -> bool:
    """Whether ``clean`` would leave ``article`` as it is."""
    if max(len(article.categories), len(article.tags), len(article.authors)) > MAX_NAMES:
        return False
    fields = [article.title, article.summary, *article.categories, *article.tags]
    fields += [a.name for a in article.authors]
    if article.image is not None:
        fields.append(article.image.alt)
    # joined, a field's leading or trailing space shows up as two spaces in a row
    line = " | ".join(f for f in fields if f)
    if _UNTIDY.search(line) or line[:1] == " " or line[-1:] == " ":
        return False
    if not all(a.name for a in article.authors):
        return False
    rest = (article.id, article.url, article.slug, article.base_url)
    return article.id.strip() != "" and not any(CONTROL_CHARS.search(text) for text in rest)


# Every category and author has feeds of its own, each listing its articles with all their
# names: one entry with 3,000 categories wrote 9,000 feeds and 717 MB. No article needs more.
MAX_NAMES = 100


def clean(article: Article, warn: Warn | None = None) -> Article:
    """``article`` under the text policy, whatever source made it: no control characters in
    any field, titles and names on one line, authors without a name left out, at most
    ``MAX_NAMES`` categories, tags and authors (``warn`` says which were dropped)."""
    if _tidy(article):
        return article  # nearly every article: one regex pass over its text, no copies
    changes: dict[str, Any] = {}
    # the body loses them where it is rendered (text.render_body), only when it is needed
    for name in ("id", "url", "slug", "base_url"):
        value = getattr(article, name)
        if (new := strip_controls(value)) != value:
            changes[name] = new
    if not changes.get("id", article.id).strip():
        changes["id"] = changes.get("url", article.url)  # a feed's blank guid: the link, as none
    for name in ("title", "summary"):
        value = getattr(article, name)
        if (new := one_line(value)) != value:
            changes[name] = new
    for name in ("categories", "tags"):
        values = getattr(article, name)
        names = tuple(dict.fromkeys(n for n in (one_line(v) for v in values) if n))
        if names != values:
            changes[name] = names
    named = (
        a if (n := one_line(a.name)) == a.name else dataclasses.replace(a, name=n)
        for a in article.authors
    )
    authors = tuple(dict.fromkeys(a for a in named if a.name))
    if authors != article.authors:
        changes["authors"] = authors
    if article.image is not None and (alt := one_line(article.image.alt)) != article.image.alt:
        changes["image"] = dataclasses.replace(article.image, alt=alt)
    for name in ("categories", "tags", "authors"):
        values = changes.get(name, getattr(article, name))
        if len(values) > MAX_NAMES:
            changes[name] = values[:MAX_NAMES]
            if warn is not None:
                warn(
                    f"{article.source}: {len(values)} {name}; only the first {MAX_NAMES} are "
                    "kept (each one has feeds of its own)"
                )
    return dataclasses.replace(article, **changes) if changes else article


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
    """GET ``url`` for a remote source; any failure is a SourceError naming URL and cause.

    The body is read in full here, at most ``MAX_RESPONSE_BYTES`` of it, and within
    ``timeout`` seconds of the headers: a server that drips bytes never holds a run."""
    import requests

    try:
        response = session.get(url, params=params, headers=headers, timeout=timeout, stream=True)
        response._content = _read_body(response, timeout, what, url)
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


def _read_body(response: requests.Response, timeout: float, what: str, url: str) -> bytes:
    limit = f"more than {MAX_RESPONSE_BYTES // (1024 * 1024)} MB"
    shown = response.url or url
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        response.close()
        raise SourceError(f"{what} {shown}: the answer is {limit}; is this the right address?")
    with response:
        body = read_bounded(response, timeout)
    if body is None:
        raise SourceError(
            f"{what} {shown}: the answer is {limit} (uncompressed); is this the right address?"
        )
    return body


def _timed_out(error: BaseException) -> bool:
    import urllib3

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
