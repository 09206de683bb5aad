"""`athlon-flex bench --arrivals`: the real `athlon-flex watch` process, timed from a
car's arrival in the simulated showroom to the email at a local SMTP server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from athlon_flex.database import PostgresAddress
from athlon_flex.settings import Settings
from simulation.latency import run_latency_bench


def test_each_arrival_is_timed_to_the_one_email_that_names_it(
    settings: Settings,
) -> None:
    echoed: list[str] = []

    report = run_latency_bench(
        settings.model_copy(
            update={
                "athlon_watch_interval_seconds": 0.5,
                "athlon_watch_min_gap_seconds": 0,
            }
        ),
        clusters=3,
        vehicles_per_cluster=2,
        latency_ms=5,
        arrivals=2,
        spacing_seconds=(0.5, 1.0),
        quiet_seconds=1.0,
        echo=echoed.append,
    )

    assert len(report.latencies) == 2
    assert all(latency > 0 for latency in report.latencies)
    assert report.times_named == [1, 1]  # each arrival in exactly one email
    # The first cycle's email (every car), then one or two for the arrivals.
    assert report.emails in (2, 3)
    assert report.churn_requests > 0
    assert report.quiet_seconds == 1.0
    assert echoed[0] == "first cycle done: 1 email(s); injecting arrivals"
    assert "| 2 |" in report.table()


def test_the_airflow_mode_gives_every_service_one_shared_configuration(
    tmp_path: Path,
) -> None:
    """What `--under airflow` hands each Airflow service, read back by Airflow."""
    from simulation.airflow_latency import (
        DAGS_FOLDER,
        airflow_environment,
        service_command,
    )

    metadata = PostgresAddress(
        host=str(tmp_path / "socket"),
        port=5433,
        user="postgres",
        password=None,
        dbname="athlon_flex_latency_airflow",
    )
    pipeline_env = {"PATH": "/usr/bin", "POSTGRES_DB": "athlon_flex_latency"}
    env = airflow_environment(pipeline_env, metadata, tmp_path / "home", 18080)
    again = airflow_environment(pipeline_env, metadata, tmp_path / "home", 18080)

    assert env["POSTGRES_DB"] == "athlon_flex_latency"  # the tasks' own database
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://postgres@/athlon_flex_latency_airflow"
        f"?host={tmp_path / 'socket'}&port=5433"
    )
    assert (DAGS_FOLDER / "athlon_flex.py").is_file()
    # Each bench makes its own keys; within one, every service shares them.
    for key in ("FERNET_KEY", "JWT_SECRET", "SECRET_KEY"):
        (name,) = [n for n in env if n.startswith("AIRFLOW__") and n.endswith(key)]
        assert env[name] != again[name]
    assert service_command("api-server", 18080)[1:] == [
        "api-server",
        "--host",
        "127.0.0.1",
        "--port",
        "18080",
    ]
    assert service_command("triggerer", 18080)[1:] == ["triggerer"]

    read_back = subprocess.run(
        [
            sys.executable,
            "-c",
            "from airflow.configuration import conf\n"
            "for section, key in [('core', 'executor'), ('core', 'dags_folder'),"
            " ('core', 'execution_api_server_url'),"
            " ('core', 'dags_are_paused_at_creation')]:\n"
            "    print(conf.get(section, key))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert read_back.returncode == 0, read_back.stderr[-2000:]
    assert read_back.stdout.splitlines() == [
        "LocalExecutor",
        str(DAGS_FOLDER),
        "http://127.0.0.1:18080/execution/",
        "False",
    ]


def test_under_airflow_without_arrivals_is_refused_with_one_line(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "bench", "--under", "airflow"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "error: --under needs --arrivals N (the latency bench)\n"
