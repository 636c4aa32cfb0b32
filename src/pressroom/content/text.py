"""Article text: control characters out, Markdown → safe HTML, plain-text summaries.

Rendering is the expensive step (cmark-gfm plus nh3 cost ~0.12 ms per 2 KB article, still a
fifth of a cold feeds run), so sources keep bodies raw and ``Article.html`` calls
``render_body`` only for the articles a feed or an issue includes; results are cached by
content. Summaries, which every listing needs, come
from cheap text stripping of the raw body instead of a render.
"""

from __future__ import annotations

import html as html_mod
import re
from collections.abc import Iterator
from functools import lru_cache

from pressroom.content.urls import BadURL, public_url
from pressroom.textpolicy import strip_controls

SUMMARY_LIMIT = 300


# cmark-gfm and nh3 load with the first body to render: a run that renders none (nothing
# changed, see feeds.unchanged) never needs them.
@lru_cache(maxsize=1)
def _allowed() -> tuple[set[str], dict[str, set[str]]]:
    """Tags and attributes kept by the sanitiser: nh3's safe defaults (which never include
    script, style, iframe, form, object or any on* attribute) plus table footers and titles."""
    import nh3

    tags = set(nh3.ALLOWED_TAGS) | {"tfoot"}
    attributes = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = {"lang", "title", "dir"}
    attributes["a"] = attributes.get("a", set()) | {"href", "hreflang"}
    attributes["img"] = attributes.get("img", set()) | {"src", "alt", "width", "height"}
    return tags, attributes


_URL_SCHEMES = {"http", "https", "mailto", "tel"}  # javascript:, data: and the rest are dropped

# GitHub's cmark-gfm (C; what PyPI renders READMEs with): CommonMark plus the GFM tables,
# ~~strikethrough~~ and bare-URL autolinks, ~20x faster than a pure-Python parser.
# CMARK_OPT_UNSAFE lets raw HTML and any link scheme through *only because* every rendered
# body goes through ``sanitise`` (nh3) next; never return cmark's output unsanitised.
_GFM_EXTENSIONS = ("table", "strikethrough", "autolink")


# cmark writes U+FFFE and U+FFFF, decoded from a character reference, as one invalid UTF-8 byte
# that its Python binding then fails to decode; XML cannot carry them anyway.
_NONCHARACTER_REF = re.compile(r"&#(?:[xX]0*[fF]{3}[eEfF]|0*6553[45]);")


def _markdown(body: str) -> str:
    import cmarkgfm
    from cmarkgfm.cmark import Options

    if "&#" in body:
        body = _NONCHARACTER_REF.sub("", body)
    html: str = cmarkgfm.markdown_to_html_with_extensions(
        body, options=Options.CMARK_OPT_UNSAFE, extensions=list(_GFM_EXTENSIONS)
    )
    return html


def render_body(body: str, body_format: str, base_url: str) -> str:
    """``body`` in ``body_format`` ("markdown", "html", "text") as safe HTML with absolute URLs."""
    return _render(body, body_format, base_url)


@lru_cache(maxsize=4096)
def _render(body: str, body_format: str, base_url: str) -> str:
    # The key holds the body itself: str hashes are computed once and cached by Python, so
    # this is a content-hash cache without hashing twice.
    body = strip_controls(body)  # the text policy, applied where a body is first needed
    if body_format == "markdown":
        raw = _markdown(body)  # unsafe HTML allowed here; sanitised below
    elif body_format == "html":
        raw = body
    elif body_format == "text":
        raw = text_to_html(body)
    else:
        raise ValueError(f'unknown body format "{body_format}" (markdown, html or text)')
    # cmark and nh3 decode character references (&#1;, &#x80;) only now: the policy again
    return strip_controls(sanitise(raw, base_url))


def sanitise(fragment: str, base_url: str) -> str:
    """Safe HTML (no script/style/iframe/form, on* or javascript:) with absolute URLs."""
    import nh3

    tags, attributes = _allowed()
    if fragment.count("<") > MAX_DEPTH:
        fragment = flatten_deep(fragment)
    return nh3.clean(
        fragment,
        tags=tags,
        attributes=attributes,
        url_schemes=_URL_SCHEMES,
        link_rel=None,
        url_relative=("rewrite_with_base", base_url),
        # only a fragment with an "@" (or a reference that may spell one, &#64;) can hold a
        # user name before a host, and only one that says "cite" a quotation's source URL:
        # no Python call per attribute for the rest
        attribute_filter=(
            _UrlFilter(base_url)
            if "@" in fragment or "&" in fragment or _CITE.search(fragment)
            else None
        ),
    ).strip()


# How deep elements may nest: Chromium's HTML parser stops nesting at 512 too
# (kMaximumHTMLParserDOMTreeDepth), so no page a browser shows is changed by it.
MAX_DEPTH = 512
# elements that hold no others, or whose end tag may be left out (an unclosed <p> or <li> is
# closed by the next one, not nested): they do not count towards the depth
_FLAT = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
        "p",
        "li",
        "dt",
        "dd",
        "tr",
        "td",
        "th",
        "thead",
        "tbody",
        "tfoot",
        "colgroup",
        "caption",
        "option",
        "optgroup",
        "rb",
        "rt",
        "rtc",
        "rp",
    ]
)
_TAG_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*>")


def flatten_deep(html: str) -> str:
    """``html`` with the tags of elements nested deeper than ``MAX_DEPTH`` left out (their
    text stays). The sanitiser's HTML parser takes time that grows with the cube of the depth:
    100,000 nested <div>s or Markdown "> > > …" quotes, a few hundred KB from a hostile feed
    or a careless export, held a run for hours."""
    out: list[str] = []
    depth = 0
    dropped: dict[str, int] = {}  # element name -> opened too deep and not yet closed
    last = 0
    for m in _TAG_TOKEN.finditer(html):
        name = m.group(2).lower()
        if name in _FLAT or m.group(0).endswith("/>"):
            continue
        if not m.group(1):
            if depth < MAX_DEPTH:
                depth += 1
                continue
            dropped[name] = dropped.get(name, 0) + 1
        elif dropped.get(name):
            dropped[name] -= 1
        else:
            depth = max(depth - 1, 0)
            continue
        out.append(html[last : m.start()])
        last = m.end()
    if not out:
        return html
    out.append(html[last:])
    return "".join(out)


# the authority of an http(s) or scheme-relative URL, read as browsers do (tabs and line
# breaks dropped, backslashes as slashes, any number of them)
_AUTHORITY = re.compile(r"(?:https?:[\\/]*|[\\/]{2,})([^\\/?#]*)", re.IGNORECASE)
_LINK_ATTRIBUTES = frozenset({"href", "src", "cite", "poster"})
_URL_NOISE = re.compile(r"^[\x00-\x20]+|[\t\n\r]")


_CITE = re.compile("cite", re.IGNORECASE)


class _UrlFilter:
    """The URL policy inside bodies, where nh3 does not apply it itself."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def __call__(self, _tag: str, attribute: str, value: str) -> str | None:
        if attribute == "cite":
            # the source URL of a <blockquote>, <q>, <del> or <ins>: nh3 checks neither its
            # scheme nor makes it absolute (it is no link to ammonia), so it takes the policy
            # of every other URL from outside: absolute http(s), or nothing
            try:
                return public_url(value, self.base_url)
            except BadURL:
                return None
        return _no_user_info(attribute, value)


def _no_user_info(attribute: str, value: str) -> str | None:
    """A link with a user name or password before its host (``https://paypal.com@evil.example/``,
    which reads as PayPal) loses its URL."""
    if attribute not in _LINK_ATTRIBUTES or "@" not in value:
        return value
    found = _AUTHORITY.match(_URL_NOISE.sub("", value))
    return None if found and "@" in found.group(1) else value


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs: blank lines separate paragraphs."""
    paragraphs = (p.strip() for p in _BLANK_LINES.split(text.strip()))
    return "\n".join(f"<p>{html_mod.escape(p, quote=False)}</p>" for p in paragraphs if p)


# --- summaries -------------------------------------------------------------------------

_BLANK_LINES = re.compile(r"\n[ \t]*\n")
# What HTML itself reads as markup: "<" then a letter, "/", "!" or "?" ("a < b" is text).
_TAG = re.compile(r"<(?:/?[A-Za-z][^>]*|![^>]*|\?[^>]*)>")
# CommonMark autolinks (<https://…>, <someone@example.org>) are text in a summary, not tags
_MD_AUTOLINK = re.compile(
    r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*|[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*)>"
)
_BLOCK_TAG = re.compile(
    r"</?(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|figure|section|article|hr)\b[^>]*>",
    re.I,
)
_WS = re.compile(r"\s+")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
# a link target may hold one level of parentheses (Wikipedia: /wiki/Foo_(bar))
_MD_LINK = re.compile(r"\[([^\]]+)\]\s?(?:\((?:[^()]|\([^()]*\))*\)|\[[^\]]*\])")
# underscores of "_emphasis_" at word edges, never inside words (snake_case)
_MD_UNDERSCORES = re.compile(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")
_MD_LINE_START = re.compile(r"^\s{0,3}(?:>\s?|[-*+]\s+|\d+[.)]\s+)", re.M)
_HTML_PARAGRAPH = re.compile(r"<p[\s>].*?</p>", re.S | re.I)
_DROP_OPEN = re.compile(r"<(script|style|figcaption|h[1-6])[\s>]", re.I)
_MD_CODE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_FENCE = re.compile(r"^\s{0,3}(?:```|~~~)", re.M)
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ELLIPSIS_TAIL = re.compile(r"\s*\[(?:…|\.\.\.)\]$")


def summary_from_body(body: str, body_format: str, limit: int = SUMMARY_LIMIT) -> str:
    """The first paragraph of a raw body as plain text, cut to ``limit`` on a word boundary."""
    if body_format == "html":
        text = _first_html_paragraph(body)
    elif body_format == "markdown":
        text = _first_markdown_paragraph(body, limit)
    else:
        text = next((p for p in _blocks(body) if p.strip()), "")
    return truncate(" ".join(text.split()), limit)


def plain_text(fragment: str) -> str:
    """HTML as one line of plain text (tags dropped, entities decoded, whitespace collapsed)."""
    # Every pattern here ends in ">": after the last one, nothing is a tag, and a regex that
    # tried "<a" after "<a" there would scan to the end each time ("<a" * 200,000, 400 KB from
    # a feed, took minutes). The rest is kept as text.
    last = fragment.rfind(">") + 1
    head, tail = fragment[:last], fragment[last:]
    # block tags separate words; inline ones (<em>, <a>) must not: "<em>word</em>." → "word."
    text = _TAG.sub("", _BLOCK_TAG.sub(" ", _drop_elements(head))) + tail
    text = " ".join(html_mod.unescape(text).split())
    return _ELLIPSIS_TAIL.sub("…", text)  # WordPress ends excerpts with " [&hellip;]"


def truncate(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters on a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:–—-") + "…"


def _drop_elements(fragment: str) -> str:
    """``fragment`` without script, style, figcaption and heading elements (and their text):
    in one pass. Each opening tag is matched with the next closing one of its
    name; a name with no closing tag left is not looked for again (the pattern alone rescanned
    the rest of the text for every "<style " in it)."""
    if "<" not in fragment:
        return fragment
    out: list[str] = []
    pos = 0
    unclosed: set[str] = set()
    for m in _DROP_OPEN.finditer(fragment):
        name = m.group(1).lower()
        if m.start() < pos or name in unclosed:
            continue
        close = re.compile(f"</{name}>", re.I).search(fragment, m.end())
        if close is None:
            unclosed.add(name)
            continue
        out += [fragment[pos : m.start()], " "]
        pos = close.end()
    if not out:
        return fragment
    out.append(fragment[pos:])
    return "".join(out)


def _first_html_paragraph(body: str) -> str:
    # a paragraph ends in "</p>": none starts after the last one (see plain_text)
    end = body.lower().rfind("</p>") + 4
    for match in _HTML_PARAGRAPH.finditer(body, 0, end):
        text = plain_text(match.group(0))
        if text:
            return text
    return plain_text(body)


def _blocks(text: str) -> Iterator[str]:
    """The blank-line separated blocks of ``text``, lazily (summaries need only the first)."""
    start = 0
    for match in _BLANK_LINES.finditer(text):
        yield text[start : match.start()]
        start = match.end()
    yield text[start:]


def _first_markdown_paragraph(body: str, limit: int) -> str:
    in_fence = False
    for block in _blocks(body):
        stripped = block.strip()
        if not stripped:
            continue
        # a fenced code block may hold blank lines, so track fences across blocks
        odd_fences = ("```" in block or "~~~" in block) and len(_FENCE.findall(block)) % 2 == 1
        if in_fence or stripped.startswith(("```", "~~~")):
            in_fence = in_fence != odd_fences
            continue
        if block.startswith(("    ", "\t")) or stripped.startswith(
            ("#", "|", "<!--", "---", "***")
        ):
            continue  # headings, tables, comments, rules and indented code are not prose
        text = stripped[: limit * 4]  # only the start can show; markup rarely triples it
        if "`" in text:  # a code span is literal text: `<b>` stays "<b>"
            text = _MD_CODE.sub(lambda m: html_mod.escape(m.group(2).strip(), quote=False), text)
        if "[" in text:
            text = _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", text))
        if text[:1] in (">", "-", "*", "+") or text[:1].isdigit():
            text = _MD_LINE_START.sub("", text)
        if "\\" in text:
            text = _MD_ESCAPE.sub(r"\1", text)
        # str.replace is ~20x faster than an emphasis regex, and a summary loses nothing
        text = text.replace("*", "").replace("`", "").replace("~~", "")
        if "_" in text:
            text = _MD_UNDERSCORES.sub("", text)
        if "<" in text:
            text = _MD_AUTOLINK.sub(r"\1", text)
        text = plain_text(text) if "<" in text or "&" in text else " ".join(text.split())
        if text:
            return text
    return ""
