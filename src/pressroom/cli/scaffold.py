"""`pressroom init`: scaffold a new publication from the packaged defaults."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
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
    files = defaults.starter_files()
    clashes = [rel for rel in files if (directory / rel).exists()]
    if clashes and not force:
        raise UsageError(
            f"{directory / clashes[0]} already exists; pick an empty directory or pass --force"
        )
    try:
        for rel, source in files.items():
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            app.debug(f"wrote {target}")
    except OSError as e:
        raise UsageError(f"{directory}: cannot write: {e.strerror}; pick another DIR") from e
    # date the sample article today, so the first preview of a new publication has an issue
    sample = directory / "content" / "welcome-to-pressroom.md"
    today = datetime.now(UTC).replace(microsecond=0).isoformat()
    sample.write_text(
        re.sub(r"(?m)^date: .*$", f"date: {today}", sample.read_text(encoding="utf-8"), count=1),
        encoding="utf-8",
    )
    app.info(f"created a publication in {directory} ({len(files)} files)")
    app.out("next steps:")
    app.out(f"  cd {directory}")
    app.out("  edit config.yaml (publication name, url, postal address, support links)")
    app.out("  pressroom feeds && pressroom digest preview --open")


COMMANDS: list[click.Command] = [init]
