"""Preview files (HTML, text, .eml as one subscriber gets them) and the view-online archive.

The bytes are the rendered issue's own, with the field tokens filled exactly as delivery
fills them (``pressroom.message``), so what the editor previews is what subscribers get.
The archive copy is filled with neutral values instead: it is public and carries no
personal data.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pressroom.config import Config
from pressroom.errors import DigestError, UsageError
from pressroom.issue import longdate
from pressroom.models import RenderedIssue, Subscriber
from pressroom.personalise import Personaliser
from pressroom.render import archive_url, environment, render_template

if TYPE_CHECKING:
    from pressroom.digest import Prepared

PREVIEW_SUBSCRIBER = Subscriber(email="reader@example.com", name="Reader")
MANIFEST = "issues.json"


def write_files(
    config: Config,
    prepared: Prepared,
    out_dir: Path,
    as_email: str | None,
    *,
    env: Mapping[str, str] | None = None,
    info: Any = None,
) -> list[Path]:
    """Write issue-N.html, issue-N.txt and issue-N.eml for one subscriber; return the paths."""
    from pressroom import message, unsubscribe

    rendered = prepared.rendered
    subscriber = find_subscriber(config, as_email)
    secret = unsubscribe.load_secret(config, os.environ if env is None else env, info or _quiet)
    signer = unsubscribe.Signer(secret)
    recipient = message.recipient_for(config, rendered, signer, subscriber)
    variant = next(v for v in rendered.variants if v.key == recipient.variant)
    html = Personaliser(variant.html, is_html=True).fill(recipient.fields)
    text = Personaliser(variant.text, is_html=False).fill(recipient.fields)
    eml = message.build(message.content_for(config, rendered, now=prepared.issue.date), recipient)

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cannot_write(out_dir, e) from e
    stem = out_dir / f"issue-{rendered.number}"
    paths = [stem.with_suffix(".html"), stem.with_suffix(".txt"), stem.with_suffix(".eml")]
    _write(paths[0], html.encode("utf-8"))
    _write(paths[1], text.encode("utf-8"))
    _write(paths[2], eml)
    return paths


def _quiet(message: str) -> None:
    """Default ``info`` sink: preview stays silent about the secret it created."""


def find_subscriber(config: Config, email: str | None) -> Subscriber:
    """The subscriber to preview as: a sample reader, or an active one from the lists."""
    from pressroom import subscribers

    if not email:
        return PREVIEW_SUBSCRIBER
    try:
        wanted = subscribers.normalise_email(email)
    except ValueError as e:
        raise UsageError(f'--as: "{email}" is not a valid email address ({e})') from None
    k = subscribers.key(wanted)
    for subscriber in subscribers.iter_subscribers(config, on_problem=_quiet):
        if subscribers.key(subscriber.email) == k:
            return subscriber
    # a typo would silently preview the wrong audience variant, so say so instead
    raise UsageError(
        f'--as: no active subscriber "{wanted}" in {_shown(config, config.subscribers.path)}; '
        "leave --as out to preview as a sample reader"
    )


def _shown(config: Config, path: Path) -> str:
    try:
        return str(path.relative_to(config.root)) + "/"
    except ValueError:
        return str(path)


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
    _write(page, html.encode("utf-8"))

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
    _write(manifest_path, (json.dumps(issues, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    index = folder / "index.html"
    _write(index, archive_index(config, issues).encode("utf-8"))
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


def _write(path: Path, data: bytes) -> None:
    """Write atomically, so a browser or server never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _cannot_write(path, e) from e


def _cannot_write(path: Path, e: OSError) -> DigestError:
    # A read-only or missing mount (or a typo in the folder) is the editor's to fix: one
    # line naming both places the folder comes from, not a traceback.
    return DigestError(f"{path}: cannot write: {e.strerror or e}; check --out / digest.archive")
