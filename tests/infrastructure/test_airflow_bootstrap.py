"""infrastructure/airflow_bootstrap.py, run as the compose stack runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from cryptography.fernet import Fernet

from athlon_flex.database import PostgresConnection

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


def test_db_url_quotes_credentials_and_points_at_the_airflow_database() -> None:
    result = _bootstrap(
        "db-url", POSTGRES_USER="athlon", POSTGRES_PASSWORD="p@ss:w/rd%"
    )
    assert result.returncode == 0, result.stderr
    # No trailing newline: Airflow uses a _CMD's output verbatim.
    assert result.stdout == (
        "postgresql+psycopg2://athlon:p%40ss%3Aw%2Frd%25@postgres:5432/airflow"
    )


def test_db_url_defaults_match_the_compose_service() -> None:
    result = _bootstrap("db-url")
    assert result.stdout == "postgresql+psycopg2://postgres@postgres:5432/airflow"


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


@pytest.fixture
def database_names(pg_server: PostgresConnection) -> Iterator[tuple[str, str]]:
    names = (f"af_{uuid.uuid4().hex[:10]}", f"proj_{uuid.uuid4().hex[:10]}")
    yield names
    conn = psycopg2.connect(**pg_server.connect_kwargs())
    conn.autocommit = True
    with conn.cursor() as cursor:
        for name in names:
            cursor.execute(f'drop database if exists "{name}"')
    conn.close()


def test_ensure_db_creates_missing_databases_once(
    pg_server: PostgresConnection, database_names: tuple[str, str]
) -> None:
    airflow_db, project_db = database_names
    env = {
        "POSTGRES_HOST": pg_server.host,
        "POSTGRES_PORT": str(pg_server.port),
        "POSTGRES_USER": pg_server.user,
        "POSTGRES_DB": project_db,
        "AIRFLOW_DB_NAME": airflow_db,
    }
    first = _bootstrap("ensure-db", **env)
    second = _bootstrap("ensure-db", **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        f"database {airflow_db} created; database {project_db} created"
    )
    assert second.stdout.strip() == (
        f"database {airflow_db} exists; database {project_db} exists"
    )
    conn = psycopg2.connect(**pg_server.connect_kwargs())
    with conn.cursor() as cursor:
        cursor.execute(
            "select datname from pg_database where datname in %s order by 1",
            (database_names,),
        )
        assert [row[0] for row in cursor.fetchall()] == sorted(database_names)
    conn.close()
