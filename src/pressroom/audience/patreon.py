"""Patreon membership sync: tag subscribers who are active patrons (``patreon:`` in config).

Reads the campaign's members from the Patreon API v2 (JSON:API)::

    GET /api/oauth2/v2/campaigns/{campaign}/members?include=user
        &fields[member]=email,full_name,patron_status,currently_entitled_amount_cents,
                        last_charge_status

with the creator access token from the environment variable ``patreon.token_env`` names
(``Authorization: Bearer …``), following ``links.next`` (or, failing that, the cursor in
``meta.pagination.cursors.next``) until there is no next page. Patreon pages hold up to 1000
members; a next link that leaves the API's origin is refused, so the token is never sent
anywhere else.

Then every existing subscriber whose address is an ``active_patron`` gets the tag
``patreon.tag`` (``patron``, what a support block's ``hide_for_tags`` names), and
``former_patron`` and ``declined_patron`` members lose it. Members with no status (never
pledged) and subscribers Patreon does not list are left alone (a tag given by hand stays).
Nobody is subscribed by this, except with ``add=True``: active patrons who are on no list
(and not suppressed) are then added with ``consent_source=patreon``.

Failures (Patreon's documented codes): 401/403 stop with the env var's name; 429 is retried
after the ``Retry-After`` header (or the ``retry_after_seconds`` of the documented
``RequestThrottled`` error body, or a short backoff), ``patreon.retries`` times; 5xx and
dropped connections are retried the same way (a GET is safe to repeat). Every member is read
before any file is written, so a failure at any page leaves every tag as it was.
"""

from __future__ import annotations

import contextlib
import csv
import email.utils
import io
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import requests

from pressroom import __version__, textpolicy
from pressroom.answers import bound_answers, json_body
from pressroom.audience import imports, subscribers
from pressroom.errors import ConfigError, PatreonAuthError, PatreonError

if TYPE_CHECKING:
    from pressroom.config import Config, PatreonConfig

MEMBER_FIELDS = (
    "email",
    "full_name",
    "patron_status",
    "currently_entitled_amount_cents",
    "last_charge_status",
)
ACTIVE = "active_patron"
LAPSED = ("former_patron", "declined_patron")
MAX_WAIT = 120.0  # seconds; a 429 that asks for longer fails the sync instead of stalling cron
MAX_PAGES = 10_000  # 10 million members at 1000 a page: a loop in the links, not a campaign

Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Member:
    """One campaign member as the API describes them (``email`` may be empty: hidden)."""

    email: str
    name: str
    status: str | None  # active_patron, declined_patron, former_patron, or None
    entitled_cents: int = 0
    last_charge_status: str | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass
class Result:
    """What a sync found and changed (or would change, on a dry run)."""

    members: int = 0
    pages: int = 0
    no_email: int = 0
    tagged: list[str] = field(default_factory=list)  # addresses that gained the tag
    untagged: list[str] = field(default_factory=list)  # addresses that lost it
    unchanged: int = 0
    not_subscribed: list[str] = field(default_factory=list)  # active patrons on no list
    added: list[str] = field(default_factory=list)
    suppressed: int = 0  # active patrons not added because they are in the suppressed file

    def summary(self, *, dry_run: bool = False, tag: str = "patron") -> str:
        """One line for the CLI."""
        would = "would be " if dry_run else ""
        parts = [
            f"{len(self.tagged)} {would}tagged {tag}",
            f"{len(self.untagged)} {would}untagged",
            f"{self.unchanged} unchanged",
        ]
        if self.added:
            parts.append(f"{len(self.added)} {would}added")
        elif self.not_subscribed:
            parts.append(
                f"{len(self.not_subscribed)} active patrons not subscribed (--add adds them)"
            )
        if self.suppressed:
            parts.append(f"{self.suppressed} active patrons suppressed, not added")
        if self.no_email:
            parts.append(f"{self.no_email} without an email address")
        pages = f"{self.pages} page{'' if self.pages == 1 else 's'}"
        return f"patreon: {self.members} members ({pages}): " + ", ".join(parts)


# --- reading the API -------------------------------------------------------------------


def token_from(settings: PatreonConfig, env: Mapping[str, str]) -> str:
    """The creator access token from the environment; a one-line error naming the variable."""
    token = (env.get(settings.token_env) or "").strip()
    if not token:
        raise ConfigError(
            f"patreon: ${settings.token_env} is not set; export your creator access token "
            f"(patreon.com/portal/registration/register-clients) as {settings.token_env}, "
            "or name another variable in patreon.token_env"
        )
    return token


def members_url(settings: PatreonConfig) -> str:
    """The first page's URL (brackets percent-encoded, as Patreon asks)."""
    query = urlencode({"include": "user", "fields[member]": ",".join(MEMBER_FIELDS)})
    base = settings.base_url.rstrip("/")
    return f"{base}/api/oauth2/v2/campaigns/{settings.campaign}/members?{query}"


def fetch_members(
    settings: PatreonConfig,
    token: str,
    *,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
    pages: list[int] | None = None,
) -> list[Member]:
    """Every member of the campaign, all pages read before anything is returned."""
    own = session is None
    http = session or requests.Session()
    bound_answers(http)  # each page whole within the timeout and 32 MB
    try:
        out: list[Member] = []
        url: str | None = members_url(settings)
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise PatreonError(f"patreon: the pages link back to {_shown(url)}; try again")
            seen.add(url)
            body = _get(http, url, settings, token, sleep)
            out.extend(_members(body))
            url = _next_url(body, url, settings)
        if pages is not None:
            pages.append(len(seen))
        return out
    finally:
        if own:
            http.close()


def _members(body: Any) -> Iterator[Member]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise PatreonError("patreon: the members answer has no data list; is base_url the API?")
    for item in data:
        if not isinstance(item, dict) or item.get("type") != "member":
            continue
        attrs = item.get("attributes")
        if not isinstance(attrs, dict):
            attrs = {}
        cents = attrs.get("currently_entitled_amount_cents")
        yield Member(
            email=str(attrs.get("email") or "").strip(),
            name=" ".join(str(attrs.get("full_name") or "").split()),
            status=attrs.get("patron_status") or None,
            entitled_cents=cents if isinstance(cents, int) else 0,
            last_charge_status=attrs.get("last_charge_status") or None,
        )


def _next_url(body: dict[str, Any], current: str, settings: PatreonConfig) -> str | None:
    links = _object(body.get("links"))
    nxt = links.get("next")
    if not nxt:
        # each level may be anything in an answer from outside: only objects are walked
        cursors = _object(_object(_object(body.get("meta")).get("pagination")).get("cursors"))
        cursor = cursors.get("next")
        if not cursor:
            return None
        nxt = f"{members_url(settings)}&{urlencode({'page[cursor]': cursor})}"
    nxt = str(nxt)
    if nxt.startswith("/"):
        nxt = settings.base_url.rstrip("/") + nxt
    if _origin(nxt) != _origin(settings.base_url):
        raise PatreonError(
            f"patreon: the next page is on {_origin(nxt)}, not {_origin(settings.base_url)}; "
            "the token is only sent to patreon.base_url"
        )
    return nxt


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _shown(url: str) -> str:
    return urlsplit(url).path


def _get(
    http: requests.Session, url: str, settings: PatreonConfig, token: str, sleep: Sleep
) -> Any:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.api+json, application/json",
        "User-Agent": f"pressroom/{__version__} (membership sync)",
    }
    origin = _origin(settings.base_url)
    attempts = settings.retries + 1
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        try:
            response = http.get(url, headers=headers, timeout=settings.timeout)
        except requests.RequestException as e:
            if last:
                raise PatreonError(
                    f"patreon: cannot reach {origin} ({type(e).__name__}) after {attempt} "
                    "tries; subscriber tags are unchanged"
                ) from None
            sleep(_backoff(attempt))
            continue
        status = response.status_code
        if status == 200:
            try:
                return json_body(response.content)  # no lone surrogates: text only
            except ValueError:
                raise PatreonError(
                    f"patreon: {origin} answered {_shown(url)} with something that is not "
                    "JSON; check patreon.base_url"
                ) from None
        if status in (401, 403):
            raise PatreonAuthError(
                f"patreon: the API refused the token in ${settings.token_env} ({status} "
                f"{_detail(response, token)}); create a creator access token with the "
                f"campaigns.members and campaigns.members[email] scopes and export it as "
                f"{settings.token_env}"
            )
        if status == 404:
            raise PatreonError(
                f"patreon: no campaign {settings.campaign!r} (404); set patreon.campaign to "
                "your campaign's id"
            )
        if status == 429 or status >= 500:
            wait = _retry_after(response) if status == 429 else None
            wait = _backoff(attempt) if wait is None else wait
            if last or wait > MAX_WAIT:
                raise PatreonError(
                    f"patreon: {origin} answered {status} {_detail(response, token)} "
                    f"{attempt} times; subscriber tags are unchanged, try again later"
                )
            sleep(wait)
            continue
        raise PatreonError(
            f"patreon: {origin} refused the members request ({status} "
            f"{_detail(response, token)}); check patreon.campaign"
        )
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _backoff(attempt: int) -> float:
    return float(min(30, 2 ** (attempt - 1)))


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from ``Retry-After`` (delta or HTTP date), else the error body's
    ``retry_after_seconds`` (Patreon's documented ``RequestThrottled`` error)."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    try:
        errors = response.json().get("errors") or []
        seconds = errors[0].get("retry_after_seconds")
    except (ValueError, AttributeError, IndexError, TypeError):
        return None
    return float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else None


def _detail(response: requests.Response, token: str) -> str:
    """The error's own words (JSON:API ``errors[0].detail``), the token blanked."""
    try:
        errors = response.json().get("errors") or []
        text = str(errors[0].get("detail") or errors[0].get("title") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        text = response.reason or ""
    return " ".join(text.replace(token, "*****").split())[:200]


# --- applying to the subscriber files --------------------------------------------------


def run(
    config: Config,
    env: Mapping[str, str],
    *,
    now: datetime,
    add: bool = False,
    dry_run: bool = False,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
    problem: Callable[[str], None] = lambda _m: None,
) -> Result:
    """Read every member, then tag/untag (and with ``add``, subscribe); the one entry point."""
    settings = config.patreon
    if not settings.campaign:
        raise ConfigError(
            f"{config.where('patreon')}: patreon.campaign: not set; add a patreon: section "
            "with your campaign's id (campaign:) to config.yaml"
        )
    token = token_from(settings, env)
    pages: list[int] = []
    members = fetch_members(settings, token, session=session, sleep=sleep, pages=pages)
    result = sync(config, members, now=now, add=add, dry_run=dry_run, problem=problem)
    result.pages = pages[0]
    return result


def sync(
    config: Config,
    members: list[Member],
    *,
    now: datetime,
    add: bool = False,
    dry_run: bool = False,
    problem: Callable[[str], None] = lambda _m: None,
) -> Result:
    """Tag active patrons, untag lapsed ones, and with ``add`` subscribe active patrons."""
    settings = config.patreon
    result = Result(members=len(members))
    wanted: dict[str, bool] = {}  # key -> should have the tag
    addresses: dict[str, Member] = {}
    for m in members:
        if not m.email:
            result.no_email += 1
            continue
        try:
            address = subscribers.normalise_email(m.email)
        except ValueError:
            result.no_email += 1
            continue
        k = subscribers.key(address)
        if m.active:
            wanted[k] = True  # one active membership wins over an old lapsed one
            addresses[k] = Member(address, m.name, m.status)
        elif m.status in LAPSED:
            wanted.setdefault(k, False)
    found: set[str] = set()
    for path in subscribers.subscriber_files(config):
        _retag(config, path, wanted, settings.tag, result, found, dry_run=dry_run)
    missing = [k for k, active in wanted.items() if active and k not in found]
    suppressed = subscribers.load_suppressed(config) if missing else set()
    result.suppressed = sum(1 for k in missing if k in suppressed)
    result.not_subscribed = [addresses[k].email for k in missing if k not in suppressed]
    if add and result.not_subscribed:
        result.added = list(result.not_subscribed)
        if not dry_run:
            _add(config, [addresses[subscribers.key(e)] for e in result.added], now, problem)
    return result


def _retag(
    config: Config,
    path: Path,
    wanted: dict[str, bool],
    tag: str,
    result: Result,
    found: set[str],
    *,
    dry_run: bool,
) -> None:
    """Stream one subscriber file to a new copy with the tag added or removed (atomic)."""
    if not wanted:
        return
    shown = subscribers.shown_path(config, path)
    tagged: list[str] = []
    untagged: list[str] = []
    # a dry run only reads (renames are atomic: no lock needed to read a whole file)
    sink = contextlib.nullcontext(io.StringIO()) if dry_run else subscribers.atomic_writer(path)
    lock = contextlib.nullcontext() if dry_run else subscribers.locked(path)
    with (
        contextlib.suppress(subscribers.Unchanged),  # a dry run, or nothing to change
        lock,
        sink as out,
        imports.open_rows(path, shown) as rows,
    ):
        header = next(rows, None)
        col = {h.strip().lower(): i for i, h in enumerate(header or [])}
        if "email" not in col:  # empty, or no email column: `subscribers validate` says so
            raise subscribers.Unchanged
        ie = col["email"]
        header = list(header or [])
        if "tags" not in col:
            col["tags"] = len(header)
            header.append("tags")
        it, width = col["tags"], len(header)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for cells in rows:
            k = imports.row_key(cells[ie]) if len(cells) > ie else None
            if k is not None and k in wanted:
                cells += [""] * (width - len(cells))
                tags = subscribers.split_values(cells[it])
                if wanted[k] and tag not in tags:
                    cells[it] = subscribers.join_values(tags | {tag})
                    tagged.append(cells[ie].strip())
                elif not wanted[k] and tag in tags:
                    cells[it] = subscribers.join_values(tags - {tag})
                    untagged.append(cells[ie].strip())
                elif k not in found:
                    result.unchanged += 1
                found.add(k)
            if cells:
                writer.writerow(cells)
        if dry_run or not (tagged or untagged):
            raise subscribers.Unchanged  # keep the old file (and its mtime) as it was
    result.tagged += tagged
    result.untagged += untagged


def _add(
    config: Config, members: list[Member], now: datetime, problem: Callable[[str], None]
) -> None:
    """Subscribe ``members`` (active patrons on no list) with their consent record."""
    stamp = now.isoformat(timespec="seconds")
    incoming = [
        imports.Incoming(
            line=0,
            email=m.email,
            name=textpolicy.no_formula(m.name),  # the patron typed it: never a formula
            add_tags=frozenset({config.patreon.tag}),
            attrs={"consent_at": stamp, "consent_source": "patreon"},
        )
        for m in members
    ]
    target = imports.target_file(config, None)
    imports.merge(config, incoming, into=target, when=now, source="patreon", problem=problem)
