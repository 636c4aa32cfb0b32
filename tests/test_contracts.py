"""The contracts the tests check against live in the repository, and CI never skips them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import CONTRACTS, REPO, REQUIRE_CONTRACTS, missing_contract


def test_every_contract_file_has_its_source_and_license_in_the_readme() -> None:
    readme = (CONTRACTS / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in CONTRACTS.iterdir() if p.name != "README.md")
    assert files == ["atom-rfc4287.rnc", "mailgun-openapi.yaml", "sendgrid-mail-v3.json"]
    for name in files:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and all(cells), row
        assert re.search(r"MIT|Apache-2\.0|BSD", cells[3]), row


def test_no_test_reads_from_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|parent / \"shared\"|parents\[\d\] / \"shared\"")
    hits = [
        f"{p.relative_to(REPO)}:{n}"
        for p in (REPO / "tests").rglob("*.py")
        if p.name != "test_contracts.py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert hits == []


def test_a_missing_contract_skips_on_a_laptop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(REQUIRE_CONTRACTS, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"gone\.yaml not found: restore it"):
        missing_contract(tmp_path / "gone.yaml", "restore it")


def test_a_missing_contract_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(REQUIRE_CONTRACTS, "1")
    with pytest.raises(pytest.fail.Exception, match="must not skip"):
        missing_contract(tmp_path / "gone.yaml", "restore it")


def test_ci_requires_the_contracts_and_runs_the_readme_command() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest -q"
    )
    assert command in readme
    assert script.rstrip().splitlines()[-1] == command
    assert script.index(f"export {REQUIRE_CONTRACTS}=1") < script.index(command)
