"""`athlon-flex bench --arrivals N`: from a car's arrival in the showroom to the email.

The simulated API (in this process) and a local SMTP server (aiosmtpd, in this
process) stand for the showroom and the inbox; `athlon-flex watch` runs as its own
process, exactly as a user starts it, with settings pointing at both and at its own
database (`--under airflow`: Airflow's services instead, simulation/airflow_latency.py).
After its first cycle (every car is news once) the bench adds single cars at random
moments; each one's latency is the time from `add_vehicle` to the arrival
at the SMTP server of an email naming its licence plate. The simulated server counts
every request, so requests per hour are the server's figures: during the arrivals
(with churn) and over a quiet stretch afterwards (without).

aiosmtpd is a development dependency (`uv run --all-extras ...` from a checkout).
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from athlon_flex.database import ensure_postgres, recreate_database
from athlon_flex.settings import Settings

LATENCY_DATABASE = "athlon_flex_latency"
RECIPIENT = "bench@example.org"


@dataclass
class LatencyReport:
    """What one latency run measured."""

    clusters: int
    vehicles_per_cluster: int
    latency_ms: int
    interval_seconds: float
    min_gap_seconds: float
    cycle_seconds: float
    latencies: list[float] = field(default_factory=list)
    # How many emails named each arrival's plate: 1 each, or something is wrong.
    times_named: list[int] = field(default_factory=list)
    churn_requests: int = 0
    churn_seconds: float = 0.0
    quiet_requests: int = 0
    quiet_seconds: float = 0.0
    emails: int = 0
    # What ran the cycles, as the table's first line names it.
    runner: str = "`athlon-flex watch`"
    # Lines the runner adds under the table (Airflow: runs and task durations).
    notes: list[str] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        index = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
        return ordered[index]

    def table(self) -> str:
        def per_hour(requests: int, seconds: float) -> float:
            return requests / seconds * 3600 if seconds else 0.0

        return "\n".join(
            [
                f"{self.runner}, {self.clusters} clusters x "
                f"{self.vehicles_per_cluster} vehicles, {self.latency_ms} ms latency, "
                f"watch every {self.interval_seconds:g} s, min gap "
                f"{self.min_gap_seconds:g} s, full cycle every "
                f"{self.cycle_seconds:g} s",
                "",
                "| arrivals | p50 s | p95 s | max s | requests/h with churn "
                "| requests/h without |",
                "|---:|---:|---:|---:|---:|---:|",
                f"| {len(self.latencies)} | {statistics.median(self.latencies):.1f} | "
                f"{self.percentile(0.95):.1f} | {max(self.latencies):.1f} | "
                f"{per_hour(self.churn_requests, self.churn_seconds):.0f} | "
                f"{per_hour(self.quiet_requests, self.quiet_seconds):.0f} |",
                "",
                f"{self.emails} emails; arrivals named in exactly one: "
                f"{self.times_named.count(1)} of {len(self.times_named)}",
                *(["", *self.notes] if self.notes else []),
            ]
        )


class _Inbox:
    """aiosmtpd handler: when each message arrived and its plain text."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        arrived = time.monotonic()
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default
        )
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        with self.lock:
            self.received.append((arrived, text))
        return "250 Message accepted for delivery"

    def count_naming(self, plate: str) -> int:
        with self.lock:
            return sum(plate in text for _, text in self.received)

    def first_naming(self, plate: str, after: float) -> float | None:
        with self.lock:
            for arrived, text in self.received:
                if arrived >= after and plate in text:
                    return arrived
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(settings: Settings, overrides: dict[str, str]) -> dict[str, str]:
    """The watch process's environment: only the settings it needs, nothing leaked."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(
            ("ATHLON_", "POSTGRES_", "EMAIL_", "SMTP_", "NOTIFY_", "AIRFLOW")
        )
    }
    connection = ensure_postgres(settings)
    env.update(
        {
            "POSTGRES_HOST": connection.host,
            "POSTGRES_PORT": str(connection.port),
            "POSTGRES_USER": connection.user,
            "POSTGRES_DB": LATENCY_DATABASE,
            "ATHLON_DATA_DIR": str(settings.athlon_data_dir.resolve()),
            "ATHLON_MAX_CONCURRENCY": str(settings.athlon_max_concurrency),
            **overrides,
        }
    )
    if connection.password:
        env["POSTGRES_PASSWORD"] = connection.password
    return env


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: gave up waiting for {what}")
        time.sleep(0.05)


# What starts the cycles: given the environment and a folder for its files, a context
# manager that runs it for the measurement and stops it afterwards.
Runner = Callable[[dict[str, str], Path, LatencyReport], AbstractContextManager[None]]


@contextmanager
def watch_process(
    env: dict[str, str], work_dir: Path, report: LatencyReport
) -> Iterator[None]:
    """`athlon-flex watch` as its own process; Ctrl-C (SIGINT) at the end."""
    log_path = work_dir / "latency-watch.log"
    with log_path.open("w") as log_file:
        watch = subprocess.Popen(
            [sys.executable, "-m", "watcher.cli", "watch"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            watch.send_signal(signal.SIGINT)  # stops between stages
            try:
                watch.wait(300)
            except subprocess.TimeoutExpired:
                watch.kill()


def run_latency_bench(
    settings: Settings,
    *,
    clusters: int = 100,
    vehicles_per_cluster: int = 10,
    latency_ms: int = 50,
    arrivals: int = 20,
    spacing_seconds: tuple[float, float] = (20.0, 100.0),
    quiet_seconds: float = 600.0,
    seed: int = 1,
    echo: Callable[[str], None] = print,
    runner: Runner = watch_process,
) -> LatencyReport:
    """Start the API, an inbox and the runner (`watch`); inject arrivals; measure."""
    from aiosmtpd.controller import Controller

    from simulation.fake_api import Catalog, FakeShowroom

    rng = random.Random(seed)
    catalog = Catalog.generate(
        clusters=clusters, vehicles_per_cluster=vehicles_per_cluster, seed=seed
    )
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    bench_settings = settings.model_copy(update={"postgres_db": LATENCY_DATABASE})
    recreate_database(ensure_postgres(bench_settings))
    report = LatencyReport(
        clusters=clusters,
        vehicles_per_cluster=vehicles_per_cluster,
        latency_ms=latency_ms,
        interval_seconds=settings.athlon_watch_interval_seconds,
        min_gap_seconds=settings.athlon_watch_min_gap_seconds,
        cycle_seconds=settings.athlon_watch_cycle_seconds,
    )
    work_dir = Path(settings.athlon_data_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        api_server = FakeShowroom(
            catalog, host="127.0.0.1", port=0, latency_ms=latency_ms
        )
        with api_server as api:
            env = _env(
                bench_settings,
                {
                    "ATHLON_API_URL": api.url,
                    "EMAIL_FROM": "watch@example.org",
                    "EMAIL_TO": RECIPIENT,
                    "SMTP_HOST": "127.0.0.1",
                    "SMTP_PORT": str(smtp.port),
                    "SMTP_SECURITY": "none",
                    "ATHLON_WATCH_INTERVAL_SECONDS": str(report.interval_seconds),
                    "ATHLON_WATCH_MIN_GAP_SECONDS": str(report.min_gap_seconds),
                    "ATHLON_WATCH_CYCLE_SECONDS": str(report.cycle_seconds),
                },
            )
            with runner(env, work_dir, report):
                _measure(api, catalog, inbox, report, rng, arrivals, spacing_seconds,
                         quiet_seconds, echo)  # fmt: skip
    finally:
        smtp.stop()
    report.emails = len(inbox.received)
    echo(f"logs: {work_dir}")
    return report


def _measure(
    api: Any,
    catalog: Any,
    inbox: _Inbox,
    report: LatencyReport,
    rng: random.Random,
    arrivals: int,
    spacing_seconds: tuple[float, float],
    quiet_seconds: float,
    echo: Callable[[str], None],
) -> None:
    _wait(lambda: len(inbox.received) >= 1, 1800, "the first cycle's email")
    echo(f"first cycle done: {len(inbox.received)} email(s); injecting arrivals")
    api.stats.reset()
    started = time.monotonic()
    pending: list[tuple[str, float]] = []
    for number in range(1, arrivals + 1):
        time.sleep(rng.uniform(*spacing_seconds))
        vehicle = catalog.add_vehicle()
        pending.append((vehicle.license_plate, time.monotonic()))
        echo(f"arrival {number}/{arrivals}: {vehicle.make} {vehicle.model}")
    for plate, arrived in pending:
        _wait(
            lambda plate=plate, arrived=arrived: (
                inbox.first_naming(plate, arrived) is not None
            ),
            1800,
            f"the email naming {plate}",
        )
        latency = inbox.first_naming(plate, arrived) - arrived
        report.latencies.append(latency)
        echo(f"{plate}: {latency:.1f} s")
    report.churn_requests = api.stats.requests_total
    report.churn_seconds = time.monotonic() - started
    if quiet_seconds > 0:
        echo(f"quiet for {quiet_seconds:g} s: counting requests without churn")
        api.stats.reset()
        time.sleep(quiet_seconds)
        report.quiet_requests = api.stats.requests_total
        report.quiet_seconds = quiet_seconds
    report.times_named = [inbox.count_naming(plate) for plate, _ in pending]
