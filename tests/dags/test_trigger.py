"""The showroom watcher in a real Airflow triggerer: an asset event on a change only.

Airflow's own processes against a migrated SQLite metadata database: `airflow dags
reserialize` registers the DAG, its asset and the asset's watcher (the trigger row),
then `airflow triggerer` runs the trigger against the simulated API and the test's
PostgreSQL. The test reads the asset events Airflow recorded. Bounded: the triggerer
is stopped at the end whatever happens.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from athlon_flex.settings import Settings
from loader.pipeline import load
from simulation.fake_api import Catalog
from tests.dags.airflow_env import VENV_BIN, airflow_env, run_airflow
from tests.dags.conftest import new_airflow_home
from tests.dags.test_dag_runs import _as_env

CLASSPATH = "watcher.trigger.ShowroomChangedTrigger"
PATIENCE_SECONDS = 180


def _wait_for(condition: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text()[-4000:] if log.exists() else ""
            raise AssertionError(f"gave up waiting for {what}; triggerer log:\n{tail}")
        time.sleep(0.2)


def _asset_events(home: Path) -> list[dict]:
    with sqlite3.connect(home / "airflow.db") as meta:
        rows = meta.execute(
            "select e.extra from asset_event as e join asset as a on a.id = e.asset_id"
            " where a.name = 'athlon_flex_showroom' order by e.id"
        ).fetchall()
    return [json.loads(extra) for (extra,) in rows]


@pytest.fixture
def airflow_home(tmp_path: Path, migrated_airflow_db: Path) -> Path:
    return new_airflow_home(tmp_path / "airflow-home", migrated_airflow_db)


def test_trigger_in_the_triggerer_emits_an_asset_event_on_a_change_and_none_without(
    airflow_home: Path,
    settings: Settings,
    fake_api_factory: Callable,
    tmp_path: Path,
) -> None:
    catalog = Catalog.generate(clusters=2, vehicles_per_cluster=2, seed=3)
    api = fake_api_factory(catalog=catalog)
    watched = settings.model_copy(
        update={
            "athlon_api_url": api.url,
            "athlon_watch_interval_seconds": 0.2,
            "athlon_watch_min_gap_seconds": 0,
        }
    )
    load(watched)  # what the trigger compares with: the last load
    env = airflow_env(
        airflow_home,
        **_as_env(watched),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
    )
    for _ in range(2):  # the second pass sees the DAG active and adds its watcher
        result = run_airflow(["dags", "reserialize"], env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        assert meta.execute("select classpath from trigger").fetchall() == [
            (CLASSPATH,)
        ]

    log = tmp_path / "triggerer.log"
    with log.open("w") as output:
        triggerer = subprocess.Popen(
            [str(VENV_BIN / "airflow"), "triggerer"],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:

        def watch_requests() -> int:
            return api.stats.requests_by_endpoint["VehicleCluster"]

        _wait_for(lambda: watch_requests() >= 10, "ten watch requests", log)
        assert _asset_events(airflow_home) == []  # the load matches: no event

        catalog.add_vehicle()
        _wait_for(lambda: len(_asset_events(airflow_home)) == 1, "an event", log)
        seen = watch_requests()
        _wait_for(lambda: watch_requests() >= seen + 10, "ten more requests", log)
        # Nothing loaded the change yet: the same picture queues no second run.
        (event,) = _asset_events(airflow_home)
    finally:
        triggerer.send_signal(signal.SIGTERM)
        try:
            triggerer.wait(60)
        except subprocess.TimeoutExpired:
            triggerer.kill()
            triggerer.wait(10)

    assert event["from_trigger"] is True
    assert event["payload"]["clusters"] == len(
        {(v.make, v.model) for v in catalog.vehicles}
    )
    assert "nothing loaded yet" not in event["payload"]["change"]
