"""Settle uncertain recipients by asking the provider (``digest send --reconcile``, ``weekly``).

A request that got no answer leaves its recipients ``uncertain``: the provider may or may not
have accepted them, and resending could mail someone twice. Where the provider can say
(``Provider.can_reconcile``: Mailgun's events log, Postmark's message search, each filtered by
the issue number every message carries), each uncertain recipient is looked up: accepted →
``sent``; not accepted → back to ``pending``, sent by this run; an answer that may still
change (the provider's log lags) → left ``uncertain``. Providers that cannot answer (SES,
SMTP, SendGrid without the paid activity API, the file outbox) say so, and the editor decides
with ``--resend-uncertain`` or ``--drop-uncertain`` as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pressroom.delivery.ledger import Ledger
from pressroom.delivery.providers.base import Provider, Verdict
from pressroom.errors import ProviderError


@dataclass
class Reconciled:
    """What one reconciliation settled, and how."""

    provider: str = ""
    sent: list[Verdict] = field(default_factory=list)  # the provider had accepted them
    pending: list[Verdict] = field(default_factory=list)  # it had not: sent again now
    open: list[Verdict] = field(default_factory=list)  # it cannot tell yet: still uncertain
    unable: str = ""  # why the provider could not be asked at all

    @property
    def asked(self) -> int:
        return len(self.sent) + len(self.pending) + len(self.open)

    def lines(self, show: int = 10) -> list[str]:
        """What to tell the editor."""
        if self.unable:
            return [self.unable]
        if not self.asked:
            return []
        out = [
            f"reconciled {self.asked} uncertain recipients with {self.provider}: "
            f"{len(self.sent)} were accepted (now sent), {len(self.pending)} were not (sent "
            f"again in this run), {len(self.open)} cannot be told yet (still uncertain)"
        ]
        for label, verdicts in (("sent", self.sent), ("pending", self.pending)):
            out.extend(f"  {label}: {v.email}: {v.how}" for v in verdicts[:show])
        out.extend(f"  uncertain: {v.email}: {v.how}" for v in self.open[:show])
        return out

    def report(self) -> dict[str, Any]:
        """The report's ``reconciled`` section."""
        return {
            "provider": self.provider,
            "unable": self.unable or None,
            "settled": [
                {"email": v.email, "now": state, "how": v.how}
                for state, verdicts in (
                    ("sent", self.sent),
                    ("pending", self.pending),
                    ("uncertain", self.open),
                )
                for v in verdicts
            ],
        }


def reconcile(ledger: Ledger, number: int, provider: Provider, now: datetime) -> Reconciled:
    """Ask ``provider`` about every uncertain recipient of issue ``number`` and settle them."""
    rows = ledger.uncertain_attempts(number)
    result = Reconciled(provider.name)
    if not rows:
        return result
    if not provider.can_reconcile:
        result.unable = (
            f"{provider.name} cannot say whether it accepted a message, so the "
            f"{len(rows)} uncertain recipients stay uncertain (--resend-uncertain or "
            "--drop-uncertain settles them)"
        )
        return result
    attempts = [
        (email, datetime.fromtimestamp(at, UTC) if at is not None else now) for email, at in rows
    ]
    try:
        verdicts = provider.reconcile(number, attempts, now)
    except ProviderError as e:
        result.unable = f"{provider.name} could not be asked about the uncertain recipients: {e}"
        return result
    for v in verdicts:
        bucket = result.sent if v.accepted else result.pending if v.accepted is False else None
        (bucket if bucket is not None else result.open).append(v)
    ledger.settle_uncertain(
        number,
        [(v.email, v.message_id) for v in result.sent],
        [v.email for v in result.pending],
        now.timestamp(),
    )
    return result
