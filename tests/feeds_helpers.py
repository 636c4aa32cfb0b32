"""Feed test helpers: article and corpus builders, and the validity checks every feed must pass.

``check_feeds(out, base_url)`` runs, over every file ``pressroom feeds`` wrote: feedparser (no
bozo), the RFC 4287 RELAX NG schema for Atom, the JSON Feed 1.1 JSON Schema, and the W3C feed
validator's rules that are cheap to restate (RFC 822 dates, unique GUIDs/ids, one alternate
link per type, a self link equal to the feed's own URL, complete enclosures, absolute URLs).
"""

from __future__ import annotations

import email.utils
import functools
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import feedparser
from lxml import etree
from lxml import html as lxml_html

from pressroom.content.text import render_body
from pressroom.models import Article, Author
from tests.conftest import CONTRACTS, missing_contract

REPO = Path(__file__).resolve().parents[1]
JSON_FEED_SCHEMA = REPO / ".ci" / "node" / "package" / "schema-v1.1.json"
ATOM = "{http://www.w3.org/2005/Atom}"

# --- articles --------------------------------------------------------------------------


def article(i: int, **changes: Any) -> Article:
    """A ready-made Article (HTML body) number ``i``; newer for larger ``i``."""
    fields: dict[str, Any] = {
        "id": f"https://news.example/{i}/",
        "url": f"https://news.example/{i}/",
        "slug": f"post-{i}",
        "title": f"Post {i}: Q&A <draft> über alles",
        "published": datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(hours=i),
        "updated": None,
        "authors": (Author(f"Writer {i % 3}"),),
        "categories": (f"Topic {i % 2}",),
        "tags": ("t",),
        "summary": f"Summary {i} with a < b & c.",
        "image": None,
        "body": f'<p>Body of post {i}. <a href="https://news.example/about/">About</a></p>',
        "body_format": "html",
        "base_url": f"https://news.example/{i}/",
        "source": f"content/{i}.html",
        "renderer": render_body,
    }
    fields.update(changes)
    return Article(**fields)


# --- a generated publication with awkward content ----------------------------------------

CATEGORIES = ["World", "Arts & Culture", "Économie", "Россия", "Q&A", "Science", "Sport", "Tech"]
AUTHORS = [
    "Alex Christoforou",
    "Zoë Ångström",
    "Jean-Luc O'Brien",
    "Ana <Ana> & Co",
    "Søren Kierkegaard",
    "李雷",
    "María José",
    "Ümit Öz",
    "Bob",
    "Alice",
    "Chloé",
    "D'Arcy",
]
TITLES = [
    "Tom & Jerry: a < b, and c > d",
    "AT&T and R&D: “quotes”, ‘single’ and — dashes",
    "Why 2 < 3 & 5 > 4 still matters",
    "Émigrés in Zürich: naïve café stories ☕",
    "Россия и мир: новости",
    "<script>alert('x')</script-less title & more",
    "Ampersand && entity &amp; literal &lt; text",
    "東京 news: 100% sure?",
]


def corpus_config(site: str = "https://corpus.example/") -> str:
    return f"""publication:
  name: "Corpus & Co — test"
  url: {site}
  description: "Generated articles with awkward content: <, &, non-ASCII"
  language: en
  timezone: Europe/Berlin
sources:
  - type: files
    path: content
feeds:
  out: public/feeds
  items: 50
"""


def write_corpus(root: Path, n: int = 1000, seed: int = 4287) -> Path:
    """Write a publication of ``n`` Markdown articles under ``root``; return config.yaml."""
    rng = random.Random(seed)
    content = root / "content"
    content.mkdir(parents=True, exist_ok=True)
    start = datetime(2024, 1, 1, 8, 0)
    for i in range(n):
        when = start + timedelta(hours=17 * i, minutes=rng.randrange(60))
        title = f"{TITLES[i % len(TITLES)]} #{i}"
        cats = rng.sample(CATEGORIES, rng.choice([1, 1, 2, 3]))
        authors = rng.sample(AUTHORS, rng.choice([1, 1, 1, 2, 3]))
        front = {
            "title": title,
            "date": when.isoformat(timespec="minutes"),
            "categories": cats,
            "tags": ["corpus", f"t{i % 7}"],
        }
        if len(authors) == 1:
            front["author"] = authors[0]
        else:
            front["authors"] = authors
        if i % 3:
            front["summary"] = f"Summary {i}: a < b & “c” — ünïcödé."
        if i % 5 == 0:
            front["updated"] = (when + timedelta(days=2)).isoformat(timespec="minutes")
        if i % 4 == 0:
            front["image"] = f"/images/feature-{i}.jpg" if i % 8 else f"media/pic {i}.png"
            front["image_alt"] = f"Picture {i} & friends"
        lines = ["---"] + [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items()]
        body = (
            f"Paragraph one of article {i} with an ampersand & a less-than < sign, "
            f"non-ASCII (naïve, Straße, 東京) and a [relative link](/archive/{i}/) "
            f"plus [another](../other-{i}.html).\n\n"
            f"![inline image](images/inline-{i}.png)\n\n"
            "- a list item with `code < & >`\n- another with <em>inline HTML</em>\n\n"
            f"> A quote: “5 > 3 && 2 < 4”.\n\n"
            + " ".join(["Filler text to make the article realistic in size."] * 20)
            + "\n"
        )
        (content / f"{i:04d}-article.md").write_text(
            "\n".join([*lines, "---", "", body]), encoding="utf-8"
        )
    config = root / "config.yaml"
    config.write_text(corpus_config(), encoding="utf-8")
    return config


# --- schemas -----------------------------------------------------------------------------


@functools.cache
def atom_schema() -> etree.RelaxNG:
    """RFC 4287 Appendix B, compiled from tests/contracts/atom-rfc4287.rnc with rnc2rng."""
    import rnc2rng

    source = CONTRACTS / "atom-rfc4287.rnc"
    if not source.is_file():
        missing_contract(source, "restore tests/contracts/ (see its README.md)")
    # rnc2rng declares xmlns:local="" for the RNC's `namespace local = ""`, which XML forbids
    rng = rnc2rng.dumps(rnc2rng.load(str(source))).replace('xmlns:local=""', "")
    return etree.RelaxNG(etree.fromstring(rng.encode("utf-8")))


@functools.cache
def json_feed_validator() -> Any:
    """The JSON Feed 1.1 schema of npm jsonfeed-schema, with date-time and uri checked."""
    import jsonschema

    if not JSON_FEED_SCHEMA.is_file():
        missing_contract(
            JSON_FEED_SCHEMA,
            "run `mkdir -p .ci/node && cd .ci/node && npm pack jsonfeed-schema@0.5.0 && "
            "tar xzf jsonfeed-schema-0.5.0.tgz` (bash .ci/run does it)",
        )
    schema = json.loads(JSON_FEED_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


# --- the checks --------------------------------------------------------------------------

RFC822 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}\Z"
)
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)\Z")


def feed_files(out: Path) -> Iterator[Path]:
    for name in ("index.xml", "atom.xml", "feed.json"):
        yield from sorted(out.rglob(name))


def check_feeds(out: Path, base_url: str) -> list[str]:
    """Every validity problem in the feeds under ``out`` (served at ``base_url``)."""
    problems: list[str] = []
    files = list(feed_files(out))
    if not files:
        return [f"{out}: no feeds"]
    for path in files:
        url = base_url + quote(path.relative_to(out).as_posix())  # the URL a server gives it
        check = {"index.xml": check_rss, "atom.xml": check_atom, "feed.json": check_json}[path.name]
        problems += [f"{path.relative_to(out)}: {p}" for p in check(path.read_bytes(), url)]
    return problems


def _parsed(data: bytes) -> list[str]:
    parsed = feedparser.parse(data)
    if parsed.bozo:
        return [f"feedparser bozo: {parsed.bozo_exception!r}"]
    return []


def _absolute(url: str | None) -> bool:
    return bool(url) and re.match(r"https?://[^/\s]+", url or "") is not None


def check_content_urls(html: str) -> list[str]:
    """Relative href/src in item HTML (the W3C validator warns; readers resolve them wrongly)."""
    if not html.strip():
        return []
    problems = []
    for element in lxml_html.fragments_fromstring(html, no_leading_text=False):
        if not isinstance(element, etree._Element):
            continue
        for node in element.iter():
            for attr in ("href", "src"):
                value = node.get(attr) if isinstance(node.tag, str) else None
                if (
                    value is not None
                    and not _absolute(value)
                    and not value.startswith(("mailto:", "#"))
                ):
                    problems.append(f"relative {attr}={value!r} in content")
    return problems


def _newest_first(dates: list[datetime]) -> list[str]:
    return [] if dates == sorted(dates, reverse=True) else ["items are not newest first"]


def check_rss(data: bytes, url: str) -> list[str]:
    problems = _parsed(data)
    try:
        root = etree.fromstring(data)
    except etree.XMLSyntaxError as e:
        return [*problems, f"not well-formed XML: {e}"]
    channel = root.find("channel")
    if root.tag != "rss" or root.get("version") != "2.0" or channel is None:
        return [*problems, "not an RSS 2.0 document"]
    links = channel.findall(f"{ATOM}link")
    selfs = [link.get("href") for link in links if link.get("rel") == "self"]
    if selfs != [url]:
        problems.append(f"atom:link rel=self {selfs} is not [{url}]")
    for name in ("title", "link", "description"):
        if not (channel.findtext(name) or "").strip():
            problems.append(f"channel has no {name}")
    for name in ("lastBuildDate", "pubDate"):
        value = channel.findtext(name)
        if value is not None and not RFC822.match(value):
            problems.append(f"channel {name} {value!r} is not an RFC 822 date")
    guids: set[str] = set()
    dates = []
    for item in channel.findall("item"):
        guid = item.find("guid")
        if guid is None or not (guid.text or "").strip():
            problems.append("item without guid")
        else:
            if guid.text in guids:
                problems.append(f"duplicate guid {guid.text}")
            guids.add(guid.text or "")
            permalink = guid.get("isPermaLink", "true")
            if permalink not in ("true", "false"):
                problems.append(f"guid isPermaLink={permalink!r}")
            if permalink == "true" and not _absolute(guid.text):
                problems.append(f"permalink guid {guid.text!r} is not a URL")
        pub = item.findtext("pubDate") or ""
        if not RFC822.match(pub):
            problems.append(f"item pubDate {pub!r} is not an RFC 822 date")
        else:
            dates.append(email.utils.parsedate_to_datetime(pub))
        if not _absolute(item.findtext("link")):
            problems.append(f"item link {item.findtext('link')!r} is not absolute")
        if item.findall("author"):
            problems.append("RSS <author> must be an e-mail address; use dc:creator")
        enclosures = item.findall("enclosure")
        if len(enclosures) > 1:
            problems.append("more than one enclosure in an item")
        for enc in enclosures:
            if not _absolute(enc.get("url")):
                problems.append(f"enclosure url {enc.get('url')!r} is not absolute")
            if not (enc.get("length") or "").isdigit():
                problems.append(f"enclosure length {enc.get('length')!r} is not a whole number")
            if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", enc.get("type") or ""):
                problems.append(f"enclosure type {enc.get('type')!r} is not a MIME type")
        content = item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded") or ""
        problems += check_content_urls(content)
    return problems + _newest_first(dates)


def check_atom(data: bytes, url: str) -> list[str]:
    problems = _parsed(data)
    try:
        doc = etree.fromstring(data)
    except etree.XMLSyntaxError as e:
        return [*problems, f"not well-formed XML: {e}"]
    schema = atom_schema()
    if not schema.validate(doc):
        problems += [f"RELAX NG: line {e.line}: {e.message}" for e in schema.error_log]
    selfs = [link.get("href") for link in doc.findall(f"{ATOM}link") if link.get("rel") == "self"]
    if selfs != [url]:
        problems.append(f"link rel=self {selfs} is not [{url}]")
    feed_author = doc.find(f"{ATOM}author") is not None
    ids: set[str] = set()
    dates = []
    for entry in doc.findall(f"{ATOM}entry"):
        entry_id = entry.findtext(f"{ATOM}id") or ""
        if entry_id in ids:
            problems.append(f"duplicate entry id {entry_id}")
        ids.add(entry_id)
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", entry_id):
            problems.append(f"entry id {entry_id!r} is not an IRI")
        alternates: dict[tuple[str | None, str | None], int] = {}
        for link in entry.findall(f"{ATOM}link"):
            rel = link.get("rel", "alternate")
            if rel == "alternate":
                key = (link.get("type"), link.get("hreflang"))
                alternates[key] = alternates.get(key, 0) + 1
            if rel == "enclosure" and not link.get("type"):
                problems.append("enclosure link without type")
            if not _absolute(link.get("href")):
                problems.append(f"link href {link.get('href')!r} is not absolute")
        if any(n > 1 for n in alternates.values()):
            problems.append(f"entry {entry_id}: duplicate alternate links (same type and hreflang)")
        if not alternates and entry.find(f"{ATOM}content") is None:
            problems.append(f"entry {entry_id}: neither content nor an alternate link")
        if not feed_author and entry.find(f"{ATOM}author") is None:
            problems.append(f"entry {entry_id}: no author and the feed has none")
        for name in ("updated", "published"):
            value = entry.findtext(f"{ATOM}{name}")
            if value is not None and not RFC3339.match(value):
                problems.append(f"entry {name} {value!r} is not RFC 3339")
        published = entry.findtext(f"{ATOM}published") or entry.findtext(f"{ATOM}updated") or ""
        if RFC3339.match(published):
            dates.append(datetime.fromisoformat(published.replace("Z", "+00:00")))
        content = entry.find(f"{ATOM}content")
        if content is not None:
            if content.get("type") not in (None, "text", "html", "xhtml"):
                problems.append(f"content type {content.get('type')!r}")
            if content.get("type") == "html":
                problems += check_content_urls(content.text or "")
    return problems + _newest_first(dates)


def check_json(data: bytes, url: str) -> list[str]:
    problems = []
    try:
        feed = json.loads(data)
    except ValueError as e:
        return [f"not JSON: {e}"]
    validator = json_feed_validator()
    problems += [
        f"schema: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(feed)
    ]
    if feed.get("version") != "https://jsonfeed.org/version/1.1":
        problems.append(f"version {feed.get('version')!r}")
    if feed.get("feed_url") != url:
        problems.append(f"feed_url {feed.get('feed_url')!r} is not {url}")
    ids = [item.get("id") for item in feed.get("items", [])]
    if len(ids) != len(set(ids)):
        problems.append("duplicate item ids")
    dates = []
    for item in feed.get("items", []):
        for name in ("date_published", "date_modified"):
            if name in item and not RFC3339.match(item[name]):
                problems.append(f"{name} {item[name]!r} is not RFC 3339")
        if RFC3339.match(item.get("date_published", "")):
            dates.append(datetime.fromisoformat(item["date_published"]))
        if "content_html" not in item and "content_text" not in item:
            problems.append(f"item {item.get('id')}: neither content_html nor content_text")
        problems += check_content_urls(item.get("content_html", ""))
        for key in ("url", "image"):
            if key in item and not _absolute(item[key]):
                problems.append(f"item {key} {item[key]!r} is not absolute")
    return problems + _newest_first(dates)


# --- configs -----------------------------------------------------------------------------


def make_config(root: Path, feeds: str = "", extra: str = "", publication: str = "") -> Any:
    """Load a minimal publication config (no sources) with ``feeds:`` (etc.) lines added."""
    from pressroom import config

    root.mkdir(parents=True, exist_ok=True)
    text = (
        "publication:\n  name: News & Co\n  url: https://news.example/\n"
        f"  description: Test news\n  language: en\n{publication}"
        f"feeds:\n  out: public/feeds\n{feeds}{extra}"
    )
    path = root / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return config.load(path)
