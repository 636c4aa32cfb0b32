"""Every command in a broken environment: one line and an exit status, never a traceback.

Walks every command `pressroom --help` lists (subcommands too) on a copy of the demo
publication that is broken for real: folders missing, folders that cannot be written (a file
where the folder should be; mode bits would not bind, since the tests may run as root), a
state file that is not a database, and a full disk (a subprocess under a small RLIMIT_FSIZE:
a write past it fails with EFBIG as a full disk fails with ENOSPC). The servers run in a
subprocess until they listen.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pressroom.cli import main

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "pressroom"
NOW = "2026-11-25T09:00"
# what each command needs to do real work (the others need nothing)
ARGS: dict[str, list[str]] = {
    "init": ["new-site"],
    "subscribers add": ["new@example.org"],
    "subscribers import": ["import.csv", "--format", "csv"],
    "subscribers unsubscribe": ["ada@example.com"],
    "digest send": ["--yes"],
    "weekly": ["--yes"],
}
# commands that serve until stopped: they run in a subprocess (see test_servers_…)
SERVERS: dict[str, list[str]] = {
    "serve": ["--port", "0"],
    "unsubscribe-server": ["--port", "0"],
    "digest preview --serve": ["--port", "0"],
}
OUTPUTS = (".pressroom", "public", "reports", "outbox", "preview", "new-site")
IMPORT = "email,name,lists,tags,status,subscribed_at\nnew@example.org,New,weekly,,active,\n"


def commands() -> list[str]:
    """Every leaf command, as its words after `pressroom`."""

    def walk(cmd: click.Command, path: list[str]) -> Iterator[str]:
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path)

    return [c for c in walk(main, []) if c not in SERVERS]


def env() -> dict[str, str]:
    """The environment of every run: a fixed clock, no secrets, no bytecode writes."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PRESSROOM_")}
    return {**keep, "PRESSROOM_NOW": NOW, "PYTHONDONTWRITEBYTECODE": "1"}


# --- the broken environments --------------------------------------------------------------


def missing(root: Path) -> None:
    """The folders config.yaml names are gone."""
    for name in ("content", "templates", "subscribers"):
        shutil.rmtree(root / name)


def unwritable(root: Path) -> None:
    """Every folder pressroom writes is a file instead, so nothing can be written in it.

    (Mode bits would not do: the tests may run as root, who writes to read-only folders.)
    """
    for name in OUTPUTS:
        (root / name).write_text("not a folder\n", encoding="utf-8")
    (root / "subscribers" / "suppressed.csv").unlink()
    (root / "subscribers" / "suppressed.csv").mkdir()  # a write-in-place target that is a folder


def damaged(root: Path) -> None:
    """The state file is not a database (a disk error, a bad restore, a stray copy)."""
    (root / ".pressroom").mkdir()
    (root / ".pressroom" / "state.db").write_bytes(bytes(range(256)) * 32)


def publication(tmp_path: Path, demo: Path, name: str, breaks: Callable[[Path], None]) -> Path:
    root = tmp_path / name
    shutil.copytree(demo, root)
    (root / "import.csv").write_text(IMPORT, encoding="utf-8")
    breaks(root)
    return root


# --- running one command and judging it ---------------------------------------------------


def invoke(root: Path, command: str) -> dict[str, object]:
    """Run ``command`` in-process in ``root``; what a reviewer needs to judge it."""
    old = os.getcwd()
    os.chdir(root)
    try:
        args = [*command.split(), *ARGS.get(command, [])]
        result = CliRunner().invoke(main, args, env=env())
    finally:
        os.chdir(old)
    crash = result.exception if not isinstance(result.exception, SystemExit) else None
    return {
        "command": command,
        "code": result.exit_code,
        "stderr": result.stderr,
        "output": result.output,
        "crash": "".join(traceback.format_exception(crash))[-2000:] if crash else None,
        "tmp": [str(p) for p in root.rglob("*.tmp") if p.is_file()],
    }


def problems(run: dict[str, object]) -> list[str]:
    """What is wrong with one run (empty: it failed, or worked, the way it should)."""
    found = []
    output, stderr = str(run["output"]), str(run["stderr"])
    if run["crash"] is not None or "Traceback" in output:
        found.append(f"traceback: {run['crash']}")
    if any(s in output for s in ("Missing argument", "Missing option", "No such option")):
        found.append("usage error: give it the arguments it needs in ARGS")
    if run["code"] not in (0, 1, 2):
        found.append(f"exit status {run['code']}")
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    # ours say "error: …"; Click's own checks of an argument (a missing file) "Error: …"
    if run["code"] != 0 and not any(ln.lower().startswith("error: ") for ln in lines):
        found.append("no one-line error")
    if run["tmp"]:
        found.append(f"left behind: {run['tmp']}")
    return [f"pressroom {run['command']}: {p}\n{output}" for p in found]


def drive() -> None:
    """In a subprocess under a file-size limit: run each command in its folder; JSON out."""
    for line in sys.stdin:
        root, command = json.loads(line)
        print(json.dumps(invoke(Path(root), command)), flush=True)


# --- the tests ----------------------------------------------------------------------------


def test_the_walk_covers_every_command_pressroom_help_lists() -> None:
    listed = CliRunner().invoke(main, ["--help"]).output.split("Commands:", 1)[1]
    top = {line.split()[0] for line in listed.splitlines() if line.strip()}
    walked = {c.split()[0] for c in commands()} | {s.split()[0] for s in SERVERS}
    assert walked == top
    assert len(commands()) >= 19
    assert set(ARGS) <= set(commands())


@pytest.mark.parametrize(
    "breaks", [missing, unwritable, damaged], ids=["missing", "unwritable", "damaged-state"]
)
def test_every_command_in_a_broken_publication(
    tmp_path: Path, demo: Path, breaks: Callable[[Path], None]
) -> None:
    found = []
    for i, command in enumerate(commands()):
        root = publication(tmp_path, demo, f"p{i}", breaks)
        found += problems(invoke(root, command))
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("limit", [0, 24 * 1024], ids=["no-room", "little-room"])
def test_every_command_on_a_full_disk(tmp_path: Path, demo: Path, limit: int) -> None:
    roots = {
        c: publication(tmp_path, demo, f"p{i}", lambda root: None) for i, c in enumerate(commands())
    }

    def fsize() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = subprocess.run(
        [sys.executable, "-c", "from tests.test_broken_environment import drive; drive()"],
        input="".join(json.dumps([str(r), c]) + "\n" for c, r in roots.items()),
        cwd=REPO,
        env={**env(), "PYTHONPATH": str(REPO)},
        preexec_fn=fsize,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr
    runs = [json.loads(line) for line in child.stdout.splitlines()]
    assert [r["command"] for r in runs] == list(roots)
    found = [p for run in runs for p in problems(run)]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("breaks", [missing, unwritable], ids=["missing", "unwritable"])
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_servers_in_a_broken_publication(
    tmp_path: Path, demo: Path, breaks: Callable[[Path], None], server: str
) -> None:
    root = publication(tmp_path, demo, "p", breaks)
    proc = subprocess.Popen(
        [str(BIN), *server.split(), *SERVERS[server]],
        cwd=root,
        env={**env(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(proc.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while proc.poll() is None and not said and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:  # it listens (a broken publication need not stop a server)
        proc.terminate()
    proc.wait(timeout=10)
    reader.join(timeout=5)
    proc.stdout.close()
    output = "".join(said)
    assert "Traceback" not in output, output
    if proc.returncode not in (0, -signal.SIGTERM):
        lines = [ln for ln in output.splitlines() if ln.strip()]
        assert lines and lines[-1].startswith("error: "), output
