"""`pressroom init` scaffolds a publication from the packaged defaults, which then loads."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from click.testing import CliRunner

from pressroom import config, defaults
from pressroom.cli import main


def test_init_creates_a_publication_that_loads(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = CliRunner().invoke(main, ["init", str(site)])
    assert result.exit_code == 0, result.output
    assert (site / "config.yaml").read_text().startswith("#")  # commented
    assert (site / "subscribers" / "subscribers.csv").is_file()
    assert (site / "content" / "welcome-to-pressroom.md").is_file()
    shipped = sorted(
        p.relative_to(defaults.templates()) for p in defaults.templates().rglob("*") if p.is_file()
    )
    assert shipped, "no default templates found"
    for rel in shipped:
        assert (site / "templates" / rel).read_bytes() == (defaults.templates() / rel).read_bytes()
    cfg = config.load(site / "config.yaml")
    assert cfg.root == site.resolve()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "config.yaml").write_text("mine\n")
    result = CliRunner().invoke(main, ["init", str(site)])
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert (site / "config.yaml").read_text() == "mine\n"
    assert CliRunner().invoke(main, ["init", "--force", str(site)]).exit_code == 0
    assert (site / "config.yaml").read_text() != "mine\n"


def test_wheel_carries_the_top_level_templates(repo_root: Path, tmp_path: Path) -> None:
    """The wheel built from pyproject holds templates/ (the single copy) as pressroom/defaults/."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(repo_root),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("pressroom-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (repo_root / "templates").rglob("*"):
        if template.is_file():
            rel = template.relative_to(repo_root).as_posix()
            assert f"pressroom/defaults/{rel}" in names
    for rel in defaults.STARTER_FILES:
        assert f"pressroom/defaults/{rel}" in names
