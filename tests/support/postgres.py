"""Real PostgreSQL for the tests: one embedded server per session, one database per test.

A fresh database per test keeps tests independent without paying a server start each
time (CREATE DATABASE from the template takes milliseconds).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from athlon_flex.database import PostgresConnection, _start_embedded
from athlon_flex.settings import Settings


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresConnection]:
    """The session's embedded PostgreSQL 16, stopped and deleted at the end."""
    data_dir = tmp_path_factory.mktemp("pg")
    server = _start_embedded(data_dir)
    info = server.get_postmaster_info()
    yield PostgresConnection(
        host=str(info.socket_dir),
        port=info.port or 5432,
        user="postgres",
        password=None,
        dbname="postgres",
    )
    server.cleanup_mode = "delete"
    server.cleanup()


def _create_database(server: PostgresConnection) -> str:
    name = f"test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(**server.connect_kwargs())
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    conn.close()
    return name


@pytest.fixture
def make_settings(
    pg_server: PostgresConnection, tmp_path: Path
) -> Callable[..., Settings]:
    """Build Settings for a fresh, empty database of this test (no .env is read).

    Keyword arguments are settings fields (`athlon_api_url=..., email_to=[...]`).
    Every call with the same test shares that test's database.
    """
    dbname = _create_database(pg_server)

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "postgres_host": pg_server.host,
            "postgres_port": pg_server.port,
            "postgres_user": pg_server.user,
            "postgres_db": dbname,
            "athlon_data_dir": tmp_path / "athlon",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Settings on a fresh database with defaults everywhere else."""
    return make_settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[psycopg2.extensions.connection]:
    """An autocommit connection to the test's database, for arranging and asserting."""
    from athlon_flex.database import ensure_postgres

    conn = psycopg2.connect(**ensure_postgres(settings).connect_kwargs())
    conn.autocommit = True
    yield conn
    conn.close()
