"""`athlon-flex bench`: real cycles, each stage in its own process, honest figures."""

from __future__ import annotations

import multiprocessing
import re
import statistics

from athlon_flex.settings import Settings
from simulation.bench import _peak_rss_mib, run_bench
from simulation.cycle_bench import run_cycle_bench

BALLAST_MIB = 400


def _report_peak(queue) -> None:
    queue.put(_peak_rss_mib())


def test_a_spawned_stage_reports_its_own_peak_not_its_parents() -> None:
    # ru_maxrss would report at least the parent's size at the fork (Linux carries
    # it across exec): the bench's figures were the simulated API's, not the stage's.
    ballast = bytearray(BALLAST_MIB * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # make every page resident
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_report_peak, args=(queue,))
    child.start()
    peak = queue.get(timeout=60)
    child.join()

    assert 5 < peak < BALLAST_MIB / 4, peak
    assert len(ballast) == BALLAST_MIB * 2**20


def test_bench_runs_first_steady_and_churn_cycles_and_counts_requests_server_side(
    settings: Settings,
) -> None:
    echoed: list[str] = []

    report = run_bench(
        settings.model_copy(update={"athlon_max_concurrency": 4}),
        clusters=5,
        vehicles_per_cluster=10,
        latency_ms=20,
        cycles=3,
        echo=echoed.append,
    )

    requests = [(f.cycle, f.kind, f.stage, f.requests) for f in report.figures]
    assert requests == [
        # clusters + 5 variation lists + 50 details
        (1, "first", "load", 56),
        (1, "first", "transform", 0),
        (1, "first", "notify", 0),
        # nothing changed: no details
        (2, "steady", "load", 6),
        (2, "steady", "transform", 0),
        (2, "steady", "notify", 0),
        # one car arrived (of a new model: one more cluster), one changed price:
        # the details of those two only
        (3, "churn", "load", 9),
        (3, "churn", "transform", 0),
        (3, "churn", "notify", 0),
    ]
    loads = [f for f in report.figures if f.stage == "load"]
    assert loads[0].max_in_flight == 4  # 50 detail calls at once, 20 ms each
    assert all(f.max_in_flight <= 4 for f in report.figures)
    # What each load process itself reported, timings (and its own count of the
    # requests in flight, which depends on timing) cut out.
    assert [
        re.sub(r" in [0-9.]+ s;|, at most \d+ in flight", "", f.detail) for f in loads
    ] == [
        "loaded 5 clusters, 50 vehicles, 950 options 56 requests (0 retries); "
        "details fetched 50, reused 0",
        "loaded 5 clusters, 50 vehicles, 950 options 6 requests (0 retries); "
        "details fetched 0, reused 50",
        "loaded 6 clusters, 50 vehicles, 950 options 9 requests (0 retries); "
        "details fetched 2, reused 48",
    ]
    for figures in report.figures:
        assert 0 < figures.stage_seconds <= figures.seconds
        assert 20 < figures.peak_rss_mib < 1024
    assert "cycle 3: 1 left, 1 arrived, 1 repriced" in echoed
    assert report.median_seconds("load", "steady") == report.figures[3].seconds


def test_cycle_bench_times_warm_builds_and_whole_cycles_in_one_process(
    settings: Settings,
) -> None:
    echoed: list[str] = []

    report = run_cycle_bench(
        settings.model_copy(update={"athlon_max_concurrency": 4}),
        clusters=2,
        vehicles_per_cluster=3,
        latency_ms=0,
        rounds=2,
        # The test's own database: its worker's parse of the project serves.
        database=settings.postgres_db,
        echo=echoed.append,
    )

    # The rounds are steady: each cycle's build is the cycle's selection, not full.
    assert report.scopes == ["cycle", "cycle"]
    assert [len(report.builds), len(report.cycles), len(report.loads)] == [2, 2, 2]
    assert all(
        0 < load < cycle
        for load, cycle in zip(report.loads, report.cycles, strict=True)
    )
    assert [line.split(":")[0] for line in echoed] == [
        "first cycle",
        "steady cycle",
        "round 1",
        "round 2",
        "2 x 3 at 0 ms, 4 in flight, 2 rounds",
        "median warm build",
        "median whole cycle",
        "median of which the load",
    ]
    assert echoed[-3] == (
        f"median warm build: {statistics.median(report.builds):.2f} s "
        f"({min(report.builds):.2f} to {max(report.builds):.2f})"
    )
