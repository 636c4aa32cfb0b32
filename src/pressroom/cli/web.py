"""`pressroom serve`: the reader-facing web app (subscribe, confirm, preferences, unsubscribe)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime

import click

from pressroom.cli.app import App, pass_app


def _serve_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option(
        "--threads",
        type=click.IntRange(1, 256),
        default=None,
        help="Worker threads answering requests [default: serve.threads, 8].",
    )(f)
    f = click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=None,
        help="Port to listen on; 0 picks a free one [default: serve.port, 8080].",
    )(f)
    return click.option(
        "--host",
        default=None,
        help="Address to listen on [default: serve.host, 127.0.0.1].",
    )(f)


def _run(app: App, host: str | None, port: int | None, threads: int | None) -> None:
    from pressroom.audience import tokens
    from pressroom.web import serve as serve_mod
    from pressroom.web import signup
    from pressroom.web.app import make_app

    config = app.config
    settings = config.serve
    secret = tokens.load_secret(config, os.environ, app.info)
    tokens.check_secret(config, secret)  # before anything listens
    tz = config.publication.tz

    def clock() -> datetime:
        return datetime.now(tz)

    wsgi = make_app(config, secret=secret, clock=clock)  # before the log: said once, below
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    web_log = logging.getLogger("pressroom.web")
    web_log.addHandler(handler)
    web_log.setLevel(logging.WARNING if app.quiet else logging.INFO)
    web_log.propagate = False

    def ready(url: str) -> None:
        app.info(
            f"pressroom serve on {url}/ (subscribe, confirm, preferences, unsubscribe at "
            f"{url}/unsubscribe; Ctrl-C stops)"
        )
        closed = signup.closed_because(wsgi.site)
        if closed:
            app.warn(f"signups are closed until this is fixed: {closed}")
        else:
            app.info("to put the signup form on your site, paste:\n" + signup.embed_snippet(config))

    serve_mod.serve(
        wsgi,
        host or settings.host,
        settings.port if port is None else port,
        threads or settings.threads,
        ready,
    )
    signup.finish(wsgi.site)  # Ctrl-C: signups already answered still get their mail


@click.command("serve")
@_serve_options
@pass_app
def serve(app: App, host: str | None, port: int | None, threads: int | None) -> None:
    """Serve the reader pages: subscribe, confirm, preferences, one-click unsubscribe.

    One WSGI app under waitress. Put it behind your web server (HTTPS) at publication.url or
    serve.url; set serve.trusted_proxy to the proxy's address so X-Forwarded-For is believed.
    Other WSGI servers can run pressroom.web.app:create() instead (see README, Signups).

    \b
    Example:
        PRESSROOM_SECRET=… pressroom serve --port 8080
        pressroom serve --host 0.0.0.0 --port 8000 --threads 16
    """
    _run(app, host, port, threads)


@click.command("unsubscribe-server")
@_serve_options
@pass_app
def unsubscribe_server(app: App, host: str | None, port: int | None, threads: int | None) -> None:
    """The same server as `pressroom serve` (its old name, kept for existing setups).

    \b
    Example:
        PRESSROOM_SECRET=… pressroom unsubscribe-server --port 8080
    """
    _run(app, host, port, threads)


COMMANDS: list[click.Command] = [serve, unsubscribe_server]
