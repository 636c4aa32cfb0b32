"""Start-up (issue 15): `pressroom --help` and `--version` load no heavy library.

Each command imports what it needs when it runs; importing the CLI (which `--help` and
`--version` do, and nothing more) must not pull in a template engine, an HTML or XML parser,
an HTTP client, a web server, YAML or the AWS SDK. Checked in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HEAVY = (
    "botocore",
    "cmarkgfm",
    "cryptography",
    "cssutils",
    "email_validator",
    "feedgen",
    "feedparser",
    "itsdangerous",
    "jinja2",
    "langcodes",
    "lxml",
    "nh3",
    "premailer",
    "requests",
    "waitress",
    "werkzeug",
    "yaml",
)

PROBE = """
import json, sys
from pressroom.cli import main
try:
    main(sys.argv[1:], prog_name="pressroom")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def heavy_loaded(args: list[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the CLI with ``args`` in a fresh interpreter: the run, and the heavy libraries it
    loaded."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [[], ["--help"], ["--version"], ["digest", "--help"]])
def test_the_cli_loads_no_heavy_library(args: list[str]) -> None:
    done, loaded = heavy_loaded(args)
    assert loaded == [], f"importing the CLI loaded {loaded}: import them inside the command"
    assert "pressroom" in done.stdout + done.stderr


def test_the_probe_sees_a_heavy_import() -> None:
    """The check above can fail: a command that runs does load its libraries."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), "--config", "/nonexistent.yaml", "feeds"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "yaml" in json.loads(done.stderr.strip().splitlines()[-1])


def test_literal_choices_match_their_registries() -> None:
    from pressroom.audience import imports, subscribers
    from pressroom.cli import scaffold
    from pressroom.cli import subscribers as cli_subscribers
    from pressroom.content import sites

    assert cli_subscribers.REASONS == subscribers.REASONS
    assert tuple(sorted(imports.READERS)) == cli_subscribers.IMPORT_FORMATS
    assert tuple(sorted(sites.READERS)) == scaffold.GENERATORS


def test_a_feeds_run_where_nothing_changed_loads_no_heavy_library(demo: Path) -> None:
    """The run a git hook pays on every commit: a walk, no parser, no renderer, no client."""
    hour_ago = time.time() - 3600
    for path in (demo / "content").rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    time.sleep(1.05)  # nothing changing "right now": the first run leaves its record
    args = ["--config", str(demo / "config.yaml"), "feeds", "--now", "2026-11-25T09:00"]
    heavy_loaded(args)  # the full run, which leaves the record
    done, loaded = heavy_loaded(args)
    assert "wrote 0 of 39 feeds (39 unchanged)" in done.stdout, done.stderr
    # the config (YAML, its language tag) is all it reads
    assert loaded == ["langcodes", "yaml"], loaded
