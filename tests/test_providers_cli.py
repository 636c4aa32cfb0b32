"""`pressroom providers list|check` through the real CLI, against the fake providers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from pressroom.cli import main
from tests.fakes.mailgun import MailgunFake
from tests.fakes.postmark import PostmarkFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.server import FakeProviderServer
from tests.fakes.ses import SESFake

SECRETS = {
    "MAILGUN_API_KEY": "key-0123456789abcdef0123456789abcdef",
    "SENDGRID_API_KEY": "SG.abcdefghijklmnop.qrstuvwxyz0123456789",
    "POSTMARK_SERVER_TOKEN": "3f9a1c2e-5b7d-4e8f-a0b1-c2d3e4f5a6b7",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
# each provider and the variable that holds its secret key
KEY_VARIABLES = [
    ("mailgun", "MAILGUN_API_KEY"),
    ("sendgrid", "SENDGRID_API_KEY"),
    ("postmark", "POSTMARK_SERVER_TOKEN"),
    ("ses", "AWS_SECRET_ACCESS_KEY"),
]


@pytest.fixture
def fakes(contracts_dir: Path) -> Iterator[dict[str, FakeProviderServer]]:
    """One fake per provider; the Mailgun and SendGrid ones validate with tests/contracts specs."""
    servers: dict[str, FakeProviderServer] = {
        "mailgun": MailgunFake(domain="mg.theduran.example", api_key=SECRETS["MAILGUN_API_KEY"]),
        "sendgrid": SendGridFake(api_key=SECRETS["SENDGRID_API_KEY"]),
        "postmark": PostmarkFake(server_token=SECRETS["POSTMARK_SERVER_TOKEN"]),
        "ses": SESFake(
            access_key_id=SECRETS["AWS_ACCESS_KEY_ID"],
            secret_access_key=SECRETS["AWS_SECRET_ACCESS_KEY"],
            region="eu-west-1",
        ),
    }
    with ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        yield servers


def configure(demo: Path, fakes: dict[str, FakeProviderServer]) -> Path:
    """Point providers.* of the demo publication at the fake servers."""
    path = demo / "config.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["providers"] = {
        "mailgun": {
            "domain": "mg.theduran.example",
            "region": "eu",
            "base_url": fakes["mailgun"].url,
        },
        "sendgrid": {"base_url": fakes["sendgrid"].url},
        "postmark": {"base_url": fakes["postmark"].url, "message_stream": "broadcast"},
        "ses": {"region": "eu-west-1", "base_url": fakes["ses"].url},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run(config: Path, *args: str, env: dict[str, str | None] | None = None) -> Any:
    return CliRunner().invoke(main, ["--config", str(config), *args], env=env)


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("mailgun", "domain mg.theduran.example is active"),
        ("sendgrid", "mail.send allowed"),
        ("postmark", 'stream "broadcast" (Broadcasts)'),
        ("ses", "account in eu-west-1 can send"),
    ],
)
def test_check_accepts_good_credentials(
    demo: Path, fakes: dict[str, FakeProviderServer], name: str, expect: str
) -> None:
    result = run(configure(demo, fakes), "providers", "check", name, env=dict(SECRETS))
    assert result.exit_code == 0, result.output
    assert expect in result.stdout
    for secret in SECRETS.values():
        assert secret not in result.output
    assert fakes[name].total_accepted == 0  # nothing was sent


@pytest.mark.parametrize(("name", "var"), KEY_VARIABLES)
def test_check_rejected_credentials_exit_1_naming_the_variable(
    demo: Path, fakes: dict[str, FakeProviderServer], name: str, var: str
) -> None:
    wrong = "wrong-secret-value-42"
    env: dict[str, str | None] = {**SECRETS, var: wrong}
    result = run(configure(demo, fakes), "providers", "check", name, env=env)
    assert result.exit_code == 1, result.output
    assert var in result.output
    assert wrong not in result.output
    assert "Traceback" not in result.output


def test_check_missing_env_var_exits_2(demo: Path, fakes: dict[str, FakeProviderServer]) -> None:
    env: dict[str, str | None] = {**SECRETS, "SENDGRID_API_KEY": None}
    result = run(configure(demo, fakes), "providers", "check", "sendgrid", env=env)
    assert result.exit_code == 2, result.output
    assert "SENDGRID_API_KEY is not set" in result.output


def test_check_missing_setting_exits_2(demo: Path) -> None:
    # mailgun needs providers.mailgun.domain; the demo config has no mailgun section
    result = run(demo / "config.yaml", "providers", "check", "mailgun", env=dict(SECRETS))
    assert result.exit_code == 2, result.output
    assert "providers.mailgun.domain" in result.output


def test_check_unreachable_provider_exits_1(
    demo: Path, fakes: dict[str, FakeProviderServer]
) -> None:
    config = configure(demo, fakes)
    fakes["postmark"].stop()
    result = run(config, "providers", "check", "postmark", env=dict(SECRETS))
    assert result.exit_code == 1, result.output
    assert "cannot reach" in result.output


def test_check_unknown_provider_lists_known(demo: Path) -> None:
    result = run(demo / "config.yaml", "providers", "check", "mailchimp")
    assert result.exit_code == 2
    assert 'unknown provider "mailchimp"' in result.output
    assert "mailgun" in result.output and "sendgrid" in result.output


def test_check_defaults_to_the_configured_provider(demo: Path) -> None:
    result = run(demo / "config.yaml", "providers", "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("file")


def test_list_shows_every_provider_and_batch_size(demo: Path) -> None:
    result = run(demo / "config.yaml", "providers", "list")
    assert result.exit_code == 0, result.output
    lines = {line[2:].split()[0]: line for line in result.stdout.splitlines()}
    assert {"mailgun", "sendgrid", "postmark", "ses", "file"} <= set(lines)
    assert "1000 per call" in lines["mailgun"] and "SENDGRID_API_KEY" in lines["sendgrid"]
    assert "500 per call" in lines["postmark"] and "50 per call" in lines["ses"]
    assert lines["file"].startswith("*")


# --- `pressroom digest send --provider X` end to end ---------------------------------------

NOW = "2026-11-25T09:00"
READERS = {  # the demo's active subscribers on the weekly list, and who is a patron
    "ada@example.com": False,
    "grace@example.org": True,
    "alan@example.net": False,
    "katherine@example.com": True,
    "tim@example.org": False,
    "radia@example.org": False,
}


def send(config: Path, name: str, *extra: str) -> Any:
    env: dict[str, str | None] = {**SECRETS, "PRESSROOM_SECRET": "e2e-test-secret-0123456789"}
    return run(config, "digest", "send", "--provider", name, "--yes", "--now", NOW, *extra, env=env)


@pytest.mark.parametrize("name", ["mailgun", "sendgrid", "postmark", "ses"])
def test_digest_send_end_to_end(
    demo: Path, fakes: dict[str, FakeProviderServer], name: str
) -> None:
    config = configure(demo, fakes)
    server = fakes[name]
    result = send(config, name)
    assert result.exit_code == 0, result.output
    assert server.contract_violations == []
    assert server.internal_errors == []
    assert dict(server.accepted) == dict.fromkeys(READERS, 1)
    urls = set()
    for address, patron in READERS.items():
        [got] = server.deliveries(address)
        header = got.headers["List-Unsubscribe"]
        assert header.startswith("<https://theduran.example/unsubscribe?t=")
        url = header[1 : header.index(">")]
        urls.add(url)
        assert url in got.html.replace("&amp;", "&") and url in got.text
        assert got.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "The Duran" in got.subject
        assert ("patreon.com" in got.html) is not patron  # patrons get the variant without it
        assert "%%PR_" not in got.html + got.text and "%recipient" not in got.html
    assert len(urls) == len(READERS)  # everyone has their own token
    # a second run finds the issue complete and mails nobody again
    again = send(config, name)
    assert again.exit_code == 0, again.output
    assert server.duplicates() == {}
    assert server.total_accepted == len(READERS)


def test_digest_send_suppresses_postmark_inactive_recipient(
    demo: Path, fakes: dict[str, FakeProviderServer]
) -> None:
    config = configure(demo, fakes)
    fakes["postmark"].fail_recipient("alan@example.net", 406)
    result = send(config, "postmark")
    assert result.exit_code == 1, result.output
    assert set(fakes["postmark"].accepted) == set(READERS) - {"alan@example.net"}
    suppressed = (demo / "subscribers" / "suppressed.csv").read_text(encoding="utf-8")
    assert "alan@example.net" in suppressed


def test_digest_send_retries_after_429(demo: Path, fakes: dict[str, FakeProviderServer]) -> None:
    config = configure(demo, fakes)
    fakes["sendgrid"].fail_next(1, 429, retry_after=1)
    result = send(config, "sendgrid")
    assert result.exit_code == 0, result.output
    assert fakes["sendgrid"].requests_by_path["/v3/mail/send"] >= 2
    assert dict(fakes["sendgrid"].accepted) == dict.fromkeys(READERS, 1)


def test_digest_send_stops_on_rejected_key(
    demo: Path, fakes: dict[str, FakeProviderServer]
) -> None:
    config = configure(demo, fakes)
    env: dict[str, str | None] = {
        **SECRETS,
        "MAILGUN_API_KEY": "key-revoked-000",
        "PRESSROOM_SECRET": "e2e-test-secret-0123456789",
    }
    result = run(config, "digest", "send", "--provider", "mailgun", "--yes", "--now", NOW, env=env)
    assert result.exit_code != 0
    assert "MAILGUN_API_KEY" in result.output
    assert "key-revoked-000" not in result.output
    assert fakes["mailgun"].total_accepted == 0


def test_digest_send_postmark_broadcast_stream_handles_unsubscribes(
    demo: Path, fakes: dict[str, FakeProviderServer]
) -> None:
    config = configure(demo, fakes)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["providers"]["postmark"]["unsubscribe"] = "postmark"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = send(config, "postmark")
    assert result.exit_code == 0, result.output
    for address in READERS:
        [got] = fakes["postmark"].deliveries(address)
        assert "List-Unsubscribe" not in got.headers
        assert "List-Unsubscribe-Post" not in got.headers
        assert 'href="{{{ pm:unsubscribe }}}"' in got.html
        assert "{{{ pm:unsubscribe }}}" in got.text


def test_no_secret_in_output_or_reports(demo: Path, fakes: dict[str, FakeProviderServer]) -> None:
    config = configure(demo, fakes)
    fakes["ses"].fail_recipient("tim@example.org", "MESSAGE_REJECTED")
    fakes["ses"].fail_next(1, 500)
    result = send(config, "ses")
    assert result.exit_code == 1, result.output
    written = result.output + "".join(
        p.read_text(encoding="utf-8") for p in (demo / "reports").glob("*.json")
    )
    assert "tim@example.org" in written and "MESSAGE_REJECTED" in written
    for secret in SECRETS.values():
        assert secret not in written


@pytest.mark.parametrize(("name", "var"), KEY_VARIABLES)
@pytest.mark.parametrize("odd", ["Key4Leak99\r", "Key4Leak99\n", " Key4Leak99", "Key\u20284Leak99"])
def test_a_key_with_a_line_break_or_stray_space_is_named_never_shown(
    demo: Path, fakes: dict[str, FakeProviderServer], name: str, var: str, odd: str
) -> None:
    # copied from a Windows file or a secret store with its newline: requests refused the
    # header and quoted it, key and all, into the error, the ledger and the report
    config = configure(demo, fakes)
    env: dict[str, str | None] = {**SECRETS, var: odd, "PRESSROOM_SECRET": "e2e-test-secret-0123"}
    for args in (
        ["providers", "check", name],
        ["digest", "send", "--provider", name, "--yes", "--now", NOW],
    ):
        result = run(config, *args, env=env)
        assert result.exit_code == 2, result.output
        assert var in result.output and "Leak99" not in result.output
        assert "Traceback" not in result.output
    assert fakes[name].requests == 0
    for path in [*demo.rglob("*.json"), *demo.rglob("*.db")]:
        assert b"Leak99" not in path.read_bytes()


def test_check_an_empty_env_var_says_it_is_empty(
    demo: Path, fakes: dict[str, FakeProviderServer]
) -> None:
    # `export SENDGRID_API_KEY=$(cat key-file)` with the file missing: set, but empty
    env: dict[str, str | None] = {**SECRETS, "SENDGRID_API_KEY": ""}
    result = run(configure(demo, fakes), "providers", "check", "sendgrid", env=env)
    assert result.exit_code == 2, result.output
    assert "SENDGRID_API_KEY is set but empty; export it" in result.output
