"""`pressroom subscribers sync patreon` against a fake Patreon API v2 on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pressroom import config as config_mod
from pressroom.audience import patreon
from pressroom.cli import main
from pressroom.errors import PatreonError
from tests.fakes.patreon import CAMPAIGN, TOKEN, PatreonFake, member

NOW = ("--now", "2026-11-25T09:00")
HEADER = "email,name,lists,tags,status,subscribed_at\n"

MEMBERS = [
    member("ada@example.com", "active_patron", "Ada Lovelace"),  # subscriber, gains the tag
    member("Grace@Example.org", "active_patron"),  # already tagged (address case differs)
    member("alan@example.net", "former_patron", charge="Paid"),  # loses the tag
    member("kat@example.com", "declined_patron", charge="Declined"),  # loses the tag
    member("new@example.com", "active_patron", "New Patron"),  # not a subscriber
    member("free@example.com", None, charge=None),  # never pledged: tags left alone
    member(None, "active_patron"),  # email hidden (scope missing or member hid it)
]
SUBSCRIBERS = (
    HEADER
    + "ada@example.com,Ada Lovelace,weekly,,active,2026-01-12\n"
    + "grace@example.org,Grace Hopper,weekly,patron,active,2026-02-03\n"
    + "alan@example.net,Alan Turing,weekly,patron;early,active,2026-03-21\n"
    + "free@example.com,Free Member,weekly,patron,active,2026-03-22\n"
    + "bob@example.com,Bob,weekly,patron,active,2026-03-23\n"  # not on Patreon: left alone
)


@pytest.fixture
def fake() -> Iterator[PatreonFake]:
    with PatreonFake(list(MEMBERS), page_size=2) as server:
        yield server  # type: ignore[misc]


def publication(root: Path, fake: PatreonFake, extra: str = "") -> Path:
    (root / "subscribers").mkdir(parents=True)
    (root / "subscribers" / "subscribers.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    (root / "subscribers" / "more.csv").write_text(
        HEADER + "kat@example.com,Kat,weekly,patron,active,2026-04-02\n", encoding="utf-8"
    )
    (root / "config.yaml").write_text(
        textwrap.dedent(
            f"""\
            publication:
              name: Test Weekly
              url: https://test.example/
            patreon:
              campaign: "{CAMPAIGN}"
              token_env: T_PATREON
              base_url: {fake.url}
              timeout: 5
            """
        )
        + extra,
        encoding="utf-8",
    )
    return root / "config.yaml"


def sync(cfg: Path, *args: str, token: str = TOKEN) -> Result:
    return CliRunner().invoke(
        main,
        ["--config", str(cfg), "subscribers", "sync", "patreon", *args, *NOW],
        env={"T_PATREON": token},
    )


def rows(root: Path, name: str = "subscribers.csv") -> dict[str, list[str]]:
    lines = (root / "subscribers" / name).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    return {r.split(",")[0]: r.split(",") for r in lines[1:]} | {"": header}


def tags(root: Path, address: str, name: str = "subscribers.csv") -> str:
    table = rows(root, name)
    return table[address][table[""].index("tags")]


def test_sync_reads_every_page_and_tags_active_patrons_only(
    tmp_path: Path, fake: PatreonFake
) -> None:
    cfg = publication(tmp_path, fake)
    result = sync(cfg)
    assert result.exit_code == 0, result.output
    assert fake.pages_served == 4  # 7 members, 2 a page: three links.next followed
    assert fake.contract_violations == [] and fake.internal_errors == []
    assert tags(tmp_path, "ada@example.com") == "patron"
    assert tags(tmp_path, "grace@example.org") == "patron"
    assert tags(tmp_path, "alan@example.net") == "early"  # former patron: tag removed
    assert tags(tmp_path, "kat@example.com", "more.csv") == ""  # declined, in another file
    assert tags(tmp_path, "free@example.com") == "patron"  # no status: left alone
    assert tags(tmp_path, "bob@example.com") == "patron"  # not on Patreon: left alone
    assert "new@example.com" not in rows(tmp_path)  # never subscribed without --add
    assert result.output.strip().splitlines()[-1] == (
        "patreon: 7 members (4 pages): 1 tagged patron, 2 untagged, 1 unchanged, "
        "1 active patrons not subscribed (--add adds them), 1 without an email address"
    )
    again = sync(cfg)  # idempotent: nothing left to change, files untouched
    assert "0 tagged patron, 0 untagged, 4 unchanged" in again.output


def test_the_request_asks_for_what_the_issue_names(tmp_path: Path, fake: PatreonFake) -> None:
    cfg = publication(tmp_path, fake)
    assert sync(cfg).exit_code == 0
    assert set(fake.requests_by_path) == {f"/api/oauth2/v2/campaigns/{CAMPAIGN}/members"}
    url = patreon.members_url(config_mod.load(cfg).patreon)
    assert "include=user" in url
    assert (
        "fields%5Bmember%5D=email%2Cfull_name%2Cpatron_status%2C"
        "currently_entitled_amount_cents%2Clast_charge_status" in url
    )


def test_dry_run_prints_the_changes_and_writes_nothing(tmp_path: Path, fake: PatreonFake) -> None:
    cfg = publication(tmp_path, fake)
    before = {p.name: p.read_bytes() for p in (tmp_path / "subscribers").iterdir()}
    result = sync(cfg, "--dry-run", "--add")
    assert result.exit_code == 0, result.output
    assert "+patron ada@example.com" in result.output
    assert "-patron alan@example.net" in result.output
    assert "-patron kat@example.com" in result.output
    assert "add new@example.com" in result.output
    assert "1 would be tagged patron, 2 would be untagged" in result.output
    assert "1 would be added" in result.output
    after = {p.name: p.read_bytes() for p in (tmp_path / "subscribers").iterdir()}
    assert after == before


def test_add_subscribes_active_patrons_with_their_consent_source(
    tmp_path: Path, fake: PatreonFake
) -> None:
    cfg = publication(tmp_path, fake)
    fake.members.append(member("gone@example.com", "active_patron"))
    (tmp_path / "subscribers" / "suppressed.csv").write_text(
        "email,reason,date,list\ngone@example.com,unsubscribed,2026-01-01T00:00:00+00:00,\n",
        encoding="utf-8",
    )
    result = sync(cfg, "--add")
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output and "1 active patrons suppressed, not added" in result.output
    table = rows(tmp_path)
    new = dict(zip(table[""], table["new@example.com"], strict=True))
    assert new["tags"] == "patron" and new["name"] == "New Patron" and new["status"] == "active"
    assert new["consent_source"] == "patreon"
    assert new["consent_at"] == "2026-11-25T09:00:00+00:00"
    assert "gone@example.com" not in table


def test_a_refused_token_names_the_env_var_and_changes_nothing(
    tmp_path: Path, fake: PatreonFake
) -> None:
    cfg = publication(tmp_path, fake)
    before = (tmp_path / "subscribers" / "subscribers.csv").read_bytes()
    result = sync(cfg, token="wrong-token-abcdef")
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("error: patreon: the API refused the token in $T_PATREON (401 ")
    assert "export it as T_PATREON" in lines[0]
    assert "wrong-token-abcdef" not in result.output
    assert (tmp_path / "subscribers" / "subscribers.csv").read_bytes() == before


def test_a_missing_token_names_the_env_var(tmp_path: Path, fake: PatreonFake) -> None:
    cfg = publication(tmp_path, fake)
    result = sync(cfg, token="")
    assert result.exit_code == 2, result.output
    assert "patreon: $T_PATREON is not set" in result.output
    assert fake.requests == 0


def test_429_is_retried_after_its_retry_after_header(tmp_path: Path, fake: PatreonFake) -> None:
    settings = config_mod.load(publication(tmp_path, fake)).patreon
    fake.fail_next(1, 429, retry_after="3", path="/api/")
    waits: list[float] = []
    members = patreon.fetch_members(settings, TOKEN, sleep=waits.append)
    assert waits == [3.0]
    assert len(members) == len(MEMBERS)


def test_429_without_the_header_honours_the_documented_body(
    tmp_path: Path, fake: PatreonFake
) -> None:
    settings = config_mod.load(publication(tmp_path, fake)).patreon
    body = fake.error_body(429, "")
    body["errors"][0]["retry_after_seconds"] = 7
    fake.fail_next(2, 429, body=body, path="/api/")
    waits: list[float] = []
    assert len(patreon.fetch_members(settings, TOKEN, sleep=waits.append)) == len(MEMBERS)
    assert waits == [7.0, 7.0]


def test_429_that_never_ends_fails_in_one_line_with_tags_unchanged(
    tmp_path: Path, fake: PatreonFake
) -> None:
    cfg = publication(tmp_path, fake)
    before = (tmp_path / "subscribers" / "subscribers.csv").read_bytes()
    fake.slow_next(1, 0)  # page 1 answers, then page 2 is throttled on every try
    fake.fail_next(5, 429, retry_after="0")
    result = sync(cfg)
    assert result.exit_code == 1, result.output
    assert "answered 429 You have made too many attempts." in result.output
    assert "subscriber tags are unchanged" in result.output
    assert (tmp_path / "subscribers" / "subscribers.csv").read_bytes() == before


def test_a_dropped_connection_is_retried(tmp_path: Path, fake: PatreonFake) -> None:
    settings = config_mod.load(publication(tmp_path, fake)).patreon
    fake.drop_next(1)
    waits: list[float] = []
    assert len(patreon.fetch_members(settings, TOKEN, sleep=waits.append)) == len(MEMBERS)
    assert waits == [1.0]


def test_a_network_failure_midway_leaves_every_tag_as_it_was(
    tmp_path: Path, fake: PatreonFake
) -> None:
    settings = config_mod.load(publication(tmp_path, fake)).patreon
    config = config_mod.load(tmp_path / "config.yaml")
    before = {p.name: p.read_bytes() for p in (tmp_path / "subscribers").iterdir()}
    fake.slow_next(1, 0)  # page 1 answers; every later request is dropped
    fake.drop_next(5)  # patreon.retries defaults to 4: five tries
    with pytest.raises(PatreonError, match=r"cannot reach .* after 5 tries; subscriber tags"):
        patreon.fetch_members(settings, TOKEN, sleep=lambda _s: None)
    assert config.patreon.campaign == CAMPAIGN
    after = {p.name: p.read_bytes() for p in (tmp_path / "subscribers").iterdir()}
    assert after == before


def test_a_page_trickled_a_byte_at_a_time_ends_within_the_timeout(
    tmp_path: Path, fake: PatreonFake
) -> None:
    # each byte came within the read timeout, so the sync waited as long as the server dripped
    settings = config_mod.load(publication(tmp_path, fake)).patreon
    settings = dataclasses.replace(settings, timeout=0.3, retries=1)
    fake.drip_next(2, 0.02)  # a page is several KB: minutes at this pace
    started = time.monotonic()
    with pytest.raises(PatreonError, match=r"cannot reach .* \(ReadTimeout\) after 2 tries"):
        patreon.fetch_members(settings, TOKEN, sleep=lambda _s: None)
    assert time.monotonic() - started < 5


def test_without_links_the_pagination_cursor_is_followed(tmp_path: Path, fake: PatreonFake) -> None:
    settings = config_mod.load(publication(tmp_path, fake)).patreon
    fake.links = False  # the documented sample response carries only meta.pagination.cursors
    members = patreon.fetch_members(settings, TOKEN, sleep=lambda _s: None)
    assert [m.email for m in members] == [m["email"] or "" for m in MEMBERS]
    assert fake.pages_served == 4 and fake.contract_violations == []


@pytest.mark.parametrize("cursors", [["next-page"], "next-page", 5])
def test_pagination_cursors_that_are_not_an_object_end_the_list_without_a_traceback(
    tmp_path: Path, fake: PatreonFake, cursors: object
) -> None:
    cfg = publication(tmp_path, fake)
    fake.fail_next(1, 200, body={"data": [], "meta": {"pagination": {"cursors": cursors}}})
    result = sync(cfg)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("patreon: 0 members (1 page)")


def test_a_next_link_to_another_host_is_refused(tmp_path: Path, fake: PatreonFake) -> None:
    settings = config_mod.load(publication(tmp_path, fake)).patreon
    fake.next_host = "http://attacker.example"
    with pytest.raises(PatreonError, match=r"the token is only sent to patreon\.base_url"):
        patreon.fetch_members(settings, TOKEN, sleep=lambda _s: None)
    assert fake.pages_served == 1


def test_unknown_campaign_is_one_line(tmp_path: Path, fake: PatreonFake) -> None:
    cfg = publication(tmp_path, fake)
    cfg.write_text(cfg.read_text().replace(f'"{CAMPAIGN}"', '"999"'), encoding="utf-8")
    result = sync(cfg)
    assert result.exit_code == 1
    assert "error: patreon: no campaign '999' (404); set patreon.campaign" in result.output


def test_sync_without_a_campaign_says_which_key_to_set(tmp_path: Path) -> None:
    (tmp_path / "subscribers").mkdir()
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: T\n  url: https://t.example/\n", encoding="utf-8"
    )
    result = sync(tmp_path / "config.yaml")
    assert result.exit_code == 2, result.output
    assert "patreon.campaign: not set" in result.output


def test_sync_true_needs_a_campaign(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "publication:\n  name: T\n  url: https://t.example/\npatreon:\n  sync: true\n",
        encoding="utf-8",
    )
    with pytest.raises(config_mod.ConfigError, match=r"config.yaml:4: patreon.campaign: "):
        config_mod.load(tmp_path / "config.yaml")


# --- weekly ----------------------------------------------------------------------------


def weekly_demo(demo: Path, fake: PatreonFake) -> Path:
    cfg = demo / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f'patreon:\n  campaign: "{CAMPAIGN}"\n  token_env: T_PATREON\n'
        f"  base_url: {fake.url}\n  sync: true\n  timeout: 2\n  retries: 1\n",
        encoding="utf-8",
    )
    return cfg


def has_cta(demo: Path, address: str) -> bool:
    [path] = [
        p
        for p in (demo / "outbox" / "issue-1").glob("*.eml")
        if address in p.read_text(encoding="utf-8")
    ]
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return "data-cta=" in html


def test_weekly_syncs_patreon_before_building_the_issue(demo: Path) -> None:
    members = [member("ada@example.com", "active_patron"), member("grace@example.org", None)]
    members.append(member("katherine@example.com", "former_patron"))
    with PatreonFake(members, page_size=1) as fake:
        cfg = weekly_demo(demo, fake)  # type: ignore[arg-type]
        result = CliRunner().invoke(
            main,
            ["--config", str(cfg), "weekly", *NOW],
            env={"PRESSROOM_SECRET": "s", "T_PATREON": TOKEN},
        )
    assert result.exit_code == 0, result.output
    assert "patreon: 3 members (3 pages): 1 tagged patron, 1 untagged" in result.output
    assert not has_cta(demo, "ada@example.com")  # tagged before the issue was built
    assert has_cta(demo, "katherine@example.com")  # former patron: sees the support block
    assert not has_cta(demo, "grace@example.org")  # no status: her tag stayed


def test_weekly_goes_on_with_a_warning_when_patreon_cannot_be_reached(demo: Path) -> None:
    with PatreonFake([member("ada@example.com")], page_size=1) as fake:
        cfg = weekly_demo(demo, fake)  # type: ignore[arg-type]
        fake.drop_next(2)
        before = (demo / "subscribers" / "subscribers.csv").read_bytes()
        result = CliRunner().invoke(
            main,
            ["--config", str(cfg), "weekly", *NOW],
            env={"PRESSROOM_SECRET": "s", "T_PATREON": TOKEN},
        )
    assert result.exit_code == 0, result.output
    assert "warning: patreon: cannot reach" in result.output
    assert "the issue goes out with the tags as they were" in result.output
    assert "issue 1 is complete" in result.output
    assert (demo / "subscribers" / "subscribers.csv").read_bytes() == before
    assert has_cta(demo, "ada@example.com")  # untagged, as before
