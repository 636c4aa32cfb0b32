"""Choosing an issue: window, numbering, pins, exclusions, sections, CTA variants, UTM."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pressroom.config import UtmConfig
from pressroom.digest.issue import add_utm, build_issue, check_ctas
from pressroom.errors import ConfigError, NothingToSend, UsageError
from pressroom.models import SentIssue
from tests.digest_helpers import NOW, article, load_config


def test_first_issue_takes_the_configured_window_newest_first(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    old = article(9, hours_ago=24 * 8)  # outside the 7-day window
    future = article(8, hours_ago=-1)  # scheduled, not yet published
    issue = build_issue(
        cfg, [article(2), article(0), old, article(1), future], now=NOW, last_sent=None
    )
    assert issue.number == 1
    assert [a.slug for a in issue.articles] == ["story-0", "story-1", "story-2"]
    assert issue.lead.slug == "story-0"
    assert issue.window_start == NOW - timedelta(days=7)
    assert issue.window_end == NOW


def test_next_issue_starts_where_the_last_sent_one_ended(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    last = SentIssue(41, NOW - timedelta(hours=9), NOW - timedelta(hours=10))
    issue = build_issue(cfg, [article(0), article(1), article(2)], now=NOW, last_sent=last)
    assert issue.number == 42
    # story-2 was published 12 h ago, before issue 41's window closed
    assert [a.slug for a in issue.articles] == ["story-0", "story-1"]


def test_nothing_new_since_last_issue_says_so(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    last = SentIssue(41, NOW - timedelta(days=7), NOW - timedelta(hours=1))
    with pytest.raises(NothingToSend) as exc:
        build_issue(cfg, [article(1), article(2)], now=NOW, last_sent=last)
    assert exc.value.message == "no new articles since issue 41 (2026-11-18); nothing to send"
    assert exc.value.exit_code == 0


def test_since_overrides_the_window(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    last = SentIssue(3, NOW, NOW)
    issue = build_issue(
        cfg, [article(0), article(3)], now=NOW, last_sent=last, since=NOW - timedelta(hours=10)
    )
    assert [a.slug for a in issue.articles] == ["story-0"]
    assert issue.number == 4


def test_max_articles_and_excluded_tags(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, digest="max_articles: 3\nexclude_tags: [internal]")
    arts = [article(i, tags=("internal",) if i == 1 else ()) for i in range(6)]
    issue = build_issue(cfg, arts, now=NOW, last_sent=None, exclude_tags=["sponsored"])
    assert [a.slug for a in issue.articles] == ["story-0", "story-2", "story-3"]
    arts[0] = article(0, tags=("sponsored",))
    issue = build_issue(cfg, arts, now=NOW, last_sent=None, exclude_tags=["sponsored"])
    assert [a.slug for a in issue.articles] == ["story-2", "story-3", "story-4"]


def test_pins_lead_even_when_older_than_the_window(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    arts = [article(0), article(1), article(7, hours_ago=24 * 30)]
    issue = build_issue(cfg, arts, now=NOW, last_sent=None, pins=["story-7", "story-1"])
    assert [a.slug for a in issue.articles] == ["story-7", "story-1", "story-0"]
    assert issue.lead.slug == "story-7"
    with pytest.raises(UsageError, match='no article with slug "nope"'):
        build_issue(cfg, arts, now=NOW, last_sent=None, pins=["nope"])


def test_sections_group_by_first_category(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, digest="sections: true")
    arts = [
        article(0, categories=("World",)),
        article(1, categories=("Politics", "World")),
        article(2, categories=("World",)),
        article(3, categories=()),
    ]
    issue = build_issue(cfg, arts, now=NOW, last_sent=None)
    assert [(name, [a.slug for a in group]) for name, group in issue.sections] == [
        ("Politics", ["story-1"]),
        ("World", ["story-2"]),
        ("More", ["story-3"]),
    ]
    assert [a.slug for a in issue.articles] == ["story-0", "story-1", "story-2", "story-3"]


def test_subject_and_preheader_are_jinja_expressions(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    issue = build_issue(
        cfg, [article(0, summary="The lead's own summary.")], now=NOW, last_sent=None
    )
    assert issue.subject == "The Example Times weekly #1: Story number 0 & more"
    assert issue.preheader == "The lead's own summary."
    cfg = load_config(
        tmp_path,
        digest='subject: "#{{ issue.number }} ({{ issue.date | longdate }}) – '
        '{{ issue.articles | length }} stories"\n'
        'preheader: "This week: {{ issue.lead.title | upper }}"',
    )
    issue = build_issue(cfg, [article(0), article(1)], now=NOW, last_sent=None)
    assert issue.subject == "#1 (25 November 2026) – 2 stories"
    assert issue.preheader == "This week: STORY NUMBER 0 & MORE"


def test_bad_subject_expression_names_the_config_line(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, digest='subject: "{{ issue.leed.title }}"')
    with pytest.raises(ConfigError) as exc:
        build_issue(cfg, [article(0)], now=NOW, last_sent=None)
    assert exc.value.message.startswith("config.yaml:12: digest.subject:")
    assert "leed" in exc.value.message
    cfg = load_config(tmp_path, digest='subject: "{{ issue.number "')
    with pytest.raises(ConfigError, match=r"config.yaml:12: digest.subject: template syntax error"):
        build_issue(cfg, [article(0)], now=NOW, last_sent=None)


ROTATING = """\
  - kind: kofi
    url: https://ko-fi.com/example
    headline: Base headline
    button: Buy us a coffee
    position: after:2
    variants:
      - headline: Second headline
      - headline: Third headline
        url: https://ko-fi.com/example?src=v3
"""


def test_cta_variants_rotate_by_issue_number_base_first(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, cta=ROTATING)
    seen = []
    for number in range(1, 6):
        last = (
            SentIssue(number - 1, NOW - timedelta(days=1), NOW - timedelta(days=1))
            if number > 1
            else None
        )
        issue = build_issue(cfg, [article(0), article(1), article(2)], now=NOW, last_sent=last)
        (cta,) = issue.ctas
        seen.append((issue.number, cta.headline, cta.url))
    assert seen == [
        (1, "Base headline", "https://ko-fi.com/example"),
        (2, "Second headline", "https://ko-fi.com/example"),
        (3, "Third headline", "https://ko-fi.com/example?src=v3"),
        (4, "Base headline", "https://ko-fi.com/example"),
        (5, "Second headline", "https://ko-fi.com/example"),
    ]


def test_cta_defaults_per_kind_and_positions(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, cta=ROTATING)
    issue = build_issue(cfg, [article(0), article(1), article(2)], now=NOW, last_sent=None)
    (cta,) = issue.ctas
    assert (cta.name, cta.kind, cta.color, cta.icon, cta.position) == (
        "kofi",
        "kofi",
        "#13C3FF",
        "☕",
        "after:2",
    )
    # after:N past the last article is the bottom of a short issue
    issue = build_issue(cfg, [article(0), article(1)], now=NOW, last_sent=None)
    assert issue.ctas[0].position == "bottom"


def test_bad_cta_config_fails_with_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "a"
    with pytest.raises(ConfigError) as exc:
        load_config(
            root,
            cta="  - kind: patreon\n    url: https://p.example\n"
            "    headline: Hi\n    position: middle\n",
        )
    assert exc.value.message.startswith("config.yaml:17: cta.0.position: expected")
    assert "after:N" in exc.value.message
    with pytest.raises(
        ConfigError, match=r'config.yaml:\d+: cta.0.kind: expected one of .*"patreon"'
    ):
        load_config(root, cta="  - kind: onlyfans\n    url: https://p.example\n    headline: Hi\n")
    cfg = load_config(root, cta="  - kind: paypal\n    url: /donate\n    headline: Hi\n")
    with pytest.raises(
        ConfigError,
        match=r'config.yaml:15: cta.0.url: expected an absolute http\(s\) URL, got "/donate"',
    ):
        check_ctas(cfg)
    cfg = load_config(
        root, cta="  - kind: custom\n    url: https://a.example\n    headline: Hi\n    color: red\n"
    )
    with pytest.raises(ConfigError, match=r"cta.0.color: expected a colour"):
        check_ctas(cfg)
    two = "  - kind: paypal\n    url: https://a.example\n    headline: A\n" * 2
    cfg = load_config(root, cta=two)
    with pytest.raises(ConfigError, match=r'cta.1: another block is already named "paypal"'):
        check_ctas(cfg)


def test_utm_keeps_existing_query_and_params() -> None:
    utm = UtmConfig(campaign="weekly-{number}")
    assert add_utm("https://a.example/p?id=3#top", utm, 42, "story") == (
        "https://a.example/p?id=3&utm_source=newsletter&utm_medium=email"
        "&utm_campaign=weekly-42&utm_content=story#top"
    )
    # a link that already carries utm_source keeps it
    assert add_utm("https://a.example/?utm_source=x", utm, 1, "c") == (
        "https://a.example/?utm_source=x&utm_medium=email&utm_campaign=weekly-1&utm_content=c"
    )
    assert add_utm("mailto:ed@a.example", utm, 1, "c") == "mailto:ed@a.example"
    assert add_utm("https://a.example/", UtmConfig(enabled=False), 1, "c") == "https://a.example/"
