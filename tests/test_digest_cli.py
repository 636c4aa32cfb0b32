"""`pressroom digest build|check|preview` on the demo publication, end to end, plus golden files."""

from __future__ import annotations

import email
import email.policy
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pressroom import config as config_mod
from pressroom.cli import main
from pressroom.delivery.ledger import Ledger, last_sent
from pressroom.digest.prepare import prepare
from pressroom.models import unfilled

GOLDEN = Path(__file__).parent / "golden" / "digest"
NOW = "2026-11-25T09:00"
SEED = "2026-11-20-no-us-boots-on-the-ground.txt"
SEED_MTIME = datetime(2026, 11, 20, 10, 30, tzinfo=UTC).timestamp()
APPEAL = "Help us grow. Support The Duran on Patreon!"
SECRET = {"PRESSROOM_SECRET": "test-secret-not-for-production"}


@pytest.fixture
def pub(demo: Path) -> Path:
    """The demo publication with the seed article's mtime pinned (its date when undated)."""
    os.utime(demo / "content" / SEED, (SEED_MTIME, SEED_MTIME))
    return demo


def run(pub: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["--config", str(pub / "config.yaml"), "digest", *args], env=SECRET
    )


def mark_sent(pub: Path, now: str = NOW) -> None:
    """Record the issue that would be built at ``now`` as sent, through the real ledger."""
    cfg = config_mod.load(pub / "config.yaml")
    when = datetime.fromisoformat(now).replace(tzinfo=cfg.publication.tz)
    prepared = prepare(cfg, when, last_sent=last_sent(cfg.state_db))
    cfg.state.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(cfg.state_db)
    try:
        ledger.freeze(prepared.rendered, [], window_end=prepared.issue.window_end, now=when)
        assert ledger.mark_issue_sent(prepared.rendered.number, when)
    finally:
        ledger.close()


def test_demo_preview_has_the_patreon_appeal(pub: Path) -> None:
    out = pub / "out"
    result = run(pub, "preview", "--now", NOW, "--out", str(out))
    assert result.exit_code == 0, result.output
    paths = [Path(p) for p in result.stdout.split()]
    assert [p.name for p in paths] == ["issue-1.html", "issue-1.txt", "issue-1.eml"]
    html = paths[0].read_text(encoding="utf-8")
    text = paths[1].read_text(encoding="utf-8")
    assert 'data-cta="patreon"' in html and APPEAL in html
    assert "https://www.patreon.com/theduran?utm_source=newsletter" in html
    assert APPEAL in text and "Support us on Patreon: https://www.patreon.com/theduran?" in text
    assert "No US boots on the ground" in html
    assert unfilled(html) == [] and unfilled(text) == []
    assert "https://theduran.example/unsubscribe" in html
    msg = email.message_from_bytes(paths[2].read_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "reader@example.com"
    assert str(msg["Subject"]).startswith("The Duran weekly #1: ")
    html_part = msg.get_body(("html",))
    text_part = msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    assert APPEAL in html_part.get_content() and APPEAL in text_part.get_content()


def test_preview_as_a_patron_leaves_the_block_out(pub: Path) -> None:
    result = run(
        pub, "preview", "--now", NOW, "--out", str(pub / "out"), "--as", "grace@example.org"
    )
    assert result.exit_code == 0, result.output
    html = (pub / "out" / "issue-1.html").read_text(encoding="utf-8")
    assert 'data-cta="patreon"' not in html
    assert "grace@example.org" in html
    msg = email.message_from_bytes(
        (pub / "out" / "issue-1.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["To"].addresses[0].display_name == "Grace Hopper"


def test_golden_demo_issue(pub: Path) -> None:
    cfg = config_mod.load(pub / "config.yaml")
    prepared = prepare(
        cfg,
        datetime.fromisoformat(NOW).replace(tzinfo=cfg.publication.tz),
        last_sent=last_sent(cfg.state_db),
    )
    assert [v.key for v in prepared.rendered.variants] == ["all", "without:patreon"]
    GOLDEN.mkdir(parents=True, exist_ok=True)
    update = os.environ.get("PRESSROOM_UPDATE_GOLDEN") == "1"
    for variant in prepared.rendered.variants:
        stem = "demo" if variant.key == "all" else "demo-" + variant.key.replace(":", "-")
        for suffix, got in ((".html", variant.html), (".txt", variant.text)):
            path = GOLDEN / (stem + suffix)
            if update:
                path.write_text(got, encoding="utf-8", newline="")
            assert path.exists(), f"{path} missing: run `make golden` (PRESSROOM_UPDATE_GOLDEN=1)"
            assert got == path.read_text(encoding="utf-8"), (
                f"{path.name} differs from the rendered demo issue; if the change is intended, "
                "regenerate with PRESSROOM_UPDATE_GOLDEN=1 and review the diff"
            )


def test_build_prints_the_issue_and_writes_the_archive(pub: Path) -> None:
    result = run(pub, "build", "--now", NOW)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("issue #1: The Duran weekly #1: ")
    assert "no-us-boots-on-the-ground" in out and "(lead)" in out
    assert "variants: all, without:patreon" in out
    page = pub / "public" / "issues" / "1" / "index.html"
    index = pub / "public" / "issues" / "index.html"
    assert f"wrote {page}" in out  # the demo copy is not below the working directory
    html = page.read_text(encoding="utf-8")
    assert unfilled(html) == [] and "%%PR_" not in html
    assert APPEAL in html
    assert 'href="https://theduran.example/unsubscribe"' in html  # the generic page
    assert "@example." not in html  # no subscriber address in the public copy
    # built, not sent: its page is there to look at, but the archive does not list it
    # (issue 10 §6: the index lists only issues that went out)
    listing = index.read_text(encoding="utf-8")
    assert 'href="1/"' not in listing and "The Duran weekly #1" not in listing


def test_numbering_follows_the_last_sent_issue_and_empty_window_exits_0(pub: Path) -> None:
    assert run(pub, "build", "--now", NOW).exit_code == 0
    mark_sent(pub)
    # nothing published since issue 1 closed
    result = run(pub, "build", "--now", "2026-11-26T09:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no new articles since issue 1 (2026-11-25); nothing to send"
    assert not (pub / "public" / "issues" / "2").exists()
    for command in ("check", "preview"):
        again = run(pub, command, "--now", "2026-11-26T09:00")
        assert again.exit_code == 0 and "nothing to send" in again.stdout
    # a new article makes issue 2
    (pub / "content" / "2026-11-26-new.md").write_text(
        "---\ntitle: Something new\ndate: 2026-11-26T08:00:00\nauthor: The Editors\n---\n\nNews.\n",
        encoding="utf-8",
    )
    result = run(pub, "build", "--now", "2026-11-26T09:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("issue #2: The Duran weekly #2: Something new")
    assert "no-us-boots" not in result.stdout
    # issue 1 went out and is listed; issue 2 is only built, so it is not (issue 10 §6)
    listing = (pub / "public" / "issues" / "index.html").read_text(encoding="utf-8")
    assert 'href="1/"' in listing and "25 November 2026" in listing
    assert 'href="2/"' not in listing and "26 November 2026" not in listing
    assert (pub / "public" / "issues" / "2" / "index.html").exists()


def test_the_archive_index_lists_an_issue_once_it_went_out(pub: Path) -> None:
    assert run(pub, "build", "--now", NOW).exit_code == 0
    index = pub / "public" / "issues" / "index.html"
    assert 'href="1/"' not in index.read_text(encoding="utf-8")
    sent = run(pub, "send", "--now", NOW, "--yes", "--limit", "1")
    assert sent.exit_code == 0, sent.output
    listing = index.read_text(encoding="utf-8")  # one reader has it: it went out
    assert 'href="1/"' in listing and "The Duran weekly #1" in listing
    assert "25 November 2026" in listing


def test_first_run_with_an_empty_window(pub: Path) -> None:
    result = run(pub, "build", "--now", "2027-06-01T09:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no new articles since 2027-05-25 09:00; nothing to send"


def test_since_and_pins(pub: Path) -> None:
    result = run(pub, "build", "--now", NOW, "--since", "60d", "--pin", "welcome-to-pressroom")
    assert result.exit_code == 0, result.output
    assert re.search(r"welcome-to-pressroom .*\(lead\)", result.stdout)
    assert "no-us-boots-on-the-ground" in result.stdout
    result = run(pub, "build", "--now", NOW, "--since", "60d", "--exclude-tag", "meta")
    assert "welcome-to-pressroom" not in result.stdout


# Two articles in two folders may share a slug; --pin took whichever came last, silently
def test_a_pin_that_names_two_articles_is_refused_and_a_url_pins_one(pub: Path) -> None:
    for day, folder in enumerate(("news", "sports"), start=1):
        (pub / "content" / folder).mkdir()
        (pub / "content" / folder / "roundup.md").write_text(
            f"---\ntitle: {folder.title()} roundup\ndate: 2026-10-0{day}\n"
            f"url: /{folder}/roundup/\n---\nB.\n"
        )
    result = run(pub, "build", "--now", NOW, "--pin", "roundup")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        'error: --pin: 2 articles have the slug "roundup" (https://theduran.example/news/roundup/, '
        "https://theduran.example/sports/roundup/); pin one by its URL"
    )
    result = run(pub, "build", "--now", NOW, "--pin", "https://theduran.example/sports/roundup/")
    assert result.exit_code == 0, result.output
    assert re.search(r"roundup +Sports roundup \(lead\)", result.stdout), result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["build", "--since", "7d", "--since-last"],
            "--since and --since-last cannot be used together",
        ),
        (["build", "--since-last"], "--since-last: no issue has been sent yet"),
        (["build", "--since", "a week"], '--since: expected a duration like "7d"'),
        (["build", "--pin", "no-such-slug"], '--pin: no article with slug "no-such-slug"'),
        (["build", "--now", "tomorrow"], "--now: expected an ISO date"),
        (["preview", "--serve", "--out", "x"], "--out cannot be used with --serve"),
        (["preview", "--port", "9000"], "--port only applies with --serve"),
    ],
)
def test_invalid_usage_exits_2(pub: Path, args: list[str], message: str) -> None:
    result = run(pub, *[*args, "--now", NOW] if "--now" not in args else args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (pub / "public").exists()


def test_bad_template_names_file_and_line_and_exits_1(pub: Path) -> None:
    (pub / "templates").mkdir(exist_ok=True)
    (pub / "templates" / "_article.html.j2").write_text(
        "<tr><td>\n{{ article.title }\n</td></tr>\n", encoding="utf-8"
    )
    for command in ("build", "check", "preview"):
        result = run(pub, command, "--now", NOW)
        assert result.exit_code == 1, result.output
        assert re.search(
            r"error: .*templates/_article\.html\.j2:2: template syntax error", result.stderr
        )
        assert "Traceback" not in result.output


def test_bad_cta_config_exits_2_naming_the_line(pub: Path) -> None:
    path = pub / "config.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("url: https://www.patreon.com/theduran", "url: patreon.com/theduran"),
        encoding="utf-8",
    )
    result = run(pub, "build", "--now", NOW)
    assert result.exit_code == 2, result.output
    lines = text.splitlines()
    line = 1 + next(i for i, x in enumerate(lines) if "url: https://www.patreon.com/theduran" in x)
    assert f"config.yaml:{line}: cta.0.url: expected an absolute http(s) URL" in result.stderr
    path.write_text(text.replace("position: bottom", "position: sidebar"), encoding="utf-8")
    result = run(pub, "check", "--now", NOW)
    assert result.exit_code == 2 and "cta.0.position: expected" in result.stderr


def test_check_passes_on_the_demo_and_fails_on_errors(pub: Path) -> None:
    result = run(pub, "check", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "issue #1 passes preflight: 0 error(s)" in result.stdout
    (pub / "templates" / "_header.html.j2").write_text(
        '<tr><td><a href="/about">About us</a></td></tr>\n', encoding="utf-8"
    )
    result = run(pub, "check", "--now", NOW)
    assert result.exit_code == 1, result.output
    assert "error: relative-url: link /about is not an absolute URL" in result.stdout
    assert "issue #1 fails preflight" in result.stdout


def test_preview_as_an_unknown_address_is_a_usage_error(pub: Path) -> None:
    result = run(
        pub, "preview", "--now", NOW, "--out", str(pub / "out"), "--as", "nobody@x.example"
    )
    assert result.exit_code == 2
    assert '--as: no active subscriber "nobody@x.example" in subscribers/' in result.stderr
    assert not (pub / "out").exists()


def test_preview_serve_from_the_command_line(pub: Path) -> None:
    """--serve starts the live preview on 127.0.0.1, prints its URL, and stops on Ctrl-C."""
    import signal
    import subprocess
    import sys

    import requests

    command = [
        sys.executable,
        "-c",
        "from pressroom.cli import main; main()",
        "--config",
        str(pub / "config.yaml"),
        "digest",
        "preview",
        "--serve",
        "--port",
        "0",
        "--now",
        NOW,
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **SECRET},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"previewing at (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)", line)
        assert match, line + (proc.stderr.read() if proc.stderr and proc.poll() is not None else "")
        page = requests.get(match.group(1) + "html", timeout=10)
        assert page.status_code == 200 and APPEAL in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_unwritable_preview_folder_is_one_line_exit_1(pub: Path) -> None:
    (pub / "blocker").write_text("a file where a folder should be\n", encoding="utf-8")
    out = pub / "blocker" / "preview"
    result = run(pub, "preview", "--now", NOW, "--out", str(out))
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {out}: cannot write: Not a directory; check --out / digest.archive"
    )


def test_unwritable_archive_folder_is_one_line_exit_1(pub: Path) -> None:
    (pub / "blocker").write_text("a file where a folder should be\n", encoding="utf-8")
    cfg = pub / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(
            "archive: public/issues", "archive: blocker/issues"
        ),
        encoding="utf-8",
    )
    result = run(pub, "build", "--now", NOW)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    page = pub / "blocker" / "issues" / "1" / "index.html"
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {page}: cannot write: Not a directory; check --out / digest.archive"
    )


def test_written_paths_are_relative_to_the_working_directory_like_feeds(
    pub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pub / "site").mkdir()
    monkeypatch.chdir(pub / "site")  # below the config folder's parent, not the config folder
    config = ["--config", str(pub / "config.yaml")]
    runner = CliRunner()
    built = runner.invoke(main, [*config, "digest", "build", "--now", NOW], env=SECRET)
    assert built.exit_code == 0, built.output
    assert f"wrote {pub / 'public' / 'issues' / '1' / 'index.html'}" in built.stdout
    feeds = runner.invoke(main, [*config, "feeds", "--now", NOW, "--out", "feeds"])
    assert feeds.exit_code == 0, feeds.output
    assert feeds.stdout.strip().endswith(" to feeds")
    monkeypatch.chdir(pub)
    built = runner.invoke(main, [*config, "digest", "build", "--now", NOW], env=SECRET)
    assert "wrote public/issues/1/index.html" in built.stdout
    previewed = runner.invoke(
        main, [*config, "digest", "preview", "--now", NOW, "--out", "out"], env=SECRET
    )
    assert previewed.stdout.split() == ["out/issue-1.html", "out/issue-1.txt", "out/issue-1.eml"]
