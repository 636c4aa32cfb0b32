"""The end of a send run: the summary lines, the JSON report and the exit status.

The report (``<reports>/issue-N-run-NNN-<time>.json``, numbered so that a folder listing is
in run order) says what this run did, its exit status, and where the whole issue stands:
counts per state, every failure with its reason, every uncertain recipient (a run that died
mid-request, or a request that got no answer) with why, every uncertain recipient dropped by
``--drop-uncertain``, timings. It holds addresses and
provider reasons (already redacted by the adapters), never a secret or a token.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pressroom.delivery import ledger as L
from pressroom.delivery.ledger import Ledger
from pressroom.delivery.send import Summary
from pressroom.errors import ReportError, write_fix


@dataclass(frozen=True)
class Outcome:
    """Where the issue stands after a run."""

    counts: dict[str, int]
    complete: bool  # every recipient sent, failed for good or skipped
    uncertain: list[str]
    failures: list[tuple[str, str]]
    uncertain_reasons: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # uncertain, settled by --drop-uncertain


def settle(ledger: Ledger, number: int, now: datetime) -> Outcome:
    """Mark the issue sent when nothing is left to do, and say where it stands."""
    complete = ledger.mark_issue_sent(number, now)
    return Outcome(
        counts=ledger.counts(number),
        complete=complete,
        uncertain=ledger.emails_in(number, L.UNCERTAIN),
        failures=ledger.failures(number),
        uncertain_reasons=ledger.failures(number, L.UNCERTAIN),
        dropped=ledger.emails_in(number, L.DROPPED),
    )


def lines(summary: Summary, outcome: Outcome) -> list[str]:
    """The human summary of a run."""
    c = outcome.counts
    out = [
        f"issue {summary.issue} via {summary.provider}: sent {summary.sent}, failed "
        f"{summary.failed}, uncertain {summary.uncertain}, skipped {summary.skipped} "
        f"(unsubscribed) in {summary.elapsed:.1f}s ({summary.rate:.0f}/s); "
        f"{summary.retried} retried"
        + (f", {len(summary.deferred)} deferred" if summary.deferred else ""),
        f"issue {summary.issue} overall: {c[L.SENT]} sent, {c[L.FAILED]} failed, "
        f"{c[L.SKIPPED]} skipped, {c[L.PENDING]} pending, {c[L.UNCERTAIN]} uncertain"
        + (f", {c[L.DROPPED]} dropped" if c[L.DROPPED] else ""),
    ]
    if summary.dropped:
        out.append(
            f"{summary.dropped} uncertain recipients dropped by --drop-uncertain: not resent, "
            "recorded as dropped (possibly delivered), not as failed"
        )
    if outcome.complete:
        out.append(f"issue {summary.issue} is complete")
    return out


def write(
    folder: Path,
    summary: Summary,
    outcome: Outcome,
    *,
    started: datetime,
    finished: datetime,
    exit_code: int,
    rows_skipped: int = 0,
    dry_run: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the JSON report of one run (with the exit status the command returns).

    Raises ``ReportError`` when the folder cannot be written: by then the run is recorded in
    the state file, so the error says only that the report is missing and how to fix it.
    """
    stamp = finished.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        number = next_run(folder, summary.issue)
    except OSError as e:
        raise _unwritable(folder, summary.issue, e) from e
    path = folder / f"issue-{summary.issue}-run-{number:03d}-{stamp}.json"
    if outcome.complete:
        status = "complete"  # the issue is settled
    elif exit_code == 0:
        status = "staged"  # this run's part (--limit/--list/--tag) is done; the rest is pending
    else:
        status = "incomplete"
    data: dict[str, Any] = {
        "issue": summary.issue,
        "provider": summary.provider,
        "dry_run": dry_run,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "status": status,
        "exit_code": exit_code,
        "subscriber_rows_skipped": rows_skipped,
        "run": {
            "to_send": summary.todo,
            "sent": summary.sent,
            "failed": summary.failed,
            "uncertain": summary.uncertain,
            "dropped_uncertain": summary.dropped,  # settled unsent by --drop-uncertain
            "skipped_unsubscribed": summary.skipped,
            "retried": summary.retried,
            "requests": summary.requests,
            "seconds": round(summary.elapsed, 3),
            "recipients_per_second": round(summary.rate, 1),
            "rate_limit_wait_seconds": round(summary.waited, 3),
            "paused": summary.paused,
            "deferred": len(summary.deferred),  # retries used up: left pending for a later run
            "not_in_segment": summary.outside,  # pending, outside this run's --list/--tag
            "stopped": summary.stopped,
            "interrupted": summary.interrupted,
        },
        "counts": outcome.counts,
        "failures": [{"email": e, "reason": r} for e, r in outcome.failures],
        "uncertain": outcome.uncertain,
        "uncertain_reasons": [{"email": e, "reason": r} for e, r in outcome.uncertain_reasons],
        "dropped": outcome.dropped,  # uncertain readers not resent by choice (--drop-uncertain)
        "deferred": [{"email": e, "last_error": r} for e, r in summary.deferred],
    }
    if extra:
        data.update(extra)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _unwritable(folder, summary.issue, e) from e
    return path


def _unwritable(folder: Path, issue: int, e: OSError) -> ReportError:
    return ReportError(
        f"{folder}: cannot write the report of issue {issue} ({e.strerror or e}); what was "
        f"sent is recorded in the state file and will not be sent again: {write_fix(e, folder)} "
        "so that the next run's report is kept"
    )


def next_run(folder: Path, issue: int) -> int:
    """The number of the next run of ``issue``: one more than the highest report's."""
    runs = [0]
    for p in folder.glob(f"issue-{issue}-run-*.json"):
        number = p.name.removeprefix(f"issue-{issue}-run-").partition("-")[0]
        if number.isdigit():
            runs.append(int(number))
    return max(runs) + 1


def went_out(folder: Path, issue: int) -> tuple[Path, str] | None:
    """The first report showing ``issue`` reached readers, and when; None when none does.

    A report that cannot be read counts too: refusing a send wrongly costs a flag, sending
    an issue twice cannot be undone.
    """
    try:
        paths = sorted(folder.glob(f"issue-{issue}-run-*.json"), key=_run_number)
    except OSError:
        return None
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a report")
        except (OSError, ValueError):
            try:
                stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except OSError:
                return path, "an unknown date"
            return path, f"{stamp:%Y-%m-%d %H:%M} UTC"
        if data.get("dry_run"):
            continue
        counts, run = data.get("counts") or {}, data.get("run") or {}
        if not (counts.get(L.SENT) or run.get("sent")):
            continue
        try:
            when = f"{datetime.fromisoformat(str(data.get('finished_at'))):%Y-%m-%d %H:%M}"
        except ValueError:
            when = "an unknown date"
        return path, when
    return None


def _run_number(path: Path) -> int:
    number = path.name.split("-run-", 1)[-1].partition("-")[0]
    return int(number) if number.isdigit() else 0
