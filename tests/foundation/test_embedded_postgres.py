"""The embedded PostgreSQL: started when POSTGRES_HOST is unset, reused, persistent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.dbt_project import PROJECT_DIR
from athlon_flex.settings import Settings
from watcher.cycle import PipelineBusyError, pipeline_lock
from watcher.paths import dags_folder


@pytest.fixture
def embedded_settings(embedded_data_dir: Path) -> Settings:
    """Settings with no POSTGRES_HOST; the server is stopped and deleted afterwards."""
    return Settings(_env_file=None, athlon_data_dir=embedded_data_dir)


def test_embedded_server_starts_and_keeps_data_for_the_next_process(
    embedded_settings: Settings,
) -> None:
    connection = ensure_postgres(embedded_settings)
    assert (
        connection.host.startswith(str(embedded_settings.data_dir))
        or Path(connection.host).exists()
    )
    assert connection.dbname == "athlon_flex"
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute("create table kept (answer int)")
        cursor.execute("insert into kept values (42)")

    # A second, separate process (what the next CLI call is) finds the same data.
    data_dir = str(embedded_settings.data_dir)
    script = (
        "from athlon_flex.settings import Settings\n"
        "from athlon_flex.database import ensure_postgres, connect\n"
        f"s = Settings(_env_file=None, athlon_data_dir={data_dir!r})\n"
        "with connect(ensure_postgres(s)) as conn, conn.cursor() as cur:\n"
        "    cur.execute('select answer from kept')\n"
        "    print(cur.fetchall())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[(42,)]"
    assert (embedded_settings.data_dir / "pgdata" / "PG_VERSION").read_text() == "16\n"


def test_configured_host_is_used_and_nothing_is_started(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        postgres_host="db.example.invalid",
        postgres_port=6543,
        postgres_password="pw",
        athlon_data_dir=tmp_path,
    )
    connection = ensure_postgres(settings)
    assert connection.host == "db.example.invalid"
    assert connection.port == 6543
    assert connection.password == "pw"
    assert not (tmp_path / "pgdata").exists()
    assert "pw" not in connection.describe()


def test_a_second_cycle_refuses_while_the_first_holds_the_lock(
    settings: Settings,
) -> None:
    connection = ensure_postgres(settings)
    with (
        pipeline_lock(connection),
        pytest.raises(PipelineBusyError, match="Another athlon-flex cycle"),
        pipeline_lock(connection),
    ):
        pass
    with pipeline_lock(connection):  # released: the next cycle may run
        pass


def test_embedded_server_stopped_underneath_is_started_again(
    embedded_settings: Settings,
) -> None:
    """A long-lived process (an Airflow worker) must not keep a dead server handle."""
    from pgserver._commands import pg_ctl

    connection = ensure_postgres(embedded_settings)
    pgdata = embedded_settings.data_dir / "pgdata"
    pg_ctl(
        ["-w", "stop"], pgdata=pgdata, user="pgserver" if os.geteuid() == 0 else None
    )
    again = ensure_postgres(embedded_settings)
    with connect(again) as conn, conn.cursor() as cursor:
        cursor.execute("select current_database()")
        assert cursor.fetchone() == (connection.dbname,)


def _cli(
    data_dir: Path, *args: str, postgres_host: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`athlon-flex ARGS` on data_dir, embedded unless `postgres_host` is given."""
    env = {**os.environ, "ATHLON_DATA_DIR": str(data_dir)}
    env.pop("POSTGRES_HOST", None)
    if postgres_host:
        env["POSTGRES_HOST"] = postgres_host
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=data_dir.parent,
        check=False,
    )


def test_status_and_stop_manage_the_embedded_server_and_keep_its_data(
    embedded_settings: Settings,
) -> None:
    data_dir = embedded_settings.data_dir
    pgdata = data_dir / "pgdata"
    before = _cli(data_dir, "status")
    assert before.returncode == 0
    assert before.stdout.splitlines() == [
        f"dbt project: {PROJECT_DIR}",
        f"Airflow DAGs: {dags_folder()}",
        f"embedded PostgreSQL: stopped (data in {pgdata})",
    ]

    connection = ensure_postgres(embedded_settings)
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute("create table kept (answer int); insert into kept values (7)")
    running = _cli(data_dir, "status")
    assert running.returncode == 0
    server_line = running.stdout.splitlines()[-1]
    assert server_line.startswith("embedded PostgreSQL: running, pid ")
    assert f"socket {connection.host}/.s.PGSQL.{connection.port}" in server_line

    # A cycle holds the lock: stop refuses and the server keeps running.
    with pipeline_lock(connection):
        refused = _cli(data_dir, "stop")
    assert refused.returncode == 1
    assert "Another athlon-flex cycle is running" in refused.stderr
    status = _cli(data_dir, "status").stdout.splitlines()[-1]
    assert status.startswith("embedded PostgreSQL: running")

    stopped = _cli(data_dir, "stop")
    assert (stopped.returncode, stopped.stdout) == (
        0,
        f"embedded PostgreSQL stopped; data kept in {data_dir}\n",
    )
    assert _cli(data_dir, "status").stdout.splitlines()[-1] == (
        f"embedded PostgreSQL: stopped (data in {pgdata})"
    )
    assert _cli(data_dir, "stop").stdout == (
        f"embedded PostgreSQL already stopped ({data_dir})\n"
    )
    # The next command starts it again and finds the data.
    with connect(ensure_postgres(embedded_settings)) as conn, conn.cursor() as cursor:
        cursor.execute("select answer from kept")
        assert cursor.fetchall() == [(7,)]


def test_stop_with_a_configured_host_is_a_usage_error(tmp_path: Path) -> None:
    result = _cli(tmp_path / "athlon", "stop", postgres_host="db.example.invalid")
    assert result.returncode == 2
    assert result.stderr == "error: POSTGRES_HOST is set: there is no embedded server\n"


def test_the_private_runtime_dir_is_made_private_even_when_it_already_existed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """platformdirs warned on every command when an earlier process left it 0755."""
    from athlon_flex.database import _ensure_runtime_dir

    runtime = Path(f"/tmp/athlon-flex-runtime-{os.getuid()}")
    runtime.mkdir(exist_ok=True)
    runtime.chmod(0o755)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    _ensure_runtime_dir()
    assert os.environ["XDG_RUNTIME_DIR"] == str(runtime)
    assert runtime.stat().st_mode & 0o777 == 0o700
