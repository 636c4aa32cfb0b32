"""Issue → RenderedIssue: Jinja templates, premailer once per audience variant, text part.

Templates come from the publication's own folder (``digest.templates``) over the packaged
defaults, file by file. Per-subscriber fields are left as ``models.token`` placeholders
that delivery fills (``pressroom.personalise``); premailer never runs per subscriber.

Known premailer traps, each handled here and tested on the final bytes: it strips
``!important`` inside ``@media`` unless ``strip_important=False`` (mobile and dark-mode rules
would lose to the inlined styles); it drops a lower-case ``<!doctype html>``; it turns CSS
``width``/``height`` into attributes (``width="auto"`` breaks Outlook), so that is disabled;
and it URL-escapes ``{{ x }}`` in ``href``, which is why tokens are ``%%PR_X%%``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from pressroom import defaults
from pressroom.config import Config
from pressroom.digest.issue import add_utm, check_ctas, cta_for_issue, longdate
from pressroom.errors import DigestError, PressroomError, TemplateError
from pressroom.models import CallToAction, Issue, RenderedIssue, RenderedVariant, token

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
TEXT_WIDTH = 72

_DOCTYPE_RE = re.compile(r"^\s*<!doctype[^>]*>\s*", re.IGNORECASE)


# --- the Jinja environment ---------------------------------------------------------------


def environment(config: Config) -> jinja2.Environment:
    """Jinja environment: the publication's templates over the packaged defaults."""
    folders = [config.digest.templates, defaults.templates()]
    loaders = [jinja2.FileSystemLoader(str(f)) for f in dict.fromkeys(folders) if Path(f).is_dir()]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["longdate"] = longdate
    env.filters["on_colour"] = on_colour
    env.filters["wrap72"] = wrap72
    return env


def on_colour(background: str) -> str:
    """Black or white text, whichever reads better on ``background`` (#rgb or #rrggbb)."""
    h = background.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    try:
        r, g, b = (int(h[i : i + 2], 16) / 255 for i in (0, 2, 4))
    except ValueError:
        return "#ffffff"

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    luminance = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    # WCAG contrast against white vs against near-black
    return "#111111" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#ffffff"


def wrap72(text: str) -> str:
    """Wrap prose at 72 columns without ever breaking a word or URL."""
    return "\n".join(
        textwrap.fill(para, TEXT_WIDTH, break_long_words=False, break_on_hyphens=False)
        for para in str(text).splitlines()
    )


def _template_error(e: Exception, name: str) -> TemplateError:
    """A TemplateError that names the template file and line."""
    if isinstance(e, jinja2.TemplateSyntaxError):
        where = f"{_short(e.filename or e.name or name)}:{e.lineno}"
        return TemplateError(f"{where}: template syntax error: {e.message}")
    # jinja rewrites frames to point at template files and lines: the innermost one is where
    # the failing expression, include or import stands
    where = name
    tb = e.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{_short(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(e, jinja2.TemplateNotFound):
        return TemplateError(
            f"{where}: template {e.name} not found (looked in the publication's templates "
            "folder and the packaged defaults)"
        )
    if isinstance(e, UnicodeDecodeError):
        return TemplateError(
            f"{where}: a template used here is not UTF-8 text ({e.reason} at byte {e.start}); "
            "save it as UTF-8"
        )
    message = getattr(e, "message", None) or str(e)
    return TemplateError(f"{where}: template error: {message}")


def _short(filename: str) -> str:
    """A template path as the user would type it: relative to the current folder if inside."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return filename


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render template ``name``; any failure becomes a TemplateError naming file and line."""
    try:
        return env.get_template(name).render(context)
    except RecursionError as e:
        raise _include_loop(e, name) from None  # the chained traceback is 1,000 frames
    except PressroomError:
        raise  # a filter's own one-line error (a bad UTM setting) says it best
    except Exception as e:
        # A template is the publisher's code: whatever it raises ({{ a // 0 }}, a float too
        # big, an index out of range) is their template's error, named by file and line, not
        # a traceback. A listed handful of exception types let the others through.
        raise _template_error(e, name) from e


def _include_loop(e: RecursionError, name: str) -> TemplateError:
    """The templates that include (or extend, import) each other without end."""
    seen: dict[str, tuple[int, int]] = {}  # file -> (line, frames): the loop is what repeats
    tb = e.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            line, count = seen.get(filename, (tb.tb_lineno, 0))
            seen[filename] = (line, count + 1)
        tb = tb.tb_next
    where = [f"{_short(f)}:{line}" for f, (line, count) in seen.items() if count > 1] or [name]
    if len(where) == 1:
        return TemplateError(
            f"{where[0]}: the template includes itself without end; remove that include"
        )
    return TemplateError(
        f"{', '.join(where[:-1])} and {where[-1]}: these templates include each other without "
        "end; remove one of the includes"
    )


# --- rendering ---------------------------------------------------------------------------


def template_context(
    config: Config, issue: Issue, ctas: Iterable[CallToAction], number: int | None
) -> dict[str, Any]:
    """What the digest templates see; ``utm`` is popped off and installed as a filter."""
    shown = tuple(ctas)

    def ctas_at(position: str) -> list[CallToAction]:
        return [c for c in shown if c.position == position]

    def utm(url: str, content: str) -> str:
        return add_utm(url, config.digest.utm, number, content)

    return {
        "publication": config.publication,
        "issue": issue,
        "ctas": shown,
        "ctas_at": ctas_at,
        "utm": utm,
        "subscriber": {"name": token("name"), "email": token("email")},
        "unsubscribe_url": token("unsubscribe_url"),
        "preferences_url": token("preferences_url"),
        "view_online_url": token("view_online_url"),
        "archive_url": archive_url(config),
    }


def archive_url(config: Config) -> str:
    """Where the view-online copies are served (``digest.archive_url``)."""
    url = config.digest.archive_url or f"{config.publication.url}issues/"
    return url if url.endswith("/") else url + "/"


def render(issue: Issue, config: Config) -> RenderedIssue:
    """Render and inline ``issue`` once per audience variant; fields stay as tokens."""
    env = environment(config)
    hideable = [c for c in issue.ctas if c.hide_for_tags]
    variants = []
    for size in range(len(hideable) + 1):
        for hidden in itertools.combinations(hideable, size):
            names = frozenset(c.name for c in hidden)
            shown = [c for c in issue.ctas if c.name not in names]
            key = "all" if not names else "without:" + "+".join(sorted(names))
            variants.append(_render_variant(env, config, issue, shown, key, names))
    return RenderedIssue(
        number=issue.number,
        subject=issue.subject,
        preheader=issue.preheader,
        variants=tuple(variants),
        cta_hide_rules=tuple((c.name, c.hide_for_tags) for c in hideable),
    )


def _render_variant(
    env: jinja2.Environment,
    config: Config,
    issue: Issue,
    shown: list[CallToAction],
    key: str,
    hidden: frozenset[str],
) -> RenderedVariant:
    context = template_context(config, issue, shown, issue.number)
    env.filters["utm"] = context.pop("utm")  # the filter knows this issue's number
    html = inline(render_template(env, HTML_TEMPLATE, context))
    text = tidy_text(render_template(env, TEXT_TEMPLATE, context))
    return RenderedVariant(key=key, html=html, text=text, hidden_ctas=hidden)


def tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def inline(html: str) -> str:
    """premailer with the options a real email needs; restores ``<!doctype html>``."""
    import premailer  # (and cssutils, requests): only where CSS is inlined, not for feeds

    try:
        inliner = premailer.Premailer(
            html,
            allow_network=False,
            allow_loading_external_files=False,
            strip_important=False,
            keep_style_tags=False,  # inlinable rules go inline; @media stays in <style>
            exclude_pseudoclasses=True,
            disable_basic_attributes=["width", "height"],
            disable_validation=True,  # keep mso-* and color-scheme, which cssutils does not know
            cssutils_logging_level=logging.CRITICAL,
            remove_unset_properties=True,
            align_floating_images=False,
        )
        out: str = inliner.transform()
    except Exception as e:  # premailer raises bare lxml / cssutils errors
        raise DigestError(f"cannot inline the digest's CSS with premailer: {e}") from e
    # premailer keeps only an upper-case doctype; write the HTML5 one back
    return "<!doctype html>\n" + _DOCTYPE_RE.sub("", out, count=1)


# --- feeds -------------------------------------------------------------------------------


def feed_cta_html(config: Config) -> str | None:
    """The first support block as simple HTML for feed items (``feeds.cta``); None if none."""
    if not config.cta:
        return None
    check_ctas(config)
    cta = cta_for_issue(config.cta[0], 0, 1, 1)
    # A click from a feed reader is not a click from the email: keep the configured source
    # (and on/off switch) but say where it came from, or feed traffic counts as email.
    utm = dataclasses.replace(config.digest.utm, medium="feed")
    url = add_utm(cta.url, utm, None, cta.name)
    esc = Markup.escape
    text = f"<p>{esc(cta.text)}</p>" if cta.text else ""
    return (
        f'<aside class="pressroom-cta" data-cta="{esc(cta.name)}">'
        f"<p><strong>{esc(cta.headline)}</strong></p>{text}"
        f'<p><a href="{esc(url)}">{esc(cta.button)}</a></p></aside>'
    )
