"""The stack, read as an attacker would: each hardening rule, checked on the files.

Compose files are parsed as compose would read them; the bootstrap helpers run as
the stack runs them, against the real (embedded) PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from athlon_flex.database import PostgresAddress

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infrastructure"
SCRIPT = INFRA / "airflow_bootstrap.py"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.dev.yml")
ROLES = ("athlon_pipeline", "airflow")


def _services(name: str) -> dict[str, Any]:
    return yaml.safe_load((INFRA / name).read_text())["services"]


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${NAME:-default}` / `${NAME}` interpolation (`$$` is a literal $)."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3)
        return env.get(name) or (default or "")

    text = text.replace("$$", "\0")
    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", one, text).replace("\0", "$")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def _bootstrap(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POSTGRES_", "AIRFLOW_", "PGADMIN_"))
        and "PASSWORD" not in k
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


# --- ports ---------------------------------------------------------------------------


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_every_published_port_is_on_localhost_unless_a_variable_opens_it(
    compose_file: str,
) -> None:
    ports = [
        (name, mapping)
        for name, service in _services(compose_file).items()
        for mapping in service.get("ports", [])
    ]
    assert ports, "the file publishes something"
    for name, mapping in ports:
        # Short syntax with a host address: HOST:PUBLISHED:TARGET.
        closed = _interpolate(mapping, {})
        assert closed.count(":") == 2, (name, mapping)
        assert closed.startswith("127.0.0.1:"), (name, mapping)
        opened = _interpolate(mapping, {"ATHLON_BIND_ADDRESS": "192.0.2.7"})
        assert opened.startswith("192.0.2.7:"), (name, mapping)


# --- example passwords ---------------------------------------------------------------


def _depends(services: dict[str, Any], name: str) -> set[str]:
    """Every service `name` waits for, directly or through others."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for other in services[todo.pop()].get("depends_on") or {}:
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def test_every_service_waits_for_the_preflight_check() -> None:
    services = _services("docker-compose.yml")
    preflight = services["preflight"]
    assert preflight["entrypoint"][-1] == "check-config"
    assert preflight["env_file"] == [".docker-env"]
    assert preflight["restart"] == "no"
    # watchtower (opt-in) only pulls images; it reads no password.
    for name in set(services) - {"preflight", "watchtower"}:
        assert "preflight" in _depends(services, name), name
    assert services["postgres"]["depends_on"]["preflight"] == {
        "condition": "service_completed_successfully"
    }


def test_preflight_refuses_the_example_file_naming_each_password() -> None:
    example = _env_file(INFRA / ".docker-env.example")
    result = _bootstrap("check-config", **example)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "refusing to start: PGADMIN_DEFAULT_PASSWORD is still the example's "
        "'change-me'; POSTGRES_PASSWORD is still the example's 'change-me'. Set "
        "them in infrastructure/.docker-env (docs/deploy.md)."
    ]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"POSTGRES_PASSWORD": '"Change-Me"'}, "POSTGRES_PASSWORD is still"),
        ({"AIRFLOW_ADMIN_PASSWORD": "change-me"}, "AIRFLOW_ADMIN_PASSWORD is still"),
        ({"POSTGRES_PASSWORD": ""}, "POSTGRES_PASSWORD is empty"),
        ({"POSTGRES_USER": "athlon_pipeline"}, "POSTGRES_USER must be"),
    ],
)
def test_preflight_refuses_each_weak_setting(
    changes: dict[str, str], problem: str
) -> None:
    good = {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "a-real-one"}
    result = _bootstrap("check-config", **{**good, **changes})
    assert result.returncode == 2
    assert problem in result.stderr
    passed = _bootstrap("check-config", **good)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.strip() == "configuration checked: no example passwords"


# --- no password on a command line -----------------------------------------------


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_no_password_is_ever_a_command_line_argument(compose_file: str) -> None:
    for name, service in _services(compose_file).items():
        for key in ("command", "entrypoint", "healthcheck"):
            for text in _strings(service.get(key)):
                assert "--password" not in text, (name, key)
                assert "--pass " not in text, (name, key)
    init = "\n".join(_services("docker-compose.yml")["airflow-init"]["command"])
    # The password travels on stdin from a shell builtin into `users create`.
    assert re.search(
        r'printf \'%s\\n%s\\n\' "\$\$password" "\$\$password" \| airflow users create',
        init,
    )
    create = init[init.index("airflow users create") :]
    create = create[: create.index("echo")]
    assert "password" not in create.lower()


def test_docs_show_no_password_on_a_command_line() -> None:
    url_with_password = re.compile(r"postgres(ql)?://[^\s:@/]+:[^\s@/]+@")
    for path in (REPO / "README.md", REPO / "docs" / "deploy.md"):
        text = path.read_text()
        assert "--password" not in text, path
        commands = [
            line
            for line in text.splitlines()
            if re.search(r"(^|\s)(dc|docker|uv|athlon-flex|airflow)\s", line)
        ]
        assert commands, path
        assert [line for line in commands if url_with_password.search(line)] == []


# --- roles -----------------------------------------------------------------------


def test_long_running_airflow_containers_run_as_the_pipeline_role() -> None:
    services = _services("docker-compose.yml")
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-housekeeping",
        "dbt-docs",
    ):
        entrypoint = services[name]["entrypoint"]
        at = entrypoint.index("as-pipeline")
        assert entrypoint[at - 1].endswith("infrastructure/airflow_bootstrap.py"), name
        assert entrypoint[at + 1] in ("/entrypoint", "/bin/bash"), name
    # Only the one-shot setup logs in as the superuser.
    assert services["airflow-init"]["entrypoint"] == "/bin/bash"
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"].endswith(" db-url")


def test_as_pipeline_swaps_the_superuser_login_for_the_pipeline_role(
    tmp_path: Path,
) -> None:
    (tmp_path / "pipeline_db_password").write_text("pipeline-secret\n")
    probe = (
        "import json, os, sys; "
        "print(json.dumps({k: v for k, v in os.environ.items() "
        "if 'PASSWORD' in k or k == 'POSTGRES_USER'})); "
        "print(json.dumps(sys.argv))"
    )
    result = _bootstrap(
        "as-pipeline",
        sys.executable,
        "-c",
        probe,
        POSTGRES_USER="postgres",
        POSTGRES_PASSWORD="superuser-secret",
        AIRFLOW_ADMIN_PASSWORD="ui-secret",
        PGADMIN_DEFAULT_PASSWORD="pgadmin-secret",
        AIRFLOW_SECRETS_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    env_line, argv_line = result.stdout.strip().splitlines()
    assert json.loads(env_line) == {
        "POSTGRES_USER": "athlon_pipeline",
        "POSTGRES_PASSWORD": "pipeline-secret",
    }
    assert "secret" not in argv_line


@pytest.fixture
def database_names(pg_server: PostgresAddress) -> Iterator[tuple[str, str]]:
    names = (f"af_{uuid.uuid4().hex[:10]}", f"proj_{uuid.uuid4().hex[:10]}")
    yield names
    conn = psycopg2.connect(**pg_server.connect_kwargs())
    conn.autocommit = True
    with conn.cursor() as cursor:
        for name in names:
            cursor.execute(f'drop database if exists "{name}" with (force)')
    conn.close()


def _owners(pg_server: PostgresAddress, dbname: str) -> dict[str, str]:
    conn = psycopg2.connect(**pg_server.connect_kwargs(dbname=dbname))
    with conn.cursor() as cursor:
        cursor.execute(
            "select 'database', pg_get_userbyid(datdba) from pg_database "
            "where datname = current_database() "
            "union all select 'schema ' || nspname, pg_get_userbyid(nspowner) "
            "from pg_namespace where nspname in ('raw', 'notifier') "
            "union all "
            "select 'table ' || relnamespace::regnamespace || '.' || relname, "
            "pg_get_userbyid(relowner) from pg_class "
            "where relnamespace::regnamespace::text in ('raw', 'notifier') "
            "and relkind in ('r', 'v')"
        )
        owners = dict(cursor.fetchall())
    conn.close()
    return owners


def test_ensure_db_gives_each_database_to_its_own_role_and_the_pipeline_runs_as_it(
    pg_server: PostgresAddress,
    database_names: tuple[str, str],
    tmp_path: Path,
) -> None:
    """A volume from before (everything the superuser's) is handed over, once."""
    from athlon_flex.settings import Settings
    from tests.support.raw_tables import create_raw_tables
    from transform.runner import build

    airflow_db, project_db = database_names
    conn = psycopg2.connect(**pg_server.connect_kwargs())
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'create database "{project_db}"')
    conn.close()
    conn = psycopg2.connect(**pg_server.connect_kwargs(dbname=project_db))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(
            "create schema notifier; create table notifier.notifications "
            "(vehicle_id text, available_since timestamptz, recipient text, "
            "notified_at timestamptz default now(), "
            "primary key (vehicle_id, available_since, recipient))"
        )
    create_raw_tables(conn)  # the superuser's, as an older stack left them
    conn.close()

    env = {
        "POSTGRES_HOST": pg_server.host,
        "POSTGRES_PORT": str(pg_server.port),
        "POSTGRES_USER": pg_server.user,
        "POSTGRES_PASSWORD": "superuser-secret",  # the socket trusts; checked only
        "POSTGRES_DB": project_db,
        "AIRFLOW_DB_NAME": airflow_db,
        "AIRFLOW_SECRETS_DIR": str(tmp_path / "secrets"),
    }
    first = _bootstrap("ensure-db", **env)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().split("; ")
    assert lines[:2] == [
        f"database {airflow_db} created",
        f"database {project_db} exists",
    ]
    assert lines[2] == f"{airflow_db} owned by airflow"
    assert lines[3].startswith(f"{project_db} owned by athlon_pipeline (")
    second = _bootstrap("ensure-db", **env)
    assert second.stdout.strip() == (
        f"database {airflow_db} exists; database {project_db} exists; "
        f"{airflow_db} owned by airflow; {project_db} owned by athlon_pipeline"
    )
    assert set(_owners(pg_server, airflow_db).values()) == {"airflow"}
    project = _owners(pg_server, project_db)
    assert project["schema raw"] == project["schema notifier"] == "athlon_pipeline"
    assert set(project.values()) == {"athlon_pipeline"}

    check = psycopg2.connect(**pg_server.connect_kwargs())
    with check.cursor() as cursor:
        cursor.execute(
            "select rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin "
            "from pg_roles where rolname in ('athlon_pipeline', 'airflow', 'reader') "
            "order by 1"
        )
        assert cursor.fetchall() == [
            ("airflow", False, False, False, True),
            ("athlon_pipeline", False, False, False, True),
            ("reader", False, False, False, False),
        ]
    check.close()

    # The real dbt build, logged in as the pipeline's role, not the superuser.
    settings = Settings(
        _env_file=None,
        postgres_host=pg_server.host,
        postgres_port=pg_server.port,
        postgres_user="athlon_pipeline",
        postgres_db=project_db,
        athlon_data_dir=tmp_path / "athlon",
    )
    summary = build(settings)
    assert summary.models_failed == summary.tests_failed == 0
    assert summary.snapshots_passed == 3
    owners = _owners(pg_server, project_db)
    assert set(owners.values()) == {"athlon_pipeline"}


# --- build context ------------------------------------------------------------------


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore matching: `**` spans folders, `*` stays in one name."""
    import fnmatch

    def match(parts: list[str], pattern: list[str]) -> bool:
        if not pattern:
            return not parts
        if pattern[0] == "**":
            return any(match(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
        return (
            bool(parts)
            and fnmatch.fnmatchcase(parts[0], pattern[0])
            and match(parts[1:], pattern[1:])
        )

    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/").split("/")
        parts = path.split("/")
        # A pattern that matches a folder excludes everything below it.
        if any(match(parts[:n], pattern) for n in range(1, len(parts) + 1)):
            result = not negate
    return result


def test_build_context_leaves_out_every_env_file_by_pattern() -> None:
    lines = (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and line[0] != "#"]
    secrets = [
        ".env",
        ".env.local",
        ".env.production",
        "infrastructure/.env",
        "infrastructure/.docker-env",
        "infrastructure/prod.docker-env",
        "infrastructure/.docker-env.bak",
        "some/deep/folder/.env.old",
    ]
    assert [path for path in secrets if not _ignored(path, patterns)] == []
    # What the Dockerfile copies and the image needs stays in.
    needed = [
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "dags/athlon_flex.py",
        "dbt_project.yml",
        "profiles.yml",
        "infrastructure/airflow_bootstrap.py",
        "models/marts/vehicle_availability.sql",
    ]
    assert [path for path in needed if _ignored(path, patterns)] == []
