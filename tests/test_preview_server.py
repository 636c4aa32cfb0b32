"""The preview server over HTTP: every route, live re-rendering, errors on the page, local only."""

from __future__ import annotations

import email
import email.policy
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime, tzinfo
from html import escape
from pathlib import Path

import pytest
import requests

from pressroom import config as config_mod
from pressroom.delivery.ledger import last_sent
from pressroom.digest import prepare as digest
from pressroom.digest.prepare import Prepared
from pressroom.errors import UsageError
from pressroom.models import unfilled
from pressroom.preview import pages as preview_pages
from pressroom.preview import server as preview_server
from tests.browser_helpers import NOW, date_seed, serving, wait_for

TIMEOUT = 10


@pytest.fixture
def publication(demo: Path) -> Path:
    """config.yaml of a scratch demo publication whose seed article is in the pinned week."""
    return date_seed(demo)


def expected(config: Path, now: str = NOW) -> Prepared:
    """The issue the CLI would build from the same inputs, to compare the server against."""
    cfg = config_mod.load(config)
    return digest.prepare(
        cfg,
        datetime.fromisoformat(now).replace(tzinfo=cfg.publication.tz),
        last_sent=last_sent(cfg.state_db),
    )


def get(url: str, **kwargs: object) -> requests.Response:
    return requests.get(url, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]


def version(base: str) -> dict[str, object]:
    return get(base + "version").json()  # type: ignore[no-any-return]


def test_every_route_serves_the_demo_issue(publication: Path) -> None:
    issue = expected(publication).issue
    seed = next(a for a in issue.articles if a.slug == "no-us-boots-on-the-ground")
    with serving(publication) as base:
        index = get(base)
        assert index.status_code == 200
        assert index.headers["Content-Type"] == "text/html; charset=utf-8"
        assert index.headers["Cache-Control"] == "no-store"
        page = index.text
        # the frames the index promises, at the promised widths
        assert 'id="desktop"' in page and 'width="700"' in page
        assert 'id="mobile"' in page and 'width="375"' in page
        assert 'id="dark"' in page and 'id="text"' in page
        assert page.count('sandbox="allow-same-origin') == 4  # no scripts, as in a mail app
        assert "allow-scripts" not in page
        assert escape(issue.subject) in page
        assert 'id="preflight"' in page

        html = get(base + "html")
        assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
        for article in issue.articles:
            assert escape(article.title, quote=False) in html.text
        assert "https://www.patreon.com/theduran" in html.text  # the support block
        assert unfilled(html.text) == []  # every per-subscriber field is filled
        assert get(base + "mobile").text == html.text

        dark = get(base + "dark").text
        assert '<meta name="color-scheme" content="dark">' in dark
        assert "prefers-color-scheme" not in dark  # the dark rules now always apply
        dark_rules = re.findall(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", html.text)
        assert dark_rules, "the demo template has dark-mode rules"
        assert dark.count("(min-width: 0px)") - html.text.count("(min-width: 0px)") == len(
            dark_rules
        )

        text = get(base + "issue.txt")
        assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
        for article in issue.articles:
            assert article.title in text.text
        assert "https://www.patreon.com/theduran" in text.text
        assert unfilled(text.text) == []
        text_page = get(base + "text").text
        assert "<pre>" in text_page and escape(seed.title) in text_page

        eml = get(base + "issue.eml")
        assert eml.headers["Content-Type"] == "message/rfc822"
        assert eml.headers["Content-Disposition"].startswith("attachment;")
        assert ".eml" in eml.headers["Content-Disposition"]
        msg = email.message_from_bytes(eml.content, policy=email.policy.default)
        assert msg["Subject"] == issue.subject
        assert "reader@example.com" in str(msg["To"])  # the sample reader
        assert msg["List-Unsubscribe"] is not None
        body_html = msg.get_body(("html",))
        body_text = msg.get_body(("plain",))
        assert body_html is not None and body_text is not None
        # the same parts as the HTML and text views (the message has CRLF line ends)
        assert body_html.get_content().replace("\r\n", "\n") == html.text
        assert body_text.get_content().replace("\r\n", "\n") == text.text

        report = get(base + "preflight.json")
        assert report.headers["Content-Type"] == "application/json"
        data = report.json()
        assert data["error"] is None
        assert data["errors"] == sum(f["level"] == "error" for f in data["findings"])
        for finding in data["findings"]:
            assert set(finding) == {"level", "code", "message"}

        v = version(base)
        assert isinstance(v["version"], str) and v["version"]
        assert v["error"] is None

        assert get(base + "nope").status_code == 404


def test_head_requests_answer_without_a_body(publication: Path) -> None:
    with serving(publication) as base:
        head = requests.head(base + "html", timeout=TIMEOUT)
        assert head.status_code == 200
        assert int(head.headers["Content-Length"]) > 1000
        assert head.content == b""


def test_index_reports_preflight_findings(publication: Path) -> None:
    cfg = publication.read_text(encoding="utf-8")
    publication.write_text(
        "\n".join(line for line in cfg.splitlines() if "postal_address:" not in line),
        encoding="utf-8",
    )
    with serving(publication) as base:
        data = get(base + "preflight.json").json()
        codes = {f["code"]: f["level"] for f in data["findings"]}
        assert codes.get("no-postal-address") == "error"
        assert data["errors"] >= 1
        page = get(base).text
        assert "no-postal-address" in page
        assert f"Preflight: {data['errors']} error(s)" in page


def test_an_unreadable_article_is_noted_on_the_page(publication: Path) -> None:
    broken = publication.parent / "content" / "broken.md"
    broken.write_text("---\ntitle: Broken\ndate: someday\n---\nBody\n", encoding="utf-8")
    with serving(publication) as base:
        assert version(base)["error"] is None  # the issue is still built from the others
        notes = get(base + "preflight.json").json()["notes"]
        assert [n for n in notes if "content/broken.md:3" in n and "someday" in n], notes
        assert "content/broken.md:3" in get(base).text


def test_editing_an_article_rerenders_and_changes_version(publication: Path) -> None:
    article = publication.parent / "content" / "2026-11-20-no-us-boots-on-the-ground.txt"
    with serving(publication) as base:
        before = version(base)["version"]
        body = article.read_text(encoding="utf-8")
        assert "The Russian daily Kommersant" in body  # its summary, shown in the issue
        # an editor's atomic save that keeps size and mtime (a .txt dates from its mtime):
        # written aside, given the old mtime, moved into place; only the inode differs
        draft = article.with_name(".draft.txt")
        draft.write_text(
            body.replace("The Russian daily Kommersant", "The Russian daily KOMMERSANT"),
            encoding="utf-8",
        )
        stat = article.stat()
        os.utime(draft, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.replace(draft, article)
        after = wait_for(lambda: version(base)["version"] != before and version(base), "re-render")
        assert after["error"] is None
        assert "The Russian daily KOMMERSANT" in get(base + "issue.txt").text
        assert "The Russian daily KOMMERSANT" in get(base + "html").text


def test_editing_a_template_rerenders(publication: Path) -> None:
    footer = publication.parent / "templates" / "_footer.html.j2"
    with serving(publication) as base:
        before = version(base)["version"]
        assert "Printed on recycled electrons" not in get(base + "html").text
        footer.write_text(
            footer.read_text(encoding="utf-8")
            + '<tr><td class="pad footer">Printed on recycled electrons</td></tr>\n',
            encoding="utf-8",
        )
        wait_for(lambda: version(base)["version"] != before, "re-render after a template edit")
        assert "Printed on recycled electrons" in get(base + "html").text


def test_broken_template_is_shown_on_the_page_and_the_server_survives(publication: Path) -> None:
    template = publication.parent / "templates" / "digest.html.j2"
    good = template.read_text(encoding="utf-8")
    with serving(publication) as base:
        template.write_text(good.replace("{% endfor %}", "{% endfro %}", 1), encoding="utf-8")
        state = wait_for(lambda: version(base)["error"] and version(base), "the render error")
        assert "digest.html.j2" in state["error"]
        page = get(base)
        assert page.status_code == 200
        assert 'id="render-error"' in page.text and "digest.html.j2" in page.text
        assert "Traceback" not in page.text
        broken = get(base + "html")
        assert broken.status_code == 500 and "digest.html.j2" in broken.text
        assert get(base + "issue.eml").status_code == 500
        assert get(base + "preflight.json").json()["error"] == state["error"]

        template.write_text(good, encoding="utf-8")
        wait_for(lambda: version(base)["error"] is None, "recovery after the fix")
        assert get(base + "html").status_code == 200


def test_broken_config_is_shown_with_its_line(publication: Path) -> None:
    good = publication.read_text(encoding="utf-8")
    with serving(publication) as base:
        publication.write_text(good.replace("max_articles: 10", "max_articles: ten"), "utf-8")
        state = wait_for(lambda: version(base)["error"] and version(base), "the config error")
        line = next(i for i, s in enumerate(good.splitlines(), 1) if "max_articles" in s)
        assert f"config.yaml:{line}" in state["error"]
        assert "digest.max_articles" in state["error"]
        publication.write_text(good, "utf-8")
        wait_for(lambda: version(base)["error"] is None, "recovery after the fix")


def test_without_now_the_injected_clock_is_read(publication: Path) -> None:
    readings: list[object] = []

    def clock(tz: tzinfo | None) -> datetime:
        readings.append(tz)
        return datetime.fromisoformat(NOW).replace(tzinfo=tz)

    with serving(publication, now_pinned=None, clock=clock) as base:
        assert version(base)["error"] is None
        assert readings and str(readings[0]) == "Europe/London"  # the publication's zone


def test_empty_window_is_explained_on_the_page(publication: Path) -> None:
    with serving(publication, now_pinned="2030-01-01T09:00") as base:
        state = version(base)
        assert state["error"] and "no new articles" in state["error"]
        assert "no new articles" in get(base).text


def test_as_a_patron_hides_the_patreon_block(publication: Path) -> None:
    with serving(publication, as_email="grace@example.org") as base:
        html = get(base + "html").text
        assert "patreon.com/theduran" not in html
        msg = email.message_from_bytes(get(base + "issue.eml").content, policy=email.policy.default)
        assert "grace@example.org" in str(msg["To"])
        assert "without:patreon" in get(base).text


def test_as_an_unknown_address_is_a_clear_error(publication: Path) -> None:
    with serving(publication, as_email="nobody@example.com") as base:
        error = version(base)["error"]
        assert error and "nobody@example.com" in error


def test_requests_for_another_host_name_are_refused(publication: Path) -> None:
    # a page on evil.example whose DNS now points at 127.0.0.1 must not read the preview
    with serving(publication) as base:
        response = get(base + "html", headers={"Host": "evil.example"})
        assert response.status_code == 403
        assert get(base + "html", headers={"Host": "localhost"}).status_code == 200


@pytest.mark.parametrize("host", ["localhost", "::1"])
def test_loopback_names_are_served(publication: Path, host: str) -> None:
    if host == "::1":
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError as e:
            pytest.skip(f"no IPv6 loopback here: {e}")
    with serving(publication, host=host) as base:
        assert base.startswith("http://127.0.0.1:" if host == "localhost" else "http://[::1]:")
        assert get(base + "html").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::"])
def test_only_loopback_hosts_are_served(publication: Path, host: str) -> None:
    with pytest.raises(UsageError, match=r"127\.0\.0\.1"):
        preview_server.serve(publication, now_pinned=NOW, host=host, port=0)


def test_a_port_in_use_is_a_usage_error(publication: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"--port {port}"):
            preview_server.serve(publication, now_pinned=NOW, port=port)


def test_bad_now_is_a_usage_error(publication: Path) -> None:
    with pytest.raises(UsageError, match="--now"):
        preview_server.serve(publication, now_pinned="next tuesday", port=0)


def test_force_dark_applies_the_templates_own_dark_rules() -> None:
    page = (
        "<html><head><style>.a{color:#000}"
        "@media (prefers-color-scheme: dark){.a{color:#fff !important}}"
        "@media screen and (prefers-color-scheme:light){.b{color:red}}</style></head>"
        "<body class=a>x</body></html>"
    )
    dark = preview_pages.force_dark(page)
    assert dark.index('<meta name="color-scheme" content="dark">') < dark.index("<style>.a")
    assert "@media (min-width: 0px){.a{color:#fff !important}}" in dark
    assert "@media screen and (max-width: 0px) and (min-width: 1px){.b" in dark
    assert preview_pages.has_dark_rules(page)
    assert not preview_pages.has_dark_rules(dark)


def test_watched_paths_cover_config_content_and_templates(publication: Path) -> None:
    cfg = config_mod.load(publication)
    watched = preview_server.watched_paths(cfg)
    root = publication.parent
    assert publication in watched
    assert root / "content" in watched
    assert root / "templates" in watched
    before = preview_server.signature(watched)
    (root / "content" / "new-article.md").write_text("---\ntitle: New\n---\nHello\n")
    assert preview_server.signature(watched) != before


def test_cli_serves_until_ctrl_c(publication: Path) -> None:
    # the real command in a real process: it says where it serves, serves, and Ctrl-C
    # (SIGINT) ends it cleanly
    command = [
        str(Path(sys.executable).with_name("pressroom")),
        "--config",
        str(publication),
        "digest",
        "preview",
        "--serve",
        "--port",
        "0",
        "--now",
        NOW,
    ]
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()])
        reader.start()
        try:
            first = lines.get(timeout=30)
            found = re.search(r"http://127\.0\.0\.1:\d+/", first)
            assert found, f"no URL in {first!r}"
            base = found.group(0)
            assert version(base)["error"] is None
            assert get(base + "html").status_code == 200
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(5)
        err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "rendered issue 1: " in err  # the render log, on stderr


def test_text_view_marks_lines_over_72_columns() -> None:
    page = preview_pages.text_page("short line\n" + "x" * 73 + "\n<b>&</b>\n")
    assert '<span class="long" title="73 columns">' + "x" * 73 + "</span>" in page
    assert "short line\n" in page and "&lt;b&gt;&amp;&lt;/b&gt;" in page
    assert page.count('class="long"') == 1
