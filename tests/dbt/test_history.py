"""Long histories: the incremental mart stays right, and what a build costs.

The measurement (`test_build_time_one_day_vs_long_history`) runs only when
ATHLON_DBT_BENCHMARK_DAYS is set (it takes minutes); it prints its figures and
asserts no duration:

    ATHLON_DBT_BENCHMARK_DAYS=365 uv run pytest tests/dbt/test_history.py -s -k time
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from datetime import timedelta

import pytest

from athlon_flex.settings import Settings
from tests.dbt.history import fast_forward, versions_of
from tests.dbt.readback import query, snapshot_counts
from tests.support.raw_tables import generate_history, write_state
from transform.runner import build

log = logging.getLogger(__name__)

BENCHMARK_DAYS = int(os.environ.get("ATHLON_DBT_BENCHMARK_DAYS", "0"))
CYCLES_PER_DAY = 144  # one load every 10 minutes

_COMPARE = (
    "select vehicle_id, available_since, available_until, price_per_month_in_euro"
    " from {} order by 1, 2"
)


def _mart_equals_full_recomputation(db) -> bool:
    return query(db, _COMPARE.format("marts.vehicle_availability")) == query(
        db, _COMPARE.format("staging.int_vehicle_availability_windows")
    )


def test_generated_history_is_deterministic_and_churns():
    first = list(generate_history(30, showroom_size=20, churn=0.1, seed=7))
    again = list(generate_history(30, showroom_size=20, churn=0.1, seed=7))

    assert [(at, [v["id"] for v in state.vehicles]) for at, state in first] == [
        (at, [v["id"] for v in state.vehicles]) for at, state in again
    ]
    assert first[1][0] - first[0][0] == timedelta(minutes=10)
    presence = [{v["id"] for v in state.vehicles} for _, state in first]
    assert all(len(ids) == 20 for ids in presence)  # as many arrive as leave
    came_back = [
        vehicle_id
        for vehicle_id in set().union(*presence)
        # present, then absent for a while, then present again
        if re.search(
            "10+1", "".join("1" if vehicle_id in ids else "0" for ids in presence)
        )
    ]
    assert came_back  # some cars left and returned later (same id)


def test_incremental_mart_matches_full_recomputation_over_a_day_of_churn(
    settings: Settings, raw_db
):
    history = list(
        generate_history(CYCLES_PER_DAY + 1, showroom_size=40, churn=0.03, seed=3)
    )
    day, next_cycle = history[:-1], history[-1]
    write_state(raw_db, day[0][1], day[0][0])
    build(settings)  # creates the snapshot tables and views

    versions = versions_of(day)
    fast_forward(raw_db, versions)
    build(settings, full_refresh=True)  # the mart from the whole day's history
    counts = snapshot_counts(raw_db)
    assert counts == {
        "snap_vehicles": len(versions.vehicles),
        "snap_vehicle_clusters": len(versions.clusters),
        "snap_vehicle_options": len(versions.options),
    }
    assert len(versions.vehicles) > 200  # the day had real churn
    assert query(
        raw_db,
        "select count(*) > 0 from (select vehicle_id from marts.vehicle_availability"
        " group by vehicle_id having count(*) > 1) as returned",
    ) == [(True,)]  # some cars came back: several windows
    assert _mart_equals_full_recomputation(raw_db)

    write_state(raw_db, next_cycle[1], next_cycle[0])
    build(settings)  # incremental: only the vehicles changed in this cycle
    assert _mart_equals_full_recomputation(raw_db)


def _node_seconds(settings: Settings) -> dict[str, float]:
    """Seconds per kind of node of the last dbt run (from run_results.json)."""
    results = json.loads(
        (settings.data_dir / "dbt" / "target" / "run_results.json").read_text()
    )["results"]
    seconds: dict[str, float] = {}
    for result in results:
        unique_id = result["unique_id"]
        if unique_id.endswith(".vehicle_availability"):
            key = "mart vehicle_availability"
        elif unique_id.startswith("snapshot."):
            key = "snapshots"
        elif unique_id.startswith(("test.", "unit_test.")):
            key = "tests"
        else:
            key = "other models"
        seconds[key] = seconds.get(key, 0.0) + result["execution_time"]
    return {key: round(value, 2) for key, value in sorted(seconds.items())}


def _measure(settings: Settings, db, days: int, seed: int) -> dict[str, object]:
    cycles = generate_history(
        days * CYCLES_PER_DAY + 1,
        showroom_size=300,
        churn=0.002,
        price_changes=0.001,
        seed=seed,
    )
    # Streamed: a long history does not fit in memory as a list of states.
    versions = versions_of(itertools.islice(cycles, days * CYCLES_PER_DAY))
    next_cycle = next(cycles)
    fast_forward(db, versions)
    full = build(settings, full_refresh=True)
    full_nodes = _node_seconds(settings)
    write_state(db, next_cycle[1], next_cycle[0])
    routine = build(settings)
    figures = {
        "days": days,
        "snapshot rows": snapshot_counts(db),
        "windows": query(db, "select count(*) from marts.vehicle_availability")[0][0],
        "full build s": full.seconds,
        "full build nodes s": full_nodes,
        "routine build s": routine.seconds,
        "routine build nodes s": _node_seconds(settings),
    }
    assert _mart_equals_full_recomputation(db)
    return figures


@pytest.mark.skipif(
    not BENCHMARK_DAYS, reason="set ATHLON_DBT_BENCHMARK_DAYS=<days> to measure"
)
@pytest.mark.timeout(3600)
def test_build_time_one_day_vs_long_history(settings: Settings, raw_db):
    first = next(iter(generate_history(1, showroom_size=300)))
    write_state(raw_db, first[1], first[0])
    build(settings)  # creates the tables the fast-forward fills

    figures = [
        _measure(settings, raw_db, days=1, seed=1),
        _measure(settings, raw_db, days=BENCHMARK_DAYS, seed=2),
    ]
    report = json.dumps(figures, indent=2)
    log.warning("dbt build cost by history length:\n%s", report)
    print(report)  # the benchmark's output (run with -s)
