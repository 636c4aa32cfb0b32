"""The ``file`` provider: one ``.eml`` per recipient in ``<outbox>/issue-N/`` (the default).

Test copies (``digest send --test-to``) go to ``<outbox>/test/issue-N-<addr>.eml`` instead, so
the issue's folder only ever holds real deliveries; one-off messages (signup confirmations,
welcome mails) go to ``<outbox>/transactional/<tag>-<addr>.eml``.

It needs no account and no network, so a new publication can run ``pressroom weekly`` at
once and open the result in a mail client. It goes through the ledger like any provider:
resume, uncertain recipients and reports behave exactly as with a real service.

A write that fails (disk full, read-only, I/O error) is the outbox's fault, never the
reader's: the batch's files are removed and ``OutboxError`` stops the run with the batch
pending, so the next run, once there is room, writes them (each reader has one file name, so
a rewrite can never make a second copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pressroom.delivery.providers import register
from pressroom.delivery.providers.base import (
    NO_WIRE,
    Content,
    Outcome,
    Provider,
    Recipient,
    SendResult,
    Wire,
)
from pressroom.errors import OutboxError, ProviderConfigError, write_fix


@dataclass(frozen=True)
class FileSettings:
    """``providers.file``: where to write (default: the top-level ``outbox:``)."""

    outbox: Path | None = None


def eml_name(email: str) -> str:
    """A file name for ``email`` that is safe on every file system and unique per address."""
    local = "".join(c if c.isalnum() or c in "-_." else "_" for c in email)[:80]
    digest = hashlib.sha1(email.encode("utf-8")).hexdigest()[:8]
    return f"{local}-{digest}.eml"


@register
class FileProvider(Provider):
    """Writes each recipient's complete RFC 5322 message to ``<outbox>/issue-N/<addr>.eml``."""

    name = "file"
    Settings = FileSettings
    max_batch = 100

    def open(self, content: Content) -> None:
        super().open(content)
        if self.settings.outbox is None:
            raise ProviderConfigError(
                "file: no outbox folder; set providers.file.outbox or the top-level outbox:"
            )
        outbox = Path(self.settings.outbox)
        if content.transactional:
            self.folder, self.prefix = outbox / "transactional", f"{content.tag}-"
        elif content.test:
            self.folder, self.prefix = outbox / "test", f"issue-{content.issue}-"
        else:
            self.folder, self.prefix = outbox / f"issue-{content.issue}", ""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProviderConfigError(f"file: cannot create {self.folder}: {e.strerror}") from e

    def send(self, batch: Sequence[Recipient], wire: Wire = NO_WIRE) -> list[SendResult]:
        from pressroom.delivery.message import build, message_id_of

        wire.sending(batch)
        results = []
        written: list[Path] = []
        for r in batch:
            data = build(self.content, r)
            path = self.folder / (self.prefix + eml_name(r.email))
            tmp = path.with_name(path.name + ".tmp")
            try:
                # temp + rename: a crash never leaves a half-written message behind
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except OSError as e:
                for done in [tmp, *written]:
                    with contextlib.suppress(OSError):
                        done.unlink(missing_ok=True)
                raise OutboxError(
                    f"file: cannot write {path} ({e.strerror or e}); {write_fix(e, self.folder)}, "
                    f"then run `pressroom digest send` to resume: the issue's unsent readers "
                    f"stay pending"
                ) from e
            written.append(path)
            results.append(SendResult(r.email, Outcome.SENT, message_id=message_id_of(data)))
        wire.settled(results)
        return results

    def check(self) -> str:
        return (
            f"file: writes .eml files to {self.settings.outbox}/issue-N/ (test copies to "
            f"{self.settings.outbox}/test/; no account needed)"
        )
