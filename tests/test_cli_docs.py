"""Every command is documented: --help with an Example: block, and a README entry; every
config key appears in README.md (sqlite-utils/datasette habit: an undocumented command fails)."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pressroom import __version__, config
from pressroom.cli import main
from pressroom.content import sources
from pressroom.delivery import providers

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def all_commands(
    group: click.Group = main, prefix: str = ""
) -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        yield path, command
        if isinstance(command, click.Group):
            yield from all_commands(command, path)


COMMANDS = list(all_commands())


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_help_has_example(path: str, command: click.Command) -> None:
    result = CliRunner().invoke(main, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output, f"`pressroom {path} --help` has no Example: block"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"`pressroom {path}` option {param.opts[0]} has no help text"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_in_readme(path: str, command: click.Command) -> None:
    assert f"pressroom {path}" in README, f"README.md does not document `pressroom {path}`"


def config_keys(cls: type, prefix: str) -> Iterator[str]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f.name.rstrip("_")
        dotted = f"{prefix}.{key}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and not hasattr(tp, "parse"):  # Rate is a value
            yield from config_keys(tp, dotted)  # type: ignore[arg-type]
        else:
            yield dotted


def documented_keys() -> list[str]:
    keys = ["state", "reports", "outbox"]
    sections = {
        "publication": config.PublicationConfig,
        "feeds": config.FeedsConfig,
        "digest": config.DigestConfig,
        "cta": config.CtaConfig,
        "sending": config.SendingConfig,
        "subscribers": config.SubscribersConfig,
        "bounces": config.BouncesConfig,
        "serve": config.ServeConfig,
        "patreon": config.PatreonConfig,
        "signup": config.SignupConfig,
        "lists.<name>": config.ListConfig,
    }
    for name, cls in sections.items():
        keys += config_keys(cls, name)
    for name in sources.registry.names():
        keys += config_keys(sources.get(name).Settings, f"sources.{name}")
    for name in providers.registry.names():
        keys += config_keys(providers.get(name).Settings, f"providers.{name}")
    return keys


@pytest.mark.parametrize("key", documented_keys())
def test_config_key_in_readme(key: str) -> None:
    assert f"`{key}`" in README, f"README.md does not document config key `{key}`"


def test_verbose_and_quiet_together_are_refused() -> None:
    result = CliRunner().invoke(main, ["-v", "-q", "articles"])
    assert result.exit_code == 2
    assert "contradict" in result.output
