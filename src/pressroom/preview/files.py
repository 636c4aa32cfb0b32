"""Preview files: HTML, text and .eml, as one subscriber gets them.

The bytes are the rendered issue's own, with the field tokens filled exactly as delivery
fills them (``pressroom.delivery.message``), so what the editor previews is what
subscribers get.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pressroom.config import Config
from pressroom.digest.archive import cannot_write as _cannot_write
from pressroom.digest.archive import write_atomic as _write
from pressroom.errors import UsageError
from pressroom.models import Personaliser, Subscriber

if TYPE_CHECKING:
    from pressroom.digest.prepare import Prepared

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
    from pressroom.audience import tokens as unsubscribe
    from pressroom.delivery import message

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
    from pressroom.audience import subscribers

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
