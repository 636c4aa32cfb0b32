"""Whether a new issue may start now, and what to tell a publisher when none will.

``weekly`` holds a new issue until ``digest.min_interval`` has passed since the last one
went out (``next_issue_held``); every "nothing to send" message names the readers the last
issue failed, with the command that sends to them again (``failed_hint``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pressroom.config import Config
from pressroom.delivery import ledger as L
from pressroom.delivery.ledger import Ledger


def next_issue_held(config: Config, moment: datetime) -> str | None:
    """Why ``weekly`` must not start a new issue yet (``digest.min_interval``), or None."""
    path = config.state_db
    if not path.exists():
        return None
    with Ledger(path) as ledger:
        if ledger.unfinished() is not None:
            return None  # an open issue is always resumed
        last = ledger.last_sent()
        issue = ledger.issue(last.number) if last is not None else None
    if last is None:
        return None
    # from when the issue started going out (its freeze, by the cron run that sent it), not
    # when its last reader was settled: uncertain readers dropped or resent days later
    # would push the next issue past the next cron run, and a week would be skipped
    started = min(last.sent_at, issue.frozen_at) if issue is not None else last.sent_at
    gap = config.digest.min_interval
    due = started + gap
    if moment >= due:
        return None
    went = f"{started.astimezone(moment.tzinfo):%Y-%m-%d %H:%M}"
    when = f"{due.astimezone(moment.tzinfo):%Y-%m-%d %H:%M}"
    return (
        f"nothing to send: issue {last.number} went out {went}, less than {span(gap)} ago "
        f"(digest.min_interval); the next issue is due from {when} (use --force to send now)"
    ) + failed_hint(config)


# how far the last send may seem to be ahead of now before the clock is called wrong (a run's
# own send time is its start plus its length; --now may repeat a time)
CLOCK_TOLERANCE = timedelta(hours=1)


def clock_behind(config: Config, moment: datetime) -> str | None:
    """Why ``weekly`` cannot trust ``moment``: the last issue went out after it, or None.

    A clock set back (a dead RTC battery, a VM restored from a snapshot, a wrong --now) would
    otherwise hold every new issue quietly: no article is newer than the last window, and
    min_interval never passes, each run saying "nothing to send" with exit 0.
    """
    path = config.state_db
    if not path.exists():
        return None
    with Ledger(path) as ledger:
        if ledger.unfinished() is not None:
            return None  # an open issue is resumed whatever the time
        last = ledger.last_sent()
    if last is None or last.sent_at - moment <= CLOCK_TOLERANCE:
        return None
    went = f"{last.sent_at.astimezone(moment.tzinfo):%Y-%m-%d %H:%M}"
    now = f"{moment:%Y-%m-%d %H:%M}"
    return (
        f"this machine's time ({now}) is before issue {last.number} went out ({went}): no new "
        "issue can be built until the clock is right; check the clock (NTP, timedatectl) or "
        "the --now/PRESSROOM_NOW given"
    )


def span(value: timedelta) -> str:
    """A duration the way config.yaml writes it: ``6d``, ``12h``, ``90m``."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def failed_hint(config: Config) -> str:
    """``; issue 41 has 3 failed readers: …`` for a "nothing to send" message, or ""."""
    if not config.state_db.exists():
        return ""
    with Ledger(config.state_db) as ledger:
        number = ledger.last_issue()
        failed = ledger.counts(number)[L.FAILED] if number is not None else 0
    if not failed:
        return ""
    return (
        f"; issue {number} has {failed} failed reader{'' if failed == 1 else 's'} "
        "(`pressroom digest send --resend-failed` sends them again)"
    )
