"""The stack, run natively: airflow-init's steps, the pipeline, the Airflow services.

No Docker here, so the compose file's commands run as processes with the stack's
environment (read from docker-compose.yml) against a PostgreSQL on TCP that asks
for passwords (scram-sha-256), as the `postgres` service does: preflight's check,
airflow-init's `ensure-db` as the superuser, `airflow db migrate` through the `_CMD`
URL as Airflow's own role, one `athlon-flex run` started through `as-pipeline`; then
the API server, scheduler and dag-processor (LocalExecutor), each started through
`as-pipeline` as the containers are: the scheduler's own run of `athlon_flex` (the
latest 10-minute tick) completes and its email arrives, and the API server answers
for the DAG with the admin user.

airflow-init runs its own script from the compose file (ensure-db, db migrate, the
admin user created with the password on stdin), with the stack's FAB auth manager.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
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
    )
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> Any:
    # A session of its own: no controlling terminal, as in a container, so a
    # password prompt reads standard input instead of waiting on a terminal.
    return subprocess.run(
        args,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _airflow_init_script() -> str:
    """airflow-init's command as its bash runs it (compose turns $$ into $)."""
    services = yaml.safe_load((INFRA / "docker-compose.yml").read_text())["services"]
    command = services["airflow-init"]["command"]
    assert services["airflow-init"]["entrypoint"] == "/bin/bash"
    assert command[0] == "-c"
    return (
        command[1]
        .replace("$$", "$")
        .replace("/opt/athlon-flex/infrastructure/airflow_bootstrap.py", str(BOOTSTRAP))
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

    # preflight, then airflow-init's own script.
    checked = _run([*bootstrap, "check-config"], env, tmp_path)
    assert checked.returncode == 0, checked.stderr
    init = _run(["/bin/bash", "-c", _airflow_init_script()], env, tmp_path)
    assert init.returncode == 0, (init.stdout + init.stderr)[-3000:]
    lines = init.stdout.splitlines()
    assert lines[0] == (
        "database airflow created; database athlon_flex created; "
        "airflow owned by airflow; athlon_flex owned by athlon_pipeline"
    )
    assert 'User "admin" created with role "Admin"' in init.stdout + init.stderr
    assert lines[-1] == "airflow-init done"
    assert "an-admin-password" not in init.stdout + init.stderr

    # The pipeline, started as every long-running container starts.
    cycle = _run(
        [*bootstrap, "as-pipeline", str(VENV_BIN / "athlon-flex"), "run"], env, tmp_path
    )
    assert cycle.returncode == 0, cycle.stderr[-3000:]
    assert "notify:" in cycle.stdout
    (mail,) = smtp_server.messages
    assert mail.rcpt_tos == ("anna@example.nl",)
    assert mail.subject.startswith(f"{len(fake_api.catalog.vehicles)} new: ")

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

    # The Airflow services, started as the containers start them.
    arrived = fake_api.catalog.add_vehicle()
    api_port = _free_port()
    env.update(
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=(
            f"http://127.0.0.1:{api_port}/execution/"
        ),
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(_free_port()),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
    )
    base = f"http://127.0.0.1:{api_port}"
    # The compose order: the scheduler waits for a healthy API server (its tasks
    # report to it), the dag-processor only for airflow-init.
    with (
        _started(
            {"api-server": ["api-server", "--port", str(api_port)]}, env, tmp_path
        ) as api_logs,
        _started({"dag-processor": ["dag-processor"]}, env, tmp_path) as dp_logs,
    ):
        token = _eventually(
            lambda: _token(base, "admin", env["AIRFLOW_ADMIN_PASSWORD"]),
            240,
            "login to the API server",
            lambda: api_logs() + dp_logs(),
        )
        with _started({"scheduler": ["scheduler"]}, env, tmp_path) as logs:
            run = _eventually(
                lambda: _finished_run(base, token),
                480,
                "finished athlon_flex run",
                lambda: api_logs() + dp_logs() + logs(),
            )
        assert run["run_type"] == "scheduled"
        assert run["state"] == "success", logs()
        dag = _get(base, "/api/v2/dags/athlon_flex", token)
        assert dag["dag_id"] == "athlon_flex"
        assert dag["is_paused"] is False
        tries = _get(
            base,
            f"/api/v2/dags/athlon_flex/dagRuns/{run['dag_run_id']}/taskInstances",
            token,
        )["task_instances"]
        # Every task succeeded at its first try: nothing raced the API server.
        assert {t["task_id"]: (t["state"], t["try_number"]) for t in tries} == {
            "load": ("success", 1),
            "dbt_build": ("success", 1),
            "notify": ("success", 1),
            "daily_digest_due": ("success", 1),
            "notify_daily_digest": ("skipped", 0),
        }
    assert len(smtp_server.messages) == 2
    mail = smtp_server.messages[1]
    assert mail.subject.startswith("1 new: ")
    assert arrived.license_plate in mail.text
    shutil.rmtree(tmp_path / "airflow-home", ignore_errors=True)


def _get(base: str, path: str, token: str) -> Any:
    response = httpx.get(
        base + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    response.raise_for_status()
    return response.json()


def _token(base: str, username: str, password: str) -> str | None:
    """A JWT for this user (FAB's login), once the API server answers."""
    try:
        response = httpx.post(
            base + "/auth/token",
            json={"username": username, "password": password},
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    return response.json()["access_token"] if response.status_code == 201 else None


def _finished_run(base: str, token: str) -> dict[str, Any] | None:
    try:
        runs = _get(base, "/api/v2/dags/athlon_flex/dagRuns", token)["dag_runs"]
    except httpx.HTTPError:
        return None
    done = [run for run in runs if run["state"] in ("success", "failed")]
    return done[0] if done else None


def _eventually(probe: Any, seconds: float, what: str, logs: Any) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"no {what} within {seconds:.0f} s:\n{logs()}")


@contextmanager
def _started(
    services: dict[str, list[str]], env: dict[str, str], cwd: Path
) -> Iterator[Any]:
    """Start each `airflow <args>` through as-pipeline; stop them all afterwards."""
    processes = {}
    log_files = {}
    try:
        for name, args in services.items():
            log_files[name] = (cwd / f"{name}.log").open("w")
            processes[name] = subprocess.Popen(
                [
                    sys.executable,
                    str(BOOTSTRAP),
                    "as-pipeline",
                    str(VENV_BIN / "airflow"),
                    *args,
                ],
                env=env,
                cwd=cwd,
                stdout=log_files[name],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def logs() -> str:
            return "\n".join(
                f"--- {name} (last lines)\n"
                + "\n".join((cwd / f"{name}.log").read_text().splitlines()[-25:])
                for name in services
            )

        yield logs
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for handle in log_files.values():
            handle.close()
