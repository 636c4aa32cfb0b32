"""What every command shares: the App context (config, clock, output) and option decorators."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pressroom.errors import UsageError
from pressroom.textpolicy import message_line

if TYPE_CHECKING:  # config (YAML, language tags) loads with the first command that reads it
    from pressroom.config import Config

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """Per-invocation state: where the config is, how chatty to be, what went wrong."""

    def __init__(self, config_path: Path, verbose: int, quiet: bool) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self.quiet = quiet
        self.problems = 0  # skipped articles, bad rows: the command still finishes, exits 1
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from pressroom import config as config_mod

            self._config = config_mod.load(self.config_path)
        return self._config

    def now(self, pinned: str | None = None) -> datetime:
        """The one clock reading of this run (``--now`` pins it; naive means publication tz)."""
        tz = self.config.publication.tz
        if not pinned:
            return datetime.now(tz)
        try:
            value = datetime.fromisoformat(pinned)
        except ValueError:
            raise UsageError(
                f'--now: expected an ISO date like "2026-11-25T09:00", got "{pinned}"'
            ) from None
        from pressroom.content.articles import parse_date

        try:  # the years an article may be dated in: the clock is compared with them
            return parse_date(value, tz)
        except ValueError:
            raise UsageError(f'--now: "{pinned}" is outside the years 1000-9998') from None

    # output: results on stdout; progress, warnings and errors on stderr
    def out(self, message: str = "") -> None:
        click.echo(message)

    def info(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    def debug(self, message: str) -> None:
        if self.verbose and not self.quiet:
            click.echo(message, err=True)

    # A warning or error is one line whatever it quotes (an id from a remote API, a file name):
    # a line break in it could forge a second message, an escape could rewrite the terminal
    def warn(self, message: str) -> None:
        click.echo(click.style("warning: ", fg="yellow") + message_line(message), err=True)

    def problem(self, message: str) -> None:
        """Report something skipped; the command goes on and exits 1 at the end."""
        self.problems += 1
        click.echo(click.style("error: ", fg="red") + message_line(message), err=True)

    def finish(self) -> None:
        """Exit 1 when anything was skipped, so cron notices."""
        if self.problems:
            sys.exit(1)


pass_app = click.make_pass_decorator(App)


def now_option(f: F) -> F:
    """``--now ISO``: pin the clock (reproducible runs, back-dated issues)."""
    return click.option(
        "--now",
        "now",
        metavar="ISO",
        envvar="PRESSROOM_NOW",
        help="Pretend the current time is ISO (e.g. 2026-11-25T09:00); default: now.",
    )(f)


def since_option(f: F) -> F:
    return click.option(
        "--since",
        metavar="SPAN",
        help='Only articles published in the last SPAN ("7d", "12h").',
    )(f)


def parse_since(now: datetime, since: str | None) -> datetime | None:
    if not since:
        return None
    try:
        from pressroom.config import Duration

        return now - Duration.parse(since)
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None


class Folder(click.Path):
    """A folder option (``--out DIR``): never the root of a file system, where a typo (``/``
    for ``public/``) would have pressroom write into the whole disk."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from pressroom.settings import is_root, root_problem

        path = super().convert(value, param, ctx)
        if isinstance(path, Path) and is_root(path.resolve()):
            self.fail(root_problem(str(value)), param, ctx)
        return path
