"""Shared fixtures: where the repo and ../shared are, and a scratch copy of the demo publication."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_report_header() -> str:
    if (SHARED / "provider-specs").is_dir():
        return f"provider contracts: {SHARED / 'provider-specs'}"
    return f"provider contracts: not found at {SHARED}; contract tests skip, fakes do not validate"


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found: CI runs with ../shared beside the clone")
    return SHARED


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A writable copy of the demo publication (config.yaml, content/, templates/, subscribers/)."""
    root = tmp_path / "demo"
    root.mkdir()
    shutil.copyfile(REPO / "config.yaml", root / "config.yaml")
    for folder in ("content", "templates", "subscribers"):
        shutil.copytree(REPO / folder, root / folder)
    return root
