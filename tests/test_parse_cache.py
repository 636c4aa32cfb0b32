"""The parse cache (issue 15): a warm run reads only what changed, with a cold run's bytes."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result

from pressroom.cli import main

NOW = "2026-11-25T09:00"
LONG_AGO = time.time() - 3600  # older than the cache's "racily clean" window


def feeds(pub: Path) -> Result:
    """A full run: without the record of the last run (tests/test_feeds_unchanged.py), which
    would let a run where nothing changed skip loading altogether, the parse cache serves."""
    for record in (pub / ".pressroom").glob("unchanged-*.json"):
        record.unlink()
    result = CliRunner().invoke(main, ["--config", str(pub / "config.yaml"), "feeds", "--now", NOW])
    assert result.exit_code == 0, result.output
    return result


def snapshot(pub: Path) -> dict[str, bytes]:
    out = pub / "public" / "feeds"
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def age(pub: Path) -> None:
    """Date every article file an hour back, and let a second pass: the cache stores no parse
    of a file changed (ctime) within the last second, which could change again unseen."""
    for path in (pub / "content").rglob("*"):
        if path.is_file():
            os.utime(path, (LONG_AGO, LONG_AGO))
    time.sleep(1.05)


def cold_copy(pub: Path, where: Path) -> dict[str, bytes]:
    """The feeds a cold run makes of the same publication: no state, no output."""
    shutil.copytree(pub, where, ignore=shutil.ignore_patterns(".pressroom", "public"))
    feeds(where)
    return snapshot(where)


def cached_rows(pub: Path) -> int:
    with sqlite3.connect(pub / ".pressroom" / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM parse_cache_v2").fetchone()[0])


def test_warm_and_deleted_cache_give_the_cold_bytes(demo: Path, tmp_path: Path) -> None:
    age(demo)
    first = feeds(demo)
    cold = snapshot(demo)
    n_files = sum(1 for p in (demo / "content").rglob("*") if p.suffix in {".md", ".html", ".txt"})
    assert cached_rows(demo) == n_files

    warm = feeds(demo)
    assert snapshot(demo) == cold
    assert warm.output == first.output.replace("wrote", "unchanged") or "unchanged" in warm.output

    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:
        db.execute("DROP TABLE parse_cache_v2")
    shutil.rmtree(demo / "public")
    feeds(demo)
    assert snapshot(demo) == cold
    assert cold_copy(demo, tmp_path / "cold") == cold


# What the process opens, seen through CPython's audit hooks (PEP 578): an observer, not a
# stand-in; our code runs unchanged. Hooks cannot be removed, so this one records only while
# a test asks it to.
OPENED: list[str] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if OPENED is not None and event == "open" and isinstance(args[0], str | Path):
        OPENED.append(str(args[0]))


sys.addaudithook(_audit)


def opened_during(pub: Path) -> list[str]:
    global OPENED
    OPENED = []
    try:
        feeds(pub)
        content = str(pub / "content")
        return sorted(Path(p).name for p in OPENED if p.startswith(content))
    finally:
        OPENED = None


def test_an_unchanged_file_is_not_read_again(demo: Path) -> None:
    age(demo)
    cold = opened_during(demo)
    assert len(cold) >= 10  # the cold run reads every article (the observer works)
    assert opened_during(demo) == []  # the warm run reads none

    # an edit is parsed again, and only that file
    edited = sorted((demo / "content").glob("*.md"))[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nOne more line.\n", "utf-8")
    assert opened_during(demo) == [edited.name]


def test_a_deleted_file_is_never_served_from_the_cache(demo: Path, tmp_path: Path) -> None:
    age(demo)
    feeds(demo)
    victim = sorted((demo / "content").glob("*.md"))[0]
    slug_line = victim.read_text(encoding="utf-8")
    victim.unlink()
    feeds(demo)
    assert snapshot(demo) == cold_copy(demo, tmp_path / "cold")
    assert slug_line  # the file really had content the feeds showed


def test_a_parsing_setting_change_gives_the_cold_output(demo: Path, tmp_path: Path) -> None:
    age(demo)
    feeds(demo)
    config = demo / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert "    default_author: The Duran" in text
    changed = text.replace("    default_author: The Duran", "    default_author: Someone Else")
    config.write_text(changed, encoding="utf-8")
    feeds(demo)
    assert snapshot(demo) == cold_copy(demo, tmp_path / "cold")


def test_a_corrupt_cache_is_rebuilt_with_a_warning(demo: Path, tmp_path: Path) -> None:
    age(demo)
    feeds(demo)
    cold = snapshot(demo)
    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:
        db.execute("UPDATE parse_cache_v2 SET value = x'00ff00ff'")  # rows that do not unpickle
    feeds(demo)
    assert snapshot(demo) == cold
    with sqlite3.connect(demo / ".pressroom" / "state.db") as db:
        db.execute("DROP TABLE parse_cache_v2")
        db.execute("CREATE TABLE parse_cache_v2 (nonsense TEXT)")  # a table of the wrong shape
    result = feeds(demo)
    assert "parse cache cannot be read" in result.output
    assert snapshot(demo) == cold
    feeds(demo)  # and the next run has a working cache again
    assert cached_rows(demo) > 0


def test_a_file_edited_just_now_is_not_cached(demo: Path) -> None:
    """Within the same mtime tick a second edit of the same size would look unchanged."""
    for path in (demo / "content").rglob("*"):
        path.touch()  # edited this very moment
    feeds(demo)
    assert cached_rows(demo) == 0
    age(demo)
    feeds(demo)
    assert cached_rows(demo) > 0


def test_an_expiry_date_is_judged_again_on_every_run(demo: Path) -> None:
    post = demo / "content" / "expiring.md"
    post.write_text(
        "---\ntitle: Offer ends soon\ndate: 2026-11-20T08:00:00Z\n"
        "expiryDate: 2026-11-26T00:00:00Z\n---\n\nA limited offer.\n",
        encoding="utf-8",
    )
    age(demo)

    def site_feed(now: str) -> str:
        for record in (demo / ".pressroom").glob("unchanged-*.json"):
            record.unlink()  # the parse cache judges, not the record's clock window
        result = CliRunner().invoke(
            main, ["--config", str(demo / "config.yaml"), "feeds", "--now", now]
        )
        assert result.exit_code == 0, result.output
        return (demo / "public" / "feeds" / "index.xml").read_text(encoding="utf-8")

    assert "Offer ends soon" in site_feed("2026-11-25T09:00")
    assert "Offer ends soon" not in site_feed("2026-11-27T09:00")


def test_a_cached_article_says_its_warnings_again(demo: Path) -> None:
    (demo / "content" / "odd.md").write_text(
        "---\ntitle: Odd links\ndate: 2026-11-21T08:00:00Z\nimage: javascript:alert(1)\n"
        "colour: blue\n---\n\nText.\n",
        encoding="utf-8",
    )
    age(demo)
    cold = feeds(demo).output
    assert "odd.md" in cold and "colour" in cold and "javascript" in cold
    assert cached_rows(demo) > 0
    warm = feeds(demo).output
    said = [line for line in cold.splitlines() if "odd.md" in line]
    assert said and said == [line for line in warm.splitlines() if "odd.md" in line]


def test_every_permalink_placeholder_has_a_value() -> None:
    from pressroom.content import permalinks

    assert set(permalinks._VALUES) == set(permalinks.TOKENS)


# --- parsing on every core --------------------------------------------------------------

RUN_COUNTING_FORKS = """
import sys
forks = []
sys.addaudithook(lambda event, args: forks.append(1) if event == "os.fork" else None)
from pressroom.cli import main
try:
    main(sys.argv[1:])
finally:
    print(f"forks={len(forks)}", file=sys.stderr)
"""


def run_feeds(pub: Path, workers: int) -> tuple[str, int]:
    env = {**os.environ, "PRESSROOM_WORKERS": str(workers)}
    done = subprocess.run(
        [sys.executable, "-c", RUN_COUNTING_FORKS, "--config", str(pub / "config.yaml"),
         "feeds", "--now", NOW],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # the broken files below make it exit 1
    said, _, forks = done.stderr.rpartition("forks=")
    return done.stdout + said, int(forks)


def pool_pair(
    tmp_path: Path, files: dict[str, str], feeds: str
) -> tuple[Path, Path, str, str, int, int]:
    """The same publication twice (``files`` under content/, ``feeds`` settings), run cold
    with one process and with two: both folders, what each said and how often each forked."""
    one, two = tmp_path / "one", tmp_path / "two"
    for pub in (one, two):
        content = pub / "content"
        content.mkdir(parents=True)
        for name, text in files.items():
            (content / name).write_text(text, encoding="utf-8")
        (pub / "config.yaml").write_text(
            "publication:\n  name: Pool Times\n  url: https://pool.example/\n"
            "  timezone: Europe/London\n  postal_address: 1 Road, Town\n"
            f"sources:\n  - type: files\n    path: content\nfeeds:\n  out: public/feeds\n{feeds}",
            encoding="utf-8",
        )
        age(pub)
    said_one, forks_one = run_feeds(one, 1)
    said_two, forks_two = run_feeds(two, 2)
    return one, two, said_one, said_two, forks_one, forks_two


def test_a_large_cold_folder_parses_on_every_core_with_the_same_output(tmp_path: Path) -> None:
    from pressroom.content.cache import POOL_MIN_FILES

    files = {}
    for i in range(POOL_MIN_FILES + 200):
        extra = "colour: blue\n" if i % 97 == 0 else ""  # a warning now and then
        date = "31/02/2026" if i % 331 == 0 else f"2026-0{1 + i % 9}-1{i % 10}T08:00:00Z"
        files[f"{i:05d}.md"] = (
            f"---\ntitle: Post {i} & <co>\ndate: {date}\n{extra}categories: [C{i % 7}]\n"
            f"authors: [A{i % 5}]\n---\n\nBody of **post {i}** with a [link](../x/).\n"
        )
    one, two, said_one, said_two, forks_one, forks_two = pool_pair(
        tmp_path, files, "  items: 20\n  per_category: true\n  per_author: true\n"
    )
    assert forks_one == 0 and forks_two >= 2  # one process, then a pool of two
    assert said_two.replace(str(two), str(one)) == said_one  # same warnings, same errors
    assert "colour" in said_one and "31/02/2026" in said_one
    assert snapshot(two) == snapshot(one)
    assert cached_rows(two) == cached_rows(one) > POOL_MIN_FILES
    # and the warm run after a pooled cold one is the same again, with no pool
    warm, forks = run_feeds(two, 2)
    assert forks == 0 and "wrote 0 of" in warm and snapshot(two) == snapshot(one)


def rendered_rows(pub: Path) -> int:
    """Cached articles that carry their rendered HTML (stored after the feeds rendered it)."""
    from pressroom.content.cache import decode

    with sqlite3.connect(pub / ".pressroom" / "state.db") as db:
        rows = [decode(v).result for (v,) in db.execute("SELECT value FROM parse_cache_v2")]
    return sum(1 for a in rows if a is not None and "html" in getattr(a, "__dict__", {}))


def test_many_feeds_render_on_every_core_with_the_same_output(tmp_path: Path) -> None:
    from pressroom.feeds.builder import POOL_MIN_JOBS

    categories, authors = 24, 12  # 37 feeds x 3 formats: enough jobs for two workers
    assert (1 + categories + authors) * 3 >= 2 * POOL_MIN_JOBS
    files = {
        f"{i:05d}.md": f"---\ntitle: Post {i}\ndate: 2026-0{1 + i % 9}-1{i % 10}T08:00:00Z\n"
        f"categories: [C{i % categories}]\nauthors: [A{i % authors}]\n---\n\n"
        f"Body of **post {i}** with a [link](../x/) and <script>x()</script>.\n"
        for i in range(300)
    }
    files["broken.md"] = "---\ntitle: [open\n---\n"
    one, two, said_one, said_two, forks_one, forks_two = pool_pair(
        tmp_path, files, "  items: 10\n  per_category: true\n  per_author: true\n"
    )
    assert forks_one == 0 and forks_two >= 2  # 301 files parse in one process; feeds in two
    assert said_two.replace(str(two), str(one)) == said_one
    assert snapshot(two) == snapshot(one)
    assert "x()" not in (two / "public" / "feeds" / "index.xml").read_text("utf-8")
    # the bodies the workers rendered came back and were cached, as one process caches them
    assert rendered_rows(two) == rendered_rows(one) > 0


# --- workers and clocks under stress -----------------------------------------------------

ORPHAN_PROBE = """
import os, sys, time
from pressroom.content.pool import forked_map
seen = sys.argv[1]

def task(part):
    open(os.path.join(seen, str(os.getpid())), "w").close()
    time.sleep(60)  # a long feed; the parent is killed meanwhile
    return part

forked_map(task, [1, 2], 2)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """Workers hold copies of the parent's locks (feeds.lock, send.lock): one left running
    would block every later run."""
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_PROBE, str(tmp_path)])
    deadline = time.monotonic() + 30
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


LOST_WORKER_PROBE = """
import os, sys, threading
from types import SimpleNamespace
from pressroom.content.cache import Entry, parse_in_processes
parent = os.getpid()
items = [SimpleNamespace(path=f"f{i:04d}") for i in range(1200)]

def read(item):
    if item.path == "f0700" and os.getpid() != parent:
        os._exit(3)  # a worker killed (out of memory, say) 200 files into its third part
    return Entry(None, (item.path,)), ()

parses = parse_in_processes(items, read)
answers = [parses.get(item.path) for item in items]
parses.close()
given = [a is not None for a in answers]
first_missing = given.index(False)
assert not any(given[first_missing:]), "answers after a lost worker"
assert all(a[0].warnings == (i.path,) for i, a in zip(items, answers[:first_missing]))
print(first_missing, threading.active_count())
"""


def test_a_worker_lost_while_parsing_leaves_the_rest_to_the_caller() -> None:
    """Parts are handed out in order as they are done; when a worker dies, what came before
    stays and everything after is read by the caller itself (never a gap, never a hang), and
    the pool is gone before the feeds may fork again."""
    env = {**os.environ, "PRESSROOM_WORKERS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", LOST_WORKER_PROBE],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first_missing, threads = map(int, done.stdout.split())
    # parts of 250: the first part was done before the lost worker started its third
    assert 250 <= first_missing <= 700
    assert threads == 1


def test_a_file_changed_just_before_the_scan_is_never_vouched_for(tmp_path: Path) -> None:
    """The "changed within a second" rule counts from the scan, not from when the run gets
    round to storing: on a filesystem with coarse timestamps a second edit in the same tick
    would otherwise be served stale, however long the run lasted."""
    from pressroom.content.cache import Entry, ParseCache
    from pressroom.content.sources._walk import digest, scan

    (tmp_path / "x.md").write_text("---\ntitle: Alpha\n---\n", encoding="utf-8")
    scanned_at = time.time_ns()
    found = scan(str(tmp_path), "content", ())
    time.sleep(1.1)  # a long run: by now the edit is more than a second old
    assert digest(found, scanned_at) is None
    cache = ParseCache(tmp_path / "state.db", "files", (), print, write=True, scanned_at=scanned_at)
    cache.put(str(tmp_path / "x.md"), found[0][1], Entry(None, ()))
    cache.walked()
    cache.save()
    assert cache_rows_in(tmp_path / "state.db") == 0
    assert digest(found, time.time_ns()) is not None  # scanned now, the same file is settled


def cache_rows_in(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM parse_cache_v2").fetchone()[0])


def test_odd_files_and_settings_are_one_line_problems(demo: Path) -> None:
    content = demo / "content"
    os.mkfifo(content / "pipe.md")  # would block the read for ever
    deep = '{"a": ' + "[" * 5000 + "]" * 5000 + "}\n\nText.\n"
    (content / "deep.md").write_text(deep, encoding="utf-8")
    (content / "caf\udce9.md").write_bytes(b"---\ntitle: Latin-1 name\n---\n\nText.\n")
    age(demo)
    for workers in ("\u00b2", "0", "1"):
        env = {**os.environ, "PRESSROOM_WORKERS": workers}
        done = subprocess.run(
            [sys.executable, "-c", "from pressroom.cli import main; main()", "--config",
             str(demo / "config.yaml"), "feeds", "--now", NOW],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert "pipe.md: not a regular file" in done.stderr
        assert "deep.md:1: front matter: nested too deeply" in done.stderr
        assert "wrote" in done.stdout


CTRL_C_PROBE = """
import os, signal, sys
forks = [0]
def hook(event, args):
    if event == "os.fork":
        forks[0] += 1
        if forks[0] == int(sys.argv[1]):  # Ctrl-C: the whole process group, mid-start
            os.killpg(os.getpgid(0), signal.SIGINT)
sys.addaudithook(hook)
from pressroom.cli import main
main(sys.argv[2:], prog_name="pressroom")
"""


def test_ctrl_c_while_workers_start_stops_the_run(tmp_path: Path) -> None:
    """Ctrl-C between two of a pool's forks left the workers without the thread that stops
    them: the interrupted run waited for them for ever, holding feeds.lock."""
    files = {
        f"{i:05d}.md": f"---\ntitle: Post {i}\ndate: 2026-0{1 + i % 9}-1{i % 10}T08:00:00Z\n"
        f"categories: [C{i % 24}]\nauthors: [A{i % 12}]\n---\n\nBody {i}.\n"
        for i in range(1010)
    }
    files["broken.md"] = "---\ntitle: [open\n---\n"  # pool_pair's runs exit 1
    _, pub, _, _, _, forks = pool_pair(
        tmp_path, files, "  items: 10\n  per_category: true\n  per_author: true\n"
    )
    assert forks == 4  # two parse workers, then two feed workers
    env = {**os.environ, "PRESSROOM_WORKERS": "2"}
    for at in (2, 4):  # between the parse workers' forks, then the feed workers'
        for made in ("public", ".pressroom"):  # a cold run each time
            shutil.rmtree(pub / made, ignore_errors=True)
        run = subprocess.Popen(
            [sys.executable, "-c", CTRL_C_PROBE, str(at), "--config", str(pub / "config.yaml"),
             "feeds", "--now", NOW],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True,
        )  # fmt: skip
        try:
            _, said = run.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, 9)
            run.communicate()
            raise AssertionError(f"Ctrl-C at fork {at}: the run never ended") from None
        assert run.returncode == 130 and said.endswith("interrupted\n"), said
        assert "Traceback" not in said
        left = subprocess.run(
            ["ps", "-o", "pid=", "-g", str(run.pid)], capture_output=True, text=True, check=False
        )
        assert not left.stdout.strip()  # no worker left behind
        assert not list(pub.rglob(".*.tmp"))


def test_a_run_that_only_reads_creates_no_cache_tables(demo: Path) -> None:
    """`articles`, previews and dry runs read the parse cache but never write it, not even
    its empty tables in a state database made by something else (the ledger, say)."""
    state = demo / ".pressroom"
    state.mkdir(exist_ok=True)
    with contextlib.closing(sqlite3.connect(state / "state.db")) as db:
        db.execute("CREATE TABLE other (x)")
        db.commit()
    result = CliRunner().invoke(
        main, ["--config", str(demo / "config.yaml"), "articles", "--now", NOW]
    )
    assert result.exit_code == 0, result.output
    assert "cannot be read" not in result.output
    with contextlib.closing(sqlite3.connect(state / "state.db")) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"other"}
