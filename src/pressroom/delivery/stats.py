"""Per-issue delivery numbers and the reputation thresholds ``weekly`` and ``digest check`` apply.

For each issue: how many messages the ledger says were accepted (``sent``), and from the
provider events attributed to it (``audience.events``; pull sync attributes an undated-issue
event to the last issue sent to that address) the distinct addresses that hard-bounced,
soft-bounced, complained or unsubscribed — unsubscribes also counting the readers who used
the issue's own unsubscribe link (``suppressed.csv`` rows dated between this issue and the
next). Rates are per message sent; the bounce rate counts hard bounces, as SES does.

Thresholds (SES reviews an account at a 5 % bounce or 0.1 % complaint rate; Gmail and Yahoo
want complaints under 0.1 % and never 0.3 %): a warning at a complaint rate ≥ 0.1 % or a
bounce rate ≥ 2 %, a refusal to send the next issue at ≥ 0.3 % / ≥ 5 %.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pressroom.audience import events
from pressroom.audience import subscribers as subs
from pressroom.config import Config
from pressroom.errors import LedgerError, ReputationError, UsageError

WARN_COMPLAINT, WARN_BOUNCE = 0.001, 0.02
REFUSE_COMPLAINT, REFUSE_BOUNCE = 0.003, 0.05
THRESHOLDS = {
    "complaint_rate": {"warn": WARN_COMPLAINT, "refuse": REFUSE_COMPLAINT},
    "bounce_rate": {"warn": WARN_BOUNCE, "refuse": REFUSE_BOUNCE},
}


@dataclass(frozen=True)
class IssueStats:
    """One issue's numbers."""

    number: int
    sent: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    unsubscribes: int
    unsettled: int = 0  # readers still pending, in flight or uncertain: the issue is sending

    @property
    def bounce_rate(self) -> float:
        return self.hard_bounces / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0

    def verdict(self) -> tuple[str, list[str]]:
        """``("ok" | "warn" | "refuse", reasons)`` against the thresholds."""
        reasons: list[str] = []
        level = "ok"
        for name, rate, warn, refuse, why in (
            ("complaint", self.complaint_rate, WARN_COMPLAINT, REFUSE_COMPLAINT, "spam complaints"),
            ("bounce", self.bounce_rate, WARN_BOUNCE, REFUSE_BOUNCE, "hard bounces"),
        ):
            if rate >= refuse:
                level = "refuse"
                reasons.append(
                    f"issue {self.number}'s {name} rate is {pct(rate)} ({why}: "
                    f"{self._count(name)} of {self.sent}), at or above the {pct(refuse)} limit"
                )
            elif rate >= warn:
                level = "warn" if level == "ok" else level
                reasons.append(
                    f"issue {self.number}'s {name} rate is {pct(rate)} ({why}: "
                    f"{self._count(name)} of {self.sent}), at or above {pct(warn)}"
                )
        return level, reasons

    def _count(self, name: str) -> int:
        return self.complaints if name == "complaint" else self.hard_bounces

    def as_json(self) -> dict[str, object]:
        level, reasons = self.verdict()
        return {
            **asdict(self),
            "bounce_rate": round(self.bounce_rate, 6),
            "complaint_rate": round(self.complaint_rate, 6),
            "sending": self.unsettled > 0,
            "thresholds": THRESHOLDS,
            "status": level,
            "reasons": reasons,
        }


def pct(rate: float) -> str:
    """``0.0012`` → ``0.12 %``."""
    return f"{rate * 100:.2f} %"


def issue_stats(config: Config, number: int | None = None) -> list[IssueStats]:
    """Every issue the ledger sent, oldest first (or only ``number``)."""
    issues = _ledger(config)
    if number is not None and number not in issues:
        known = ", ".join(str(n) for n in sorted(issues)) or "none yet"
        raise UsageError(f"no issue {number} in the ledger (issues sent: {known})")
    found = events.addresses_by_issue(config)
    open_rows = _unsettled(config)
    unsubscribed = _own_unsubscribes(config, issues)
    out = []
    for n in sorted(issues):
        if number is not None and n != number:
            continue
        kinds = found.get(n, {})
        out.append(
            IssueStats(
                number=n,
                sent=issues[n][0],
                hard_bounces=len(kinds.get(events.HARD_BOUNCE, set())),
                soft_bounces=len(
                    kinds.get(events.SOFT_BOUNCE, set()) - kinds.get(events.HARD_BOUNCE, set())
                ),
                complaints=len(kinds.get(events.COMPLAINT, set())),
                unsubscribes=len(kinds.get(events.UNSUBSCRIBE, set()) | unsubscribed.get(n, set())),
                unsettled=open_rows.get(n, 0),
            )
        )
    return out


def last_issue(config: Config) -> IssueStats | None:
    """The most recent issue that reached anyone, or None."""
    sent = [s for s in issue_stats(config) if s.sent]
    return sent[-1] if sent else None


def _ledger(config: Config) -> dict[int, tuple[int, datetime]]:
    """Issue number -> (messages accepted, frozen at), from the ledger."""
    rows = _read(
        config,
        "SELECT i.number, i.frozen_at, "
        "(SELECT count(*) FROM deliveries d WHERE d.issue = i.number AND d.state = 'sent') "
        "FROM issues i ORDER BY i.number",
    )
    path = config.state_db
    return {int(n): (int(sent), _frozen_at(path, n, frozen)) for n, frozen, sent in rows}


def _read(config: Config, query: str) -> list[Any]:
    """The rows of ``query`` on the ledger, read-only; none when there is no ledger (yet)."""
    path = config.state_db
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"issues", "deliveries"} <= have:
                return []
            return db.execute(query).fetchall()
        finally:
            db.close()
    except sqlite3.Error as e:
        raise LedgerError(
            f"{path}: cannot read the ledger ({e}); is it pressroom's state.db?"
        ) from e


def _frozen_at(path: object, number: object, text: object) -> datetime:
    """An issue's ``frozen_at`` as an aware time (pressroom writes UTC with its offset; one
    without an offset, from another program or an edit, is taken as UTC); LedgerError naming
    the issue when it is no time at all."""
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        raise LedgerError(
            f"{path}: issue {number}'s frozen_at {str(text)[:40]!r} is not an ISO 8601 time; "
            "is it pressroom's state.db?"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _unsettled(config: Config) -> dict[int, int]:
    """Issue number -> readers not settled yet (pending, in flight, uncertain)."""
    rows = _read(
        config,
        "SELECT issue, count(*) FROM deliveries "
        "WHERE state IN ('pending', 'in_flight', 'uncertain') GROUP BY issue",
    )
    return {int(n): int(c) for n, c in rows}


def _own_unsubscribes(
    config: Config, issues: dict[int, tuple[int, datetime]]
) -> dict[int, set[str]]:
    """Readers who unsubscribed through pressroom between an issue and the next one."""
    path = config.subscribers.suppressed
    if not path.exists() or not issues:
        return {}
    starts = sorted((frozen, n) for n, (_, frozen) in issues.items())
    out: dict[int, set[str]] = {}
    header, rows = subs.read_table(path)
    index = {h.strip().lower(): i for i, h in enumerate(header)}
    if not {"email", "reason", "date"} <= set(index):
        return {}
    for cells in rows:
        if len(cells) <= max(index["email"], index["reason"], index["date"]):
            continue
        if cells[index["reason"]].strip() != "unsubscribed":
            continue
        when = subs.parse_time(cells[index["date"]])
        if when is None:
            continue
        issue = None
        for frozen, n in starts:  # the last issue frozen before the unsubscribe
            if frozen <= when:
                issue = n
        if issue is not None:
            out.setdefault(issue, set()).add(subs.key(cells[index["email"]].strip()))
    return out


def check_reputation(config: Config, *, force: bool = False) -> list[str]:
    """Warnings about the last issue's rates; raises ``ReputationError`` at the refusal limits
    (``force``: they become warnings too)."""
    last = last_issue(config)
    if last is None:
        return []
    level, reasons = last.verdict()
    if level == "refuse" and not force:
        raise ReputationError(
            "; ".join(reasons) + ". Mailing on risks the sending account: find out why "
            "(pressroom stats), or pass --force to send anyway"
        )
    if level == "refuse":
        return [f"{r} (--force: sending anyway)" for r in reasons]
    return reasons
