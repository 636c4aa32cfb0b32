"""The ``pressroom`` command line: a thin layer over the core modules.

Each command group lives in its own module here (``feeds``, ``digest``, ``subscribers`` …)
and is registered at the bottom; core errors become one clean line and an exit code here.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from pressroom import __version__
from pressroom.cli.app import App
from pressroom.defaults import CONFIG_ENV, default_path
from pressroom.errors import PressroomError
from pressroom.textpolicy import message_line


class PressroomGroup(click.Group):
    """Turns PressroomError into ``error: <message>`` and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PressroomError as e:
            click.echo(click.style("error: ", fg="red") + message_line(e.message), err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=PressroomGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="pressroom")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Path to config.yaml [default: ./config.yaml, or ${CONFIG_ENV}].",
)
@click.option("-v", "--verbose", count=True, help="Say more about what is happening.")
@click.option("-q", "--quiet", is_flag=True, help="Print only results and errors.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool) -> None:
    """pressroom: feeds and a weekly email digest for independent publishers.

    Reads config.yaml, the articles it names and the subscriber lists; writes RSS, Atom and
    JSON feeds; builds, previews and sends the weekly digest with support blocks.

    \b
    Example:
        pressroom init my-site && cd my-site
        pressroom feeds
        pressroom digest preview --open
        pressroom weekly
    """
    if verbose and quiet:
        raise click.UsageError("-v/--verbose and -q/--quiet contradict each other; pick one")
    if hasattr(signal, "SIGXFSZ"):
        # past a file size limit (ulimit -f) a write fails with EFBIG, which each writer
        # reports in one line and recovers from, instead of the signal killing a send mid-batch
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    ctx.obj = App(config_path or default_path(), verbose, quiet)


def _register() -> None:
    from pressroom.cli import (
        articles,
        digest,
        feeds,
        providers,
        scaffold,
        send,
        stats,
        subscribers,
        suppressions,
        web,
    )

    modules = (
        scaffold,
        articles,
        feeds,
        digest,
        send,
        subscribers,
        providers,
        web,
        suppressions,
        stats,
    )
    for module in modules:
        for command in module.COMMANDS:
            main.add_command(command)


_register()
