"""Where the packaged defaults (templates, starter config, sample files) live.

The repository's top-level ``templates/``, ``config.yaml``, ``subscribers/subscribers.csv`` and
``content/welcome-to-pressroom.md`` are the single copy; the wheel carries them as
``pressroom/defaults/`` (pyproject ``force-include``). In a source checkout (editable install)
they are read from the repository itself.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).parent / "defaults"
_CHECKOUT = Path(__file__).resolve().parents[2]


def root() -> Path:
    """The folder holding ``templates/``, ``config.yaml`` and the starter files."""
    if (_PACKAGED / "templates").is_dir():
        return _PACKAGED
    return _CHECKOUT


def templates() -> Path:
    return root() / "templates"


STARTER_FILES = (
    "config.yaml",
    "subscribers/subscribers.csv",
    "content/welcome-to-pressroom.md",
)
