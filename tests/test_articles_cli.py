"""`pressroom articles` through the real CLI (CliRunner) on a copy of the demo publication."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pressroom.cli import main

NOW = "2026-11-25T09:00"
SEED_TITLE = "‘No US boots on the ground’ in Syria, US military assures Russia"


def run(demo: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(demo / "config.yaml"), "articles", *args])


def test_table_lists_published_articles_newest_first(demo: Path) -> None:
    result = run(demo, "--now", NOW)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["DATE", "SLUG", "AUTHOR", "CATEGORIES", "TITLE"]
    assert lines[1].split()[:5] == [
        "2026-11-24",
        "07:30",
        "week-in-review-budgets-ballots",
        "Niamh",
        "O'Connor",
    ]
    assert lines[1].endswith("The week in review: budgets, ballots and back-channels")
    assert any(line.endswith(SEED_TITLE) and "The Duran" in line for line in lines)
    assert not any("DRAFT" in line for line in lines)
    dates = [line[:16] for line in lines[1:]]
    assert dates == sorted(dates, reverse=True)
    assert "17 articles" in result.stderr


def test_json_array_fields(demo: Path) -> None:
    result = run(demo, "--json", "--now", NOW)
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert len(items) == 17
    first = items[0]
    assert set(first) == {
        "id",
        "slug",
        "url",
        "title",
        "published",
        "updated",
        "authors",
        "categories",
        "tags",
        "summary",
        "image",
        "source",
    }
    assert first["id"] == "tag:theduran.example,2026-11-24:week-in-review-budgets-ballots"
    assert first["url"] == "https://theduran.example/week-in-review-budgets-ballots/"
    assert first["slug"] == "week-in-review-budgets-ballots"
    assert first["published"] == "2026-11-24T07:30:00+00:00"
    assert first["authors"] == ["Niamh O'Connor"]
    assert first["image"] == {
        "url": "https://theduran.example/media/2026/11/week-in-review.jpg",
        "alt": "A stack of morning newspapers on a café table beside a cup of coffee",
    }
    assert first["source"] == "content/2026-11-24-week-in-review-budgets-ballots.md"
    html_article = next(i for i in items if i["source"].endswith(".html"))
    assert html_article["summary"].startswith("War-risk premiums, not missiles")


def test_since_limits_the_window(demo: Path) -> None:
    result = run(demo, "--since", "7d", "--nl", "--now", NOW)
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert [i["published"][:10] for i in items] == [
        "2026-11-24",
        "2026-11-22",
        "2026-11-21",
        "2026-11-20",
        "2026-11-19",
    ]
    assert "internal" in items[4]["tags"]


def test_future_articles_wait_for_their_date(demo: Path) -> None:
    result = run(demo, "--nl", "--now", "2026-11-21T10:00")
    titles = [json.loads(line)["title"] for line in result.stdout.splitlines()]
    assert result.exit_code == 0
    assert titles[0] == SEED_TITLE  # the articles of 21-24 November are not out yet


def test_broken_article_is_reported_and_exits_1(demo: Path) -> None:
    (demo / "content" / "broken.md").write_text(
        "---\ntitle: Broken\ndate: 31/02/2026\n---\nBody.\n", encoding="utf-8"
    )
    undated = demo / "content" / "undated.txt"
    undated.write_text("An undated note\n\nText.\n", encoding="utf-8")
    stamp = datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp()
    os.utime(undated, (stamp, stamp))
    result = run(demo, "--json", "--now", NOW)
    assert result.exit_code == 1
    assert 'error: content/broken.md:3: date: cannot parse "31/02/2026"' in result.stderr
    assert (
        "warning: content/undated.txt: no date; using the file's modification time 2026-11-22 10:00"
        in result.stderr
    )
    items = json.loads(result.stdout)  # warnings and errors never mix into the output
    assert len(items) == 18
    assert items[2]["title"] == "An undated note"  # 22 Nov 10:00, after the readers' questions
    assert "18 articles, 1 skipped" in result.stderr


def test_dates_at_the_edge_of_time_are_one_line_errors(demo: Path) -> None:
    """Year 1 an hour east of UTC cannot be compared with the clock (OverflowError, once a
    traceback), and feeds write four-digit years: such a date is a broken article."""
    for name, value in (("year-one", "0001-01-01T00:00:00+01:00"), ("last", "9999-12-31")):
        (demo / "content" / f"{name}.md").write_text(
            f"---\ntitle: Edge\ndate: {value}\n---\nBody.\n", encoding="utf-8"
        )
    (demo / "content" / "yaml-date.md").write_text(
        "---\ntitle: Edge\ndate: 0001-01-02\n---\nBody.\n", encoding="utf-8"
    )
    result = run(demo, "--json", "--now", NOW)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert 'content/year-one.md:3: date: cannot parse "0001-01-01T00:00:00+01:00"' in result.stderr
    assert 'content/last.md:3: date: cannot parse "9999-12-31"' in result.stderr
    assert "content/yaml-date.md:3: date: cannot parse" in result.stderr
    assert "Edge" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "100000000d"], 'error: --since: "100000000d" is longer than 100 years'),
        (["--since", "99999999999d"], 'error: --since: "99999999999d" is longer than 100 years'),
        (
            ["--since", "7d", "--now", "0001-01-01"],
            'error: --now: "0001-01-01" is outside the years 1000-9998',
        ),
    ],
)
def test_spans_and_clocks_beyond_the_calendar_are_usage_errors(
    demo: Path, args: list[str], message: str
) -> None:
    # each was an OverflowError traceback (a span or a clock past what datetime holds)
    result = run(demo, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == message


def test_bad_options_exit_2(demo: Path) -> None:
    result = run(demo, "--json", "--nl")
    assert result.exit_code == 2
    assert "--json and --nl: choose one" in result.stderr
    result = run(demo, "--since", "a week")
    assert result.exit_code == 2
    assert '--since: expected a duration like "7d"' in result.stderr
    result = run(demo, "--now", "tomorrow")
    assert result.exit_code == 2


def test_missing_content_folder_is_one_clear_line(demo: Path) -> None:
    import shutil

    shutil.rmtree(demo / "content")
    result = run(demo)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: content: no such folder; create it or set sources[].path in config.yaml"
    )


def test_pin_hint_names_a_command_that_shows_the_slugs(demo: Path) -> None:
    config = ["--config", str(demo / "config.yaml")]
    runner = CliRunner()
    result = runner.invoke(
        main, [*config, "digest", "build", "--now", NOW, "--pin", "no-such-slug"]
    )
    assert result.exit_code == 2
    hint = re.search(r"`pressroom ([^`]+)` shows the slugs", result.stderr)
    assert hint, result.stderr
    listed = runner.invoke(main, [*config, *hint.group(1).split(), "--now", NOW])
    assert listed.exit_code == 0, listed.output
    slugs = [line.split()[2] for line in listed.stdout.splitlines()[1:]]
    assert "welcome-to-pressroom" in slugs
    # a slug copied from the table is one --pin accepts
    pinned = runner.invoke(main, [*config, "digest", "build", "--now", NOW, "--pin", slugs[-1]])
    assert pinned.exit_code == 0, pinned.output
