"""The public view-online archive: one page per issue that went out, and the index page.

The archive copy is filled with neutral values: it is public and carries no personal data.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Mapping
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
        # the page without a token asks for the link from the email (audience.tokens has the
        # same default; digest may not import audience)
        "preferences_url": config.sending.preferences_url
        or f"{(config.serve.url or config.publication.url).rstrip('/')}/preferences",
        "view_online_url": issue_url(config, number),
    }


def issue_url(config: Config, number: int) -> str:
    """The public view-online address of issue ``number``."""
    return f"{archive_url(config)}{number}/"


def write_archive(
    config: Config,
    rendered: RenderedIssue,
    *,
    went_out: Collection[int],
    date: datetime | None = None,
) -> list[Path]:
    """Write <archive>/<n>/index.html (no personal data) and the archive index page.

    The index lists the issues in ``went_out`` only (the ledger's sent issues, which the
    caller reads): a built issue has its page, for a look before sending, but is listed only
    once it went out (``write_index`` after the send).
    """
    folder = config.digest.archive
    variant = rendered.variants[0]  # "all": every block shown
    html = Personaliser(variant.html, is_html=True).fill(neutral_values(config, rendered.number))
    page = folder / str(rendered.number) / "index.html"
    write_atomic(page, html.encode("utf-8"))

    manifest_path = folder / MANIFEST
    issues = _manifest(manifest_path)
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
    write_atomic(index, archive_index(config, issues, went_out).encode("utf-8"))
    return [page, index]


def write_index(config: Config, went_out: Collection[int]) -> Path:
    """Rewrite the archive index page to list the issues in ``went_out`` (after a send)."""
    folder = config.digest.archive
    index = folder / "index.html"
    issues = _manifest(folder / MANIFEST)
    write_atomic(index, archive_index(config, issues, went_out).encode("utf-8"))
    return index


def _manifest(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    try:
        issues: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DigestError(
            f"{path}: cannot read the archive list: {e}; delete it and build again"
        ) from e
    return issues


def archive_index(
    config: Config, issues: Mapping[str, Mapping[str, str]], went_out: Collection[int]
) -> str:
    """The archive listing page of the issues that went out, newest first."""
    rows = []
    for number in sorted(issues, key=int, reverse=True):
        if int(number) not in went_out:
            continue  # built (its page exists) but not sent: not part of the archive yet
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
