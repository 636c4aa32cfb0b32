"""`pressroom stats`: per-issue sends, bounces, complaints and unsubscribes, with the limits."""

from __future__ import annotations

import json

import click

from pressroom.cli.app import App, pass_app


@click.command("stats")
@click.argument("issue", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_app
def stats(app: App, issue: int | None, as_json: bool) -> None:
    """Per issue: sent, hard and soft bounces, complaints, unsubscribes, and the rates.

    Sent comes from the ledger; bounces, complaints and provider unsubscribes from the
    provider events (suppressions sync, webhooks), unsubscribes also from suppressed.csv.
    The bounce rate (hard bounces) and complaint rate stand beside the limits weekly applies:
    a warning at 2 % / 0.1 %, no further issue at 5 % / 0.3 % without --force.

    \b
    Example:
        pressroom stats
        pressroom stats 12
        pressroom stats --json
    """
    from pressroom.delivery import stats as stats_mod

    rows = stats_mod.issue_stats(app.config, issue)
    if as_json:
        app.out(json.dumps({"issues": [r.as_json() for r in rows]}, indent=2))
        return
    if not rows:
        app.out("no issue sent yet")
        return
    pct = stats_mod.pct
    app.out(
        f"{'issue':>5} {'sent':>8} {'hard':>6} {'soft':>6} {'compl':>6} {'unsub':>6}  "
        f"{'bounce rate':<24} {'complaint rate':<24}"
    )
    for r in rows:
        level, _ = r.verdict()
        bounce = f"{pct(r.bounce_rate)} (2 % / 5 %)"
        complaint = f"{pct(r.complaint_rate)} (0.1 % / 0.3 %)"
        mark = {"ok": "", "warn": "  warning", "refuse": "  over the limit"}[level]
        if r.unsettled:  # partial numbers: the rates may still move either way
            mark += f"  still sending ({r.unsettled} not settled)"
        app.out(
            f"{r.number:>5} {r.sent:>8} {r.hard_bounces:>6} {r.soft_bounces:>6} "
            f"{r.complaints:>6} {r.unsubscribes:>6}  {bounce:<24} {complaint:<24}{mark}"
        )


COMMANDS: list[click.Command] = [stats]
