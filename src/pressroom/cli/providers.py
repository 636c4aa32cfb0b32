"""`pressroom providers`: list the mail providers and check one's settings and credentials."""

from __future__ import annotations

import dataclasses
import os

import click

from pressroom.cli.app import App, pass_app
from pressroom.errors import ConfigError


@click.group()
def providers() -> None:
    """Mail providers: what is available, and whether one is set up right.

    \b
    Example:
        pressroom providers list
        pressroom providers check mailgun
    """


@providers.command("list")
@pass_app
def list_(app: App) -> None:
    """List the providers pressroom can send through, with batch sizes and env vars.

    \b
    Example:
        pressroom providers list
    """
    from pressroom.delivery import providers as registry

    current = app.config.sending.provider
    for name in registry.registry.names():
        cls = registry.get(name)
        settings = _settings_or_none(app, name)
        if settings is not None:
            envs = ", ".join(cls.env_names(settings).values())
        else:  # required settings missing from config.yaml: show the default env var names
            defaults = {f.name: f.default for f in dataclasses.fields(cls.Settings)}
            envs = ", ".join(str(defaults.get(s, "")) for s in cls.secret_envs)
        mark = "*" if name == current else " "
        app.out(
            f"{mark} {name:<9} up to {cls.max_batch:>4} per call"
            + (f"   secrets: {envs}" if envs else "")
        )


@providers.command("check")
@click.argument("name", required=False)
@pass_app
def check(app: App, name: str | None) -> None:
    """Verify a provider's settings and credentials without sending anything.

    NAME defaults to sending.provider. Reads providers.NAME from config.yaml and the secrets
    from the environment variables it names, then asks the provider about the account
    (Mailgun: the sending domain; SendGrid: the key's scopes; Postmark: the server and
    message stream; SES: the account's sending status and quota). Secrets are never
    printed. Exit status: 0 when the provider accepted the credentials, 1 when it did not
    or could not be reached, 2 when a setting or environment variable is missing.

    \b
    Example:
        export MAILGUN_API_KEY=key-...
        pressroom providers check mailgun
        pressroom providers check            # the configured sending.provider
    """
    from pressroom.delivery.send import make_provider

    config = app.config
    name = name or config.sending.provider
    provider = make_provider(config, name, os.environ)
    try:
        settings = provider.settings
        if dataclasses.is_dataclass(settings):
            shown = ", ".join(
                f"{f.name.rstrip('_')}={getattr(settings, f.name)}"
                for f in dataclasses.fields(settings)
            )
            app.info(f"{name}: {provider.redact(shown)}")
        for setting, var in provider.env_names(settings).items():
            app.info(f"{name}: {setting}: ${var} is set")
        app.out(provider.redact(provider.check()))
    finally:
        provider.close()


def _settings_or_none(app: App, name: str) -> object | None:
    try:
        settings: object = app.config.provider_settings(name)
        return settings
    except ConfigError:  # a provider with required settings the config does not have
        return None


COMMANDS: list[click.Command] = [providers]
