"""Run Airflow as its own process for the DAG tests, in a throwaway AIRFLOW_HOME.

Airflow reads its configuration once per process and writes files into AIRFLOW_HOME,
so the tests never import it into pytest's process: they run `airflow ...` (or a small
Python script) as a subprocess with a clean environment.
"""

from __future__ import annotations

import json
import os
import select
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


class AirflowProcess:
    """`airflow <args>` run one after another in one long-lived Airflow process.

    For tests that run many short commands (`airflow dags test`): Airflow's own
    entry point runs each with its argv, environment and working directory
    (tests/dags/airflow_cli_server.py), without paying Airflow's, dlt's and dbt's
    imports and the in-process execution API again for every run. `run` returns
    what `run_airflow` returns: the exit code, and this command's output as stdout.
    """

    def __init__(self, airflow_home: Path, log: Path) -> None:
        self._log_path = log
        self._log = log.open("w")
        replies, self._reply_writer = os.pipe()
        self._replies = os.fdopen(replies)
        self._process = subprocess.Popen(
            [sys.executable, str(_SERVER), str(self._reply_writer)],
            env=airflow_env(airflow_home),
            cwd=airflow_home,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            pass_fds=(self._reply_writer,),
        )
        os.close(self._reply_writer)

    def run(
        self, args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        assert self._process.stdin is not None
        start = self._log_path.stat().st_size
        request = {"args": args, "env": env, "cwd": str(cwd)}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        ready, _, _ = select.select([self._replies], [], [], timeout)
        if not ready:
            self.close()
            raise subprocess.TimeoutExpired(["airflow", *args], timeout)
        reply = self._replies.readline()
        with self._log_path.open() as log:
            log.seek(start)
            output = log.read()
        if not reply:
            raise RuntimeError(f"the Airflow process ended:\n{output[-4000:]}")
        returncode = json.loads(reply)["returncode"]
        return subprocess.CompletedProcess(["airflow", *args], returncode, output, "")

    def close(self) -> None:
        # Every command has answered and committed: nothing is left to finish, and
        # an orderly exit of Airflow, dbt and dlt together takes seconds.
        self._process.kill()
        self._process.wait(timeout=30)
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._replies.close()
        self._log.close()


_SERVER = Path(__file__).with_name("airflow_cli_server.py")
