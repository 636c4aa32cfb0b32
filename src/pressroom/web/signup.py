"""Double opt-in: ``/subscribe`` sends a signed confirmation link, ``/confirm`` adds the reader.

``POST /subscribe`` answers the same "check your inbox" page whatever the address's standing
(new, active, pending, unsubscribed, bounced, complained, over a limit, a bot in the
honeypot), so the form reveals nothing about who is on the list; and everything that
depends on the address (limits, standing, the mail) runs on a worker thread after the
answer, so neither does the time the answer takes. Only new, active, pending
and unsubscribed addresses get a mail, and only within the limits (``signup.per_address``
per ``signup.address_window``, ``signup.per_ip`` per ``signup.ip_window``). ``GET
/confirm`` changes nothing (mail scanners fetch links); ``POST /confirm`` writes.
"""

from __future__ import annotations

import email.utils
import logging
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from pressroom.audience import signups, subscribers
from pressroom.audience.tokens import SignupRequest, app_url, confirm_url
from pressroom.config import ListConfig
from pressroom.delivery.providers.base import Outcome
from pressroom.delivery.transactional import Mailer
from pressroom.digest import preflight
from pressroom.digest.render import render_template, tidy_text
from pressroom.errors import PreflightError, PressroomError, TokenError, TokenExpired
from pressroom.models import RenderedIssue, RenderedVariant, token
from pressroom.textpolicy import no_formula, one_line
from pressroom.web.app import over_page_limit

if TYPE_CHECKING:
    from pressroom.config import Config
    from pressroom.web.app import Site

log = logging.getLogger("pressroom.web")

HONEYPOT = "website"  # a field people never see; bots fill every field
MAX_NAME = 100
# signups waiting for the worker: a flood of posts must not grow memory (or delay every real
# reader's mail by hours) without end; past this many, a signup is dropped like one over a
# limit (same answer; the reader simply submits again)
MAX_QUEUED = 1000
# what preflight checks only a bulk issue needs
_BULK_ONLY = frozenset({"no-unsubscribe", "no-preheader", "cta-missing"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class SignupState:
    """What the signup routes keep between requests: the limits, the mailer, why signups
    are closed (None: open), and the worker that does everything that depends on who the
    address is, after the answer went out."""

    limits: signups.Limits
    mailer: Mailer
    closed: str | None = None
    jobs: queue.Queue[Callable[[], None]] = field(
        default_factory=lambda: queue.Queue(maxsize=MAX_QUEUED)
    )
    _worker: threading.Thread | None = None
    _start: threading.Lock = field(default_factory=threading.Lock)

    def later(self, job: Callable[[], None]) -> bool:
        """Run ``job`` on the worker thread (started on first use: after a server forks);
        False when ``MAX_QUEUED`` signups are already waiting (the job is dropped)."""
        with self._start:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="signup-mail", daemon=True)
                self._worker.start()
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                job()
            except Exception as e:  # one signup's failure must not stop the worker
                log.error("signup: %s: %s", type(e).__name__, getattr(e, "message", e))
            finally:
                self.jobs.task_done()

    def wait(self) -> None:
        """Block until every queued signup is handled (tests, a clean shutdown)."""
        self.jobs.join()


def setup(site: Site, mailer: Mailer | None = None) -> None:
    """Prepare the signup routes. A confirmation mail that fails preflight, or a provider
    that cannot be built, closes signups (``closed_because``); the other pages still work,
    so an unsubscribe link never breaks because of the signup form."""
    config = site.config
    state = SignupState(
        limits=signups.Limits(config.state / "signups.db", site.tokens.secret),
        mailer=mailer or Mailer(config),
    )
    site.extras["signup"] = state
    sample = SignupRequest("reader@example.com", "Reader", frozenset({config.sending.list}))
    try:
        subject, html, text = confirmation_email(site, sample, "SAMPLE.TOKEN")
        check_email(config, "web/confirm_email", subject, html, text, bulk=False)
        if config.signup.welcome:
            subject, html, text = welcome_email(site, sample)
            check_email(config, "web/welcome_email", subject, html, text, bulk=True)
        state.mailer.provider()
    except PressroomError as e:
        state.closed = e.message  # the caller says it (`pressroom serve`, `create`)


def check_email(config: Config, name: str, subject: str, html: str, text: str, bulk: bool) -> None:
    """The digest's preflight rules that apply to a one-off mail; PreflightError on errors."""
    rendered = RenderedIssue(0, subject, "", (RenderedVariant("all", html, text),))
    errors = [
        f
        for f in preflight.check(rendered, config)
        if f.level == "error" and (bulk or f.code not in _BULK_ONLY)
    ]
    if errors:
        raise PreflightError(
            f"{name}.html.j2 / .txt.j2: {errors[0].code}: {errors[0].message}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
        )


def offered_lists(config: Config) -> dict[str, ListConfig]:
    """The lists on the form: ``lists:``, with the digest's list first (added if missing)."""
    chosen = config.sending.list
    default = ListConfig(title=f"{config.publication.name} ({chosen})")
    out = {chosen: config.lists.get(chosen, default)}
    out.update({k: v for k, v in config.lists.items() if k != chosen})
    return out


def in_order(site: Site, lists: frozenset[str]) -> list[str]:
    """``lists`` in the form's order (the digest's list first), unknown names last."""
    offered = list(offered_lists(site.config))
    return sorted(lists, key=lambda n: (offered.index(n) if n in offered else len(offered), n))


def editor_address(config: Config) -> str:
    """Where readers write to the editor: ``sending.reply_to``, else the From address."""
    return email.utils.parseaddr(config.sending.reply_to or config.sending.from_)[1]


def embed_snippet(config: Config) -> str:
    """A plain HTML form a publisher pastes into their site; it posts to ``/subscribe``."""
    action = f"{app_url(config)}subscribe"
    chosen = config.sending.list
    return (
        f'<form method="post" action="{action}">\n'
        f'  <label for="pr-email">Email</label>\n'
        f'  <input id="pr-email" type="email" name="email" required autocomplete="email">\n'
        f'  <input type="hidden" name="list" value="{chosen}">\n'
        f'  <div style="position:absolute;left:-10000px" aria-hidden="true">\n'
        f'    <input type="text" name="{HONEYPOT}" tabindex="-1" autocomplete="off">\n'
        f"  </div>\n"
        f'  <button type="submit">Subscribe</button>\n'
        f"</form>"
    )


def finish(site: Site) -> None:
    """Handle the signups still queued (the server is stopping)."""
    _state(site).wait()


def closed_because(site: Site) -> str | None:
    """Why signups are closed (a broken confirmation mail, a provider), or None."""
    return _state(site).closed


def _state(site: Site) -> SignupState:
    state: SignupState = site.extras["signup"]
    return state


def _clean_name(raw: str) -> str:
    """A name from a form under the text policy, cut to ``MAX_NAME`` (what the cut leaves
    open is closed again), without what would start a spreadsheet formula
    (``=HYPERLINK(…)`` in subscribers.csv runs when the publisher opens the file)."""
    return one_line(no_formula(one_line(_CONTROL.sub(" ", raw)))[:MAX_NAME])


def _masked(address: str) -> str:
    """``a***@example.com``: enough for the log to tell events apart, not the address."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


# --- /subscribe ---------------------------------------------------------------------------


def subscribe(site: Site, request: Request) -> Response:
    """``GET`` shows the form; ``POST`` sends a confirmation link (same answer for everyone)."""
    if _state(site).closed:
        return site.page(request, "signup_closed", 503, editor=editor_address(site.config))
    offered = offered_lists(site.config)
    if request.method != "POST":
        return _form(site, request, offered, {site.config.sending.list}, "", "", None)
    raw_email = request.form.get("email", "").strip()
    name = _clean_name(request.form.get("name", ""))
    chosen = {v for v in request.form.getlist("list") if v in offered}
    try:
        address = subscribers.normalise_email(raw_email)
    except ValueError:
        error = (
            "Enter an email address like name@example.com."
            if raw_email
            else ("Enter your email address.")
        )
        return _form(site, request, offered, chosen, raw_email, name, error, status=400)
    if not chosen:
        error = "Choose at least one list."
        return _form(site, request, offered, chosen, raw_email, name, error, status=400)
    if request.form.get(HONEYPOT, ""):
        log.warning("signup: honeypot field filled; no mail sent (%s)", _masked(address))
    else:
        # the limits, the address's standing and the mail are looked at after the answer,
        # so neither the page nor the time it takes says anything about the address
        wanted = SignupRequest(address, name, frozenset(chosen))
        client, now = request.remote_addr or "", site.clock()
        if not _state(site).later(lambda: _maybe_send(site, client, wanted, now)):
            log.warning(
                "signup: %d signups already waiting; this one dropped, no mail (%s)",
                MAX_QUEUED,
                _masked(address),
            )
    return site.page(request, "check_inbox", email=address, editor=editor_address(site.config))


def _form(
    site: Site,
    request: Request,
    offered: dict[str, ListConfig],
    chosen: set[str],
    email_value: str,
    name: str,
    error: str | None,
    status: int = 200,
) -> Response:
    return site.page(
        request,
        "subscribe",
        status,
        lists=offered,
        chosen=chosen,
        email=email_value,
        name=name,
        error=error,
        honeypot=HONEYPOT,
    )


def _maybe_send(site: Site, client: str, wanted: SignupRequest, now: datetime) -> None:
    """Send the confirmation mail when the address may get one and no limit is hit."""
    config = site.config
    state = _state(site)
    who = _masked(wanted.email)
    s = config.signup
    if not state.limits.take("ip", signups.client_key(client), s.per_ip, s.ip_window, now):
        log.warning("signup: limit of %d per client address reached; no mail (%s)", s.per_ip, who)
        return
    standing = signups.standing(config, wanted.email)
    if standing in signups.NOT_READDED:
        log.warning("signup: %s address is not re-added by the form; no mail (%s)", standing, who)
        return
    if not state.limits.take(
        "email", signups.mailbox_key(wanted.email), s.per_address, s.address_window, now
    ):
        log.warning(
            "signup: limit of %d mails per address reached; no mail (%s)", s.per_address, who
        )
        return
    link_token = site.tokens.confirm(wanted.email, wanted.name, wanted.lists)
    subject, html, text = confirmation_email(site, wanted, link_token)
    result = state.mailer.send(
        to=wanted.email,
        name=wanted.name,
        subject=subject,
        html=html,
        text=text,
        kind="signup-confirm",
        now=now,
    )
    if result.outcome is not Outcome.SENT:
        log.error(
            "signup: the confirmation mail was not sent (%s): %s",
            who,
            result.error or result.outcome.value,
        )


def _email_context(site: Site, lists: frozenset[str]) -> dict[str, Any]:
    offered = offered_lists(site.config)
    return {
        "publication": site.config.publication,
        "subscriber": {"name": token("name"), "email": token("email")},
        "lists": [
            offered[n] if n in offered else ListConfig(title=n) for n in in_order(site, lists)
        ],
        "editor": editor_address(site.config),
    }


def confirmation_email(site: Site, wanted: SignupRequest, link_token: str) -> tuple[str, str, str]:
    """(subject, html, text) of the confirmation mail; the address is filled in per message."""
    days = max(1, round(site.config.signup.confirm_expiry.total_seconds() / 86400))
    context = {
        **_email_context(site, wanted.lists),
        "confirm_url": confirm_url(site.config, link_token),
        "expiry_days": days,
    }
    return _render_email(site, "web/confirm_email", context)


def welcome_email(site: Site, wanted: SignupRequest) -> tuple[str, str, str]:
    """(subject, html, text) of the optional welcome mail (``signup.welcome``)."""
    context = {
        **_email_context(site, wanted.lists),
        "unsubscribe_url": token("unsubscribe_url"),
        "preferences_url": token("preferences_url"),
    }
    return _render_email(site, "web/welcome_email", context)


def _render_email(site: Site, name: str, context: dict[str, Any]) -> tuple[str, str, str]:
    subject = render_template(site.templates, f"{name}.subject.j2", context).strip()
    html = render_template(site.templates, f"{name}.html.j2", context)
    text = tidy_text(render_template(site.templates, f"{name}.txt.j2", context))
    return " ".join(subject.split()), html, text


# --- /confirm ---------------------------------------------------------------------------------


def confirm(site: Site, request: Request) -> Response:
    """``GET`` shows one Confirm button and changes nothing; ``POST`` adds the reader."""
    link_token = request.args.get("t", "") or request.form.get("t", "")
    try:
        wanted = site.tokens.verify_confirm(link_token.strip())
    except TokenExpired:
        return site.page(request, "confirm_bad", 400, expired=True)
    except TokenError:
        return site.page(request, "confirm_bad", 400, expired=False)
    try:
        subscribers.normalise_email(wanted.email)
    except ValueError:
        # a link made before the address checker changed (links live for days): it names an
        # address that can no longer be added; no button that would fail
        log.warning(
            "confirm: the address in the link is no longer accepted (%s)", _masked(wanted.email)
        )
        return site.page(request, "confirm_bad", 400, expired=False)
    offered = offered_lists(site.config)
    titles = [offered[n].title if n in offered else n for n in in_order(site, wanted.lists)]
    if request.method != "POST":
        return site.page(
            request, "confirm", email=wanted.email, lists=titles, token=link_token.strip()
        )
    over_page_limit(site, request)  # what follows reads and rewrites the subscriber files
    now = site.clock()
    outcome = signups.confirm(
        site.config,
        # the name again under today's rules: a link made by an older version still carries
        # the name as it was typed (a spreadsheet formula, say)
        signups.Signup(
            wanted.email, _clean_name(wanted.name), wanted.lists, now, asked_at=wanted.issued
        ),
    )
    if outcome is signups.Confirmed.STALE:
        # the reader unsubscribed after this link was sent: it is spent, like an expired one
        log.warning("confirm: a link older than the unsubscribe (%s)", _masked(wanted.email))
        return site.page(request, "confirm_bad", 400, expired=True)
    if outcome is signups.Confirmed.REFUSED:
        log.warning(
            "confirm: a bounced or complained address was not re-added (%s)", _masked(wanted.email)
        )
        return site.page(request, "refused", email=wanted.email, editor=editor_address(site.config))
    log.info("confirm: %s (%s)", outcome.value, _masked(wanted.email))
    if site.config.signup.welcome and outcome is not signups.Confirmed.UPDATED:
        _send_welcome(site, wanted, now)
    prefs = site.tokens.preferences.token(wanted.email)
    return site.page(
        request,
        "welcome",
        email=wanted.email,
        lists=titles,
        preferences=f"{request.script_root}/preferences?t={prefs}",
    )


def _send_welcome(site: Site, wanted: SignupRequest, now: Any) -> None:
    from pressroom.audience.tokens import preferences_url, unsubscribe_url

    config = site.config
    subject, html, text = welcome_email(site, wanted)
    fields = {
        "unsubscribe_url": unsubscribe_url(
            config, site.tokens.unsubscribe.token(wanted.email, config.sending.list)
        ),
        "preferences_url": preferences_url(config, site.tokens.preferences.token(wanted.email)),
    }
    result = _state(site).mailer.send(
        to=wanted.email,
        name=wanted.name,
        subject=subject,
        html=html,
        text=text,
        kind="signup-welcome",
        now=now,
        fields=fields,
    )
    if result.outcome is not Outcome.SENT:
        log.error(
            "confirm: the welcome mail was not sent (%s): %s",
            _masked(wanted.email),
            result.error or result.outcome.value,
        )
