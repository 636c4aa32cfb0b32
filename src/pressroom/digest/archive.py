"""The public view-online archive: one page per issue that went out, and the index page.

The archive copy is filled with neutral values: it is public and carries no personal data.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from pressroom.config import Config
from pressroom.digest.issue import longdate
from pressroom.digest.render import archive_url, environment, render_template
from pressroom.errors import DigestError
from pressroom.models import Personaliser, RenderedIssue

MANIFEST = "issues.json"


def neutral_values(config: Config, number: int) -> dict[str, str]:
    """Field values for the public copy: generic pages, no personal data."""
    unsubscribe = config.sending.unsubscribe_url or f"{config.publication.url}unsubscribe"
    return {
        "name": "reader",
        "email": "you",
        "unsubscribe_url": unsubscribe,
        "preferences_url": config.sending.preferences_url or unsubscribe,
        "view_online_url": issue_url(config, number),
    }


def issue_url(config: Config, number: int) -> str:
    """The public view-online address of issue ``number``."""
    return f"{archive_url(config)}{number}/"


def write_archive(
    config: Config, rendered: RenderedIssue, *, date: datetime | None = None
) -> list[Path]:
    """Write <archive>/<n>/index.html (no personal data) and the archive index page."""
    folder = config.digest.archive
    variant = rendered.variants[0]  # "all": every block shown
    html = Personaliser(variant.html, is_html=True).fill(neutral_values(config, rendered.number))
    page = folder / str(rendered.number) / "index.html"
    write_atomic(page, html.encode("utf-8"))

    manifest_path = folder / MANIFEST
    issues: dict[str, dict[str, str]] = {}
    if manifest_path.exists():
        try:
            issues = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DigestError(
                f"{manifest_path}: cannot read the archive list: {e}; delete it and build again"
            ) from e
    entry = {"subject": rendered.subject, "preheader": rendered.preheader}
    if date is not None:
        entry["date"] = date.date().isoformat()
    elif str(rendered.number) in issues and "date" in issues[str(rendered.number)]:
        entry["date"] = issues[str(rendered.number)]["date"]
    issues[str(rendered.number)] = entry
    write_atomic(
        manifest_path, (json.dumps(issues, indent=2, sort_keys=True) + "\n").encode("utf-8")
    )
    index = folder / "index.html"
    write_atomic(index, archive_index(config, issues).encode("utf-8"))
    return [page, index]


def archive_index(config: Config, issues: Mapping[str, Mapping[str, str]]) -> str:
    """The archive listing page, newest issue first (template ``archive.html.j2``)."""
    rows = []
    for number in sorted(issues, key=int, reverse=True):
        e = issues[number]
        day = e.get("date")
        rows.append(
            {
                "number": int(number),
                "subject": e.get("subject", ""),
                "preheader": e.get("preheader", ""),
                "date": longdate(datetime.fromisoformat(day)) if day else "",
                "url": f"{number}/",
            }
        )
    return render_template(
        environment(config),
        "archive.html.j2",
        {"publication": config.publication, "issues": rows},
    )


def write_atomic(path: Path, data: bytes) -> None:
    """Write atomically, so a browser or server never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise cannot_write(path, e) from e


def cannot_write(path: Path, e: OSError) -> DigestError:
    # A read-only or missing mount (or a typo in the folder) is the editor's to fix: one
    # line naming both places the folder comes from, not a traceback.
    return DigestError(f"{path}: cannot write: {e.strerror or e}; check --out / digest.archive")
