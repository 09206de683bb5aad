"""The embedded PostgreSQL: started when POSTGRES_HOST is unset, reused, persistent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.settings import Settings
from watcher.cycle import PipelineBusyError, pipeline_lock


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
