"""The real DAG, run by `airflow dags test` against real parts.

Each run is Airflow's own `airflow dags test` command, run by one Airflow process for
the file (tests/dags/airflow_cli_server.py) with SQLite metadata in one migrated
AIRFLOW_HOME; each run gets the environment a fresh `airflow` process would: the
project's settings pointing at the test's PostgreSQL database, the simulated showroom
API over HTTP and a local SMTP server. Task states are read from Airflow's own
metadata database afterwards.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2.extensions
import pytest
from pydantic import SecretStr

from athlon_flex.settings import Settings
from simulation.fake_api import FakeShowroom
from tests.dags.airflow_env import AirflowProcess, airflow_env
from tests.dags.conftest import new_airflow_home
from tests.support.raw_tables import (
    CatalogState,
    clusters_for,
    create_raw_tables,
    make_options,
    make_vehicle,
    write_state,
)
from tests.support.smtp import SmtpServer

READER = "reader@example.org"
OPERATOR = "ops@example.org"
ALL_TASKS = (
    "load",
    "dbt_build",
    "notify",
    "daily_digest_due",
    "notify_daily_digest",
)

# Every `airflow dags test` gets its own logical date: the runs of all tests share one
# metadata database, and reusing a date would clear and rerun an earlier test's run.
_logical_dates = (
    datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=10 * n)
    for n in itertools.count()
)


@pytest.fixture(scope="module")
def airflow_home(
    tmp_path_factory: pytest.TempPathFactory, migrated_airflow_db: Path
) -> Path:
    """One AIRFLOW_HOME with a migrated SQLite metadata DB for this file's tests."""
    return new_airflow_home(
        tmp_path_factory.mktemp("airflow") / "home", migrated_airflow_db
    )


@pytest.fixture(scope="module")
def airflow(airflow_home: Path) -> Iterator[AirflowProcess]:
    """The Airflow process that runs this file's `airflow dags test` commands."""
    process = AirflowProcess(airflow_home, airflow_home / "airflow-process.log")
    yield process
    process.close()


def _as_env(settings: Settings) -> dict[str, str]:
    """Settings as the environment variables that load them again."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None or value == []:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, time):
            value = value.strftime("%H:%M")
        env[name.upper()] = str(value)
    return env


class DagRunner:
    """Runs the DAG for one test and reads back what Airflow recorded."""

    def __init__(
        self, airflow: AirflowProcess, home: Path, settings: Settings, cwd: Path
    ) -> None:
        self.airflow = airflow
        self.home = home
        self.settings = settings
        self.cwd = cwd

    def run(self, *extra: str) -> tuple[str, Any]:
        """`airflow dags test athlon_flex <new date> [extra]`: (run_id, result)."""
        logical_date = next(_logical_dates).isoformat()
        env = airflow_env(self.home, **_as_env(self.settings))
        result = self.airflow.run(
            ["dags", "test", "athlon_flex", logical_date, *extra], env, cwd=self.cwd
        )
        # Kept next to the test's files: the first place to look when a test fails.
        with (self.cwd / "airflow-dags-test.log").open("a") as log:
            log.write(f"=== {logical_date}\n{result.stdout}\n{result.stderr}\n")
        with sqlite3.connect(self.home / "airflow.db") as meta:
            (run_id,) = meta.execute(
                "select run_id from dag_run where dag_id = 'athlon_flex' "
                "order by id desc limit 1"
            ).fetchone()
        return run_id, result

    def states(self, run_id: str) -> dict[str, str | None]:
        with sqlite3.connect(self.home / "airflow.db") as meta:
            rows = meta.execute(
                "select task_id, state from task_instance where run_id = ?",
                (run_id,),
            ).fetchall()
        return dict(rows)

    def tries(self, run_id: str, task_id: str) -> int:
        with sqlite3.connect(self.home / "airflow.db") as meta:
            (tries,) = meta.execute(
                "select try_number from task_instance where run_id = ? and task_id = ?",
                (run_id, task_id),
            ).fetchone()
        return tries


@pytest.fixture
def dag_runner(
    airflow: AirflowProcess,
    airflow_home: Path,
    make_settings: Callable[..., Settings],
    fake_api: FakeShowroom,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> Iterator[DagRunner]:
    settings = make_settings(
        **smtp_server.settings_overrides(sender="watcher@example.org"),
        athlon_api_url=fake_api.url,
        athlon_http_max_retries=0,
        email_to=[READER],
        alert_email_to=[OPERATOR],
    )
    cwd = tmp_path / "cwd"  # no .env of the repository is read
    cwd.mkdir()
    yield DagRunner(airflow, airflow_home, settings, cwd)


def _scalar(db: psycopg2.extensions.connection, query: str) -> Any:
    with db.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0]


def _relation_exists(db: psycopg2.extensions.connection, name: str) -> bool:
    return _scalar(db, f"select to_regclass('{name}') is not null")


def test_runs_load_build_and_email_once_and_trigger_params_reach_the_stages(
    dag_runner: DagRunner,
    fake_api: FakeShowroom,
    smtp_server: SmtpServer,
    db: psycopg2.extensions.connection,
) -> None:
    vehicles = len(fake_api.catalog)

    first_run, first = dag_runner.run()

    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert dag_runner.states(first_run) == {
        "load": "success",
        "dbt_build": "success",
        "notify": "success",
        "daily_digest_due": "success",
        "notify_daily_digest": "skipped",  # nobody is on the daily cadence
    }
    assert _scalar(db, "select count(*) from raw.vehicles") == vehicles
    open_windows = "select count(*) from marts.vehicle_availability where is_available"
    assert _scalar(db, open_windows) == vehicles
    assert [m.rcpt_tos for m in smtp_server.messages] == [(READER,)]
    assert (
        _scalar(
            db,
            f"select count(*) from notifier.notifications where recipient = '{READER}'",
        )
        == vehicles
    )
    assert (
        _scalar(
            db,
            "select consecutive_failures from notifier.pipeline_health "
            "where pipeline = 'athlon_flex' and last_success_at is not null",
        )
        == 0
    )

    second_run, second = dag_runner.run()

    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert dag_runner.states(second_run)["notify"] == "success"
    assert len(smtp_server.messages) == 1  # nothing new, nothing sent
    assert _scalar(db, "select count(*) from notifier.notifications") == vehicles

    # 9 of the 12 cars leased at once and two new ones: the load refuses a drop like
    # that unless the run is triggered with allow_shrink, and extra_filters narrows
    # this run's notify to one of the two new cars.
    fake_api.catalog.remove_fraction(0.75)
    wanted = fake_api.catalog.add_vehicle("Skoda", "Fabia")
    other = fake_api.catalog.add_vehicle("Ford", "Focus Wagon")
    conf = {
        "allow_shrink": True,
        "extra_filters": [{"make": f"^{re.escape(wanted.make)}$"}],
    }

    third_run, third = dag_runner.run("--conf", json.dumps(conf))

    assert third.returncode == 0, third.stdout[-4000:] + third.stderr[-4000:]
    assert dag_runner.states(third_run)["notify"] == "success"
    assert _scalar(db, "select count(*) from raw.vehicles") == 5
    assert len(smtp_server.messages) == 2
    recorded = "select count(*) from notifier.notifications where vehicle_id = '{}'"
    assert _scalar(db, recorded.format(wanted.id)) == 1
    assert _scalar(db, recorded.format(other.id)) == 0  # goes out with the next run


def test_failing_api_fails_load_and_nothing_downstream_runs(
    dag_runner: DagRunner,
    fake_api: FakeShowroom,
    smtp_server: SmtpServer,
    db: psycopg2.extensions.connection,
) -> None:
    fake_api.faults.add(endpoint="VehicleCluster", status=503)
    # Alert at the first failed run, so this run also shows the DAG's failure
    # callback reaching the operator.
    dag_runner.settings = dag_runner.settings.model_copy(
        update={"alert_after_failures": 1}
    )

    run_id, result = dag_runner.run()

    assert result.returncode != 0
    assert dag_runner.states(run_id) == {
        "load": "failed",
        **{task: "upstream_failed" for task in ALL_TASKS if task != "load"},
    }
    assert dag_runner.tries(run_id, "load") == 3  # retried twice with backoff
    assert not _relation_exists(db, "snapshots.snap_vehicles")
    assert not _relation_exists(db, "marts.vehicle_availability")
    assert smtp_server.messages_to(READER) == []
    # The operator heard, with the load's own message.
    (alert,) = smtp_server.messages
    assert alert.rcpt_tos == (OPERATOR,)
    assert alert.subject == "[athlon-flex] athlon_flex has failed 1 run in a row"
    assert "load: " in alert.text
    assert "VehicleCluster" in alert.text
    assert f"/dags/athlon_flex/runs/{quote(run_id, safe='')}" in alert.text
    failures, last_error = _row(
        db,
        "select consecutive_failures, last_error from notifier.pipeline_health "
        "where pipeline = 'athlon_flex'",
    )
    assert failures == 1
    assert last_error.startswith("load: ")


def _row(db: psycopg2.extensions.connection, query: str) -> tuple[Any, ...]:
    with db.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()


def test_failing_data_test_stops_the_run_before_notify(
    dag_runner: DagRunner,
    smtp_server: SmtpServer,
    db: psycopg2.extensions.connection,
) -> None:
    # raw as a load would leave it, except that one vehicle has no make: the source's
    # `not_null` test fails. The load task is marked done without running.
    create_raw_tables(db)
    good = make_vehicle("vehicle-1")
    broken = {**make_vehicle("vehicle-2"), "make": None}
    state = CatalogState(
        vehicles=(good, broken),
        options=tuple(make_options("vehicle-1")),
        clusters=tuple(clusters_for([good])),
    )
    write_state(db, state, datetime.now(UTC))

    run_id, result = dag_runner.run("--mark-success-pattern", "load")

    assert result.returncode != 0
    assert dag_runner.states(run_id) == {
        "load": "success",
        "dbt_build": "failed",
        "notify": "upstream_failed",
        "daily_digest_due": "upstream_failed",
        "notify_daily_digest": "upstream_failed",
    }
    assert dag_runner.tries(run_id, "dbt_build") == 1  # a data test is not retried
    assert smtp_server.messages == []
    assert not _relation_exists(db, "marts.vehicle_availability")
    assert _scalar(db, "select count(*) from notifier.notifications") == 0
    (last_error,) = _row(
        db,
        "select last_error from notifier.pipeline_health "
        "where pipeline = 'athlon_flex'",
    )
    assert last_error.startswith("dbt_build: dbt build failed")
    assert "not_null_" in last_error
