"""Where the packaged defaults (templates, starter config, sample files) live.

The repository's top-level ``templates/``, ``subscribers/subscribers.csv`` and
``content/welcome-to-pressroom.md`` are the single copy; the wheel carries them as
``pressroom/defaults/`` (pyproject ``force-include``). In a source checkout (editable install)
they are read from the repository itself. ``starter/config.yaml`` (in the package) is the
config a new publication starts from.
"""

from __future__ import annotations

import os
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


STARTER_CONFIG = Path(__file__).parent / "starter" / "config.yaml"
SHARED_STARTERS = ("subscribers/subscribers.csv", "content/welcome-to-pressroom.md")


def starter_files() -> dict[str, Path]:
    """What ``pressroom init`` writes: path in the new publication -> the file to copy.

    The config is a neutral starter (placeholders, not the demo's identity); the example
    subscriber list, the sample article and the templates are the demo's own files.
    """
    src = root()
    files = {"config.yaml": STARTER_CONFIG}
    files.update({rel: src / rel for rel in SHARED_STARTERS})
    for path in sorted(templates().rglob("*")):
        if path.is_file():
            files[path.relative_to(src).as_posix()] = path
    return files


CONFIG_ENV = "PRESSROOM_CONFIG"  # where config.yaml is when --config is not given


def default_path() -> Path:
    """config.yaml in the current folder, or the file ``$PRESSROOM_CONFIG`` names."""
    return Path(os.environ.get(CONFIG_ENV) or "config.yaml")
