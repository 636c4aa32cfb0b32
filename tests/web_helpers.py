"""Shared by the web app tests: the real waitress server on 127.0.0.1 in a thread."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pressroom import config
from pressroom.config import Config
from pressroom.web import serve
from tests.browser_helpers import in_thread


@contextmanager
def running(app: Any, threads: int = 4) -> Iterator[str]:
    """``app`` under waitress (``pressroom serve``'s server) on a free port; yields its URL."""

    def run(ready: Any, stop: threading.Event) -> None:
        serve.serve(app, "127.0.0.1", 0, threads, ready, stop)

    with in_thread(run, "web-under-test") as url:
        yield url


SIGNUP_CONFIG = """\
publication:
  name: The Duran
  url: https://theduran.example/
  postal_address: The Duran, 1 Example Street, London EC1A 1AA
sending:
  list: weekly
  from: The Duran <news@theduran.example>
  reply_to: editor@theduran.example
lists:
  weekly:
    title: The Duran weekly
    description: The week's stories, every Wednesday.
  breaking:
    title: Breaking news
    description: Rarely; only when it matters.
"""


def signup_publication(root: Path, extra: str = "", subscribers_csv: str = "") -> Config:
    """A publication with lists, a postal address and the file provider; loaded."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "subscribers").mkdir(exist_ok=True)
    (root / "config.yaml").write_text(SIGNUP_CONFIG + extra, encoding="utf-8")
    if subscribers_csv:
        (root / "subscribers" / "subscribers.csv").write_text(subscribers_csv, encoding="utf-8")
    return config.load(root / "config.yaml")


def mails(pub: Config) -> list[EmailMessage]:
    """The messages in outbox/transactional/, oldest first."""
    folder = pub.outbox / "transactional"
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    out = []
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def link(msg: EmailMessage, path: str) -> str:
    """The token of the first ``…/<path>?t=TOKEN`` link in the text part."""
    m = re.search(rf"https?://\S+/{path}\?t=([\w.-]+)", text_of(msg))
    assert m, f"no /{path} link in:\n{text_of(msg)}"
    return m.group(1)
