"""`athlon-flex bench --arrivals N --under airflow`: the latency bench under Airflow.

The same arrivals, inbox and figures as simulation/latency.py, but the cycles come
from Airflow 3's own services running natively, each as its own process, as the
compose stack runs them (LocalExecutor, no Docker): `airflow api-server` on a free
port, `airflow dag-processor`, `airflow triggerer` (where the showroom asset's
watcher, watcher/trigger.py, polls the API) and `airflow scheduler` (which starts
each task as a fresh process). AIRFLOW_HOME is a fresh folder under the data dir;
Airflow's metadata lives in its own database on the bench's PostgreSQL. The DAG is
active from the start (DAGS_ARE_PAUSED_AT_CREATION off, as in the stack), so its
first run lands the baseline. At the end the metadata database says how many runs
there were and where their time went.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from athlon_flex.database import PostgresAddress, open_connection, recreate_database
from simulation.latency import LatencyReport, _free_port, _wait

METADATA_DATABASE = "athlon_flex_latency_airflow"
DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"
DAG_ID = "athlon_flex"
# The order the compose stack starts them in; the scheduler last, once the API
# server answers (its tasks report there).
SERVICES = ("api-server", "dag-processor", "triggerer", "scheduler")


def metadata_url(connection: PostgresAddress) -> str:
    """SQLAlchemy URL of Airflow's own database beside the bench's.

    The embedded server listens on a socket directory, which libpq takes as `host`
    in the query (a URL's host part cannot hold a path).
    """
    auth = connection.user
    if connection.password:  # never the embedded server's case
        auth += f":{connection.password}"
    if connection.host.startswith("/"):
        return (
            f"postgresql+psycopg2://{auth}@/{METADATA_DATABASE}"
            f"?host={connection.host}&port={connection.port}"
        )
    return (
        f"postgresql+psycopg2://{auth}@{connection.host}:{connection.port}"
        f"/{METADATA_DATABASE}"
    )


def airflow_environment(
    env: dict[str, str], connection: PostgresAddress, home: Path, api_port: int
) -> dict[str, str]:
    """The bench's pipeline environment plus what Airflow's services share.

    The keys are made here, once, so every service signs and reads the same tokens
    (a task's token comes from the scheduler and is checked by the API server).
    """
    from cryptography.fernet import Fernet

    venv_bin = str(Path(sys.executable).parent)
    return {
        **env,
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # The compose stack's small-machine settings.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url(connection),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
            f"http://127.0.0.1:{api_port}/execution/"
        ),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        # Free ports for the side servers, so two benches (or a test) never collide.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
    }


def service_command(service: str, api_port: int) -> list[str]:
    """`airflow <service>` from this virtualenv."""
    airflow = str(Path(sys.executable).parent / "airflow")
    if service == "api-server":
        return [airflow, service, "--host", "127.0.0.1", "--port", str(api_port)]
    return [airflow, service]


@contextmanager
def airflow_services(
    env: dict[str, str], work_dir: Path, report: LatencyReport
) -> Iterator[None]:
    """A latency.Runner: Airflow's services for the measurement, stopped after."""
    home = work_dir / "latency-airflow"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    # Airflow's database beside the bench's, on the same server.
    metadata = PostgresAddress(
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        user=env["POSTGRES_USER"],
        password=env.get("POSTGRES_PASSWORD"),
        dbname=METADATA_DATABASE,
    )
    recreate_database(metadata)
    api_port = _free_port()
    airflow_env = airflow_environment(env, metadata, home, api_port)
    report.runner = (
        "Airflow 3 (LocalExecutor: api-server, scheduler, dag-processor, "
        "triggerer, natively)"
    )
    report.cycle_seconds = 600  # the DAG's cron; interval and gap are the trigger's
    migrate = subprocess.run(  # noqa: S603 (this virtualenv's airflow)
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=airflow_env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"bench: airflow db migrate failed:\n{migrate.stderr}")
    with ExitStack() as stack:
        for service in SERVICES:
            if service == "scheduler":
                _wait(lambda: _healthy(api_port), 600, "the Airflow API server")
            stack.enter_context(
                _service(service, service_command(service, api_port), airflow_env, home)
            )
        yield
    report.notes = run_notes(metadata)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(
            f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5
        ).is_success
    except httpx.HTTPError:
        return False


@contextmanager
def _service(
    name: str, command: list[str], env: dict[str, str], home: Path
) -> Iterator[None]:
    """One service as its own process group, its output in `<name>.log`."""
    with (home / f"{name}.log").open("w") as log:
        process = subprocess.Popen(  # noqa: S603 (this virtualenv's airflow)
            command,
            env=env,
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its task processes stop with it
        )
        try:
            yield
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def run_notes(metadata: PostgresAddress) -> list[str]:
    """Where the runs' time went, from Airflow's metadata: runs, then tasks.

    Per run: from the asset event that queued it (the trigger saw the change) to its
    start, its duration, and how much of that no task was running (the scheduler
    noticing a finished task and starting the next).
    """
    conn = open_connection(metadata)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "select r.run_type, r.state,"
                " extract(epoch from r.end_date - r.start_date),"
                " extract(epoch from r.start_date - ("
                "  select min(e.timestamp) from dagrun_asset_event as d"
                "  join asset_event as e on e.id = d.event_id"
                "  where d.dag_run_id = r.id)),"
                " extract(epoch from r.end_date - r.start_date) - ("
                "  select sum(extract(epoch from t.end_date - t.start_date))"
                "  from task_instance as t where t.dag_id = r.dag_id"
                "  and t.run_id = r.run_id)"
                " from dag_run as r where r.dag_id = %s order by r.id",
                (DAG_ID,),
            )
            runs = cursor.fetchall()
            cursor.execute(
                "select task_id, extract(epoch from end_date - start_date)"
                " from task_instance where dag_id = %s and state = 'success'",
                (DAG_ID,),
            )
            tasks = cursor.fetchall()
    finally:
        conn.close()
    lines = [
        "| DAG runs | count | median run s | median event→started s "
        "| median s between tasks |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in sorted({(run[0], run[1]) for run in runs}):
        chosen = [run for run in runs if (run[0], run[1]) == kind]
        lines.append(
            f"| {kind[0]}, {kind[1]} | {len(chosen)} | "
            + " | ".join(_median(run[i] for run in chosen) for i in (2, 3, 4))
            + " |"
        )
    lines += ["", "| task (succeeded) | count | median s | max s |"]
    lines.append("|---|---:|---:|---:|")
    for task_id in sorted({task_id for task_id, _ in tasks}):
        seconds = [float(t[1]) for t in tasks if t[0] == task_id]
        lines.append(
            f"| {task_id} | {len(seconds)} | {_median(seconds)} | {max(seconds):.1f} |"
        )
    return lines


def _median(values: Iterable[object]) -> str:
    numbers = [float(v) for v in values if v is not None]  # Decimal from extract()
    return f"{statistics.median(numbers):.1f}" if numbers else "-"
