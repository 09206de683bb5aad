"""infrastructure/airflow_bootstrap.py, run as the compose stack runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

SCRIPT = Path(__file__).resolve().parents[2] / "infrastructure" / "airflow_bootstrap.py"


def _bootstrap(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_db_url_logs_in_as_airflows_own_role_with_its_quoted_secret(
    tmp_path: Path,
) -> None:
    (tmp_path / "airflow_db_password").write_text("p@ss:w/rd%\n")
    result = _bootstrap(
        "db-url",
        POSTGRES_USER="athlon",
        POSTGRES_PASSWORD="superuser-secret",
        AIRFLOW_SECRETS_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    # No trailing newline: Airflow uses a _CMD's output verbatim. Not the superuser.
    assert result.stdout == (
        "postgresql+psycopg2://airflow:p%40ss%3Aw%2Frd%25@postgres:5432/airflow"
    )


def test_db_url_generates_airflows_password_once(tmp_path: Path) -> None:
    first = _bootstrap("db-url", AIRFLOW_SECRETS_DIR=str(tmp_path))
    second = _bootstrap("db-url", AIRFLOW_SECRETS_DIR=str(tmp_path))
    password = (tmp_path / "airflow_db_password").read_text().strip()
    assert len(password) >= 24
    assert (
        first.stdout
        == second.stdout
        == (f"postgresql+psycopg2://airflow:{password}@postgres:5432/airflow")
    )


def test_secret_is_generated_once_and_the_same_for_every_reader(
    tmp_path: Path,
) -> None:
    first = _bootstrap("secret", "fernet_key", AIRFLOW_SECRETS_DIR=str(tmp_path))
    second = _bootstrap("secret", "fernet_key", AIRFLOW_SECRETS_DIR=str(tmp_path))
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    Fernet(first.stdout.encode())  # a valid Fernet key, as Airflow needs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fernet_key"]
    other = _bootstrap("secret", "jwt_secret", AIRFLOW_SECRETS_DIR=str(tmp_path))
    assert len(other.stdout) >= 48 and other.stdout != first.stdout


def test_unknown_secret_is_refused_by_name(tmp_path: Path) -> None:
    result = _bootstrap("secret", "nope", AIRFLOW_SECRETS_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "unknown secret 'nope'" in result.stderr
    assert list(tmp_path.iterdir()) == []
