"""Subscriber import/export edges (issue 10 §4-§5): other tools' status words, line breaks in
names, spreadsheet formulas, empty files, non-UTF-8 exports and Mailchimp's .zip."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pressroom.audience import subscribers
from pressroom.cli import main
from pressroom.config import Config
from tests.subscribers_helpers import HEADER, make_publication, write
from tests.test_subscribers_cli import (
    MAILCHIMP_CLEANED,
    MAILCHIMP_SUBSCRIBED,
    MAILCHIMP_UNSUBSCRIBED,
)

NOW = ("--now", "2026-11-25T10:00")


@pytest.fixture
def pub(tmp_path: Path) -> Config:
    pub = make_publication(tmp_path / "pub")
    write(
        pub.root / "subscribers/subscribers.csv",
        HEADER + "ada@example.com,Ada Lovelace,weekly,,active,2026-01-12\n",
    )
    return pub


def run(pub: Config, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(pub.path), *args])


def table(pub: Config, name: str = "subscribers.csv") -> dict[str, dict[str, str]]:
    with (pub.root / "subscribers" / name).open(newline="", encoding="utf-8") as f:
        return {row["email"]: row for row in csv.DictReader(f)}


def import_(pub: Config, path: Path, *args: str) -> Result:
    return run(pub, "subscribers", "import", str(path), *args, *NOW)


# --- status words, line breaks ----------------------------------------------------------


def test_status_words_of_other_tools_map_to_ours(pub: Config, tmp_path: Path) -> None:
    src = write(
        tmp_path / "listmonk.csv",
        "email,name,status\n"
        "a@example.com,A,subscribed\n"
        "b@example.com,B,Confirmed\n"
        "c@example.com,C,enabled\n"
        "d@example.com,D,cleaned\n"
        "e@example.com,E,blocklisted\n"
        "f@example.com,F,unconfirmed\n",
    )
    r = import_(pub, src, "--format", "csv")
    assert r.exit_code == 0, r.output
    assert "6 added" in r.stdout and "0 skipped" in r.stdout
    got = {e: row["status"] for e, row in table(pub).items()}
    assert got == {
        "ada@example.com": "active",
        "a@example.com": "active",
        "b@example.com": "active",
        "c@example.com": "active",
        "d@example.com": "bounced",
        "e@example.com": "unsubscribed",
        "f@example.com": "pending",
    }
    assert run(pub, "subscribers", "validate").exit_code == 0


def test_names_from_an_import_go_through_the_text_policy(pub: Config, tmp_path: Path) -> None:
    # a terminal escape in a name reached `subscribers list` and the To: header as it was; an
    # override (U+202E) or an open isolate turned the rest of the line around
    src = write(
        tmp_path / "in.csv",
        "email,name,city\n"
        'esc@example.com,"Eve\x1b[2J\x07 Smith","\u2067Tel Aviv"\n'
        'rlo@example.com,"Bob \u202efdp.exe",Oslo\n',
    )
    r = import_(pub, src, "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = table(pub)
    assert rows["esc@example.com"]["name"] == "Eve[2J Smith"
    assert rows["esc@example.com"]["city"] == "\u2067Tel Aviv\u2069"
    assert rows["rlo@example.com"]["name"] == "Bob fdp.exe"
    listed = run(pub, "subscribers", "list")
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\u202e" not in listed.output


def test_a_column_an_export_gives_twice_is_read_where_its_copies_agree(
    pub: Config, tmp_path: Path
) -> None:
    # the last copy won: a second, empty "Email Address" column skipped every reader
    src = write(
        tmp_path / "members.csv",
        "Email Address,First Name,Email Address\n"
        "ann@example.com,Ann,\n"
        "bo@example.com,Bo,bo@example.com\n"
        ",Cy,cy@example.com\n",
    )
    r = import_(pub, src, "--format", "mailchimp")
    assert r.exit_code == 0, r.output
    assert {"ann@example.com", "bo@example.com", "cy@example.com"} <= set(table(pub))
    before = (pub.root / "subscribers" / "subscribers.csv").read_bytes()
    clash = write(
        tmp_path / "clash.csv",
        "email,name,Email\ndi@example.com,Di,\neve@example.com,Eve,mallory@example.com\n",
    )
    r = import_(pub, clash, "--format", "csv")
    assert r.exit_code != 0 and isinstance(r.exception, SystemExit), r.output  # no traceback
    assert r.output.count("\n") == 1, r.output
    assert 'clash.csv:3: the column "email" is in the header twice' in r.output
    assert (pub.root / "subscribers" / "subscribers.csv").read_bytes() == before  # nothing


def test_our_own_file_with_a_column_twice_is_one_line_naming_it(pub: Config) -> None:
    # the reader took the first "status", an import rewrote the last: a change was lost
    path = pub.root / "subscribers" / "subscribers.csv"
    write(path, "email,name,status,status\nann@example.com,Ann,active,unsubscribed\n")
    r = run(pub, "subscribers", "validate")
    assert r.exit_code != 0, r.output
    assert 'subscribers.csv:1: the column "status" is in the header twice (columns 3 and 4)' in (
        r.output
    )
    src = write(path.parent.parent / "in.csv", "email\nbo@example.com\n")
    r = import_(pub, src, "--format", "csv")
    assert r.exit_code != 0 and 'the column "status" is in the header twice' in r.output
    assert path.read_text(encoding="utf-8").count("\n") == 2  # untouched


def test_a_name_with_line_breaks_is_flattened_so_our_reader_accepts_the_row(
    pub: Config, tmp_path: Path
) -> None:
    src = write(
        tmp_path / "in.csv",
        'email,name,city\nzed@example.com,"Zed\r\nZebra\n  Jr","New\nYork"\n',
    )
    r = import_(pub, src, "--format", "csv")
    assert r.exit_code == 0, r.output
    assert table(pub)["zed@example.com"]["name"] == "Zed Zebra Jr"
    assert table(pub)["zed@example.com"]["city"] == "New York"
    added = run(pub, "subscribers", "add", "bo@example.com", "--name", "Bo\nDiddley", *NOW)
    assert added.exit_code == 0, added.output
    check = run(pub, "subscribers", "validate")
    assert check.exit_code == 0, check.output
    assert [s.name for s in subscribers.iter_subscribers(pub, on_problem=pytest.fail)] == [
        "Ada Lovelace",
        "Zed Zebra Jr",
        "Bo Diddley",
    ]


# --- export ------------------------------------------------------------------------------


def test_export_neutralises_spreadsheet_formulas_and_import_restores_them(
    pub: Config, tmp_path: Path
) -> None:
    write(
        pub.root / "subscribers/subscribers.csv",
        HEADER
        + 'eve@example.com,"=HYPERLINK(""http://evil.example"",""x"")",weekly,,active,2026-01-01\n'
        + "plus@example.com,+1 555 0100,weekly,,active,2026-01-01\n"
        + "minus@example.com,-2+3,weekly,@SUM(A1),active,2026-01-01\n"
        + "fine@example.com,Fine Name,weekly,,active,2026-01-01\n"
        # values that already read as a neutralised formula keep their own quotes
        + "quote@example.com,'=1+1,weekly,''-x,active,2026-01-01\n",
    )
    r = run(pub, "subscribers", "export")
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.stdout)))
    names = {row[0]: row[1] for row in rows[1:]}
    assert names["eve@example.com"] == '\'=HYPERLINK("http://evil.example","x")'
    assert names["plus@example.com"] == "'+1 555 0100"
    assert names["minus@example.com"] == "'-2+3"
    assert names["fine@example.com"] == "Fine Name"
    assert rows[3][3] == "'@SUM(A1)"
    assert not any(cell and cell[0] in "=+-@" for row in rows for cell in row)

    other = make_publication(tmp_path / "other")
    write(other.root / "subscribers/subscribers.csv", HEADER)
    back = write(tmp_path / "backup.csv", r.stdout)
    assert import_(other, back, "--format", "csv").exit_code == 0
    restored = table(other)
    assert restored["eve@example.com"]["name"] == '=HYPERLINK("http://evil.example","x")'
    assert restored["minus@example.com"]["tags"] == "@SUM(A1)"
    assert restored["quote@example.com"]["name"] == "'=1+1"  # was =1+1: its quote lost
    assert restored["quote@example.com"]["tags"] == "''-x"
    assert restored["fine@example.com"]["name"] == "Fine Name"


# --- empty files -------------------------------------------------------------------------


def test_an_empty_subscriber_file_gets_a_warning_naming_it(pub: Config) -> None:
    (pub.root / "subscribers/breaking.csv").write_bytes(b"")
    for command in (["count"], ["list"], ["validate"], ["export"]):
        r = run(pub, "subscribers", *command)
        assert r.exit_code == 0, r.output
        assert (
            "warning: subscribers/breaking.csv: empty file, nobody in it is mailed; restore it "
            "from a backup or write the header email,name,lists,tags,status,subscribed_at"
        ) in r.stderr, command


def test_an_empty_subscriber_file_is_named_when_the_issue_is_sent(demo: Path) -> None:
    (demo / "subscribers" / "vip.csv").write_text("\n", encoding="utf-8")
    r = CliRunner().invoke(
        main,
        ["--config", str(demo / "config.yaml"), "digest", "send", *NOW],
        env={"PRESSROOM_SECRET": "s"},
    )
    assert r.exit_code == 0, r.output
    assert "warning: subscribers/vip.csv: empty file, nobody in it is mailed" in r.output


# --- encodings ---------------------------------------------------------------------------

NAMES = [
    ("zoe@example.com", "Zoë Müller"),
    ("francois@example.com", "François Dupré-Lefèvre"),
    ("bjorn@example.org", "Bjørn Ødegård"),
]


def cp1252_export(tmp_path: Path) -> Path:
    text = "email,name\n" + "".join(f"{e},{n}\n" for e, n in NAMES)
    path = tmp_path / "windows.csv"
    path.write_bytes(text.encode("cp1252"))
    return path


def test_a_cp1252_export_is_detected_and_said(pub: Config, tmp_path: Path) -> None:
    src = cp1252_export(tmp_path)
    r = import_(pub, src, "--format", "csv")
    assert r.exit_code == 0, r.output
    assert f"warning: {src}:2: not UTF-8; read as cp1252 (detected" in r.stderr
    assert "pass --encoding if names look wrong" in r.stderr
    got = table(pub)
    assert [got[e]["name"] for e, _ in NAMES] == [n for _, n in NAMES]


def test_encoding_option_reads_the_file_as_told(pub: Config, tmp_path: Path) -> None:
    src = cp1252_export(tmp_path)
    r = import_(pub, src, "--format", "csv", "--encoding", "cp1252")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr
    assert table(pub)["bjorn@example.org"]["name"] == "Bjørn Ødegård"


def test_a_utf16_export_with_a_bom_is_read(pub: Config, tmp_path: Path) -> None:
    src = tmp_path / "excel-unicode.csv"
    src.write_bytes(("email,name\n" + "zoe@example.com,Zoë Müller\n").encode("utf-16"))
    r = import_(pub, src, "--format", "csv")
    assert r.exit_code == 0, r.output
    assert table(pub)["zoe@example.com"]["name"] == "Zoë Müller"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--encoding", "utf-8"),
            ":2: not utf-8; pass the file's real --encoding (or omit it to detect one)",
        ),
        (
            ("--encoding", "klingon"),
            "--encoding: unknown encoding 'klingon'; use one like cp1252, latin-1",
        ),
    ],
)
def test_a_wrong_encoding_is_one_line(
    pub: Config, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    before = (pub.root / "subscribers/subscribers.csv").read_bytes()
    r = import_(pub, cp1252_export(tmp_path), "--format", "csv", *args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.output
    assert (pub.root / "subscribers/subscribers.csv").read_bytes() == before


def test_bytes_in_no_encoding_are_one_line(pub: Config, tmp_path: Path) -> None:
    src = tmp_path / "binary.csv"
    src.write_bytes(b"email,name\n" + bytes(range(128, 256)) * 4 + b"\x00\x81\x8d\x8f\x90\x9d")
    r = import_(pub, src, "--format", "csv")
    assert r.exit_code == 2, r.output
    assert r.output == (
        f"error: {src}:2: not UTF-8, and its encoding cannot be told; save it as UTF-8 CSV, "
        "or pass --encoding (e.g. --encoding cp1252)\n"
    )


# --- Mailchimp's .zip --------------------------------------------------------------------


def mailchimp_zip(tmp_path: Path) -> Path:
    path = tmp_path / "audience_export_1a2b3c.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("subscribed_members_export_1a2b3c.csv", MAILCHIMP_SUBSCRIBED)
        z.writestr("unsubscribed_members_export_1a2b3c.csv", MAILCHIMP_UNSUBSCRIBED)
        z.writestr("cleaned_members_export_1a2b3c.csv", MAILCHIMP_CLEANED)
    return path


def test_a_mailchimp_zip_is_read_directly(pub: Config, tmp_path: Path) -> None:
    src = mailchimp_zip(tmp_path)
    r = import_(pub, src, "--format", "mailchimp")
    assert r.exit_code == 1, r.output  # the export's one bad row, named inside the zip
    assert f"{src}: 1 added, 0 updated, 1 unchanged, 2 suppressed, 1 skipped" in r.stdout
    assert (
        f'error: {src}:subscribed_members_export_1a2b3c.csv:4: invalid email "broken@"' in r.stderr
    )
    assert "new.reader@example.com" in table(pub)
    assert pub.subscribers.suppressed.read_text().splitlines()[1:] == [
        "alan@example.net,unsubscribed,2024-05-01T12:00:00+00:00,",
        "gone@example.org,bounced,2024-06-01T12:00:00+00:00,",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04" + b"\x00" * 40, "cannot read the .zip"),
        (None, "the .zip holds no .csv file; unpack it and import the CSV inside"),
    ],
)
def test_a_broken_or_empty_zip_is_one_line(
    pub: Config, tmp_path: Path, content: bytes | None, message: str
) -> None:
    src = tmp_path / "export.zip"
    if content is None:
        with zipfile.ZipFile(src, "w") as z:
            z.writestr("readme.txt", "nothing here")
    else:
        good = mailchimp_zip(tmp_path).read_bytes()
        src.write_bytes(good[: len(good) // 2] + content)  # cut short, as a broken download
    r = import_(pub, src, "--format", "mailchimp")
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.output


def test_a_zip_bomb_is_refused_before_it_is_unpacked(pub: Config, tmp_path: Path) -> None:
    # 40 MB of one repeated row packs to about 100 KB (a real export packs 5-15 times)
    src = tmp_path / "audience_export.zip"
    row = b"mallory@example.com,Mallory,weekly\n"
    with (
        zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as z,
        z.open("subscribed_members_export.csv", "w") as member,
    ):
        member.write(b"email,name,lists\n")
        for _ in range(40):
            member.write(row * ((1 << 20) // len(row)))
    before = (pub.root / "subscribers" / "subscribers.csv").read_bytes()
    r = import_(pub, src, "--format", "mailchimp")
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "no real export does" in lines[0], r.output
    assert f"{src}:subscribed_members_export.csv: unpacks to" in lines[0]
    assert (pub.root / "subscribers" / "subscribers.csv").read_bytes() == before


def test_an_empty_export_file_is_a_warning_not_a_traceback(pub: Config, tmp_path: Path) -> None:
    src = write(tmp_path / "empty.csv", "")
    r = import_(pub, src, "--format", "mailchimp")
    assert r.exit_code == 0, r.output
    assert f"warning: {src}: empty file; nothing imported from it" in r.stderr


def test_an_unterminated_quote_in_an_export_is_an_error_not_a_swallowed_reader(
    pub: Config, tmp_path: Path
) -> None:
    # the stray quote runs to the end of the file: carl's row became part of bob's name
    src = write(
        tmp_path / "in.csv",
        'email,name\nbob@example.com,"Bob\ncarl@example.com,Carl\ndee@example.com,Dee\n',
    )
    before = (pub.root / "subscribers/subscribers.csv").read_bytes()
    r = import_(pub, src, "--format", "csv")
    assert r.exit_code != 0, r.output
    assert "Traceback" not in r.output
    assert f"{src}:2: unterminated quote" in r.output, r.output
    assert (pub.root / "subscribers/subscribers.csv").read_bytes() == before
