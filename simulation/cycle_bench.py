"""Warm builds and whole steady cycles in one long-lived process, as `watch` runs them.

    uv run --all-extras python -m simulation.cycle_bench \
        [--clusters 100] [--vehicles-per-cluster 10] [--latency-ms 50] [--rounds 8]

`athlon-flex bench` starts each stage as a process of its own (what an Airflow task
pays); this one keeps one process, so dbt's import and its parse of the project are
paid once, before the rounds. On a database of its own (POSTGRES_DB
athlon_flex_cycle_bench, recreated) against the simulated showroom over HTTP: two
cycles first (the first load and full build, then one steady cycle), then per round
a `dbt build` on its own (warm) and a whole cycle (load, build, notify), each timed
from the call to its return. The in-flight limit is ATHLON_MAX_CONCURRENCY's.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from athlon_flex.settings import Settings
from simulation.bench import on_fresh_database

BENCH_DATABASE = "athlon_flex_cycle_bench"


@dataclass
class CycleBenchReport:
    """Seconds per round; the scope each round's cycle build ran in."""

    builds: list[float] = field(default_factory=list)
    cycles: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)


def run_cycle_bench(
    settings: Settings,
    *,
    clusters: int = 100,
    vehicles_per_cluster: int = 10,
    latency_ms: int = 50,
    rounds: int = 8,
    database: str = BENCH_DATABASE,
    echo: Callable[[str], None] = print,
) -> CycleBenchReport:
    """Run the rounds on `database` (recreated); echo each and the medians; return
    every figure."""
    from simulation.fake_api import Catalog, FakeShowroom
    from transform.runner import build
    from watcher.cycle import run_cycle

    catalog = Catalog.generate(
        clusters=clusters, vehicles_per_cluster=vehicles_per_cluster, seed=1
    )
    report = CycleBenchReport()
    with FakeShowroom(catalog, host="127.0.0.1", port=0, latency_ms=latency_ms) as api:
        bench = on_fresh_database(settings, api.url, database)
        for kind in ("first", "steady"):
            started = time.perf_counter()
            run_cycle(bench)
            echo(f"{kind} cycle: {time.perf_counter() - started:.2f} s (not counted)")
        for round_ in range(1, rounds + 1):
            started = time.perf_counter()
            build(bench)
            report.builds.append(time.perf_counter() - started)
            started = time.perf_counter()
            cycle = run_cycle(bench)
            report.cycles.append(time.perf_counter() - started)
            report.loads.append(cycle.load.seconds)
            report.scopes.append(cycle.transform.scope)
            echo(
                f"round {round_}: build {report.builds[-1]:.2f} s, whole cycle "
                f"{report.cycles[-1]:.2f} s (load {cycle.load.seconds:.2f} s, "
                f"{cycle.transform.scope} build {cycle.transform.seconds:.2f} s)"
            )
    echo(
        f"{clusters} x {vehicles_per_cluster} at {latency_ms} ms, "
        f"{settings.athlon_max_concurrency} in flight, {rounds} rounds"
    )
    for name, values in (
        ("warm build", report.builds),
        ("whole cycle", report.cycles),
        ("of which the load", report.loads),
    ):
        echo(
            f"median {name}: {statistics.median(values):.2f} s "
            f"({min(values):.2f} to {max(values):.2f})"
        )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--vehicles-per-cluster", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    run_cycle_bench(
        Settings(),
        clusters=args.clusters,
        vehicles_per_cluster=args.vehicles_per_cluster,
        latency_ms=args.latency_ms,
        rounds=args.rounds,
    )


if __name__ == "__main__":
    main()
