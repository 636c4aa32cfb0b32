"""Shared fixtures: where the repo and its contracts are, and a scratch copy of the demo."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "tests" / "contracts"  # provider specs and schemas, see its README.md
# set by .ci/run: a contract or schema that is missing fails the test instead of skipping it
REQUIRE_CONTRACTS = "PRESSROOM_REQUIRE_CONTRACTS"


def pytest_report_header() -> str:
    strict = (
        "missing ones fail" if os.environ.get(REQUIRE_CONTRACTS) == "1" else "missing ones skip"
    )
    return f"contracts: {CONTRACTS} ({strict})"


def missing_contract(path: Path, hint: str) -> NoReturn:
    """Skip a test whose contract file is missing, or fail it under .ci/run."""
    message = f"{path} not found: {hint}"
    if os.environ.get(REQUIRE_CONTRACTS) == "1":
        pytest.fail(f"{message} ({REQUIRE_CONTRACTS}=1: a contract test must not skip)")
    pytest.skip(message)


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def contracts_dir() -> Path:
    """tests/contracts/, for the tests that validate requests against a provider's spec."""
    for name in ("sendgrid-mail-v3.json", "mailgun-openapi.yaml"):
        if not (CONTRACTS / name).is_file():
            missing_contract(CONTRACTS / name, "restore tests/contracts/ (see its README.md)")
    return CONTRACTS


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A writable copy of the demo publication (config.yaml, content/, templates/, subscribers/)."""
    root = tmp_path / "demo"
    root.mkdir()
    shutil.copyfile(REPO / "config.yaml", root / "config.yaml")
    for folder in ("content", "templates", "subscribers"):
        shutil.copytree(REPO / folder, root / folder)
    return root
