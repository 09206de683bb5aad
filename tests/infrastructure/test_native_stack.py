"""The stack's own setup, run natively: what airflow-init and the pipeline do.

No Docker here, so the compose file's commands run as processes with the stack's
environment (read from docker-compose.yml) against a PostgreSQL on TCP that asks
for passwords (scram-sha-256), as the `postgres` service does:
preflight's check, airflow-init's `ensure-db` as the superuser, `airflow db migrate`
through the `_CMD` URL as Airflow's own role, then one `athlon-flex run` started
through `as-pipeline` (the simulated API, real dbt, real SMTP) as the pipeline's
role. Not run: the API server, scheduler and dag-processor (the stack's FAB auth
manager is not installed outside the image); tests/dags runs the DAG itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from tests.support.postgres import stop_embedded
from tests.support.smtp import SmtpServer

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infrastructure"
BOOTSTRAP = INFRA / "airflow_bootstrap.py"
VENV_BIN = Path(sys.executable).parent
SUPERUSER_PASSWORD = "a-real-superuser-password"


@dataclass(frozen=True)
class TcpPostgres:
    port: int

    def connect(self, user: str, password: str, dbname: str = "postgres") -> Any:
        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=password,
            dbname=dbname,
            connect_timeout=10,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tcp_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TcpPostgres]:
    """PostgreSQL 16 on 127.0.0.1 with password (scram) logins, like the stack's."""
    import pgserver
    from pgserver._commands import pg_ctl

    data_dir = tmp_path_factory.mktemp("tcp-pg")
    pgdata = data_dir / "pgdata"
    server = pgserver.get_server(pgdata, cleanup_mode=None)  # initdb, socket only
    socket_dir = server.get_postmaster_info().socket_dir
    conn = psycopg2.connect(host=str(socket_dir), user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("alter role postgres password %s", (SUPERUSER_PASSWORD,))
    conn.close()
    as_user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=as_user)
    hba = pgdata / "pg_hba.conf"
    hba.write_text(
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "local all postgres trust\n"
        "local all all scram-sha-256\n"
    )
    port = _free_port()
    pg_ctl(
        [
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {socket_dir}",
            "-l",
            str(pgdata / "log"),
            "start",
        ],
        pgdata=pgdata,
        user=as_user,
    )
    yield TcpPostgres(port)
    stop_embedded(data_dir)


def _stack_environment(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    """x-airflow-common's environment, pointed at this machine instead of the stack."""
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    env = {
        name: value
        for name, value in os.environ.items()
        if name in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "XDG_RUNTIME_DIR")
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    for name, value in compose["x-airflow-common"]["environment"].items():
        text = str(value).replace(
            "python /opt/athlon-flex/infrastructure/airflow_bootstrap.py",
            f"{sys.executable} {BOOTSTRAP}",
        )
        env[name] = text
    env.update(
        POSTGRES_HOST="127.0.0.1",
        POSTGRES_PORT=str(port),
        # .docker-env's values: the server's superuser, as the postgres image has it.
        POSTGRES_USER="postgres",
        POSTGRES_PASSWORD=SUPERUSER_PASSWORD,
        POSTGRES_DB="athlon_flex",
        AIRFLOW_ADMIN_PASSWORD="an-admin-password",
        AIRFLOW_SECRETS_DIR=str(tmp_path / "secrets"),
        AIRFLOW_HOME=str(tmp_path / "airflow-home"),
        ATHLON_DATA_DIR=str(tmp_path / "athlon-data"),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        # The image's FAB provider is not installed here; migrate with the default.
        AIRFLOW__CORE__AUTH_MANAGER=(
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager."
            "SimpleAuthManager"
        ),
    )
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> Any:
    return subprocess.run(
        args,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.skipif(os.name != "posix", reason="pgserver's TCP setup is POSIX-only")
def test_stack_setup_and_one_cycle_run_as_their_own_roles_over_tcp(
    tcp_postgres: TcpPostgres,
    fake_api: Any,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    env = _stack_environment(
        tmp_path,
        tcp_postgres.port,
        ATHLON_API_URL=fake_api.url,
        EMAIL_TO="anna@example.nl",
        ATHLON_HTTP_MAX_RETRIES="1",
        **{k.upper(): str(v) for k, v in smtp_server.settings_overrides().items()},
    )
    bootstrap = [sys.executable, str(BOOTSTRAP)]

    # preflight, then airflow-init's steps, as its command runs them.
    checked = _run([*bootstrap, "check-config"], env, tmp_path)
    assert checked.returncode == 0, checked.stderr
    ensured = _run([*bootstrap, "ensure-db"], env, tmp_path)
    assert ensured.returncode == 0, ensured.stderr
    assert ensured.stdout.strip() == (
        "database airflow created; database athlon_flex created; "
        "airflow owned by airflow; athlon_flex owned by athlon_pipeline"
    )
    migrated = _run([str(VENV_BIN / "airflow"), "db", "migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    # The pipeline, started as every long-running container starts.
    cycle = _run(
        [*bootstrap, "as-pipeline", str(VENV_BIN / "athlon-flex"), "run"], env, tmp_path
    )
    assert cycle.returncode == 0, cycle.stderr[-3000:]
    assert "notify:" in cycle.stdout
    (mail,) = smtp_server.messages
    assert mail.rcpt_tos == ("anna@example.nl",)
    assert mail.subject == f"Athlon Flex: {len(fake_api.catalog.vehicles)} new vehicles"

    # Who owns what: each role its own database; the superuser nothing of theirs.
    secrets = tmp_path / "secrets"
    pipeline_password = (secrets / "pipeline_db_password").read_text().strip()
    airflow_password = (secrets / "airflow_db_password").read_text().strip()
    for user, password, dbname in (
        ("athlon_pipeline", pipeline_password, "athlon_flex"),
        ("airflow", airflow_password, "airflow"),
    ):
        conn = tcp_postgres.connect(user, password, dbname)
        with conn.cursor() as cursor:
            cursor.execute(
                "select distinct pg_get_userbyid(c.relowner) from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname not in ('pg_catalog', 'information_schema') "
                "and n.nspname not like 'pg\\_%' and c.relkind in ('r', 'v', 'm')"
            )
            assert [row[0] for row in cursor.fetchall()] == [user], dbname
            cursor.execute("select rolsuper from pg_roles where rolname = current_user")
            assert cursor.fetchone() == (False,)
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication"):
        tcp_postgres.connect("athlon_pipeline", "not-the-password", "athlon_flex")
    shutil.rmtree(tmp_path / "airflow-home", ignore_errors=True)
