"""The DAG file as Airflow's DAG processor sees it: imports, shape, schedule, policy.

One subprocess parses dags/ the way the DAG processor does (DagBag, then the
serialization the scheduler reads) and reports what it found as JSON. Every project
setting points at a listening socket, so any database, API or SMTP work at parse time
would show up as a connection.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.dags.airflow_env import DAGS_FOLDER, airflow_env, run_python

PARSE_SCRIPT = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

bag = DagBag(dag_folder=sys.argv[1] if len(sys.argv) > 1 else None)
errors = {k: str(v) for k, v in bag.import_errors.items()}
report = {"import_errors": errors, "dags": {}}
for dag_id, dag in bag.dags.items():
    DagSerialization.to_dict(dag)  # what the scheduler gets; raises if it cannot
    report["dags"][dag_id] = {
        "fileloc": dag.fileloc,
        "timetable": type(dag.timetable).__name__,
        "time_timetable": type(dag.timetable.timetable).__name__,
        "cron": dag.timetable.timetable.expression,
        "timezone": str(dag.timetable.timetable.timezone),
        "assets": [
            {
                "name": asset.name,
                "watchers": [
                    [w.name, *w.trigger.serialize()] for w in asset.watchers
                ],
            }
            for asset in [dag.timetable.asset_condition]  # one Asset, not a condition
        ],
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "dagrun_timeout": dag.dagrun_timeout.total_seconds(),
        "doc_md": dag.doc_md or "",
        "tags": sorted(dag.tags),
        "has_on_failure_callback": dag.on_failure_callback is not None,
        "has_on_success_callback": dag.on_success_callback is not None,
        "params": {k: dag.params.get_param(k).resolve(suppress_exception=True)
                   for k in dag.params},
        "tasks": {
            t.task_id: {
                "upstream": sorted(t.upstream_task_ids),
                "retries": t.retries,
                "backoff": t.retry_exponential_backoff,
                "max_retry_delay": t.max_retry_delay.total_seconds()
                    if t.max_retry_delay else None,
                "execution_timeout": t.execution_timeout.total_seconds()
                    if t.execution_timeout else None,
                "has_on_failure_callback": bool(t.on_failure_callback),
                "has_retry_policy": t.retry_policy is not None,
                "operator": type(t).__name__,
                # Airflow's default rule: a task's own weight plus its downstream's.
                "priority": t.priority_weight
                + sum(d.priority_weight for d in t.get_flat_relatives(upstream=False)),
            }
            for t in dag.tasks
        },
    }
heavy = ("dlt", "dbt", "loader", "notifier", "pgserver", "yagmail", "jinja2.ext")
report["heavy_modules"] = sorted(
    {m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}
)
print("REPORT " + json.dumps(report))
"""


class ConnectionTrap:
    """A TCP listener that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Parse dags/ once in a fresh interpreter, settings aimed at a connection trap."""
    home = tmp_path_factory.mktemp("airflow-parse")
    data_dir = home / "athlon-data"
    trap = ConnectionTrap()
    env = airflow_env(
        home,
        POSTGRES_HOST="127.0.0.1",
        POSTGRES_PORT=str(trap.port),
        POSTGRES_PASSWORD="not-used",
        ATHLON_API_URL=f"http://127.0.0.1:{trap.port}/api/v1",
        ATHLON_DATA_DIR=str(data_dir),
        EMAIL_FROM="watcher@example.org",
        EMAIL_TO="ops@example.org",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(trap.port),
    )
    try:
        result = run_python(PARSE_SCRIPT, env, cwd=home)
    finally:
        trap.close()
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    report = json.loads(lines[-1].removeprefix("REPORT "))
    report["trap_connections"] = trap.connections
    report["data_dir_created"] = data_dir.exists()
    yield report


def test_dags_folder_imports_without_errors(parsed: dict[str, Any]) -> None:
    assert parsed["import_errors"] == {}
    assert sorted(parsed["dags"]) == ["athlon_flex"]


def test_each_dag_lives_in_a_file_named_after_it(parsed: dict[str, Any]) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert Path(dag["fileloc"]) == DAGS_FOLDER / f"{dag_id}.py"


def test_parsing_opens_no_connection_and_starts_no_database(
    parsed: dict[str, Any],
) -> None:
    assert parsed["trap_connections"] == 0
    assert parsed["data_dir_created"] is False  # no embedded PostgreSQL was started


def test_parsing_imports_no_stage_libraries(parsed: dict[str, Any]) -> None:
    assert parsed["heavy_modules"] == []


def test_tasks_run_load_then_freshness_and_build_then_both_notifies(
    parsed: dict[str, Any],
) -> None:
    tasks = parsed["dags"]["athlon_flex"]["tasks"]
    assert {task_id: task["upstream"] for task_id, task in tasks.items()} == {
        "load": [],
        "dbt_build": ["load"],
        "notify": ["dbt_build"],
        "daily_digest_due": ["dbt_build"],
        "notify_daily_digest": ["daily_digest_due"],
    }
    assert tasks["daily_digest_due"]["operator"] == "_ShortCircuitDecoratedOperator"
    # One task at a time: of the two ready after the build, the instant emails first.
    assert tasks["notify"]["priority"] > tasks["daily_digest_due"]["priority"]


def test_runs_every_ten_minutes_one_at_a_time_without_catchup(
    parsed: dict[str, Any],
) -> None:
    dag = parsed["dags"]["athlon_flex"]
    assert dag["timetable"] == "AssetOrTimeSchedule"
    assert dag["time_timetable"] == "CronTriggerTimetable"
    assert dag["cron"] == "*/10 * * * *"
    assert dag["timezone"] == "UTC"
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["max_active_tasks"] == 1
    assert dag["dagrun_timeout"] == timedelta(hours=1).total_seconds()


def test_also_runs_when_the_showroom_watcher_in_the_triggerer_sees_a_change(
    parsed: dict[str, Any],
) -> None:
    assert parsed["dags"]["athlon_flex"]["assets"] == [
        {
            "name": "athlon_flex_showroom",
            "watchers": [
                [
                    "athlon_flex_showroom_watch",
                    "watcher.trigger.ShowroomChangedTrigger",
                    {},
                ]
            ],
        }
    ]


def test_every_task_retries_with_backoff_and_a_timeout(parsed: dict[str, Any]) -> None:
    tasks = parsed["dags"]["athlon_flex"]["tasks"]
    assert {t: task["retries"] for t, task in tasks.items()} == {
        "load": 2,
        "dbt_build": 2,
        "notify": 2,
        "daily_digest_due": 2,
        "notify_daily_digest": 2,
    }
    for task in tasks.values():
        assert task["backoff"] == 2.0
        assert task["max_retry_delay"] == timedelta(minutes=10).total_seconds()
        assert task["execution_timeout"] is not None
        assert task["has_retry_policy"] is True
        assert task["has_on_failure_callback"] is True


def test_failure_alert_callbacks_are_wired(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["athlon_flex"]
    assert dag["has_on_failure_callback"] is True
    assert dag["has_on_success_callback"] is True


def test_params_default_to_a_plain_scheduled_run(parsed: dict[str, Any]) -> None:
    assert parsed["dags"]["athlon_flex"]["params"] == {
        "allow_shrink": False,
        "baseline": None,
        "extra_filters": [],
    }


def test_dag_is_documented_and_tagged(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["athlon_flex"]
    assert "allow_shrink" in dag["doc_md"]
    assert "extra_filters" in dag["doc_md"]
    assert "ALERT_AFTER_FAILURES" in dag["doc_md"]
    assert dag["tags"] == ["athlon-flex", "elt"]
