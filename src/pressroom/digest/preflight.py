"""Checks a rendered issue must pass before anyone previews it as final or sends it.

Each check looks at the final bytes of every audience variant (after filling the field
tokens with sample values, as a subscriber would get them), never at the templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import lxml.html

from pressroom.config import Config
from pressroom.digest.issue import cta_for_issue
from pressroom.models import FIELDS, Personaliser, RenderedIssue, RenderedVariant, token, unfilled

GMAIL_CLIP_BYTES = 102 * 1024  # Gmail hides everything after the first 102 KB of HTML
SUBJECT_MAX = 80
_OK_SCHEMES = ("http", "https", "mailto", "tel")

# Long, realistic values so the size check sees what subscribers receive.
SAMPLE_VALUES = {
    "name": "Alexandra Example-Subscriber",
    "email": "alexandra.example-subscriber@example.com",
    "unsubscribe_url": "https://example.com/unsubscribe?t=" + "x" * 120,
    "preferences_url": "https://example.com/preferences?t=" + "x" * 120,
    "view_online_url": "https://example.com/issues/1234/",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One preflight result: an error blocks sending, a warning does not."""

    level: Literal["error", "warning"]
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.code}: {self.message}"


def has_errors(findings: list[Finding]) -> bool:
    """True when any finding is an error."""
    return any(f.level == "error" for f in findings)


def check(rendered: RenderedIssue, config: Config) -> list[Finding]:
    """Every problem found in ``rendered``, errors first."""
    findings: list[Finding] = []
    add = findings.append

    if not rendered.subject.strip():
        add(Finding("error", "no-subject", "the subject is empty; set digest.subject"))
    elif len(rendered.subject) > SUBJECT_MAX:
        add(
            Finding(
                "warning",
                "long-subject",
                f"the subject has {len(rendered.subject)} characters (over {SUBJECT_MAX}); "
                "mail apps will cut it off; shorten digest.subject",
            )
        )
    if not rendered.preheader.strip():
        add(
            Finding(
                "warning",
                "no-preheader",
                "no preheader: inboxes will show the first text of the email instead; "
                "set digest.preheader or give the lead article a summary",
            )
        )
    if not config.publication.postal_address.strip():
        add(
            Finding(
                "error",
                "no-postal-address",
                f"{config.where('publication.postal_address')}: "
                "publication.postal_address is empty; "
                "anti-spam laws (CAN-SPAM, PECR) require a postal address in every email",
            )
        )

    for variant in rendered.variants:
        _check_variant(variant, rendered, config, add)

    # the same problem in several variants is reported once
    unique = list(dict.fromkeys(findings))
    return sorted(unique, key=lambda f: f.level != "error")


def _check_variant(
    variant: RenderedVariant,
    rendered: RenderedIssue,
    config: Config,
    add: Callable[[Finding], None],
) -> None:
    label = "" if len(rendered.variants) == 1 else f" (variant {variant.key})"
    html = Personaliser(variant.html, is_html=True).fill(SAMPLE_VALUES)
    text = Personaliser(variant.text, is_html=False).fill(SAMPLE_VALUES)

    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        add(
            Finding(
                "error",
                "html-too-large",
                f"the HTML is {size / 1024:.0f} KB{label}; Gmail clips messages over 102 KB "
                "(and hides the unsubscribe link); lower digest.max_articles or trim templates",
            )
        )
    if not variant.text.strip():
        add(Finding("error", "no-text-part", f"the plain-text part is empty{label}"))
    for part_name, part in (("HTML", html), ("text", text)):
        left = unfilled(part)
        if left:
            add(
                Finding(
                    "error",
                    "unfilled-placeholder",
                    f"the {part_name} part{label} still contains {', '.join(left)}; "
                    f"per-subscriber fields are {', '.join(FIELDS)}",
                )
            )
    if token("unsubscribe_url") not in variant.text:
        add(Finding("error", "no-unsubscribe", f"the text part{label} has no unsubscribe link"))
    address = _squeezed(config.publication.postal_address)
    # the text part is wrapped at 72 columns, so the address may span lines there
    if address and address not in _squeezed(text):
        add(
            Finding(
                "error",
                "no-postal-address",
                f"the text part{label} does not show publication.postal_address; "
                "keep it in _footer.txt.j2",
            )
        )
    for url in _text_links(text):
        _check_url(url, "text-part link", label, add)

    try:
        doc = lxml.html.document_fromstring(variant.html)
    except Exception as e:  # lxml raises ParserError on empty or binary input
        add(Finding("error", "bad-html", f"the HTML part{label} cannot be parsed: {e}"))
        return
    hrefs = [a.get("href", "") for a in doc.iter("a")]
    if not any(token("unsubscribe_url") in h for h in hrefs):
        add(Finding("error", "no-unsubscribe", f"the HTML part{label} has no unsubscribe link"))
    if address and address not in _squeezed(doc.text_content()):
        add(
            Finding(
                "error",
                "no-postal-address",
                f"the HTML part{label} does not show publication.postal_address; "
                "keep it in the footer template",
            )
        )
    preheader = _squeezed(rendered.preheader)
    if preheader and not any(preheader in _squeezed(el.text_content()) for el in _hidden(doc)):
        add(
            Finding(
                "warning",
                "no-preheader",
                f"the HTML part{label} has no hidden preheader: inboxes will show its first "
                'text instead; keep the <div class="preheader" style="display:none"> '
                "in digest.html.j2",
            )
        )
    for url in hrefs:
        _check_url(url, "link", label, add)
    for img in doc.iter("img"):
        src = img.get("src", "")
        _check_url(src, "image", label, add)
        if img.get("alt") is None:
            add(
                Finding(
                    "error",
                    "image-no-alt",
                    f"image {src} has no alt text{label}; screen readers and blocked images "
                    "need one",
                )
            )
        if (img.get("width") or "").strip().lower() == "auto":
            add(Finding("error", "image-width-auto", f'image {src} has width="auto"{label}'))

    for i, cfg in enumerate(config.cta):
        name = cta_for_issue(cfg, i, rendered.number, 1).name
        if name in variant.hidden_ctas:
            continue
        if f'data-cta="{name}"' not in variant.html:
            add(
                Finding(
                    "error",
                    "cta-missing",
                    f"{config.where(f'cta.{i}')}: support block {name} did not render{label}; "
                    "check that the templates include _cta.html.j2 for every position",
                )
            )


def _squeezed(text: str) -> str:
    """``text`` with every run of whitespace (line breaks, no-break spaces) made one space."""
    return " ".join(text.split())


_HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)


def _hidden(doc: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """Elements of the body hidden with an inline ``display:none`` (where preheaders live)."""
    body = doc.find("body")
    if body is None:
        return []
    return [el for el in body.iter() if _HIDDEN.search(el.get("style") or "")]


# In the text part a link is what a mail client makes clickable or a template writes where
# links go. Anywhere in the text, that is a web or mail address (``https://…``,
# ``mailto:a@b``): clients turn those into links. Any other scheme (``javascript:``,
# ``data:``, ``tel:``) or a path is a link only where a template puts one: after a label
# ("Tip jar: javascript:tip()", "About us: /about"), alone on its line, or in angle brackets.
# Prose that mentions them ("never paste javascript: URLs", "see /r/news") is not a link.
_TEXT_URL = re.compile(
    r"(?<![\w.+-])(?:(?:https?|ftp|file)://|mailto:[^\s<>\"@]+@)[^\s<>\"]*", re.IGNORECASE
)
_SCHEMES = r"(?:https?|javascript|vbscript|data|mailto|tel|ftp|file):"
_TEXT_PLACED = re.compile(
    rf"^(?:.*:[ \t]+)?[ \t]*(\.{{0,2}}/[^\s/][^\s]*|{_SCHEMES}[^\s]+)[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_TEXT_BRACKETED = re.compile(rf"<({_SCHEMES}[^\s<>]+)>", re.IGNORECASE)


def _text_links(text: str) -> list[str]:
    """The links written out in a text part, trailing punctuation left off."""
    found = [m.group(0) for m in _TEXT_URL.finditer(text)]
    found += [m.group(1) for m in _TEXT_PLACED.finditer(text)]
    found += [m.group(1) for m in _TEXT_BRACKETED.finditer(text)]
    return list(dict.fromkeys(_trimmed(url) for url in found))


def _trimmed(url: str) -> str:
    """``url`` without the sentence punctuation after it (a closing bracket only if unpaired)."""
    while url and url[-1] in ".,;:!?)]}'":
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _check_url(url: str, what: str, label: str, add: Callable[[Finding], None]) -> None:
    stripped = url.strip()
    for t in (token(f) for f in FIELDS):
        if stripped.startswith(t):
            return
    scheme = urlsplit(stripped).scheme.lower()
    if scheme == "javascript":
        add(Finding("error", "javascript-link", f"{what} {stripped[:60]} uses javascript:{label}"))
    elif stripped.startswith("#") and what == "link":
        return
    elif scheme not in _OK_SCHEMES or (
        scheme in ("http", "https") and not urlsplit(stripped).netloc
    ):
        add(
            Finding(
                "error",
                "relative-url",
                f"{what} {stripped or '(empty)'} is not an absolute URL{label}; "
                "mail clients have no page to resolve it against",
            )
        )
