"""What one ``digest send`` was asked to do (``Request``), and whether it can work: option
combinations and the ``--test-to`` address are checked before any work, in one line each."""

from __future__ import annotations

from dataclasses import dataclass

from pressroom.audience import subscribers as subs_mod
from pressroom.errors import UsageError


@dataclass(frozen=True)
class Request:
    """What the user asked of one send."""

    provider: str | None = None
    list_: str | None = None
    tag: str | None = None
    limit: int | None = None
    dry_run: bool = False
    test_to: str | None = None
    yes: bool = False
    resend_uncertain: bool = False
    drop_uncertain: bool = False
    resend_issue: int | None = None  # send this issue although the reports say it went out
    reconcile: bool = False  # ask the provider about uncertain recipients first
    resend_failed: bool = False

    @property
    def segment(self) -> bool:
        """Whether this run sends to part of the issue's recipients only."""
        return bool(self.list_ or self.tag)

    def segment_name(self) -> str:
        """``list 'breaking', tag 'staff'`` for messages."""
        parts = ([f"list {self.list_!r}"] if self.list_ else []) + (
            [f"tag {self.tag!r}"] if self.tag else []
        )
        return ", ".join(parts)


def check(req: Request) -> None:
    """Reject option combinations that cannot work, before any work."""
    for option, value in (
        ("--provider", req.provider),
        ("--list", req.list_),
        ("--tag", req.tag),
        ("--test-to", req.test_to),
    ):
        # `--test-to "$TEST_TO"` with the variable unset must not read as no --test-to: the
        # issue would go to every subscriber (an empty --list/--tag: to the whole list)
        if value is not None and not value.strip():
            raise UsageError(
                f"{option}: empty value (an unset variable in a script?); give a value or "
                "leave the option out"
            )
    if req.test_to is not None:
        test_address(req.test_to)  # before the issue is built: one line, what to do
    if req.dry_run and req.test_to:
        raise UsageError("--dry-run and --test-to cannot be used together; pick one")
    if req.resend_uncertain and req.drop_uncertain:
        raise UsageError("--resend-uncertain and --drop-uncertain cannot be used together")
    if req.reconcile and (req.dry_run or req.test_to):
        raise UsageError(
            "--reconcile settles the ledger; it cannot be combined with --dry-run or --test-to"
        )
    if req.test_to and (req.resend_uncertain or req.drop_uncertain or req.limit):
        raise UsageError(
            "--test-to sends one copy; it cannot be combined with --limit or "
            "--resend-uncertain/--drop-uncertain"
        )
    if req.resend_failed and (req.test_to or req.dry_run):
        raise UsageError("--resend-failed sends; it cannot be combined with --test-to or --dry-run")


def test_address(to: str) -> str:
    """The normalised ``--test-to`` address; ``UsageError`` in one line saying what to do."""
    try:
        return subs_mod.normalise_email(to)
    except ValueError as e:
        if len([p for p in to.replace(";", ",").replace(" ", ",").split(",") if "@" in p]) > 1:
            raise UsageError(
                f'--test-to takes one address, got several ("{to.strip()}"); send one test '
                "copy per address (run it again for each)"
            ) from None
        raise UsageError(
            f'--test-to: invalid email "{to}" ({e}); give one address like me@example.org'
        ) from None
