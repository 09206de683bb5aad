"""`athlon-flex watch` as a user runs it: Ctrl-C stops it cleanly, a bad setting in
one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from athlon_flex.settings import Settings
from simulation.fake_api import FakeShowroom
from tests.dags.test_dag_runs import _as_env


def _env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTGRES_", "EMAIL_", "SMTP_", "GOOGLE_", "ATHLON_"))
    }
    env.update(extra)
    return env


def test_ctrl_c_stops_the_watch_after_its_cycle_with_the_lock_released(
    fake_api: FakeShowroom, settings: Settings, tmp_path: Path
) -> None:
    watched = settings.model_copy(
        update={"athlon_api_url": fake_api.url, "athlon_watch_interval_seconds": 0.2}
    )
    log = tmp_path / "watch.log"
    with log.open("w") as output:
        watch = subprocess.Popen(
            [sys.executable, "-m", "watcher.cli", "watch"],
            cwd=tmp_path,
            env=_env(**_as_env(watched)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while "Scheduled cycle done" not in log.read_text():
            assert watch.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        watch.send_signal(signal.SIGINT)
        assert watch.wait(120) == 0, log.read_text()
    finally:
        if watch.poll() is None:
            watch.kill()
    text = log.read_text()
    assert "stopping after the current stage" in text
    assert "Watch stopped:" in text
    assert text.rstrip().endswith("watch stopped")
    assert "Traceback" not in text

    # The lock went with the cycle: a run right after finds it free.
    from watcher.cycle import run_locked

    assert run_locked(watched, lambda: "free") == "free"


def test_a_bad_watch_setting_stops_with_one_line_and_exit_code_2(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "watch"],
        cwd=tmp_path,
        env=_env(ATHLON_WATCH_INTERVAL_SECONDS="soon"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[0]]
    assert result.stderr.startswith("error: Invalid configuration: ")
    assert "ATHLON_WATCH_INTERVAL_SECONDS='soon'" in result.stderr
