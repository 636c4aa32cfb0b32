"""Shared by the subscriber and unsubscribe tests: a small publication in a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pressroom import config

HEADER = "email,name,lists,tags,status,subscribed_at\n"


def make_publication(root: Path, sending: str = "", subscribers_yaml: str = "") -> config.Config:
    """Write config.yaml (no article sources) and an empty subscribers/ folder; load it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "subscribers").mkdir(exist_ok=True)
    text = textwrap.dedent(
        """\
        publication:
          name: The Duran
          url: https://theduran.example/
        sending:
          list: weekly
        """
    )
    if sending:
        text += textwrap.indent(textwrap.dedent(sending), "  ")
    if subscribers_yaml:
        text += "subscribers:\n" + textwrap.indent(textwrap.dedent(subscribers_yaml), "  ")
    (root / "config.yaml").write_text(text, encoding="utf-8")
    return config.load(root / "config.yaml")


def write(path: Path, text: str) -> Path:
    """Write dedented CSV text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path
