"""One `airflow db migrate` per worker: every Airflow test starts from a copy of it.

Migrating a fresh SQLite metadata database takes Airflow 10 to 15 s; copying the
migrated file takes milliseconds and gives the same database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.dags.airflow_env import airflow_env, run_airflow


@pytest.fixture(scope="session")
def migrated_airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An airflow.db that `airflow db migrate` made, for copying only."""
    home = tmp_path_factory.mktemp("airflow-migrated")
    result = run_airflow(["db", "migrate"], airflow_env(home), cwd=home)
    assert result.returncode == 0, result.stderr[-3000:]
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
