"""config.yaml: typed sections, paths relative to the file, one-line errors with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pressroom import config, defaults
from pressroom.cli import main
from pressroom.errors import ConfigError

MINIMAL = """\
publication:
  name: Test Weekly
  url: https://test.example
  timezone: Europe/Berlin
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        config.load(write(tmp_path, text))
    return exc.value.message


def test_demo_config_loads(repo_root: Path) -> None:
    cfg = config.load(repo_root / "config.yaml")
    assert cfg.publication.name == "The Duran"
    assert cfg.publication.url.endswith("/")
    assert cfg.sources[0].type == "files"
    assert cfg.feeds.items == 50
    assert cfg.cta[0].kind == "patreon"
    assert cfg.sending.rate.per_second == 100.0
    assert cfg.digest.window.days == 7


def test_minimal_config_has_defaults(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, MINIMAL))
    assert cfg.publication.url == "https://test.example/"
    assert cfg.publication.tz.key == "Europe/Berlin"
    assert cfg.sources == ()
    assert cfg.feeds.formats == ("rss", "atom", "json")
    assert cfg.sending.provider == "file"
    assert cfg.sending.from_.endswith(">")


def test_paths_resolve_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "site"
    sub.mkdir()
    path = write(sub, MINIMAL + "feeds:\n  out: build/feeds\nstate: var/state\n")
    monkeypatch.chdir(tmp_path)
    cfg = config.load(path.relative_to(tmp_path))
    assert cfg.feeds.out == (sub / "build" / "feeds").resolve()
    assert cfg.state == (sub / "var" / "state").resolve()
    assert cfg.subscribers.path == (sub / "subscribers").resolve()  # defaults too


def test_wrong_type_names_line_and_key(tmp_path: Path) -> None:
    text = MINIMAL + "feeds:\n  items: ten\n"
    assert (
        load_error(tmp_path, text)
        == 'config.yaml:6: feeds.items: expected a positive integer, got "ten"'
    )


def test_unknown_key_suggests(tmp_path: Path) -> None:
    text = MINIMAL + "  timezon: UTC\n"
    msg = load_error(tmp_path, text)
    assert msg == 'config.yaml:5: publication.timezon: unknown key; did you mean "timezone"?'


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    msg = load_error(tmp_path, MINIMAL + "feeds: [rss\n")
    assert msg.startswith("config.yaml:6:")
    assert "invalid YAML" in msg


def test_secret_in_config_is_refused(tmp_path: Path) -> None:
    text = MINIMAL + "providers:\n  mailgun:\n    domain: mg.test.example\n    api_key: key-123\n"
    msg = load_error(tmp_path, text)
    assert msg.startswith(
        "config.yaml:8: providers.mailgun.api_key: secrets do not belong in config.yaml"
    )
    assert "api_key_env" in msg
    assert "key-123" not in msg


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "sending:\n  rate: fast\n",
            'config.yaml:5: sending.rate: expected a rate like "100/s" or "6000/min", got "fast"',
        ),
        (
            "digest:\n  window: week\n",
            "config.yaml:5: digest.window: expected a duration like "
            '"7d", "12h" or "30m", got "week"',
        ),
        (  # an OverflowError traceback in the first `digest build`, or at load
            "digest:\n  window: 100000000d\n",
            'config.yaml:5: digest.window: "100000000d" is longer than 100 years',
        ),
        (
            "signup:\n  confirm_expiry: 99999999999999d\n",
            'config.yaml:5: signup.confirm_expiry: "99999999999999d" is longer than 100 years',
        ),
        (
            "feeds:\n  content: everything\n",
            'config.yaml:5: feeds.content: expected one of "full", "summary", got "everything"',
        ),
        (
            "feeds:\n  per_author: yes please\n",
            'config.yaml:5: feeds.per_author: expected true or false, got "yes please"',
        ),
        (
            "cta:\n  - kind: patreon\n    url: https://p.example\n",
            "config.yaml:5: cta.0.headline: missing; this setting is required",
        ),
        (
            "cta:\n  - kind: onlyfans\n    url: u\n    headline: h\n",
            "config.yaml:5: cta.0.kind: expected one of",
        ),
        (
            "sending:\n  provider: carrier-pigeon\n",
            'config.yaml:5: sending.provider: unknown provider "carrier-pigeon"; known:',
        ),
        (  # modules of the providers package that are not providers
            "sending:\n  provider: base\n",
            'config.yaml:5: sending.provider: unknown provider "base"; known:',
        ),
        (
            "sending:\n  provider: _pull\n",
            'config.yaml:5: sending.provider: unknown provider "_pull"; known:',
        ),
        (
            "sources:\n  - type: gopher\n",
            'config.yaml:5: sources.0.type: unknown source type "gopher"; known:',
        ),
    ],
)
def test_field_errors(tmp_path: Path, extra: str, expected: str) -> None:
    text = MINIMAL.replace("  timezone: Europe/Berlin\n", "") + extra
    assert load_error(tmp_path, text).startswith(expected)


def test_bad_timezone_and_url(tmp_path: Path) -> None:
    assert "unknown timezone" in load_error(
        tmp_path, MINIMAL.replace("Europe/Berlin", "Mars/Olympus")
    )
    assert "absolute http(s) URL" in load_error(
        tmp_path, MINIMAL.replace("https://test.example", "test.example")
    )


def test_missing_config_file_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.yaml"), "articles"])
    assert result.exit_code == 2
    assert "pressroom init" in result.output
    assert "Traceback" not in result.output


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "feeds:\n  items: ten\n")
    result = CliRunner().invoke(main, ["--config", str(path), "feeds"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        'error: config.yaml:6: feeds.items: expected a positive integer, got "ten"'
    ]


@pytest.mark.parametrize(
    ("snippet", "line", "key"),
    [
        ("feeds:\n  out: /\n", 6, "feeds.out"),  # a typo for public/: feeds written into /
        ("digest:\n  archive: /\n", 6, "digest.archive"),
        ("state: /\n", 5, "state"),
        ("reports: ../../../../../../../../../../..\n", 5, "reports"),
        ("subscribers:\n  path: /\n", 6, "subscribers.path"),
        ("sources:\n  - type: files\n    path: /\n", 7, "sources.0.path"),  # the whole disk
    ],
)
def test_a_path_that_is_the_file_system_root_is_refused(
    tmp_path: Path, snippet: str, line: int, key: str
) -> None:
    path = write(tmp_path, MINIMAL + snippet)
    result = CliRunner().invoke(main, ["--config", str(path), "feeds"])
    assert result.exit_code == 2, result.output
    (message,) = result.output.strip().splitlines()
    assert message.startswith(f"error: config.yaml:{line}: {key}: ")
    assert "is the root of the file system" in message and "give a folder of its own" in message


@pytest.mark.parametrize(
    "args", [["feeds", "--out", "/"], ["digest", "preview", "--out", "/"], ["init", "/"]]
)
def test_a_folder_option_that_is_the_file_system_root_is_refused(
    tmp_path: Path, args: list[str]
) -> None:
    path = write(tmp_path, MINIMAL)
    result = CliRunner().invoke(main, ["--config", str(path), *args])
    assert result.exit_code == 2, result.output
    assert '"/" is the root of the file system' in result.output
    assert not Path("/index.xml").exists() and not Path("/config.yaml").exists()


def test_config_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL + "feeds:\n  items: ten\n")
    monkeypatch.setenv(defaults.CONFIG_ENV, str(path))
    result = CliRunner().invoke(main, ["feeds"])
    assert result.exit_code == 2
    assert "feeds.items" in result.output


def test_a_settings_check_points_at_its_field(tmp_path: Path) -> None:
    """A source's own validation ("field: problem") is reported at that field's line."""
    text = (
        MINIMAL + "sources:\n  - type: wordpress\n    url: https://wp.example\n    per_page: 500\n"
    )
    msg = load_error(tmp_path, text)
    assert msg.startswith("config.yaml:8: sources.0.per_page: WordPress allows at most 100")


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    text = MINIMAL + "  name: Other Weekly\n"
    assert load_error(tmp_path, text) == (
        "config.yaml:5: publication.name: duplicate key (first at line 2); keep one"
    )


def test_utm_campaign_placeholders_are_checked(tmp_path: Path) -> None:
    text = MINIMAL + 'digest:\n  utm:\n    campaign: "weekly-{numbr}"\n'
    msg = load_error(tmp_path, text)
    assert msg.startswith("config.yaml:7: digest.utm.campaign: unknown placeholder {numbr}")
    ok = config.load(write(tmp_path, MINIMAL + 'digest:\n  utm:\n    campaign: "w-{number}"\n'))
    assert ok.digest.utm.campaign == "w-{number}"


def test_relative_logo_is_refused(tmp_path: Path) -> None:
    msg = load_error(tmp_path, MINIMAL + "  logo: /assets/logo.png\n")
    assert msg.startswith("config.yaml:5: publication.logo: expected an absolute http(s) URL")


def test_booleans_are_shown_as_yaml_spells_them(tmp_path: Path) -> None:
    msg = load_error(tmp_path, MINIMAL + "feeds:\n  items: true\n")
    assert msg == "config.yaml:6: feeds.items: expected a positive integer, got true"


def test_provider_settings_are_checked_at_their_line(tmp_path: Path) -> None:
    text = MINIMAL + "providers:\n  mailgun:\n    domain: mg.test.example\n    batch_size: 5000\n"
    assert load_error(tmp_path, text) == (
        "config.yaml:8: providers.mailgun.batch_size: expected 1 to 1000 recipients per call"
    )


def test_feeds_need_a_format(tmp_path: Path) -> None:
    msg = load_error(tmp_path, MINIMAL + "feeds:\n  formats: []\n")
    assert msg == "config.yaml:6: feeds.formats: expected at least one of rss, atom, json"


def test_timeouts_must_be_positive(tmp_path: Path) -> None:
    text = MINIMAL + "providers:\n  sendgrid:\n    timeout: 0\n"
    assert load_error(tmp_path, text) == (
        "config.yaml:7: providers.sendgrid.timeout: expected a number above 0, got 0"
    )


# --- YAML 1.1 booleans, language tags, secrets in *_env settings (issue 10 §5) ---------


def test_norwegian_language_no_stays_a_string(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, MINIMAL + "  language: no\n"))
    assert cfg.publication.language == "no"
    cfg = config.load(write(tmp_path, MINIMAL.replace("Test Weekly", "on") + "  language: nb-NO\n"))
    assert cfg.publication.name == "on"


def test_old_yaml_booleans_still_work_where_a_setting_is_true_or_false(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, MINIMAL + "feeds:\n  per_category: no\n  cta: yes\n"))
    assert cfg.feeds.per_category is False
    assert cfg.feeds.cta is True
    cfg = config.load(write(tmp_path, MINIMAL + "feeds:\n  per_author: off\n  stylesheet: On\n"))
    assert (cfg.feeds.per_author, cfg.feeds.stylesheet) == (False, True)


def test_a_boolean_where_text_belongs_says_to_quote_it(tmp_path: Path) -> None:
    message = load_error(tmp_path, MINIMAL + "  language: false\n")
    assert message == (
        "config.yaml:5: publication.language: expected text, got false; put the value in quotes"
    )


@pytest.mark.parametrize("tag", ["en", "en-GB", "nb", "zh-Hant-TW", "de-CH-1996", "sr-Latn"])
def test_bcp47_language_tags_are_accepted(tmp_path: Path, tag: str) -> None:
    assert (
        config.load(write(tmp_path, MINIMAL + f"  language: {tag}\n")).publication.language == tag
    )


@pytest.mark.parametrize(
    ("tag", "fix"),
    [
        ("english", '"en", "en-GB" or "nb"'),
        ("en_US", '"en-US"'),
        ("xx", '"en", "en-GB" or "nb"'),
        ("en-", '"en", "en-GB" or "nb"'),
    ],
)
def test_language_that_is_not_bcp47_is_refused(tmp_path: Path, tag: str, fix: str) -> None:
    message = load_error(tmp_path, MINIMAL + f"  language: {tag}\n")
    assert message == (
        f'config.yaml:5: publication.language: "{tag}" is not a BCP 47 language tag; use {fix}'
    )


@pytest.mark.parametrize(
    ("provider", "key", "secret"),
    [
        ("mailgun", "api_key_env", "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"),
        ("mailgun", "api_key_env", "0123456789abcdef0123456789abcdef-1b2c3d4e-5f6a7b8c"),
        (
            "sendgrid",
            "api_key_env",
            "SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc",
        ),
        ("postmark", "server_token_env", "9d3f2c1a-7b6e-4f5d-8c9b-0a1e2d3c4b5a"),
        ("ses", "access_key_id_env", "AKIAIOSFODNN7EXAMPLE"),
        ("ses", "secret_access_key_env", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("smtp", "password_env", "hunter2 with spaces"),
    ],
)
def test_a_secret_pasted_into_an_env_setting_is_refused_without_echoing_it(
    tmp_path: Path, provider: str, key: str, secret: str
) -> None:
    extra = "    domain: mg.example.org\n" if provider == "mailgun" else ""
    text = MINIMAL + f"providers:\n  {provider}:\n{extra}    {key}: '{secret}'\n"
    result = CliRunner().invoke(main, ["--config", str(write(tmp_path, text)), "feeds"])
    assert result.exit_code == 2, result.output
    line = 7 + bool(extra)
    assert result.output.strip() == (
        f"error: config.yaml:{line}: providers.{provider}.{key}: holds what looks like an API "
        "key, not a variable name; put the secret in an environment variable and write that "
        "variable's name here (letters, digits, _)"
    )
    assert secret not in result.output
    assert secret[:8] not in result.output


@pytest.mark.parametrize("name", ["MAILGUN_API_KEY", "MY_MAILGUN_KEY_2", "mailgun_key", "KEY"])
def test_variable_names_in_env_settings_are_accepted(tmp_path: Path, name: str) -> None:
    text = (
        MINIMAL + f"providers:\n  mailgun:\n    domain: mg.example.org\n    api_key_env: {name}\n"
    )
    cfg = config.load(write(tmp_path, text))
    assert cfg.providers["mailgun"].api_key_env == name


def test_every_backend_module_registers_the_backend_it_is_named_after() -> None:
    """Config validation looks a provider up by its module's name without importing it
    (``Registry.known``); that holds only while each module is named after its backend."""
    import importlib
    import pkgutil

    from pressroom import registry

    for reg in (registry.sources, registry.providers):
        package = importlib.import_module(reg.package)
        modules = [m.name for m in pkgutil.iter_modules(package.__path__)]
        backends = [m for m in modules if m != "base" and not m.startswith("_")]
        assert backends
        for name in backends:
            assert reg.known(name)
            assert reg.get(name).name == name, f"{reg.package}.{name} registers another name"
        assert sorted(backends) == reg.names()
        assert not reg.known("base") and not reg.known("no-such-backend")


@pytest.mark.parametrize("field", ["name", "description", "copyright"])
def test_control_characters_in_the_publication_are_refused_at_load(
    tmp_path: Path, field: str
) -> None:
    """Every feed carries these, and XML cannot hold control characters."""
    text = MINIMAL.replace("  name: Test Weekly\n", "") + f'  {field}: "T\\x01"\n'
    if field != "name":
        text += "  name: Test Weekly\n"
    message = load_error(tmp_path, text)
    assert f"publication.{field}: contains a control character" in message
    assert "\n" not in message


@pytest.mark.parametrize(("folder", "processed"), [("INBOX", "inbox"), ("Inbox", "INBOX")])
def test_the_processed_folder_is_not_the_inbox_in_another_case(
    tmp_path: Path, folder: str, processed: str
) -> None:
    # INBOX is case-insensitive in IMAP: read bounces were "moved" into the folder they
    # came from and read again on every sync
    text = MINIMAL + (
        "bounces:\n  imap:\n    host: 127.0.0.1\n    user: bounces\n"
        f"    folder: {folder}\n    processed_folder: {processed}\n"
    )
    assert "processed_folder: must differ from folder" in load_error(tmp_path, text)
