"""Real PostgreSQL for tests: one embedded server per session, a database per test.

A fresh database per test keeps tests independent without paying a server start each
time (CREATE DATABASE from the template takes milliseconds).

Every test of one xdist worker gets its fresh database under the same name
(`test_gw0`): the previous test's is dropped first. dbt bakes the database name into
every node of its parsed project, so with one name per worker the parse that
`transform.runner` keeps in its process serves every in-process build of that
worker; a new name per test cost a full dbt parse per test (about 5 s on an idle
2-core machine, more than the build itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from athlon_flex.database import (
    DatabaseError,
    PostgresAddress,
    _start_embedded,
)
from athlon_flex.database import stop_embedded as stop_server
from athlon_flex.settings import Settings


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresAddress]:
    """The session's embedded PostgreSQL 16, stopped and deleted at the end."""
    data_dir = tmp_path_factory.mktemp("pg")
    server = _start_embedded(data_dir)
    info = server.get_postmaster_info()
    yield PostgresAddress(
        host=str(info.socket_dir),
        port=info.port or 5432,
        user="postgres",
        password=None,
        dbname="postgres",
    )
    stop_embedded(data_dir)


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server whose data lives under data_dir and delete its data."""
    with contextlib.suppress(DatabaseError):  # a test may have broken it on purpose
        stop_server(data_dir)
    shutil.rmtree(data_dir / "pgdata", ignore_errors=True)


@pytest.fixture
def embedded_data_dir(tmp_path: Path) -> Iterator[Path]:
    """An ATHLON_DATA_DIR for code that starts its own embedded server(s).

    Every server started below it (the demo's sits in `demo/`) is stopped and its
    data deleted afterwards, so no PostgreSQL outlives the test.
    """
    path = tmp_path / "athlon"
    yield path
    for version_file in sorted(path.glob("**/pgdata/PG_VERSION")):
        stop_embedded(version_file.parent.parent)


def _create_database(server: PostgresAddress, template: str | None = None) -> str:
    return _create(server, f"test_{uuid.uuid4().hex[:12]}", template)


def _create(server: PostgresAddress, name: str, template: str | None) -> str:
    conn = psycopg2.connect(**server.connect_kwargs())
    conn.autocommit = True
    with conn.cursor() as cursor:
        if template:
            cursor.execute(f'create database "{name}" template "{template}"')
        else:
            cursor.execute(f'create database "{name}"')
    conn.close()
    return name


def _settings_for(
    server: PostgresAddress, dbname: str, data_dir: Path, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "postgres_host": server.host,
        "postgres_port": server.port,
        "postgres_user": server.user,
        "postgres_db": dbname,
        "athlon_data_dir": data_dir,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def dbt_built_template(
    pg_server: PostgresAddress, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A database where the real `dbt build` ran once on empty raw tables.

    Tests that need the dbt-built objects (marts, notifier tables, the to-notify
    view) clone it in milliseconds instead of paying a build each.
    """
    from tests.support.raw_tables import create_raw_tables
    from transform.runner import build

    name = _create_database(pg_server)
    settings = _settings_for(pg_server, name, tmp_path_factory.mktemp("dbt-template"))
    conn = psycopg2.connect(**pg_server.connect_kwargs(dbname=name))
    create_raw_tables(conn)
    conn.close()
    build(settings)
    # CREATE DATABASE ... TEMPLATE needs the template to have no sessions.
    conn = psycopg2.connect(**pg_server.connect_kwargs())
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where datname = %s and pid <> pg_backend_pid()",
            (name,),
        )
    conn.close()
    return name


@pytest.fixture
def database_template() -> str | None:
    """What each test's fresh database is cloned from: nothing by default.

    A test folder whose tests need dbt's objects overrides this fixture to return
    `dbt_built_template`.
    """
    return None


def _worker_database(server: PostgresAddress, template: str | None) -> str:
    """A fresh, empty (or cloned) database under this worker's one name."""
    name = f"test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    _drop_database(server, name)
    return _create(server, name, template)


def _drop_database(server: PostgresAddress, name: str) -> None:
    # FORCE: a connection a test left open (or a process it killed) must not keep
    # the next test from starting on an empty database.
    conn = psycopg2.connect(**server.connect_kwargs())
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'drop database if exists "{name}" with (force)')
    conn.close()


@pytest.fixture
def make_settings(
    pg_server: PostgresAddress,
    tmp_path: Path,
    database_template: str | None,
    saved_dbt_parses: Path,
) -> Iterator[Callable[..., Settings]]:
    """Build Settings for a fresh database of this test (no .env is read).

    Keyword arguments are settings fields (`athlon_api_url=..., email_to=[...]`).
    Every call with the same test shares that test's database, which is dropped
    when the test ends (see the module's docstring for why its name is reused).
    """
    dbname = _worker_database(pg_server, template=database_template)
    made: list[Settings] = []

    def build(**overrides: object) -> Settings:
        made.append(_settings_for(pg_server, dbname, tmp_path / "athlon", **overrides))
        _seed_dbt_parse(made[-1], saved_dbt_parses)
        return made[-1]

    yield build
    for made_settings in made:
        _keep_dbt_parse(made_settings, saved_dbt_parses)
    # A test may have stopped or broken the server on purpose; the next test's
    # setup drops the database again in any case.
    with contextlib.suppress(psycopg2.Error):
        _drop_database(pg_server, dbname)


# dbt's saved parse (partial_parse.msgpack, under ATHLON_DATA_DIR/dbt/target) and the
# runner's record of the project it was parsed from. dbt reuses it only when the
# project files, the --vars and the connection (database name included) are the
# same; otherwise it parses anew by itself, so a seeded copy can cost nothing.
_SAVED_PARSE_FILES = ("partial_parse.msgpack", "athlon_project_fingerprint.txt")


@pytest.fixture(scope="session")
def saved_dbt_parses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worker's dbt parses, one per (connection, --vars), kept from its tests.

    A dbt process of a test's own (the CLI, `airflow dags test`) starts with the
    parse an earlier test left instead of a full one: about 1 s instead of 5 s.
    """
    return tmp_path_factory.mktemp("dbt-parses")


def _parse_key(settings: Settings) -> str:
    from transform.runner import dbt_vars

    what = (
        settings.postgres_host,
        settings.postgres_port,
        settings.postgres_user,
        settings.postgres_db,
        json.dumps(dbt_vars(settings), sort_keys=True),
    )
    return hashlib.sha256(repr(what).encode()).hexdigest()[:16]


def _seed_dbt_parse(settings: Settings, saved: Path) -> None:
    source = saved / _parse_key(settings)
    target = settings.data_dir / "dbt" / "target"
    if not source.is_dir() or (target / _SAVED_PARSE_FILES[0]).exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in _SAVED_PARSE_FILES:
        shutil.copyfile(source / name, target / name)


def _keep_dbt_parse(settings: Settings, saved: Path) -> None:
    target = settings.data_dir / "dbt" / "target"
    destination = saved / _parse_key(settings)
    if destination.exists() or not all(
        (target / name).is_file() for name in _SAVED_PARSE_FILES
    ):
        return
    staging = saved / f"{destination.name}.partial"
    staging.mkdir()
    for name in _SAVED_PARSE_FILES:
        shutil.copyfile(target / name, staging / name)
    staging.rename(destination)


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
