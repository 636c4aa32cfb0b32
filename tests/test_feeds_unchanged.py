"""A `pressroom feeds` run where nothing changed (issue 15): it reads no article and opens no
database, yet prints, exits and leaves exactly what a full run does; anything that could
change the output makes it a full run again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path

from click.testing import CliRunner, Result

from pressroom.cli import main
from tests.test_sources_remote import RSS, Server, server  # noqa: F401 (the fixture)

NOW = "2026-11-25T09:00"
LONG_AGO = time.time() - 3600


def run(pub: Path, now: str = NOW, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["--config", str(pub / "config.yaml"), "feeds", "--now", now, *args]
    )


def age(pub: Path) -> None:
    """Every input an hour old, and a second gone by: nothing is "changing right now"."""
    for path in [*(pub / "content").rglob("*"), pub / "config.yaml"]:
        if path.is_file():
            os.utime(path, (LONG_AGO, LONG_AGO))
    time.sleep(1.05)


def outputs(pub: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under public/ with its bytes and mtime (a rewrite shows in the mtime)."""
    out = pub / "public"
    return {
        p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def records(pub: Path) -> list[Path]:
    return sorted((pub / ".pressroom").glob("unchanged-*.json"))


# Observed through CPython's audit hooks (PEP 578): which files and databases a run opens.
WATCH: list[str] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if WATCH is not None and event in ("open", "sqlite3.connect") and args:
        WATCH.append(f"{event} {args[0]}")


sys.addaudithook(_audit)


def watched(pub: Path, now: str = NOW) -> tuple[Result, list[str]]:
    """The run, and the article files and databases it opened."""
    global WATCH
    WATCH = []
    try:
        result = run(pub, now)
        content = str(pub / "content")
        touched = [w for w in WATCH if w.startswith("sqlite3") or content in w]
        return result, touched
    finally:
        WATCH = None


def full_run_of(pub: Path, where: Path, now: str = NOW) -> tuple[Result, dict[str, bytes]]:
    """What a full run makes of the same publication and state: a copy without the record."""
    from pressroom import config as config_mod
    from pressroom.feeds.builder import manifest_path

    shutil.copytree(pub, where, symlinks=True)
    for record in records(where):
        record.unlink()
    # the feed manifest names its output folder: move it to the copy's, so the copy owns the
    # files the original wrote (its feeds page included) as the original does
    copy = config_mod.load(where / "config.yaml")
    for manifest in (where / ".pressroom").glob("feeds-*.json"):
        text = manifest.read_text("utf-8").replace(str(pub.resolve()), str(where.resolve()))
        manifest.unlink()
        manifest_path(copy, copy.feeds.out).write_text(text, "utf-8")
    result = run(where, now)
    out = where / "public"
    return result, {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                    if p.is_file()}  # fmt: skip


def same_run(pub: Path, tmp_path: Path, now: str = NOW) -> Result:
    """Run ``pub`` and check it against a full run of a copy: output, messages, exit code."""
    full, full_bytes = full_run_of(pub, tmp_path / f"full-{len(list(tmp_path.iterdir()))}", now)
    result = run(pub, now)
    assert result.exit_code == full.exit_code, (result.output, full.output)
    where = str(tmp_path / f"full-{len(list(tmp_path.iterdir())) - 1}")
    assert result.output == full.output.replace(where, str(pub))
    assert {k: v[0] for k, v in outputs(pub).items()} == full_bytes
    return result


def test_nothing_changed_reads_nothing_and_prints_what_a_full_run_prints(
    demo: Path, tmp_path: Path
) -> None:
    age(demo)
    first, opened = watched(demo)
    assert first.exit_code == 0, first.output
    assert any(demo.name in w for w in opened)  # the observer sees a full run's reads
    assert records(demo)
    before = outputs(demo)

    again, opened = watched(demo)
    assert opened == []  # no article file read, no database opened
    assert again.exit_code == 0
    assert outputs(demo) == before  # nothing rewritten: same bytes, same mtimes
    assert "wrote 0 of 39 feeds (39 unchanged)" in again.output
    same_run(demo, tmp_path)


def test_warnings_and_errors_are_said_again_with_the_same_exit_status(
    demo: Path, tmp_path: Path
) -> None:
    content = demo / "content"
    (content / "odd.md").write_text(
        "---\ntitle: Odd\ndate: 2026-11-21T08:00:00Z\ncolour: blue\n---\n\nText.\n", "utf-8"
    )
    (content / "broken.md").write_text("---\ntitle: [unclosed\n---\n\nText.\n", "utf-8")
    age(demo)
    first = run(demo)
    assert first.exit_code == 1
    assert "colour" in first.output and "broken.md" in first.output

    again, opened = watched(demo)
    assert opened == []
    assert again.exit_code == 1

    def said(result: Result) -> list[str]:
        return [ln for ln in result.output.splitlines() if ln.startswith(("warning", "error"))]

    assert said(again) == said(first) and len(said(first)) >= 2
    same_run(demo, tmp_path)


def test_an_edited_added_or_deleted_article_makes_a_full_run(demo: Path, tmp_path: Path) -> None:
    age(demo)
    run(demo)
    posts = sorted((demo / "content").glob("*.md"))

    # same size, same mtime as before: only the inode and ctime tell (an editor's atomic save)
    edited = posts[0]
    text = edited.read_text(encoding="utf-8")
    st = edited.stat()
    swapped = text.replace("a", "b", 1) if "a" in text else text
    tmp = edited.with_suffix(".swp")
    tmp.write_text(swapped, encoding="utf-8")
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    tmp.replace(edited)
    time.sleep(1.05)
    _, opened = watched(demo)
    assert any(edited.name in w for w in opened)
    same_run(demo, tmp_path)

    (demo / "content" / "new.md").write_text(
        "---\ntitle: Brand new\ndate: 2026-11-24T08:00:00Z\n---\n\nNews.\n", "utf-8"
    )
    age(demo)
    same_run(demo, tmp_path)
    assert "Brand new" in (demo / "public" / "feeds" / "index.xml").read_text("utf-8")

    posts[-1].unlink()
    age(demo)
    _, opened = watched(demo)
    assert opened  # a full run
    same_run(demo, tmp_path)


def test_the_clock_passing_an_article_date_makes_a_full_run(demo: Path, tmp_path: Path) -> None:
    content = demo / "content"
    (content / "later.md").write_text(
        "---\ntitle: Written ahead\ndate: 2026-11-26T08:00:00Z\n---\n\nNot yet.\n", "utf-8"
    )
    (content / "timed.md").write_text(
        "---\ntitle: Embargoed\ndate: 2026-11-20T08:00:00Z\npublishDate: 2026-11-27T00:00:00Z\n"
        "---\n\nLater.\n",
        "utf-8",
    )
    (content / "offer.md").write_text(
        "---\ntitle: Short offer\ndate: 2026-11-20T08:00:00Z\nexpiryDate: 2026-11-28T00:00:00Z\n"
        "---\n\nSoon gone.\n",
        "utf-8",
    )
    age(demo)
    site = demo / "public" / "feeds" / "index.xml"
    run(demo, "2026-11-25T09:00")
    assert "Written ahead" not in site.read_text("utf-8")

    # a day on, before any date: nothing to do
    _, opened = watched(demo, "2026-11-25T20:00")
    assert opened == []
    # past each date in turn: a full run, the same as one without the record
    for now, shown, gone in (
        ("2026-11-26T09:00", "Written ahead", None),
        ("2026-11-27T09:00", "Embargoed", None),
        ("2026-11-28T09:00", "Embargoed", "Short offer"),
    ):
        _, opened = watched(demo, now)
        assert opened, now
        assert shown in site.read_text("utf-8")
        if gone:
            assert gone not in site.read_text("utf-8")
        same_run(demo, tmp_path, now)
    # and back in time, before the newest article: a full run again
    _, opened = watched(demo, "2026-11-24T09:00")
    assert opened
    assert "Written ahead" not in site.read_text("utf-8")
    same_run(demo, tmp_path, "2026-11-24T09:00")


def test_a_feed_changed_by_hand_is_written_again(demo: Path, tmp_path: Path) -> None:
    age(demo)
    run(demo)
    feeds = demo / "public" / "feeds"
    good = (feeds / "index.xml").read_bytes()
    (feeds / "index.xml").write_bytes(b"<rss>tampered</rss>")
    (feeds / "atom.xml").unlink()
    result = run(demo)
    assert result.exit_code == 0
    assert (feeds / "index.xml").read_bytes() == good
    assert (feeds / "atom.xml").exists()
    assert "wrote 2 of 39 feeds" in result.output
    same_run(demo, tmp_path)


def test_config_and_template_changes_make_a_full_run(demo: Path, tmp_path: Path) -> None:
    age(demo)
    run(demo)
    config = demo / "config.yaml"
    config.write_text(config.read_text("utf-8").replace("items: 50", "items: 5"), "utf-8")
    result, opened = watched(demo)
    assert opened and "wrote" in result.output
    assert "items: 5" in config.read_text("utf-8")
    same_run(demo, tmp_path)

    page = demo / "templates" / "feeds.html.j2"
    source = page if page.exists() else None
    if source is None:  # the demo uses the built-in page: override it
        from pressroom import defaults

        shutil.copyfile(defaults.templates() / "feeds.html.j2", page)
    page.write_text(page.read_text("utf-8").replace("</body>", "<p>Hello</p></body>"), "utf-8")
    result, opened = watched(demo)
    assert "Hello" in (demo / "public" / "feeds" / "index.html").read_text("utf-8")
    same_run(demo, tmp_path)


def test_a_file_changing_right_now_leaves_no_record(demo: Path) -> None:
    age(demo)
    (demo / "content" / "fresh.md").write_text(
        "---\ntitle: Just saved\ndate: 2026-11-24T08:00:00Z\n---\n\nNow.\n", "utf-8"
    )
    run(demo)
    assert records(demo) == []  # it may change again within the same clock tick
    _, opened = watched(demo)
    assert opened


def test_a_damaged_record_means_a_full_run(demo: Path, tmp_path: Path) -> None:
    age(demo)
    run(demo)
    good = records(demo)[0].read_text("utf-8")
    infinite = re.sub(r'"feeds": \d+', '"feeds": Infinity', good).encode()
    assert b"Infinity" in infinite
    for damage in (b"", b"{not json", b'{"files": 3}', b"[]", infinite, b"[" * 200_000):
        for record in records(demo):
            record.write_bytes(damage)
        result, opened = watched(demo)
        assert result.exit_code == 0, result.output
        assert opened
        same_run(demo, tmp_path)


def test_a_remote_source_is_fetched_on_every_run(
    server: Server,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    server.on("/rss.xml", lambda _r: (200, {"Content-Type": "application/rss+xml"}, RSS))
    pub = tmp_path / "pub"
    pub.mkdir()
    (pub / "config.yaml").write_text(
        "publication:\n  name: Test\n  url: https://news.example/\n  timezone: Europe/London\n"
        f"sources:\n  - type: feed\n    url: {server.url}/rss.xml\n",
        encoding="utf-8",
    )
    (pub / "content").mkdir()
    age(pub)
    first = run(pub)
    assert "wrote" in first.output  # (its undated item is reported: exit status 1)
    assert run(pub).output == first.output.replace(
        "wrote 12 of 12 feeds (0 ", "wrote 0 of 12 feeds (12 "
    )
    assert len(server.seen) == 2  # its conditional GET decides, not a walk of local files
    assert records(pub) == []


def test_a_site_generators_feeds_page_removed_is_replaced(demo: Path, tmp_path: Path) -> None:
    """feeds.out may be a generator's public folder: its own index.html is left alone while
    it is there, and pressroom writes its page when it is gone, with or without a record."""
    page = demo / "public" / "feeds" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("<p>the generator's own page</p>", encoding="utf-8")
    age(demo)
    run(demo)
    assert "generator's own" in page.read_text("utf-8")
    page.unlink()
    same_run(demo, tmp_path)
    assert "generator's own" not in page.read_text("utf-8")


# An observer that edits a template once, when the run writes its first feed: the stamp taken
# before the run no longer holds when it ends, so no record may vouch for that run.
EDIT_ON_WRITE: Path | None = None


def _edit_template_mid_run(event: str, args: tuple[object, ...]) -> None:
    global EDIT_ON_WRITE
    target = EDIT_ON_WRITE
    if target is not None and event == "open" and str(args[0]).endswith(".tmp"):
        EDIT_ON_WRITE = None
        with target.open("a", encoding="utf-8") as f:
            f.write("<!-- edited while the feeds were being written -->\n")


sys.addaudithook(_edit_template_mid_run)


def test_a_template_edited_during_a_run_leaves_no_record(demo: Path, tmp_path: Path) -> None:
    global EDIT_ON_WRITE
    from pressroom import defaults

    sheet = demo / "templates" / "feed.xsl"
    if not sheet.exists():
        shutil.copyfile(defaults.templates() / "feed.xsl", sheet)
    age(demo)
    EDIT_ON_WRITE = sheet
    try:
        run(demo)  # copies the stylesheet, then the edit lands mid-run
    finally:
        EDIT_ON_WRITE = None
    assert records(demo) == []
    out = demo / "public" / "feeds" / "feed.xsl"
    assert out.read_bytes() != sheet.read_bytes()  # the run copied the older one
    time.sleep(1.05)
    _, opened = watched(demo)
    assert opened  # a full run, which copies the edited stylesheet
    assert out.read_bytes() == sheet.read_bytes()


def test_the_clock_across_daylight_saving_changes(demo: Path, tmp_path: Path) -> None:
    """Dates compare as instants on both paths: in the spring gap and the autumn's repeated
    hour (Europe/London), the record and a full run agree at every step."""
    content = demo / "content"
    (content / "early.md").write_text(
        "---\ntitle: Early in March\ndate: 2026-03-01T09:00\n---\n\nFirst.\n", "utf-8"
    )
    (content / "gap.md").write_text(
        "---\ntitle: In the gap\ndate: 2026-03-29T01:30\n---\n\nNo such hour.\n", "utf-8"
    )
    (content / "twice.md").write_text(
        "---\ntitle: Hour twice\ndate: 2026-10-25T01:30\n---\n\nWhich one?\n", "utf-8"
    )
    age(demo)
    for now in (
        "2026-03-29T00:50", "2026-03-29T02:10", "2026-03-29T02:40",
        "2026-10-25T01:45+01:00", "2026-10-25T01:10+00:00", "2026-10-25T01:20+01:00",
    ):  # fmt: skip
        same_run(demo, tmp_path, now)


def test_new_zone_rules_make_a_full_run(demo: Path, tmp_path: Path) -> None:
    """A tzdata or system zoneinfo update changes what a date means: no record survives it."""
    system = next(Path(d) for d in zoneinfo.TZPATH if Path(d, "Europe", "London").exists())
    rules = tmp_path / "zoneinfo"
    (rules / "Europe").mkdir(parents=True)
    london = rules / "Europe" / "London"
    shutil.copyfile(system / "Europe" / "London", london)
    os.utime(london, (LONG_AGO, LONG_AGO))
    zoneinfo.reset_tzpath([str(rules)])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        age(demo)
        run(demo)
        assert records(demo)
        shutil.copyfile(system / "Asia" / "Tokyo", london)  # the same path, new rules
        os.utime(london, (LONG_AGO, LONG_AGO))
        zoneinfo.ZoneInfo.clear_cache()
        time.sleep(1.05)
        result, opened = watched(demo)
        assert opened and result.exit_code == 0, result.output
        assert "wrote 39 of 39" in result.output  # every date moved nine hours
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


def test_a_run_waits_while_another_writes_feeds(demo: Path) -> None:
    from pressroom import config as config_mod
    from pressroom.feeds import unchanged

    age(demo)
    args = ["--config", str(demo / "config.yaml"), "feeds", "--now", NOW]
    with unchanged.lock(config_mod.load(demo / "config.yaml")):
        other = subprocess.Popen(
            [sys.executable, "-c", "from pressroom.cli import main; main()", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert other.poll() is None  # it waits: it would record another run's files
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert "waiting for another run writing feeds" in err and "wrote 39 of 39" in out


def cold_run_of(pub: Path, where: Path, now: str = NOW) -> tuple[Result, dict[str, bytes]]:
    """A cold run of the same inputs: a copy without the state folder and the output."""
    shutil.copytree(pub, where, symlinks=True)
    shutil.rmtree(where / ".pressroom", ignore_errors=True)
    shutil.rmtree(where / "public", ignore_errors=True)
    result = run(where, now)
    out = where / "public"
    return result, {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                    if p.is_file()}  # fmt: skip


def swap_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (same length) and give it back its modification time."""
    st = path.stat()
    assert len(data) == st.st_size
    tmp = path.with_name(path.name + ".swp")
    tmp.write_bytes(data)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    tmp.replace(path)


def test_a_feed_swapped_keeping_size_and_mtime_is_written_again(demo: Path, tmp_path: Path) -> None:
    """A restore (cp -p, rsync -t) of another version of a feed of the same length keeps its
    size and mtime; only its inode and ctime tell, so the feed manifest must look at them."""
    age(demo)
    run(demo)
    feed = demo / "public" / "feeds" / "atom.xml"
    good = feed.read_bytes()
    swap_keeping_size_and_mtime(feed, good.replace(b"<title>", b"<TITLE>", 1))
    time.sleep(1.05)
    result = run(demo)
    assert result.exit_code == 0, result.output
    assert feed.read_bytes() == good
    assert "wrote 1 of 39 feeds" in result.output
    same_run(demo, tmp_path)


def test_every_template_of_the_feeds_page_is_watched(demo: Path, tmp_path: Path) -> None:
    """The feeds page is rebuilt when a template it includes changes, when feeds.html.j2 is
    swapped for one of the same size and mtime, and when a publication field it shows
    changes: as a cold run would make it."""
    from pressroom import defaults

    page = demo / "templates" / "feeds.html.j2"
    part = demo / "templates" / "_feeds_note.html.j2"
    text = (defaults.templates() / "feeds.html.j2").read_text("utf-8")
    page.write_text(
        text.replace(
            "</body>",
            "{% include '_feeds_note.html.j2' %}<p>{{ publication.description }}</p></body>",
        ),
        "utf-8",
    )
    part.write_text("<p>Note one</p>\n", "utf-8")
    for path in (page, part):
        os.utime(path, (LONG_AGO, LONG_AGO))
    age(demo)
    run(demo)
    shown = demo / "public" / "feeds" / "index.html"
    assert "Note one" in shown.read_text("utf-8")

    part.write_text("<p>Note two</p>\n", "utf-8")  # an included template edited
    os.utime(part, (LONG_AGO, LONG_AGO))
    time.sleep(1.05)
    run(demo)
    assert "Note two" in shown.read_text("utf-8")

    swap_keeping_size_and_mtime(page, page.read_bytes().replace(b"<h1>", b"<H1>", 1))
    time.sleep(1.05)
    run(demo)
    assert "<H1>" in shown.read_text("utf-8")

    config = demo / "config.yaml"
    config.write_text(
        config.read_text("utf-8").replace("supported by our readers", "paid for by readers"),
        "utf-8",
    )
    age(demo)
    run(demo)
    assert "paid for by readers" in shown.read_text("utf-8")
    _, cold = cold_run_of(demo, tmp_path / "cold")
    assert shown.read_bytes() == cold["feeds/index.html"]


def test_two_configs_sharing_a_state_folder_name_their_own_files(
    demo: Path, tmp_path: Path
) -> None:
    """Articles are named relative to their own config's folder: a second config over the
    same content and state, in another folder, must not say (or hash) the first one's names."""
    (demo / "content" / "odd.md").write_text(
        "---\ntitle: Odd\ndate: 2026-11-21T08:00:00Z\ncolour: blue\n---\n\nText.\n", "utf-8"
    )
    (demo / "content" / "twin.md").write_text(
        "---\ntitle: Twin\ndate: 2026-11-21T08:00:00Z\nurl: /odd/\n---\n\nText.\n", "utf-8"
    )
    (demo / "content" / "odd2.md").write_text(
        "---\ntitle: Odd two\ndate: 2026-11-21T08:00:00Z\nurl: /odd/\n---\n\nText.\n", "utf-8"
    )
    sub = demo / "sub"
    sub.mkdir()
    config = (demo / "config.yaml").read_text("utf-8")
    for key, value in (("path", "content"), ("templates", "templates"), ("path", "subscribers"),
                       ("suppressed", "subscribers/"), ("state", ".pressroom"),
                       ("out", "public/")):  # fmt: skip
        config = config.replace(f"{key}: {value}", f"{key}: ../{value}")
    (sub / "config.yaml").write_text(config, "utf-8")
    age(demo)
    os.utime(sub / "config.yaml", (LONG_AGO, LONG_AGO))
    first = run(demo)
    assert "content/odd.md:4" in first.output

    def run_sub() -> Result:
        return CliRunner().invoke(
            main, ["--config", str(sub / "config.yaml"), "feeds", "--now", NOW]
        )

    warm = run_sub()
    feeds = demo / "public" / "feeds"
    warm_bytes = {p: p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()}
    shutil.rmtree(demo / ".pressroom")
    shutil.rmtree(feeds)
    cold = run_sub()
    assert str(demo / "content" / "odd.md") + ":4" in cold.output
    assert warm.exit_code == cold.exit_code

    def said(result: Result) -> list[str]:
        return [ln for ln in result.output.splitlines() if ln.startswith(("warning", "error"))]

    assert said(warm) == said(cold) and len(said(cold)) == 3
    assert warm_bytes == {p: p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()}


def test_an_upgraded_library_gives_the_cold_output(demo: Path, tmp_path: Path) -> None:
    """A sanitiser upgrade (here a copy of nh3 whose output differs, first on the path) must
    not be hidden by parses, rendered bodies and feeds kept from before it."""
    import nh3

    upgraded = tmp_path / "upgraded"
    shutil.copytree(
        Path(nh3.__file__).parent, upgraded / "nh3", ignore=shutil.ignore_patterns("__pycache__")
    )
    with (upgraded / "nh3" / "__init__.py").open("a", encoding="utf-8") as f:
        f.write(
            "\n_clean = clean\n\n\ndef clean(*args, **kwargs):\n"
            "    return _clean(*args, **kwargs).replace('<p>', '<p class=\"upgraded\">')\n"
        )

    def cli(pub: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        args = ["--config", str(pub / "config.yaml"), "feeds", "--now", NOW]
        return subprocess.run(
            [sys.executable, "-c", "from pressroom.cli import main; main()", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            check=False,
        )

    age(demo)
    assert cli(demo, {}).returncode == 0
    shown = {"PYTHONPATH": str(upgraded)}
    warm = cli(demo, shown)
    assert warm.returncode == 0, warm.stderr
    feed = demo / "public" / "feeds" / "index.xml"
    assert 'class="upgraded"' in feed.read_text("utf-8")
    cold = tmp_path / "cold"
    shutil.copytree(demo, cold, symlinks=True, ignore=shutil.ignore_patterns(".pressroom"))
    shutil.rmtree(cold / "public")
    assert cli(cold, shown).returncode == 0
    out = demo / "public"
    assert {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == {
        p.relative_to(cold / "public"): p.read_bytes()
        for p in sorted((cold / "public").rglob("*"))
        if p.is_file()
    }


def test_feeds_of_articles_all_taken_down_are_removed(demo: Path, tmp_path: Path) -> None:
    """When the last article is taken down (a draft, expired, deleted), a cold run leaves no
    feed; the feeds an earlier run wrote must not go on serving what was taken down."""
    age(demo)
    assert run(demo).exit_code == 0
    for path in (demo / "content").iterdir():
        if path.is_file():
            path.unlink()
    (demo / "content" / "only.md").write_text(
        "---\ntitle: Taken down\ndate: 2026-11-01\ndraft: true\n---\n\nGone.\n", "utf-8"
    )
    (demo / "public" / "feeds" / "mine.xml").write_text("<rss/>", "utf-8")  # not ours
    age(demo)
    result = run(demo)
    cold, cold_bytes = cold_run_of(demo, tmp_path / "cold")
    assert result.exit_code == cold.exit_code == 0
    assert "no articles to publish" in result.output
    assert re.search(r"removed stale \S*/feeds/index\.xml\n", result.output)
    assert {k: v[0] for k, v in outputs(demo).items()} == {"feeds/mine.xml": b"<rss/>"}
    assert cold_bytes == {}


def test_feeds_written_by_a_run_that_failed_are_removed_when_stale(
    demo: Path, tmp_path: Path
) -> None:
    """A run that writes a new category's feeds and then fails (a broken feeds page) still
    owns them: once the category is gone they are removed, as a cold run never has them."""
    from pressroom import defaults

    age(demo)
    run(demo)
    (demo / "content" / "solo.md").write_text(
        "---\ntitle: Solo\ndate: 2026-11-21\ncategories: [Solo Cat]\n---\n\nText.\n", "utf-8"
    )
    page = demo / "templates" / "feeds.html.j2"
    text = (defaults.templates() / "feeds.html.j2").read_text("utf-8")
    page.write_text(text.replace("</body>", "{{ no_such.thing }}</body>"), "utf-8")
    age(demo)
    failed = run(demo)
    assert failed.exit_code != 0
    solo = demo / "public" / "feeds" / "category" / "solo-cat"
    assert (solo / "index.xml").exists()  # written before the page failed

    (demo / "content" / "solo.md").unlink()
    page.unlink()
    age(demo)
    result = run(demo)
    assert result.exit_code == 0, result.output
    assert not solo.exists()
    _, cold = cold_run_of(demo, tmp_path / "cold")
    assert {k: v[0] for k, v in outputs(demo).items()} == cold


def test_feeds_written_inside_the_content_folder_are_not_read_back(
    demo: Path, tmp_path: Path
) -> None:
    """feeds.out (or --out) inside the content folder: the next run must not read the feeds
    page it wrote there as a broken article, which a cold run (no output yet) never sees."""
    config = demo / "config.yaml"
    config.write_text(
        config.read_text("utf-8").replace("out: public/feeds", "out: content/feeds"), "utf-8"
    )
    age(demo)
    first = run(demo)
    assert first.exit_code == 0, first.output
    assert (demo / "content" / "feeds" / "index.html").exists()
    time.sleep(1.05)
    for args in ((), ("--out", str(demo / "content" / "elsewhere"))):
        warm = run(demo, NOW, *args)
        assert warm.exit_code == 0, warm.output
        assert "error" not in warm.output
        again = run(demo, NOW, *args)  # the elsewhere folder is read neither
        assert again.exit_code == 0, again.output
        assert "error" not in again.output
