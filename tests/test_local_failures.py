"""Never lose a reader, never mail one twice: local disks that fill up or refuse writes.

The disk is made to fail for real: a subprocess runs the CLI under a small file-size limit
(RLIMIT_FSIZE, so a write past it fails with EFBIG as a full disk fails with ENOSPC), or a
folder is replaced by a file. Nothing of ours is mocked.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pressroom.cli import main
from pressroom.delivery.providers.file import eml_name

BIN = Path(sys.executable).parent / "pressroom"
FILLER = '\n{{ "A line that makes the message larger than the disk has room for.\\n" * 1500 }}\n'


def cli(demo: Path, *args: str) -> tuple[int, str]:
    """The CLI in-process in ``demo``: (exit code, stdout + stderr)."""
    old = os.getcwd()
    os.chdir(demo)
    try:
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def limited(demo: Path, *args: str, fsize: int) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess that cannot write any file past ``fsize`` bytes."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [str(BIN), *args],
        cwd=demo,
        env=env,
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=120,
    )


def on_terminal(demo: Path, *args: str, answer: str = "n") -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess whose stdin and stderr are a terminal (a pty) that answers
    ``answer``; its ``stderr`` is what the terminal showed."""
    master, slave = os.openpty()
    try:
        os.write(master, (answer + "\n").encode())
        proc = subprocess.run(
            [str(BIN), *args],
            cwd=demo,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave,
            timeout=120,
        )
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: everything the terminal held has been read
                break
            if not chunk:
                break
            shown += chunk
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(), shown.decode(errors="replace")
        )
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


def states(demo: Path, issue: int = 1) -> dict[str, int]:
    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:
        return dict(
            db.execute(
                "SELECT state, count(*) FROM deliveries WHERE issue=? GROUP BY state", (issue,)
            ).fetchall()
        )


def issues(demo: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:
        return db.execute("SELECT number, status FROM issues").fetchall()


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


def tmp_files(demo: Path) -> list[Path]:
    return [p for p in demo.rglob("*") if p.name.endswith(".tmp")]


# --- the outbox disk fills up mid-issue ---------------------------------------------------


def test_a_full_outbox_keeps_readers_pending_and_the_next_run_sends_them(demo: Path) -> None:
    # messages larger than the limit: the disk is "full" for every .eml, not for the ledger
    with open(demo / "templates" / "_footer.txt.j2", "a", encoding="utf-8") as f:
        f.write(FILLER)
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--limit", "1", "--yes")
    assert code == 0, out
    assert states(demo) == {"sent": 1, "pending": 5}
    assert os.path.getsize(next((demo / "outbox" / "issue-1").iterdir())) > 64 * 1024

    full = limited(demo, "digest", "send", "--now", "2026-11-25T10:00", "--yes", fsize=64 * 1024)

    no_traceback(full.stderr)
    assert full.returncode == 1
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: sending stopped: file: cannot write ")
    assert "File too large" in last and "raise the file size limit" in last
    assert "run `pressroom digest send` to resume" in last
    assert states(demo) == {"sent": 1, "pending": 5}  # nobody failed, nobody lost
    assert issues(demo) == [(1, "sending")]  # the issue stays open for the next run
    assert tmp_files(demo) == []
    assert len(list((demo / "outbox" / "issue-1").iterdir())) == 1

    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T11:00", "--yes")
    assert code == 0, out
    assert states(demo) == {"sent": 6}
    assert len(list((demo / "outbox" / "issue-1").iterdir())) == 6


def test_an_outbox_that_is_not_a_folder_keeps_readers_pending(demo: Path) -> None:
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--limit", "1", "--yes")
    assert code == 0, out
    # every pending reader's .eml path is taken by a non-empty folder: the rename fails
    outbox = demo / "outbox" / "issue-1"
    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:
        pending = [r[0] for r in db.execute("SELECT email FROM deliveries WHERE state='pending'")]
    for email in pending:
        (outbox / eml_name(email) / "in-the-way").mkdir(parents=True)

    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T10:00", "--yes")

    assert code == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: sending stopped: file: cannot write "), out
    assert "run `pressroom digest send` to resume" in last
    assert states(demo) == {"sent": 1, "pending": 5}
    assert tmp_files(demo) == []


# --- the state disk fills up while the issue is frozen ------------------------------------


def test_a_full_state_disk_while_freezing_leaves_nothing_half_frozen(demo: Path) -> None:
    # enough readers that freezing them outgrows the limit (SQLite's -shm needs 32 KiB)
    rows = "".join(f"reader{i:05d}@example.org,Reader {i},weekly,,active,\n" for i in range(600))
    with open(demo / "subscribers" / "subscribers.csv", "a", encoding="utf-8") as f:
        f.write(rows)

    full = limited(demo, "digest", "send", "--now", "2026-11-25T09:00", "--yes", fsize=48 * 1024)

    no_traceback(full.stderr)
    assert full.returncode == 1
    lines = [ln for ln in full.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, full.stderr
    assert "while freezing issue 1 (nothing of it was stored)" in lines[0]
    assert "free space on the disk holding" in lines[0]
    assert "cannot rollback" not in full.stderr
    assert issues(demo) == []  # not half-frozen: not frozen at all
    assert tmp_files(demo) == []
    assert not (demo / "outbox" / "issue-1").exists()

    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T10:00", "--yes", "--limit", "5")
    assert code == 0, out
    assert issues(demo) == [(1, "sending")]
    assert states(demo) == {"sent": 5, "pending": 601}


# --- the reports folder cannot be written after the send ----------------------------------


def test_an_unwritable_reports_folder_gives_one_line_and_the_send_stays_recorded(
    demo: Path,
) -> None:
    (demo / "reports").write_text("a file where the reports folder should be\n")

    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--yes")

    assert code == 1
    problem = [ln for ln in out.splitlines() if "cannot write the report" in ln]
    assert len(problem) == 1, out
    assert "what was sent is recorded in the state file and will not be sent again" in problem[0]
    assert "make sure" in problem[0] and "reports is a folder" in problem[0]
    assert issues(demo) == [(1, "sent")] and states(demo) == {"sent": 6}
    assert tmp_files(demo) == []

    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T10:00", "--yes")
    assert code == 0, out
    assert "nothing to send" in out
    assert len(list((demo / "outbox" / "issue-1").iterdir())) == 6


# --- a lost or emptied state file ---------------------------------------------------------


def _lose_state(demo: Path, how: str) -> None:
    state = demo / ".pressroom"
    if how == "removed":
        for p in sorted(state.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        state.rmdir()
    else:  # emptied: the file is there, with nothing in it
        for p in state.glob("state.db*"):
            p.unlink()
        (state / "state.db").write_bytes(b"")


@pytest.mark.parametrize("how", ["removed", "emptied"])
def test_a_lost_state_file_does_not_send_the_issue_again(demo: Path, how: str) -> None:
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--yes")
    assert code == 0, out
    report = next((demo / "reports").glob("issue-1-run-001-*.json"))
    _lose_state(demo, how)
    before = {p: p.stat().st_mtime_ns for p in (demo / "outbox" / "issue-1").iterdir()}

    for command in (["digest", "send"], ["weekly"], ["digest", "send", "--dry-run"]):
        code, out = cli(demo, *command, "--now", "2026-11-25T10:00", "--yes")
        assert code == 1, out
        assert out.strip().splitlines()[-1] == (
            f"error: issue 1 went out on 2026-11-25 09:00 (reports/{report.name}); the state "
            "file (.pressroom/state.db) is new — restore it, or pass --resend-issue 1 to send "
            "it again"
        ), out
    after = {p: p.stat().st_mtime_ns for p in (demo / "outbox" / "issue-1").iterdir()}
    assert after == before  # nobody was mailed again

    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T10:00", "--resend-issue", "2")
    assert code == 2 and "--resend-issue 2: the issue to send now is issue 1" in out

    code, out = cli(
        demo, "digest", "send", "--now", "2026-11-25T10:00", "--yes", "--resend-issue", "1"
    )
    assert code == 0, out
    assert states(demo) == {"sent": 6}


def test_a_report_of_a_dry_run_or_of_nothing_sent_is_no_evidence(demo: Path) -> None:
    (demo / "reports").mkdir()
    (demo / "reports" / "issue-1-run-001-20261120T090000Z.json").write_text(
        '{"issue": 1, "dry_run": false, "counts": {"sent": 0}, "run": {"sent": 0}}'
    )
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--yes")
    assert code == 0, out
    assert states(demo) == {"sent": 6}


# --- a state file of another version (or another program) --------------------------------


@pytest.mark.parametrize(
    ("table", "column"), [("issues", "window_end"), ("deliveries", "first_try")]
)
def test_a_state_file_missing_a_column_is_one_line_not_a_traceback(
    demo: Path, table: str, column: str
) -> None:
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--yes")
    assert code == 0, out
    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    before = {p: p.stat().st_mtime_ns for p in (demo / "outbox" / "issue-1").iterdir()}
    for command in (
        ["digest", "send", "--yes"],
        ["digest", "send", "--yes", "--resend-failed"],
        ["weekly", "--yes"],
        ["digest", "build"],
    ):
        proc = subprocess.run(
            [str(BIN), *command, "--now", "2026-12-05T09:00"],
            cwd=demo,
            capture_output=True,
            text=True,
            timeout=120,
        )
        no_traceback(proc.stderr)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == (
            f"error: {demo / '.pressroom' / 'state.db'}: not a state file this pressroom can "
            f"use (table {table} has no column {column}: written by another version or another "
            "program); point the state: setting at this publication's state folder, or restore "
            "it from a backup made by this version of pressroom"
        ), proc.stderr
    after = {p: p.stat().st_mtime_ns for p in (demo / "outbox" / "issue-1").iterdir()}
    assert after == before


# --- a send refused at its confirmation changes nothing -----------------------------------


def two_uncertain_and_a_confirmation_to_give(demo: Path) -> None:
    """Issue 1 sent to 3 of 6 readers, two of those answers lost (uncertain), and every
    send over one reader needing a confirmation (``sending.confirm_over: 1``)."""
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--limit", "3", "--yes")
    assert code == 0, out
    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:  # two answers were lost
        db.execute(
            "UPDATE deliveries SET state='uncertain' WHERE id IN "
            "(SELECT id FROM deliveries WHERE state='sent' LIMIT 2)"
        )
    assert states(demo) == {"sent": 1, "uncertain": 2, "pending": 3}
    cfg = demo / "config.yaml"
    cfg.write_text(cfg.read_text().replace("confirm_over: 1000", "confirm_over: 1"))


def test_resend_uncertain_refused_at_the_confirmation_leaves_them_uncertain(demo: Path) -> None:
    two_uncertain_and_a_confirmation_to_give(demo)
    outbox = demo / "outbox" / "issue-1"
    written = {p.name: p.stat().st_mtime_ns for p in outbox.iterdir()}

    # a script without --yes: the send needs a confirmation and is refused
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T10:00", "--resend-uncertain")
    assert code == 2, out
    assert "pass --yes" in out
    # the publisher's "resend them" did not happen: a later plain run must not resend them
    assert states(demo) == {"sent": 1, "uncertain": 2, "pending": 3}
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T11:00", "--yes")
    assert code == 1, out
    assert states(demo) == {"sent": 4, "uncertain": 2}
    assert len(list(outbox.iterdir())) == 6
    # the three sent before (uncertain or not) were not written again
    assert all(outbox.joinpath(n).stat().st_mtime_ns == t for n, t in written.items())


def test_resend_failed_refused_at_the_confirmation_leaves_the_issue_settled(demo: Path) -> None:
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--yes")
    assert code == 0, out
    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:  # two were refused
        db.execute(
            "UPDATE deliveries SET state='failed', error='HTTP 400: bad payload' WHERE id IN "
            "(SELECT id FROM deliveries LIMIT 2)"
        )
    cfg = demo / "config.yaml"
    cfg.write_text(cfg.read_text().replace("confirm_over: 1000", "confirm_over: 1"))
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T10:00", "--resend-failed")
    assert code == 2, out
    assert "pass --yes" in out
    # nothing reopened: the next weekly run does not resume issue 1 behind the publisher's back
    assert states(demo) == {"sent": 4, "failed": 2}
    assert issues(demo) == [(1, "sent")]

    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T10:00", "--resend-failed", "--yes")
    assert code == 0, out
    assert "resending the 2 failed recipients of issue 1 (--resend-failed)" in out
    assert states(demo) == {"sent": 6} and issues(demo) == [(1, "sent")]


def test_drop_uncertain_refused_at_the_confirmation_leaves_them_uncertain(demo: Path) -> None:
    two_uncertain_and_a_confirmation_to_give(demo)

    # a script without --yes: the send needs a confirmation and is refused
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T10:00", "--drop-uncertain")
    assert code == 2, out
    assert "pass --yes" in out
    assert states(demo) == {"sent": 1, "uncertain": 2, "pending": 3}
    # declined at a real terminal's prompt: nothing changed either
    proc = on_terminal(demo, "digest", "send", "--now", "2026-11-25T10:30", "--drop-uncertain")
    assert proc.returncode == 1, proc.stderr
    assert "not sent" in proc.stderr
    assert states(demo) == {"sent": 1, "uncertain": 2, "pending": 3}
    # confirmed: only now are they settled as dropped
    code, out = cli(
        demo, "digest", "send", "--now", "2026-11-25T11:00", "--drop-uncertain", "--yes"
    )
    assert code == 0, out
    assert states(demo) == {"sent": 4, "dropped": 2}


# --- an option given an empty value (a script's unset variable) sends nothing --------------


@pytest.mark.parametrize("option", ["--test-to", "--tag", "--list", "--provider"])
def test_an_empty_option_value_is_a_usage_error_not_a_send_to_everyone(
    demo: Path, option: str
) -> None:
    # `pressroom digest send --test-to "$TEST_TO"` with TEST_TO unset: the empty value was
    # read as "no --test-to" and the issue went to every subscriber for real
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", option, "")
    assert code == 2, out
    assert f"{option}: empty value" in out, out
    assert not (demo / "outbox").exists()
    assert not (demo / ".pressroom" / "state.db").exists() or issues(demo) == []
    for cmd in (["weekly"], ["digest", "send"]):
        if option in ("--test-to", "--tag", "--list") and cmd == ["weekly"]:
            continue  # weekly has no such option
        code, out = cli(demo, *cmd, "--now", "2026-11-25T09:00", option, "  ")
        assert code == 2, out
        assert not (demo / "outbox").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM])
def test_ctrl_c_at_the_confirmation_prompt_freezes_nothing_and_exits_130(
    demo: Path, sig: int
) -> None:
    # the publisher spots a typo in the issue and presses Ctrl-C at "send issue 1 …? [y/N]":
    # the issue stayed frozen, so the fixed article never went out (the next run resumed the
    # frozen copy), and the exit status was click's 1
    cfg = demo / "config.yaml"
    cfg.write_text(cfg.read_text().replace("confirm_over: 1000", "confirm_over: 1"))
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [str(BIN), "digest", "send", "--now", "2026-11-25T09:00"],
            cwd=demo,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        db = demo / ".pressroom" / "state.db"
        deadline = time.monotonic() + 60
        while True:  # wait until the issue is frozen: the prompt is next
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            try:
                if db.exists() and issues(demo):
                    break
            except sqlite3.OperationalError:  # the schema is being written
                pass
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(sig)  # Ctrl-C, the terminal closed, a stop
        proc.communicate(timeout=60)
        os.close(slave)
        slave = -1
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert b"? [y/N]" in err, err.decode()  # it was asked, on the terminal
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert issues(demo) == []  # the freeze was rolled back, as a declined send's is
    assert not (demo / "outbox").exists()


def test_no_prompt_hidden_in_a_log_file_when_only_stdin_is_a_terminal(demo: Path) -> None:
    # the crontab line tried by hand: `pressroom digest send >> weekly.log 2>&1` in a terminal.
    # The question went into the log and the run sat waiting for an answer nobody could see
    cfg = demo / "config.yaml"
    cfg.write_text(cfg.read_text().replace("confirm_over: 1000", "confirm_over: 1"))
    master, slave = os.openpty()
    log = demo / "weekly.log"
    try:
        with log.open("w") as out:
            proc = subprocess.run(
                [str(BIN), "digest", "send", "--now", "2026-11-25T09:00"],
                cwd=demo,
                stdin=slave,
                stdout=out,
                stderr=out,
                timeout=60,
            )
    except subprocess.TimeoutExpired:
        pytest.fail("the send waited for an answer to a question written into the log")
    finally:
        os.close(slave)
        os.close(master)
    text = log.read_text()
    assert proc.returncode == 2, text
    assert "pass --yes" in text
    assert not (demo / "outbox").exists()
    assert issues(demo) == []


@pytest.mark.parametrize("value", ["me@example.org,you@example.org", "me@example.org you@x.org"])
def test_test_to_with_several_addresses_says_to_send_one_copy_each(demo: Path, value: str) -> None:
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--test-to", value)
    assert code == 2, out
    assert "--test-to takes one address, got several" in out, out
    assert len(out.strip().splitlines()) == 1, out  # refused before the issue is built
    assert not (demo / "outbox").exists()


def test_a_provider_with_no_settings_is_refused_before_the_issue_is_recorded_as_sent(
    demo: Path,
) -> None:
    # a publisher mailing through SMTP tries `--provider file` "to see what would go out":
    # every reader was written to the outbox and recorded as sent, nobody was mailed
    cfg = demo / "config.yaml"
    text = cfg.read_text().replace("provider: file", "provider: smtp")
    cfg.write_text(text + "providers:\n  smtp:\n    host: 127.0.0.1\n    port: 1\n")
    code, out = cli(demo, "digest", "send", "--now", "2026-11-25T09:00", "--provider", "file")
    assert code == 2, out
    assert "--provider file: config.yaml has no providers.file section" in out, out
    assert not (demo / "outbox").exists()
    assert not (demo / ".pressroom" / "state.db").exists() or issues(demo) == []
    # a rehearsal through it still works: nothing is recorded
    code, out = cli(
        demo, "digest", "send", "--now", "2026-11-25T09:00", "--provider", "file", "--dry-run"
    )
    assert code == 0, out
