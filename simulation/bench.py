"""`athlon-flex bench`: full cycles against the simulated API, measured per stage.

Each stage runs in a fresh interpreter (spawned process) so its peak memory is its own
(imports included) and not hidden behind the benchmark's. Requests and the most
requests in flight are counted by the simulated server, not by the loader, so the
figures stay honest whatever the loader believes it did.

Cycles: 1 = first load into an empty database (every detail fetched), 2 = steady state
(nothing changed), 3 = churn (a few cars leave, arrive and change price), then steady
cycles again if more are asked for.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from athlon_flex.database import ensure_postgres, recreate_database
from athlon_flex.settings import Settings

log = logging.getLogger(__name__)

STAGES = ("load", "transform", "notify")
# stage -> (module, function, keyword arguments): what the CLI's commands call.
STAGE_FUNCTIONS: dict[str, tuple[str, str, dict[str, object]]] = {
    "load": ("loader.pipeline", "load", {"allow_shrink": True}),
    "transform": ("transform.runner", "build", {}),
    "notify": ("notifier.stage", "notify", {}),
}
# The bench's own database on the configured server, dropped at every start.
BENCH_DATABASE = "athlon_flex_bench"


@dataclass
class StageFigures:
    """What one stage of one cycle cost."""

    cycle: int
    kind: str
    stage: str
    seconds: float  # the stage process from spawn to result, imports included
    stage_seconds: float  # the stage function alone, as a warm worker would run it
    peak_rss_mib: float
    requests: int = 0
    max_in_flight: int = 0
    detail: str = ""


@dataclass
class BenchReport:
    """All figures of a benchmark run and how it was set up."""

    clusters: int
    vehicles_per_cluster: int
    latency_ms: int
    max_concurrency: int
    figures: list[StageFigures] = field(default_factory=list)

    def table(self) -> str:
        """A Markdown table, ready for README or docs/benchmarks.md."""
        lines = [
            f"{self.clusters} clusters x {self.vehicles_per_cluster} vehicles "
            f"({self.clusters * self.vehicles_per_cluster} vehicles), "
            f"{self.latency_ms} ms latency, ATHLON_MAX_CONCURRENCY="
            f"{self.max_concurrency}",
            "",
            "| cycle | kind | stage | process s | stage s | peak RSS MiB "
            "| requests | max in flight |",
            "|---:|---|---|---:|---:|---:|---:|---:|",
        ]
        for f in self.figures:
            lines.append(
                f"| {f.cycle} | {f.kind} | {f.stage} | {f.seconds:.2f} | "
                f"{f.stage_seconds:.2f} | {f.peak_rss_mib:.0f} | {f.requests} | "
                f"{f.max_in_flight} |"
            )
        return "\n".join(lines)

    def median_seconds(self, stage: str, kind: str) -> float | None:
        """Median wall time of a stage over the cycles of one kind."""
        values = [
            f.seconds for f in self.figures if f.stage == stage and f.kind == kind
        ]
        return statistics.median(values) if values else None


def _stage_in_child(stage: str, settings: Settings, queue) -> None:
    """Run one stage in this (spawned) process; report seconds, peak RSS, summary."""
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    # Only this stage's modules, so the peak memory is this stage's own.
    module_name, function_name, kwargs = STAGE_FUNCTIONS[stage]
    function = getattr(importlib.import_module(module_name), function_name)
    stage_started = time.perf_counter()
    try:
        summary, error = function(settings, **kwargs), None
    except Exception as caught:  # reported to the parent, which fails loudly
        summary, error = None, f"{type(caught).__name__}: {caught}"
    finished = time.perf_counter()
    peak = _peak_rss_mib()
    queue.put(
        (
            finished - started,
            finished - stage_started,
            peak,
            str(summary) if summary else "",
            error,
        )
    )


def _peak_rss_mib() -> float:
    """This process's peak resident memory since it started its program.

    Not `ru_maxrss`: Linux carries that across exec, so a spawned child would report
    at least the bench's own size at the fork (the simulated API and its catalog),
    which hid the stage's real figure. VmHWM belongs to the new program only.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # Elsewhere (macOS: bytes, not KiB; may include the parent as above).
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def _run_stage(stage: str, settings: Settings) -> tuple[float, float, float, str]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_stage_in_child, args=(stage, settings, queue))
    process.start()
    seconds, stage_seconds, peak, summary, error = queue.get()
    process.join()
    if error:
        raise RuntimeError(f"bench: stage {stage} failed: {error}")
    return seconds, stage_seconds, peak, summary


def _churn(catalog, fraction: float = 0.02) -> str:
    """A realistic ten minutes: ~2% leave, as many arrive, ~2% change price."""
    vehicles = list(catalog.vehicles)
    count = max(1, int(len(vehicles) * fraction))
    for vehicle in vehicles[:count]:
        catalog.remove_vehicle(vehicle.id)
    for _ in range(count):
        catalog.add_vehicle()
    for vehicle in vehicles[count : 2 * count]:
        catalog.set_price(vehicle.id, round(vehicle.calculated_price * 0.95, 2))
    return f"{count} left, {count} arrived, {count} repriced"


def on_fresh_database(settings: Settings, api_url: str, database: str) -> Settings:
    """The settings anonymous against `api_url`, nobody to tell, on `database`,
    which is dropped and created again."""
    bench = settings.model_copy(
        update={
            "athlon_api_url": api_url,
            "athlon_username": None,
            "athlon_password": None,
            "postgres_db": database,
            "email_to": [],
            "notify_subscriptions_file": None,
        }
    )
    recreate_database(ensure_postgres(bench))
    return bench


def run_bench(
    settings: Settings,
    *,
    clusters: int,
    vehicles_per_cluster: int,
    latency_ms: int,
    cycles: int = 3,
    seed: int = 1,
    echo: Callable[[str], None] = print,
) -> BenchReport:
    """Run `cycles` full cycles on a fresh database and return every stage's figures."""
    from simulation.fake_api import Catalog, FakeShowroom

    report = BenchReport(
        clusters=clusters,
        vehicles_per_cluster=vehicles_per_cluster,
        latency_ms=latency_ms,
        max_concurrency=settings.athlon_max_concurrency,
    )
    catalog = Catalog.generate(
        clusters=clusters, vehicles_per_cluster=vehicles_per_cluster, seed=seed
    )
    with FakeShowroom(catalog, host="127.0.0.1", port=0, latency_ms=latency_ms) as api:
        bench_settings = on_fresh_database(settings, api.url, BENCH_DATABASE)
        for cycle in range(1, cycles + 1):
            if cycle == 1:
                kind = "first"
            elif cycle == 3:
                kind = "churn"
                echo(f"cycle {cycle}: {_churn(catalog)}")
            else:
                kind = "steady"
            for stage in STAGES:
                api.stats.reset()
                seconds, stage_seconds, peak, summary = _run_stage(
                    stage, bench_settings
                )
                figures = StageFigures(
                    cycle=cycle,
                    kind=kind,
                    stage=stage,
                    seconds=seconds,
                    stage_seconds=stage_seconds,
                    peak_rss_mib=peak,
                    requests=api.stats.requests_total,
                    max_in_flight=api.stats.max_in_flight,
                    detail=summary,
                )
                report.figures.append(figures)
                echo(
                    f"cycle {cycle} ({kind}) {stage}: {seconds:.2f} s "
                    f"({stage_seconds:.2f} s in the stage), "
                    f"peak {peak:.0f} MiB, {figures.requests} requests, "
                    f"max {figures.max_in_flight} in flight"
                )
    return report


def write_report(report: BenchReport, path: Path) -> None:
    """Append the report's table to a Markdown file."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(report.table() + "\n\n")
