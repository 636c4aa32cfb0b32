"""config.yaml → frozen, typed dataclasses.

Every value is checked once, here, against the dataclass that declares it; an error names
the file, line and dotted key (``config.yaml:14: feeds.items: expected a positive integer,
got "ten"``). Paths resolve relative to the config file. Secrets never live in config.yaml:
a setting that needs one names the environment variable that holds it (``api_key_env``).

Sources and providers declare their own settings dataclasses (``Settings`` on the class
registered in ``pressroom.sources`` / ``pressroom.providers``); this module validates those
sections with the same rules, so a typo in ``providers.mailgun`` is caught at load time. How
any settings are read and checked (value types, YAML with line numbers, ``build``) is in
``pressroom.settings``; this module is what config.yaml holds.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import string
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import langcodes

from pressroom import registry
from pressroom.defaults import CONFIG_ENV
from pressroom.errors import ConfigError
from pressroom.settings import (
    Ctx,
    ascii_host,
    build,
    convert,
    parse_yaml,
    reject_unknown,
    web_host,
)

# the value types sections declare, importable from here as before
from pressroom.settings import Duration as Duration
from pressroom.settings import NonNegativeInt as NonNegativeInt
from pressroom.settings import PositiveFloat as PositiveFloat
from pressroom.settings import PositiveInt as PositiveInt
from pressroom.settings import Rate as Rate

T = TypeVar("T")

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# --- sections --------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicationConfig:
    name: str
    url: str
    description: str = ""
    language: str = "en"
    timezone: str = "UTC"
    logo: str | None = None
    postal_address: str = ""
    copyright: str | None = None

    def __post_init__(self) -> None:
        # every feed, page and email carries these: XML cannot hold control characters
        for name in ("name", "description", "postal_address", "copyright"):
            value = getattr(self, name)
            if value and _CONTROL.search(value):
                raise ValueError(f"{name}: contains a control character; remove it")
        # feeds, <html lang> and Content-Language all want a BCP 47 tag (RFC 5646)
        if "_" in self.language or not langcodes.tag_is_valid(self.language):
            hint = self.language.replace("_", "-")
            fix = f'"{hint}"' if langcodes.tag_is_valid(hint) else '"en", "en-GB" or "nb"'
            raise ValueError(f'language: "{self.language}" is not a BCP 47 language tag; use {fix}')

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class SourceConfig:
    """One entry of ``sources:``; ``settings`` is the source type's own dataclass."""

    type: str
    settings: Any
    index: int


@dataclass(frozen=True)
class FeedsConfig:
    out: Path = Path("public/feeds")
    url: str | None = None  # where ``out`` is served; default: <publication.url>feeds/
    formats: tuple[Literal["rss", "atom", "json"], ...] = ("rss", "atom", "json")
    items: PositiveInt = PositiveInt(50)
    content: Literal["full", "summary"] = "full"
    per_category: bool = True
    per_author: bool = True
    stylesheet: bool = True
    cta: bool = False

    def __post_init__(self) -> None:
        if not self.formats:
            raise ValueError("formats: expected at least one of rss, atom, json")


@dataclass(frozen=True)
class UtmConfig:
    enabled: bool = True
    source: str = "newsletter"
    medium: str = "email"
    campaign: str = "issue-{number}"

    def __post_init__(self) -> None:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(self.campaign) if f is not None}
        except ValueError as e:
            raise ValueError(f'campaign: cannot read "{self.campaign}": {e}') from None
        if names - {"number"}:
            raise ValueError(
                f"campaign: unknown placeholder {{{sorted(names - {'number'})[0]}}} in "
                f'"{self.campaign}"; the only one is {{number}}'
            )


@dataclass(frozen=True)
class DigestConfig:
    window: Duration = field(default_factory=lambda: Duration(days=7))
    max_articles: PositiveInt = PositiveInt(10)
    sections: bool = False
    exclude_tags: tuple[str, ...] = ()
    subject: str = "{{ publication.name }} weekly #{{ issue.number }}: {{ issue.lead.title }}"
    preheader: str | None = None
    templates: Path = Path("templates")
    archive: Path = Path("public/issues")
    archive_url: str | None = None  # default: <publication.url>issues/
    # `weekly` starts no new issue sooner than this after the last one went out (6d, not 7d:
    # a weekly cron job that drifts by minutes still runs)
    min_interval: Duration = field(default_factory=lambda: Duration(days=6))
    utm: UtmConfig = field(default_factory=UtmConfig)


@dataclass(frozen=True)
class CtaVariantConfig:
    headline: str | None = None
    text: str | None = None
    button: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class CtaConfig:
    kind: Literal[
        "patreon",
        "kofi",
        "paypal",
        "buymeacoffee",
        "liberapay",
        "github-sponsors",
        "substack",
        "custom",
    ]
    url: str
    headline: str
    text: str = ""
    button: str = "Support us"
    position: str = "bottom"
    name: str | None = None
    color: str | None = None
    icon: str | None = None
    hide_for_tags: tuple[str, ...] = ()
    variants: tuple[CtaVariantConfig, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"top|bottom|after:\d+", self.position):
            raise ValueError(
                f'position: expected "top", "bottom" or "after:N", got "{self.position}"'
            )


@dataclass(frozen=True)
class SendingConfig:
    provider: str = "file"
    from_: str = "Newsletter <newsletter@example.org>"
    reply_to: str | None = None
    list: str = "weekly"
    list_id: str | None = None  # default: <list>.<publication host>
    rate: Rate = field(default_factory=lambda: Rate(100.0))
    concurrency: PositiveInt = PositiveInt(4)
    confirm_over: NonNegativeInt = NonNegativeInt(1000)
    max_attempts: PositiveInt = PositiveInt(5)
    max_retry_time: Duration = field(default_factory=lambda: Duration(minutes=10))
    max_consecutive_failures: PositiveInt = PositiveInt(50)
    # requests in a row that got no answer before the run pauses (each one leaves a batch
    # uncertain, so this is much smaller than max_consecutive_failures)
    max_consecutive_uncertain: PositiveInt = PositiveInt(3)
    # retry a request that got no answer (read timeout, connection dropped mid-request) at the
    # risk of a duplicate; off: such recipients are held as uncertain, reported, and sent
    # with `digest send --resend-uncertain`
    retry_uncertain: bool = False
    unsubscribe_url: str | None = None  # default: <publication.url>unsubscribe
    unsubscribe_mailto: str | None = None
    preferences_url: str | None = None
    secret_env: str = "PRESSROOM_SECRET"


@dataclass(frozen=True)
class SubscribersConfig:
    path: Path = Path("subscribers")
    suppressed: Path = Path("subscribers/suppressed.csv")


@dataclass(frozen=True)
class ImapConfig:
    """``bounces.imap``: the mailbox SMTP bounces and feedback reports reach (IMAP over TLS)."""

    host: str
    user: str
    password_env: str = "PRESSROOM_IMAP_PASSWORD"
    port: int | None = None  # default: 993 with tls, 143 with starttls
    security: Literal["tls", "starttls"] = "tls"
    folder: str = "INBOX"  # where new bounces arrive
    processed_folder: str = "Processed"  # where read bounces are moved (created if missing)
    ca_file: Path | None = None  # a private CA for the server's certificate
    timeout: PositiveFloat = PositiveFloat(30.0)

    def __post_init__(self) -> None:
        if self.port is not None and not 0 < self.port <= 65535:
            raise ValueError(f"port: expected 1 to 65535, got {self.port}")
        # INBOX is one folder in any case (RFC 3501 5.1): "inbox" would move read bounces
        # into the folder they came from, to be read again on every sync
        if _folder_key(self.folder) == _folder_key(self.processed_folder):
            raise ValueError("processed_folder: must differ from folder")


def _folder_key(name: str) -> str:
    """An IMAP folder name as the server tells folders apart (INBOX in any case is INBOX)."""
    return "INBOX" if name.upper() == "INBOX" else name


@dataclass(frozen=True)
class BouncesConfig:
    """``bounces:``: how provider feedback (bounces, complaints, unsubscribes) is applied."""

    # soft bounces in this many issues in a row (no delivery between) suppress the address
    soft_limit: PositiveInt = PositiveInt(3)
    # `weekly` pulls every provider's suppression lists before it freezes an issue; unset:
    # on for providers with an API to pull from, off for the others (file, smtp)
    sync: bool | None = None
    imap: ImapConfig | None = None  # the SMTP bounce mailbox, read by `suppressions sync`


@dataclass(frozen=True)
class ServeConfig:
    """``serve:``: the reader-facing web app (``pressroom serve``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    threads: PositiveInt = PositiveInt(8)
    url: str | None = None  # where readers reach the app; default: publication.url
    # the address of the reverse proxy whose X-Forwarded-For is believed ("*": any peer)
    trusted_proxy: str | None = None
    max_body: PositiveInt = PositiveInt(16 * 1024)  # bytes; larger request bodies get 413
    # reader-page requests that read the subscriber files (/preferences, POST /confirm) per
    # client address per minute; more get 429 (0: no limit)
    per_client: NonNegativeInt = NonNegativeInt(120)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: expected 0 to 65535, got {self.port}")
        if self.url is not None and not re.match(r"https?://[^/\s]+", self.url):
            raise ValueError(f'url: expected an absolute http(s) URL, got "{self.url}"')
        if self.trusted_proxy not in (None, "*"):
            # compared with each request's peer address: a host name ("localhost") or a
            # network never equals one, and every reader would silently share the proxy's
            # limits (signups, pages)
            try:
                ipaddress.ip_address(str(self.trusted_proxy).strip().strip("[]"))
            except ValueError:
                raise ValueError(
                    f'trusted_proxy: expected the proxy\'s IP address (127.0.0.1, ::1) or "*", '
                    f'got "{self.trusted_proxy}"'
                ) from None


@dataclass(frozen=True)
class ListConfig:
    """One entry of ``lists:``: a list readers can pick on the signup form."""

    title: str
    description: str = ""


@dataclass(frozen=True)
class SignupConfig:
    """``signup:``: double opt-in from the public form."""

    confirm_expiry: Duration = field(default_factory=lambda: Duration(days=7))
    welcome: bool = False  # send a welcome email after confirmation
    per_address: NonNegativeInt = NonNegativeInt(1)  # confirmation mails per address_window
    address_window: Duration = field(default_factory=lambda: Duration(hours=6))
    per_ip: NonNegativeInt = NonNegativeInt(10)  # signups per client address per ip_window
    ip_window: Duration = field(default_factory=lambda: Duration(hours=1))


@dataclass(frozen=True)
class PatreonConfig:
    """``patreon:``: membership sync (``subscribers sync patreon``, and ``weekly`` with sync)."""

    campaign: str = ""  # the campaign's id
    token_env: str = "PATREON_TOKEN"  # creator access token
    sync: bool = False  # `weekly` syncs before it builds the issue
    tag: str = "patron"  # what cta hide_for_tags names
    base_url: str = "https://www.patreon.com"
    timeout: PositiveFloat = PositiveFloat(30.0)
    retries: NonNegativeInt = NonNegativeInt(4)  # per page, after 429, 5xx or a lost answer

    def __post_init__(self) -> None:
        if self.sync and not self.campaign:
            raise ValueError("campaign: missing; patreon.sync needs your campaign's id")
        if not re.match(r"https?://[^/\s]+", self.base_url):
            raise ValueError(f'base_url: expected an absolute http(s) URL, got "{self.base_url}"')
        if not self.tag or any(c in self.tag for c in ";,"):
            raise ValueError(f'tag: expected one tag (no ";" or ","), got "{self.tag}"')


@dataclass(frozen=True)
class Config:
    path: Path  # the config file itself
    publication: PublicationConfig
    sources: tuple[SourceConfig, ...]
    feeds: FeedsConfig
    digest: DigestConfig
    cta: tuple[CtaConfig, ...]
    sending: SendingConfig
    providers: Mapping[str, Any]  # provider name -> that provider's Settings dataclass
    subscribers: SubscribersConfig
    state: Path  # directory for the SQLite state file, lock, secret, caches
    reports: Path
    outbox: Path
    bounces: BouncesConfig = field(default_factory=BouncesConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    signup: SignupConfig = field(default_factory=SignupConfig)
    patreon: PatreonConfig = field(default_factory=PatreonConfig)
    lists: Mapping[str, ListConfig] = field(default_factory=lambda: types.MappingProxyType({}))

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def state_db(self) -> Path:
        return self.state / "state.db"

    def where(self, dotted: str) -> str:
        """``config.yaml:LINE`` for a dotted key, for messages raised after loading."""
        line = _LINES.get((self.path, dotted))
        return f"{self.path.name}:{line}" if line else self.path.name

    def provider_settings(self, name: str) -> Any:
        """The settings of provider ``name`` (its defaults when config.yaml has none)."""
        if name in self.providers:
            return self.providers[name]
        cls = registry.providers.get(name, where=self.where("sending.provider"))
        return build(cls.Settings, {}, f"providers.{name}", Ctx(self.path, {}, self.root))


_LINES: dict[tuple[Path, str], int] = {}

_TOP_KEYS = (
    "publication",
    "sources",
    "feeds",
    "digest",
    "cta",
    "sending",
    "providers",
    "subscribers",
    "state",
    "reports",
    "outbox",
    "bounces",
    "serve",
    "signup",
    "lists",
    "patreon",
)


# --- loading ---------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Config:
    """Read, validate and freeze ``path``."""
    path = Path(path).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; run `pressroom init DIR` to create a publication, "
            f"or pass --config / set {CONFIG_ENV}"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    return loads(text, path)


def loads(text: str, path: Path) -> Config:
    """Validate config text as if read from ``path`` (paths resolve against its folder)."""
    data, lines = parse_yaml(text, path)
    for key, line in lines.items():
        _LINES[(path, key)] = line
    ctx = Ctx(path, lines, path.parent)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ctx.fail("", "expected a mapping of sections (publication:, sources:, …)")
    reject_unknown(data, _TOP_KEYS, "", ctx)
    if "publication" not in data:
        raise ctx.fail("publication", "missing; add a publication: section with name and url")

    publication = build(PublicationConfig, data["publication"], "publication", ctx)
    try:
        ZoneInfo(publication.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.fail(
            "publication.timezone",
            f'unknown timezone "{publication.timezone}"; use an IANA name like "Europe/London"',
        ) from None
    _check_url(ctx, "publication.url", publication.url)
    _check_url(
        ctx, "publication.logo", publication.logo, " (email clients cannot resolve relative ones)"
    )
    if not publication.url.endswith("/"):
        publication = dataclasses.replace(publication, url=publication.url + "/")

    sources = _sources(data.get("sources") or [], ctx)
    providers_raw = data.get("providers") or {}
    if not isinstance(providers_raw, dict):
        raise ctx.fail("providers", "expected a mapping of provider name to its settings")
    provider_registry = registry.providers
    providers: dict[str, Any] = {}
    for name, raw in providers_raw.items():
        try:
            cls = provider_registry.get(str(name))
        except Exception as e:  # unknown provider: reuse the registry's message
            raise ctx.fail(f"providers.{name}", str(e)) from None
        providers[str(name)] = build(cls.Settings, raw or {}, f"providers.{name}", ctx)

    feeds = build(FeedsConfig, data.get("feeds") or {}, "feeds", ctx)
    digest = build(DigestConfig, data.get("digest") or {}, "digest", ctx)
    cta_raw = data.get("cta") or []
    if not isinstance(cta_raw, list):
        raise ctx.fail("cta", "expected a list of support blocks (- kind: patreon …)")
    cta = tuple(build(CtaConfig, c, f"cta.{i}", ctx) for i, c in enumerate(cta_raw))
    sending = build(SendingConfig, data.get("sending") or {}, "sending", ctx)
    _check_url(ctx, "feeds.url", feeds.url)
    _check_url(ctx, "digest.archive_url", digest.archive_url)
    _check_url(ctx, "sending.unsubscribe_url", sending.unsubscribe_url)
    _check_url(ctx, "sending.preferences_url", sending.preferences_url)
    serve = build(ServeConfig, data.get("serve") or {}, "serve", ctx)
    _check_url(ctx, "serve.url", serve.url)
    if not provider_registry.known(sending.provider):
        try:
            provider_registry.get(sending.provider)
        except Exception as e:
            raise ctx.fail("sending.provider", str(e)) from None

    return Config(
        path=path,
        publication=publication,
        sources=sources,
        feeds=feeds,
        digest=digest,
        cta=cta,
        sending=sending,
        providers=types.MappingProxyType(providers),
        subscribers=build(SubscribersConfig, data.get("subscribers") or {}, "subscribers", ctx),
        state=convert(Path, data.get("state", ".pressroom"), "state", ctx),
        reports=convert(Path, data.get("reports", "reports"), "reports", ctx),
        outbox=convert(Path, data.get("outbox", "outbox"), "outbox", ctx),
        bounces=build(BouncesConfig, data.get("bounces") or {}, "bounces", ctx),
        serve=serve,
        signup=build(SignupConfig, data.get("signup") or {}, "signup", ctx),
        patreon=build(PatreonConfig, data.get("patreon") or {}, "patreon", ctx),
        lists=_lists(data.get("lists") or {}, ctx),
    )


def _lists(raw: Any, ctx: Ctx) -> Mapping[str, ListConfig]:
    if not isinstance(raw, dict):
        raise ctx.fail("lists", "expected a mapping of list name to its title and description")
    out: dict[str, ListConfig] = {}
    for name, item in raw.items():
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", str(name)):
            raise ctx.fail(
                f"lists.{name}", "a list name is letters, digits, '-', '_' or '.' (no spaces)"
            )
        out[str(name)] = build(ListConfig, item, f"lists.{name}", ctx)
    return types.MappingProxyType(out)


_WEB_URL = re.compile(
    r"https?://([^/?#@\s]+@)?(\[[0-9A-Fa-f:.]+\]|[^/?#:@\s]+)(:\d{1,5})?([/?#]|$)"
)
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\u00a0\u2028\u2029\ufeff\\]")


def _check_url(ctx: Ctx, key: str, value: str | None, why: str = "") -> None:
    """An absolute http(s) URL with a host name and nothing a URL cannot hold, or a one-line
    error naming the key and its line (a space here used to end in a traceback much later)."""
    if value is None:
        return
    bad = _NOT_IN_URL.search(value)
    if bad:
        what = "a space" if bad.group().isspace() else f"the character U+{ord(bad.group()):04X}"
        raise ctx.fail(key, f'"{value.strip()}" holds {what}; a URL cannot (write a space as %20)')
    host = _WEB_URL.match(value)
    if host is not None and host.group(1):
        raise ctx.fail(key, "holds a user name or password before the host (…@); remove it")
    port = host.group(3) if host is not None else None
    if host is None or not _host_ok(host.group(2)) or (port and not 0 < int(port[1:]) < 65536):
        raise ctx.fail(key, f'expected an absolute http(s) URL{why}, got "{value}"')


def _host_ok(host: str) -> bool:
    if host.startswith("["):
        return web_host(host)
    try:
        ascii_name = ascii_host(host)
    except UnicodeError:
        return False
    labels = ascii_name.rstrip(".").split(".")
    return all(label and len(label) <= 63 for label in labels) and web_host(ascii_name)


def _sources(raw: Any, ctx: Ctx) -> tuple[SourceConfig, ...]:
    source_registry = registry.sources

    if not isinstance(raw, list):
        raise ctx.fail("sources", "expected a list of sources (- type: files …)")
    out = []
    for i, item in enumerate(raw):
        where = f"sources.{i}"
        if not isinstance(item, dict) or "type" not in item:
            raise ctx.fail(where, "each source needs a type: (files, wordpress, feed or ghost)")
        try:
            cls = source_registry.get(str(item["type"]))
        except Exception as e:
            raise ctx.fail(f"{where}.type", str(e)) from None
        rest = {k: v for k, v in item.items() if k != "type"}
        out.append(SourceConfig(str(item["type"]), build(cls.Settings, rest, where, ctx), i))
    return tuple(out)


def build_settings(cls: type[T], raw: Mapping[str, Any], where: str, root: Path) -> T:
    """Validate ``raw`` into dataclass ``cls`` outside config.yaml (tests, ``init``)."""
    return build(cls, dict(raw), where, Ctx(root / "config.yaml", {}, root))
