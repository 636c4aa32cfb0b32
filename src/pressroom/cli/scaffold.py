"""`pressroom init`: scaffold a new publication from the packaged defaults."""

from __future__ import annotations

import json
import posixpath
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pressroom import defaults
from pressroom.cli.app import App, Folder, pass_app
from pressroom.errors import UsageError

if TYPE_CHECKING:  # the content stage loads with `init --from`, not with --help
    from pressroom.content import sites

# Literal so `pressroom --help` loads no content reader (tests/test_startup.py checks it
# against content.sites.READERS).
GENERATORS = ("eleventy", "hugo", "jekyll", "pelican")
PUBLICATION_FOLDER = "pressroom"  # where `init --from` puts the publication, inside the site


@click.command("init")
@click.argument("directory", type=Folder())
@click.option("--force", is_flag=True, help="Overwrite files that already exist in DIRECTORY.")
@click.option(
    "--from",
    "generator",
    type=click.Choice(GENERATORS),
    help="DIRECTORY is an existing site of this generator: read it as it is (the "
    "publication goes into DIRECTORY/pressroom/).",
)
@pass_app
def init(app: App, directory: Path, force: bool, generator: str | None) -> None:
    """Create a new publication in DIRECTORY.

    Writes a commented config.yaml, the default templates (edit them to restyle the
    digest), an example subscriber list and one sample article. Existing files are left
    alone unless --force is given.

    With --from, DIRECTORY is an existing Hugo, Jekyll, Pelican or Eleventy site: the
    publication is written to DIRECTORY/pressroom/ with a config.yaml whose sources read the
    site's content folder with the site's permalink rule, and whose publication name, URL
    and time zone come from the site's own config.

    \b
    Example:
        pressroom init my-site
        cd my-site && pressroom feeds
        pressroom init --from hugo ~/sites/blog
        cd ~/sites/blog/pressroom && pressroom articles
    """
    if generator is not None:
        _init_from(app, generator, directory, force)
        return
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


def _init_from(app: App, generator: str, site: Path, force: bool) -> None:
    from pressroom.content import sites

    info = sites.read_site(generator, site)
    target = site / PUBLICATION_FOLDER
    files = {k: v for k, v in defaults.starter_files().items() if not k.startswith("content/")}
    clashes = [rel for rel in files if (target / rel).exists()]
    if clashes and not force:
        raise UsageError(f"{target / clashes[0]} already exists; remove {target} or pass --force")
    try:
        for rel, source in files.items():
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if rel == "config.yaml":
                out.write_text(site_config(info, source.read_text(encoding="utf-8")), "utf-8")
            else:
                shutil.copyfile(source, out)
            app.debug(f"wrote {out}")
    except OSError as e:
        raise UsageError(f"{target}: cannot write: {e.strerror}; check the folder") from e
    app.info(f"created a publication for the {generator} site {site} in {target}")
    for note in info.notes:
        app.warn(f"check: {note}")
    app.out("next steps:")
    app.out(f"  cd {target}")
    app.out("  pressroom articles   # the site's posts, with the links the site serves")
    app.out("  pressroom feeds && pressroom digest preview --open")


def site_config(info: sites.SiteInfo, starter: str) -> str:
    """The starter config.yaml with the site's publication settings and sources."""

    def setting(key: str, value: str | None, text: str) -> str:
        if value is None:
            return text
        quoted = json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML string
        return re.sub(
            rf"(?m)^  {key}: [^#\n]*?( *#.*)?$",
            lambda m: f"  {key}: {quoted}{m.group(1) or ''}",
            text,
            count=1,
        )

    text = setting("name", info.name, starter)
    text = setting("url", info.url, text)
    text = setting("timezone", info.timezone, text)
    text = setting("language", info.language, text)
    text = setting("description", info.description, text)
    lines = [f"# Read from the {info.generator} site one folder up, as it is.", "sources:"]
    for entry in info.sources:
        # entry.path is relative to the site, config.yaml one folder below it; str.strip("./")
        # ate the dots of "../shared/content" and ".posts" and the "/" of an absolute path
        path = posixpath.normpath(posixpath.join("..", entry.path.replace("\\", "/")))
        lines += ["  - type: files", f"    path: {json.dumps(path)}"]
        lines.append(f"    permalink: {json.dumps(entry.permalink)}")
        if entry.exclude:
            lines.append(f"    exclude: {json.dumps(entry.exclude)}")
        if entry.slug_from:
            lines.append(f"    slug_from: {entry.slug_from}")
        if entry.folder_category:
            lines.append("    folder_category: true")
        if entry.excerpt_separator:
            lines.append(f"    excerpt_separator: {json.dumps(entry.excerpt_separator)}")
    start = text.index("\n# Where articles come from")
    end = text.index("\nfeeds:")
    return text[: start + 1] + "\n".join(lines) + "\n" + text[end:]


COMMANDS: list[click.Command] = [init]
