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


def test_login_needs_both_username_and_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATHLON_USERNAME", "me@example.nl")
    monkeypatch.delenv("ATHLON_PASSWORD", raising=False)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value) == (
        "Invalid configuration: "
        "ATHLON_USERNAME and ATHLON_PASSWORD must be set together"
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
