"""`pressroom digest …`: build, check, preview (and ``send``, added by ``cli.send``)."""

from __future__ import annotations

import click


@click.group()
def digest() -> None:
    """Build, check, preview and send the weekly email digest.

    \b
    Example:
        pressroom digest build
        pressroom digest preview --open
        pressroom digest check
        pressroom digest send --dry-run
    """


COMMANDS: list[click.Command] = [digest]
