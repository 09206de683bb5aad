"""`athlon-flex run` as a user types it: embedded PostgreSQL, twice, data kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.settings import Settings
from simulation.fake_api import FakeShowroom


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_second_run_finds_the_data_of_the_first(
    fake_api: FakeShowroom, embedded_data_dir: Path, tmp_path: Path
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTGRES_", "EMAIL_", "SMTP_", "GOOGLE_", "ATHLON_"))
    }
    data_dir = embedded_data_dir
    env.update(ATHLON_API_URL=fake_api.url, ATHLON_DATA_DIR=str(data_dir))
    vehicles = len(fake_api.catalog.vehicles)

    first = _cli("run", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    second = _cli("run", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr

    settings = Settings(_env_file=None, athlon_data_dir=data_dir)
    connection = ensure_postgres(settings)
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select recipient, count(*) from notifier.notifications group by 1"
        )
        # Without email the console channel is the record; the second run found
        # the first run's records and notified nothing again.
        assert cursor.fetchall() == [("console", vehicles)]
        cursor.execute("select count(*) from snapshots.snap_vehicles")
        assert cursor.fetchone()[0] == vehicles
    assert "console: 0 vehicles, 0 recorded" in second.stdout
