"""What the preview server shows: the snapshot of one render and the pages built from it.

The index (summary, preflight report, desktop / mobile / dark / text frames), the text view,
the error page and the dark-mode transform. Pure functions of a ``Snapshot``; the HTTP side
is ``pressroom.preview_server``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
from dataclasses import dataclass, field

from pressroom.digest.preflight import Finding

MOBILE_WIDTH = 375
DESKTOP_WIDTH = 700


# --- what one render produces -----------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything the server shows for one render (or the error that stopped it)."""

    number: int | None = None
    subject: str = ""
    preheader: str = ""
    html: str = ""
    text: str = ""
    eml: bytes = b""
    recipient: str = ""
    variant: str = ""
    variants: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()  # articles skipped or de-duplicated while loading
    error: str | None = None
    version: str = field(default="", compare=False)

    def with_version(self) -> Snapshot:
        """This snapshot stamped with a hash of everything it shows."""
        digest = hashlib.sha256()
        for part in (
            str(self.number),
            self.subject,
            self.preheader,
            self.html,
            self.text,
            self.recipient,
            self.variant,
            repr(self.findings),
            repr(self.notes),
            self.error or "",
        ):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        # not the .eml: its Message-ID (and Date, when --now is not pinned) differ on every
        # render, and the rest of it is the parts above
        return dataclasses.replace(self, version=digest.hexdigest()[:16])


# --- dark mode ----------------------------------------------------------------------------

# A browser only applies `@media (prefers-color-scheme: dark)` when the *whole browser* is in
# dark mode; an iframe cannot be told to emulate it. So the dark view does what a dark-mode
# mail client that honours the template does: every `(prefers-color-scheme: dark)` condition
# is rewritten to one that is always true (`(min-width: 0px)`) and `light` ones to never true,
# so the template's own dark rules apply unconditionally; and `color-scheme: dark` is declared
# so the browser's defaults (canvas, unstyled text, form controls) are dark too (the injected
# meta goes first in <head>: the first color-scheme meta is the one a browser uses). Clients that
# invert colours on their own (Gmail apps, Outlook.com) are not imitated: that would show the
# client's algorithm, not the template.
_DARK_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.IGNORECASE)
_LIGHT_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.IGNORECASE)
_HEAD_OPEN = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_DARK_HEAD = (
    '<meta name="color-scheme" content="dark">'
    # the template's own `:root{color-scheme:light dark}` comes later (premailer even marks it
    # !important), so this rule needs more specificity than `:root`, not just !important
    "<style>html:root{color-scheme:dark !important}</style>"
)


def force_dark(page: str) -> str:
    """``page`` as a client in dark mode shows it: its dark rules applied unconditionally."""
    page = _DARK_QUERY.sub("(min-width: 0px)", page)
    page = _LIGHT_QUERY.sub("(max-width: 0px) and (min-width: 1px)", page)
    match = _HEAD_OPEN.search(page)
    if match:
        return page[: match.end()] + _DARK_HEAD + page[match.end() :]
    return _DARK_HEAD + page


def has_dark_rules(page: str) -> bool:
    """Whether the HTML has any ``prefers-color-scheme: dark`` rules of its own."""
    return bool(_DARK_QUERY.search(page))


# --- pages --------------------------------------------------------------------------------

_PAGE_CSS = """
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  background:#eef0f3;color:#1d2330}
header{padding:16px 24px;background:#fff;border-bottom:1px solid #d5d9e0}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:16px 0 6px}
.meta{color:#566074;margin:2px 0} .meta a{margin-right:12px}
.error{color:#a4161a} .warning{color:#8a5a00}
pre.failure{white-space:pre-wrap;background:#fff0f0;border:1px solid #e5a0a0;padding:12px;
  border-radius:6px;color:#a4161a;font-size:14px}
ul.findings{margin:4px 0;padding-left:20px} ul.findings code{font-size:13px}
.frames{display:flex;flex-wrap:wrap;gap:24px;padding:24px;align-items:flex-start}
figure{margin:0} figcaption{font-weight:600;margin-bottom:6px;color:#39414f}
iframe{border:1px solid #c4c9d2;background:#fff;border-radius:4px;display:block}
#status{float:right;color:#566074;font-size:13px}
"""

# The index reloads itself when /version changes; no external scripts, nothing to install.
_RELOAD_JS = """
(function(){
  var current = document.body.getAttribute("data-version");
  var status = document.getElementById("status");
  function poll(){
    fetch("/version", {cache: "no-store"}).then(function(r){ return r.json(); })
      .then(function(v){
        if (v.version !== current) { location.reload(); return; }
        status.textContent = "watching for changes";
        setTimeout(poll, 1000);
      }, function(){
        status.textContent = "preview server stopped; retrying";
        setTimeout(poll, 2000);
      });
  }
  setTimeout(poll, 1000);
})();
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def index_page(snap: Snapshot, renders: int = 0) -> str:
    """The index: summary, preflight report and the desktop, mobile, dark and text frames."""
    v = _esc(snap.version)
    head = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Preview: {_esc(snap.subject or 'pressroom')}</title>"
        f"<style>{_PAGE_CSS}</style></head>"
        f'<body data-version="{v}"><header><span id="status">watching for changes</span>'
    )
    if snap.error:
        body = (
            "<h1>The issue could not be rendered</h1>"
            f'<pre class="failure" id="render-error">{_esc(snap.error)}</pre>'
            '<p class="meta">Fix the file named above and save: this page reloads by itself.</p>'
            "</header>"
        )
    else:
        body = (
            f'<h1 id="subject">{_esc(snap.subject)}</h1>'
            f'<p class="meta">Preheader: {_esc(snap.preheader) or "<em>none</em>"}</p>'
            f'<p class="meta">Issue #{_esc(snap.number)} · as <b>{_esc(snap.recipient)}</b> · '
            "audience variant "
            f"<code>{_esc(snap.variant)}</code>"
            + (
                f" (of {', '.join(f'<code>{_esc(k)}</code>' for k in snap.variants)}; "
                "use --as with another subscriber to see the others)"
                if len(snap.variants) > 1
                else ""
            )
            + f" · render {renders}</p>"
            '<p class="meta"><a href="/html" target="_blank">HTML</a>'
            '<a href="/dark" target="_blank">dark</a>'
            '<a href="/issue.txt" target="_blank">text</a>'
            f'<a href="/issue.eml" download="issue-{_esc(snap.number)}.eml">download .eml</a>'
            '<a href="/preflight.json" target="_blank">preflight.json</a></p>'
            + _preflight_html(snap.findings)
            + _notes_html(snap.notes)
            + "</header>"
            + _frames(snap)
        )
    return f"{head}{body}<script>{_RELOAD_JS}</script></body></html>"


def _preflight_html(findings: tuple[Finding, ...]) -> str:
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    title = f"Preflight: {errors} error(s), {warnings} warning(s)"
    if not findings:
        return (
            f'<section id="preflight"><h2>{title}</h2>'
            '<p class="meta">All checks pass.</p></section>'
        )
    items = "".join(
        f'<li class="{_esc(f.level)}"><b>{_esc(f.level)}</b> <code>{_esc(f.code)}</code> '
        f"{_esc(f.message)}</li>"
        for f in sorted(findings, key=lambda f: f.level != "error")
    )
    return f'<section id="preflight"><h2>{title}</h2><ul class="findings">{items}</ul></section>'


def _notes_html(notes: tuple[str, ...]) -> str:
    if not notes:
        return ""
    items = "".join(f'<li class="warning">{_esc(n)}</li>' for n in notes)
    return (
        f'<section id="notes"><h2>Articles: {len(notes)} note(s)</h2>'
        f'<ul class="findings">{items}</ul></section>'
    )


def _frames(snap: Snapshot) -> str:
    v = _esc(snap.version)
    dark_note = "" if has_dark_rules(snap.html) else " (the template has no dark-mode rules)"

    def frame(ident: str, caption: str, src: str, width: int, height: int = 900) -> str:
        return (
            f'<figure><figcaption>{caption}</figcaption><iframe id="{ident}" '
            f'title="{_esc(caption)}" src="{src}?v={v}" width="{width}" height="{height}" '
            # no scripts, as in a mail client; links still open (in a new tab)
            'sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox">'
            "</iframe></figure>"
        )

    return (
        '<main class="frames">'
        + frame("desktop", f"Desktop ({DESKTOP_WIDTH} px)", "/html", DESKTOP_WIDTH)
        + frame("mobile", f"Mobile ({MOBILE_WIDTH} px)", "/mobile", MOBILE_WIDTH)
        + frame("dark", f"Dark mode{dark_note}", "/dark", DESKTOP_WIDTH)
        + frame("text", "Plain text", "/text", DESKTOP_WIDTH)
        + "</main>"
    )


def text_page(text: str, width: int = 72) -> str:
    """The text part in a ``<pre>``, lines longer than ``width`` columns marked."""
    lines = "\n".join(
        f'<span class="long" title="{len(line)} columns">{_esc(line)}</span>'
        if len(line) > width
        else _esc(line)
        for line in text.splitlines()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Plain text</title>'
        "<style>body{margin:0;background:#fff}pre{margin:0;padding:16px;font:14px/1.4 "
        "ui-monospace,Menlo,Consolas,monospace;white-space:pre}"
        ".long{background:#fff3cd}</style></head>"
        f"<body><pre>{lines}</pre></body></html>"
    )


def error_page(message: str) -> str:
    """A page that shows why the issue could not be rendered."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Render error</title>'
        f"<style>{_PAGE_CSS}</style></head><body><header><h1>The issue could not be rendered</h1>"
        f'<pre class="failure">{_esc(message)}</pre></header></body></html>'
    )
