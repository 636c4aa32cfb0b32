"""One-off messages to one reader (signup confirmation, welcome) through the configured
provider's single-message path: the same adapters, MIME builder and ``send_one`` as a
``--test-to`` copy, outside the ledger. The ``file`` provider writes them to
``<outbox>/transactional/``.
"""

from __future__ import annotations

import email.utils
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType

from pressroom.config import Config
from pressroom.delivery.message import domain_of
from pressroom.delivery.providers.base import Content, Outcome, Provider, Recipient, SendResult
from pressroom.delivery.send import make_provider, send_one
from pressroom.errors import PressroomError
from pressroom.models import RenderedVariant


class Mailer:
    """Sends one message at a time through one provider (adapters keep per-send state)."""

    def __init__(self, config: Config, provider: Callable[[], Provider] | None = None) -> None:
        self.config = config
        self._factory = provider or (lambda: make_provider(config))
        self._provider: Provider | None = None
        self._lock = threading.Lock()

    def provider(self) -> Provider:
        """The adapter, built on first use (a missing env var fails here, with its name)."""
        if self._provider is None:
            self._provider = self._factory()
        return self._provider

    def send(
        self,
        *,
        to: str,
        name: str,
        subject: str,
        html: str,
        text: str,
        kind: str,
        now: datetime,
        fields: dict[str, str] | None = None,
    ) -> SendResult:
        """Send one message; ``kind`` (``signup-confirm``) tags it, ``fields`` fill its tokens."""
        # unique per message (Message-ID, file name): a second confirmation for the same
        # address is a new message, not a duplicate for mail apps to drop
        tag = f"{kind}-{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        content = Content(
            issue=0,
            subject=subject,
            from_=self.config.sending.from_,
            reply_to=self.config.sending.reply_to,
            variants=MappingProxyType({"all": RenderedVariant("all", html, text)}),
            headers=MappingProxyType(
                {
                    "Date": email.utils.format_datetime(now),
                    "Auto-Submitted": "auto-generated",  # RFC 3834: no auto-replies
                }
            ),
            tag=tag,
            message_id_domain=domain_of(self.config.sending.from_),
            transactional=True,
        )
        recipient = Recipient(to, name, "all", {"email": to, "name": name, **(fields or {})}, {})
        with self._lock:
            try:
                provider = self.provider()
                provider.open(content)
                return send_one(provider, recipient)
            except PressroomError as e:  # a full outbox, a provider down: this mail only
                return SendResult(to, Outcome.RETRY, error=e.message)
