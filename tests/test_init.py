"""`pressroom init` scaffolds a neutral publication from the packaged defaults, which works."""

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
    shipped = [p for p in defaults.templates().rglob("*") if p.is_file()]
    assert any(p.name == "digest.html.j2" for p in shipped)
    for path in shipped:
        rel = path.relative_to(defaults.templates())
        assert (site / "templates" / rel).read_bytes() == path.read_bytes()
    cfg = config.load(site / "config.yaml")
    assert cfg.root == site.resolve()
    # a new publication, not the demo's identity
    assert cfg.publication.name == "My Publication"
    assert "duran" not in (site / "config.yaml").read_text().lower()


def test_initialised_publication_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    site = tmp_path / "site"
    assert CliRunner().invoke(main, ["init", str(site)]).exit_code == 0
    monkeypatch.chdir(site)
    runner = CliRunner()
    # init dates the sample article today, so the real clock finds it in the first window
    feeds = runner.invoke(main, ["feeds"])
    assert feeds.exit_code == 0, feeds.output
    assert (site / "public" / "feeds" / "index.xml").is_file()
    preview = runner.invoke(main, ["digest", "preview", "--out", "preview"])
    assert preview.exit_code == 0, preview.output
    assert "Welcome to pressroom" in (site / "preview" / "issue-1.html").read_text()
    # the starter leaves the postal address empty on purpose: preflight refuses to send
    check = runner.invoke(main, ["digest", "check"])
    assert check.exit_code == 1
    assert "postal" in check.output.lower()


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


def test_wheel_carries_the_defaults(repo_root: Path, tmp_path: Path) -> None:
    """The wheel holds templates/ (the single copy) as pressroom/defaults/, and the starter."""
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
    for rel in defaults.SHARED_STARTERS:
        assert f"pressroom/defaults/{rel}" in names
    assert "pressroom/starter/config.yaml" in names
