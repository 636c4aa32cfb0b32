"""`pressroom init`: scaffold a new publication from the packaged defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from pressroom import defaults
from pressroom.cli.app import App, pass_app
from pressroom.errors import UsageError


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist in DIRECTORY.")
@pass_app
def init(app: App, directory: Path, force: bool) -> None:
    """Create a new publication in DIRECTORY.

    Writes a commented config.yaml, the default templates (edit them to restyle the
    digest), an example subscriber list and one sample article. Existing files are left
    alone unless --force is given.

    \b
    Example:
        pressroom init my-site
        cd my-site && pressroom feeds
    """
    src = defaults.root()
    wanted = [Path(p) for p in defaults.STARTER_FILES]
    wanted += [p.relative_to(src) for p in sorted((src / "templates").rglob("*")) if p.is_file()]
    clashes = [p for p in wanted if (directory / p).exists()]
    if clashes and not force:
        raise UsageError(
            f"{directory / clashes[0]} already exists; pick an empty directory or pass --force"
        )
    for rel in wanted:
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)
        app.debug(f"wrote {target}")
    app.info(f"created a publication in {directory} ({len(wanted)} files)")
    app.out("next steps:")
    app.out(f"  cd {directory}")
    app.out("  edit config.yaml (publication name, url, postal address, support links)")
    app.out("  pressroom feeds && pressroom digest preview --open")


COMMANDS: list[click.Command] = [init]
