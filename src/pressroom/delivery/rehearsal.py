"""Rehearsing a send: a test copy to one address, or a dry run that sends nothing.

Both go through what ``deliver`` prepared (provider, content, recipient factory) and answer
with a ``Delivery`` like a real send, but no ledger row is written and nobody on the list is
mailed.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy

from pressroom.audience import subscribers as subs_mod
from pressroom.config import Config
from pressroom.delivery import message
from pressroom.delivery.job import Counted, Delivery, Notes, Request, test_address
from pressroom.delivery.ledger import FrozenIssue, Ledger
from pressroom.delivery.providers.base import Content, Outcome, Provider
from pressroom.delivery.send import send_one
from pressroom.errors import ConfigError, PreflightError
from pressroom.models import RenderedIssue


def test_copy(
    provider: Provider,
    content: Content,
    factory: message.RecipientFactory,
    to: str,
    notes: Notes,
) -> Delivery:
    """``digest send --test-to``: one copy to one address, recorded nowhere."""
    address = test_address(to)
    variant = next(iter(content.variants))
    recipient = factory.make(address, "", variant)
    # marked as a test: kept apart from the issue's deliveries (file outbox, provider tags)
    content = dataclasses.replace(content, test=True, tag=f"{content.tag}-test")
    provider.open(content)
    result = send_one(provider, recipient)
    if result.outcome is Outcome.SENT:
        return Delivery(
            0,
            content.issue,
            said=[
                f"sent a test copy of issue {content.issue} to {address} via {provider.name} "
                "(not recorded as a delivery)"
            ],
        )
    if result.outcome is Outcome.UNCERTAIN:
        notes.problem(
            f"test copy to {address}: no answer from {provider.name}, it may or may not have "
            f"been sent ({result.error})"
        )
        return Delivery(1, content.issue)
    notes.problem(f"test copy to {address} not sent: {result.error or result.outcome.value}")
    return Delivery(1, content.issue)


def dry_run(
    config: Config,
    provider: Provider,
    content: Content,
    factory: message.RecipientFactory,
    rendered: RenderedIssue,
    frozen: FrozenIssue | None,
    ledger: Ledger | None,
    req: Request,
    segment: frozenset[str] | None,
    notes: Counted,
) -> Delivery:
    """``digest send --dry-run``: who would get which variant, with every message built and
    parsed back; nothing is sent or recorded."""
    # every variant must build into a message that parses back
    for variant in rendered.variants:
        data = message.build(content, factory.make("preview@example.com", "Preview", variant.key))
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        if parsed.get_body(("html",)) is None or parsed.get_body(("plain",)) is None:
            raise PreflightError(
                f"variant {variant.key}: the built message lacks a text or HTML part"
            )
    name = provider.name
    where = f" ({req.segment_name()} in this run)" if segment is not None else ""
    if frozen is not None and ledger is not None:
        c = ledger.counts(frozen.number)
        return Delivery(
            1 if notes.problems else 0,
            frozen.number,
            frozen.total,
            said=[
                f'dry run: would resume issue {frozen.number} "{rendered.subject}" via {name}: '
                f"{c['pending']} pending{where}, {c['uncertain'] + c['in_flight']} uncertain, "
                f"{c['sent']} already sent; nothing was sent or recorded"
            ],
        )
    per_variant: dict[str, int] = {}
    chosen = config.sending.list
    everyone = 0
    # the real send reports bad rows when it freezes the issue, and exits 1: so does this
    subs = subs_mod.iter_subscribers(
        config, list_=chosen, on_problem=notes.bad_row, on_warning=notes.warn
    )
    for sub in subs:
        everyone += 1
        if segment is not None and sub.email not in segment:
            continue
        key = rendered.variant_for(sub.tags).key
        per_variant[key] = per_variant.get(key, 0) + 1
    if not everyone:  # the real send stops at a sending.list typo: so does this
        unknown = subs_mod.unknown_list(
            config, chosen, f"{config.where('sending.list')}: sending.list"
        )
        if unknown is not None:
            raise ConfigError(unknown)
    total = sum(per_variant.values())
    if req.limit:
        total = min(total, req.limit)
    split = ", ".join(f"{k}: {n}" for k, n in sorted(per_variant.items()))
    rest = everyone - total
    left = f"; {rest} would stay pending for a later run" if rest and total < everyone else ""
    bad = notes.rows
    skipped = f"; {bad} bad subscriber row{'' if bad == 1 else 's'} skipped" if bad else ""
    return Delivery(
        1 if notes.problems else 0,
        rendered.number,
        everyone,
        said=[
            f'dry run: would send issue {rendered.number} "{rendered.subject}" to {total} '
            f"recipients on list {chosen!r}{where} via {name}"
            + (f" ({split})" if split else "")
            + left
            + skipped
            + "; nothing was sent or recorded"
        ],
        rows_skipped=bad,
    )
