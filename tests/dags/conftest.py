"""One `airflow db migrate` per run: every Airflow test starts from a copy of it.

Migrating a fresh SQLite metadata database takes Airflow 10 to 15 s; copying the
migrated file takes milliseconds and gives the same database. The first xdist worker
that needs it migrates; the other waits for it and copies the same file.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

import pytest

from tests.dags.airflow_env import airflow_env, run_airflow


@pytest.fixture(scope="session")
def migrated_airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An airflow.db that `airflow db migrate` made, for copying only."""
    # Under xdist each worker's basetemp is a folder of the run's one basetemp.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    home = shared / "airflow-migrated"
    with (shared / "airflow-migrated.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (home / "migrated").exists():
            home.mkdir(exist_ok=True)
            result = run_airflow(["db", "migrate"], airflow_env(home), cwd=home)
            assert result.returncode == 0, result.stderr[-3000:]
            (home / "migrated").touch()
    return home / "airflow.db"


def new_airflow_home(home: Path, migrated: Path) -> Path:
    """Make `home` an AIRFLOW_HOME whose metadata database is a copy of `migrated`."""
    home.mkdir(parents=True)
    # SQLite's backup API: a consistent copy whatever journal files lie beside it.
    source = sqlite3.connect(migrated)
    copy = sqlite3.connect(home / "airflow.db")
    source.backup(copy)
    source.close()
    copy.close()
    return home
