"""The one configuration: names, defaults, and one clear message for a bad value."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from athlon_flex.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]


def _example_names() -> set[str]:
    text = (REPO / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_env_example_documents_exactly_the_settings() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert _example_names() == fields


def test_old_tool_names_are_kept() -> None:
    old = {
        "ATHLON_USERNAME", "ATHLON_PASSWORD", "GROSS_YEARLY_INCOME",
        "APPLY_LOONHEFFINGSKORTING", "POSTGRES_USER", "POSTGRES_PASSWORD",
        "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "EMAIL_FROM", "EMAIL_TO",
        "GOOGLE_APP_PASSWORD",
    }  # fmt: skip
    assert old <= {name.upper() for name in Settings.model_fields}


def test_defaults_run_anonymously_on_the_embedded_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = Settings(_env_file=None)
    assert settings.athlon_api_url == "https://flex.athlon.com/api/v1"
    assert settings.uses_embedded_postgres
    assert settings.athlon_data_dir == Path(".athlon")
    assert settings.athlon_max_concurrency == 8
    assert settings.athlon_max_shrink_percent == 50
    assert not settings.email_configured


def test_email_to_takes_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_TO", "anna@example.nl, bob@example.nl;carl@example.nl")
    monkeypatch.setenv("EMAIL_FROM", "watcher@example.nl")
    monkeypatch.setenv("SMTP_HOST", "mail.example.nl")
    settings = Settings(_env_file=None)
    assert settings.email_to == ["anna@example.nl", "bob@example.nl", "carl@example.nl"]
    assert settings.email_configured


def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """An old .docker-env often has `POSTGRES_HOST=`: that means the default."""
    monkeypatch.setenv("POSTGRES_HOST", "")
    monkeypatch.setenv("GROSS_YEARLY_INCOME", "")
    settings = Settings(_env_file=None)
    assert settings.postgres_host is None
    assert settings.gross_yearly_income is None


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "POSTGRES_PORT",
            "abc",
            "POSTGRES_PORT='abc': Input should be a valid integer",
        ),
        ("SMTP_SECURITY", "tls", "SMTP_SECURITY='tls': Input should be 'ssl'"),
        ("ATHLON_API_URL", "flex.athlon.com", "ATHLON_API_URL='flex.athlon.com': mu"),
        (
            "EMAIL_TO",
            "not-an-address",
            "EMAIL_TO='not-an-address': 'not-an-address' is",
        ),
        ("NOTIFY_TIMEZONE", "Mars/Olympus", "NOTIFY_TIMEZONE='Mars/Olympus': unknown"),
        ("ATHLON_MAX_CONCURRENCY", "0", "ATHLON_MAX_CONCURRENCY='0': Input should be"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value).startswith("Invalid configuration: " + expected)


def test_password_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("SMTP_PORT", "nope")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert "hunter2" not in message
    assert "SMTP_PORT='nope'" in message


def test_cli_reports_a_bad_setting_in_one_line_without_traceback(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "POSTGRES_PORT": "abc"}
    result = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "load"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: Invalid configuration: POSTGRES_PORT='abc': Input should be a valid "
        "integer, unable to parse string as an integer"
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("given", "missing"),
    [("ATHLON_USERNAME", "ATHLON_PASSWORD"), ("ATHLON_PASSWORD", "ATHLON_USERNAME")],
)
def test_half_a_login_runs_anonymously_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    given: str,
    missing: str,
) -> None:
    """The old tool ran anonymously with only a username; its files keep working."""
    monkeypatch.setenv(given, "me@example.nl")
    monkeypatch.delenv(missing, raising=False)
    with caplog.at_level("WARNING", logger="athlon_flex.settings"):
        settings = load_settings(_env_file=None)
    assert settings.athlon_username is None
    assert settings.athlon_password is None
    assert [r.getMessage() for r in caplog.records] == [
        f"{given} is set but {missing} is not: running anonymously (no contribution "
        "or net cost); set both to log in"
    ]
    assert "me@example.nl" not in caplog.text  # no value in the log, only names


def test_full_login_is_kept_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ATHLON_USERNAME", "me@example.nl")
    monkeypatch.setenv("ATHLON_PASSWORD", "s3cret")
    with caplog.at_level("WARNING", logger="athlon_flex.settings"):
        settings = load_settings(_env_file=None)
    assert settings.athlon_username == "me@example.nl"
    assert settings.athlon_password is not None
    assert settings.athlon_password.get_secret_value() == "s3cret"
    assert caplog.records == []


@pytest.mark.parametrize(
    ("environment", "dotenv", "expected"),
    [
        (None, None, True),  # unset: with loonheffingskorting, as the old tool
        ("", None, False),  # set but empty: the old tool compared with "true"
        (None, "", False),  # the same in a .env / .docker-env file
        ("true", None, True),
        ("false", None, False),
        (None, "true", True),
        ("true", "", True),  # the environment wins over the file
    ],
)
def test_empty_apply_loonheffingskorting_means_false_as_in_the_old_tool(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: str | None,
    dotenv: str | None,
    expected: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    if environment is None:
        monkeypatch.delenv("APPLY_LOONHEFFINGSKORTING", raising=False)
    else:
        monkeypatch.setenv("APPLY_LOONHEFFINGSKORTING", environment)
    if dotenv is not None:
        (tmp_path / ".env").write_text(f"APPLY_LOONHEFFINGSKORTING={dotenv}\n")
    assert load_settings().apply_loonheffingskorting is expected
    # Other empty values still count as unset.
    monkeypatch.setenv("ATHLON_MAX_CONCURRENCY", "")
    assert load_settings().athlon_max_concurrency == 8


def test_explicit_override_wins_over_an_empty_apply_loonheffingskorting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPLY_LOONHEFFINGSKORTING", "")
    assert load_settings(_env_file=None).apply_loonheffingskorting is False
    assert (
        load_settings(
            _env_file=None, apply_loonheffingskorting=True
        ).apply_loonheffingskorting
        is True
    )


def test_dotenv_file_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTGRES_DB", raising=False)
    (tmp_path / ".env").write_text("POSTGRES_DB=from_dotenv\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().postgres_db == "from_dotenv"


def test_readme_configuration_table_names_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [
        name.upper()
        for name in Settings.model_fields
        if f"`{name.upper()}`" not in readme
    ]
    assert missing == []


def test_addresses_ignore_case_and_a_repeat_is_used_once_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("EMAIL_TO", "anna@example.nl,Anna@Example.NL, bob@example.nl")
    monkeypatch.setenv("ALERT_EMAIL_TO", "Ops@Example.nl;ops@example.nl")
    monkeypatch.setenv("EMAIL_FROM", "Watcher@Example.nl")
    settings = load_settings(_env_file=None)
    assert settings.email_to == ["anna@example.nl", "bob@example.nl"]
    assert settings.alert_email_to == ["ops@example.nl"]
    assert settings.email_from == "watcher@example.nl"
    assert [r.getMessage() for r in caplog.records] == [
        "EMAIL_TO lists anna@example.nl more than once (addresses ignore case); "
        "it is used once",
        "ALERT_EMAIL_TO lists ops@example.nl more than once (addresses ignore "
        "case); it is used once",
    ]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "EMAIL_TO",
            "anna @example.nl",
            "EMAIL_TO='anna @example.nl': 'anna @example.nl' is not an email "
            "address (it contains a space)",
        ),
        (
            "EMAIL_TO",
            "anna@example.nl\r\nBcc: eve@example.nl",
            "EMAIL_TO='anna@example.nl\\r\\nBcc: eve@example.nl': "
            "'anna@example.nl\\r\\nBcc: eve@example.nl' is not an email address "
            "(it contains LF, CR, a space)",
        ),
        (
            "ALERT_EMAIL_TO",
            "ops@example.nl <ops>",
            "ALERT_EMAIL_TO='ops@example.nl <ops>': 'ops@example.nl <ops>' is not",
        ),
        ("EMAIL_FROM", "me@localhost", "EMAIL_FROM='me@localhost': 'me@localhost'"),
    ],
)
def test_a_bad_address_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith("Invalid configuration: " + expected)
    assert "\n" not in message and "\r" not in message


def test_cli_exits_2_in_one_line_for_a_space_in_email_to(tmp_path: Path) -> None:
    env = {**os.environ, "EMAIL_TO": "anna@example.nl, bob @example.nl"}
    result = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "notify"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: Invalid configuration: EMAIL_TO='anna@example.nl, bob @example.nl': "
        "'bob @example.nl' is not an email address (it contains a space)"
    ]


def test_cli_exits_2_in_one_line_for_a_bad_subscriptions_file(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.yml"
    path.write_text("recipients:\n  - email: anna@example.nl\n    filters: [\n")
    env = {
        **os.environ,
        "NOTIFY_SUBSCRIPTIONS_FILE": str(path),
        "ATHLON_DATA_DIR": str(tmp_path / "never-created"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: Subscriptions file {path} is not valid YAML (")
    assert line.endswith("; nothing was sent or recorded.")
    # Checked before the cycle started: no database was created.
    assert not (tmp_path / "never-created").exists()


def test_a_non_ascii_address_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMAIL_TO", "anna@exämple.nl")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value) == (
        "Invalid configuration: EMAIL_TO='anna@exämple.nl': 'anna@exämple.nl' is not "
        "supported (only ASCII email addresses)"
    )
