"""Run Airflow as its own process for the DAG tests, in a throwaway AIRFLOW_HOME.

Airflow reads its configuration once per process and writes files into AIRFLOW_HOME,
so the tests never import it into pytest's process: they run `airflow ...` (or a small
Python script) as a subprocess with a clean environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
VENV_BIN = Path(sys.executable).parent

# Settings the project reads from the environment: none may leak in from the machine
# running the tests (a developer's shell, a .env in the cwd).
_PROJECT_PREFIXES = (
    "ATHLON_",
    "POSTGRES_",
    "EMAIL_",
    "SMTP_",
    "NOTIFY_",
    "ALERT_",
    "GOOGLE_",
    "GROSS_",
    "APPLY_",
    "AIRFLOW",
)


def airflow_env(airflow_home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for an Airflow subprocess, plus `extra` variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(_PROJECT_PREFIXES)
    }
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        # Retries wait 1 s, 2 s, ... instead of the production minute.
        AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY="1",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def run_airflow(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`airflow <args>` from this virtualenv; output captured, never raises on exit."""
    return subprocess.run(
        [str(VENV_BIN / "airflow"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_python(
    script: str, env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """A Python snippet in its own interpreter (same virtualenv)."""
    return subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
