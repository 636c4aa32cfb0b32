"""Shared by the delivery tests: a publication, a rendered issue, subscribers and a ledger."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pressroom import config as config_mod
from pressroom.delivery.providers.base import (
    NO_WIRE,
    Content,
    Outcome,
    Provider,
    Recipient,
    SendResult,
    Wire,
)
from pressroom.models import RenderedIssue, RenderedVariant, token

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
HEADER = "email,name,lists,tags,status,subscribed_at\n"


def make_config(root: Path, sending: str = "", extra: str = "") -> config_mod.Config:
    """A publication in ``root`` with no article sources; ``sending`` lines go under sending:."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "subscribers").mkdir(exist_ok=True)
    text = textwrap.dedent(
        """\
        publication:
          name: The Duran
          url: https://theduran.example/
          postal_address: 1 Example Street, London
        sending:
          from: The Duran <newsletter@theduran.example>
          reply_to: editor@theduran.example
          list: weekly
          unsubscribe_url: https://theduran.example/unsubscribe
          unsubscribe_mailto: unsubscribe@theduran.example
        """
    )
    if sending:
        # a key given by the test replaces the default line (a repeated key is a config error)
        given = textwrap.dedent(sending)
        keys = {line.split(":", 1)[0] for line in given.splitlines() if line and line[0] != " "}
        head, _, defaults = text.partition("sending:\n")
        kept = [ln for ln in defaults.splitlines(keepends=True) if ln[2:].split(":")[0] not in keys]
        text = head + "sending:\n" + "".join(kept)
        text += textwrap.indent(given, "  ")
    text += "state: state\nreports: reports\noutbox: outbox\n" + textwrap.dedent(extra)
    (root / "config.yaml").write_text(text, encoding="utf-8")
    return config_mod.load(root / "config.yaml")


def write_subscribers(root: Path, rows: Sequence[str] | int, name: str = "subscribers.csv") -> Path:
    """Write a subscriber CSV: explicit rows, or ``n`` generated readers."""
    if isinstance(rows, int):
        rows = [f"reader{i:06d}@example.org,Reader {i},weekly,,active," for i in range(rows)]
    path = root / "subscribers" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def rendered_issue(number: int = 7, *, subject: str | None = None) -> RenderedIssue:
    """A two-variant rendered issue with every field token in both parts."""

    def html(cta: bool) -> str:
        block = (
            '<p class="cta"><a href="https://www.patreon.com/x">Support us</a></p>' if cta else ""
        )
        return (
            '<!doctype html><html lang="en"><body>'
            f"<p>Hello {token('name')} ({token('email')})</p>"
            + "<p>Ünïcode “quotes” and a very long paragraph that goes on. </p>\n" * 50
            + block
            + f'<a href="{token("view_online_url")}">View online</a> '
            f'<a href="{token("preferences_url")}">Preferences</a> '
            f'<a href="{token("unsubscribe_url")}">Unsubscribe</a></body></html>'
        )

    def text(cta: bool) -> str:
        return (
            f"Hello {token('name')}\n\n"
            + "A line of text that is long enough to need a soft break in QP. " * 3
            + "\n"
            + ("Support us: https://www.patreon.com/x\n" if cta else "")
            + f"View online: {token('view_online_url')}\n"
            f"Unsubscribe: {token('unsubscribe_url')}\n"
        )

    return RenderedIssue(
        number=number,
        subject=subject or f"The Duran weekly #{number}: Ünïcode news",
        preheader="The week in brief",
        variants=(
            RenderedVariant("all", html(True), text(True)),
            RenderedVariant("without:patreon", html(False), text(False), frozenset({"patreon"})),
        ),
        cta_hide_rules=(("patreon", frozenset({"patron"})),),
    )


class ScriptedProvider(Provider):
    """A recording provider whose answers a test scripts per email (a fake, not a mock).

    ``script[email]`` is a list of outcomes consumed one per attempt (the last one repeats);
    unscripted recipients are accepted. ``accepted`` counts acceptances per email. A batch
    is one request: announced to the wire before it "goes out", settled after.
    """

    name = "scripted"
    Settings = dict
    max_batch = 10

    def __init__(
        self,
        script: dict[str, list[SendResult | Exception]] | None = None,
        max_batch: int = 10,
        delay: float = 0.0,
    ) -> None:
        super().__init__({})
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.max_batch = max_batch  # type: ignore[misc]
        self.delay = delay
        self.accepted: dict[str, int] = {}
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    def open(self, content: Content) -> None:
        self.content = content

    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        import time

        wire.sending(batch)
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.batches.append([r.email for r in batch])
        try:
            if self.delay:
                time.sleep(self.delay)
            out = []
            for r in batch:
                steps = self.script.get(r.email)
                step: SendResult | Exception | None = None
                if steps:
                    step = steps.pop(0) if len(steps) > 1 else steps[0]
                if isinstance(step, Exception):
                    raise step
                if step is None or step.outcome is Outcome.SENT:
                    with self.lock:
                        self.accepted[r.email] = self.accepted.get(r.email, 0) + 1
                    out.append(SendResult(r.email, Outcome.SENT, message_id=f"<{r.email}>"))
                else:
                    out.append(
                        SendResult(
                            r.email, step.outcome, None, step.error, step.retry_after, step.suppress
                        )
                    )
            wire.settled(out)
            return out
        finally:
            with self.lock:
                self.active -= 1
