"""Which nodes a build runs: the full build after a change and daily, the cycle's
build in between (selectors.yml; docs/benchmarks.md says why that is safe)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from athlon_flex.settings import Settings
from tests.dbt.readback import at, query, windows
from tests.support.raw_tables import CatalogState, make_vehicle, write_state
from transform import runner
from transform.runner import build

A = make_vehicle("veh-a", make="Volkswagen", model="Golf", price=500.0)
B = make_vehicle("veh-b", make="Kia", model="Niro", price=450.0)

# 14 models (10 views, the incremental mart and three table marts), 1 seed, 110
# data tests.
FULL = ("full", 3, 14, 110)
# The four marts that are tables; the tests on raw, snapshots and marts.
CYCLE = ("cycle", 3, 4, 78)


def _scope(summary: runner.BuildSummary) -> tuple[str, int, int, int]:
    assert summary.models_failed == summary.tests_failed == summary.skipped == 0
    return (
        summary.scope,
        summary.snapshots_passed,
        summary.models_passed,
        summary.tests_passed + summary.tests_warned,
    )


def test_first_build_is_full_then_cycles_build_snapshots_marts_and_guarding_tests(
    settings: Settings, raw_db
) -> None:
    write_state(raw_db, CatalogState.of([A]), at(10, 0))
    assert _scope(build(settings)) == FULL

    write_state(raw_db, CatalogState.of([A, B]), at(10, 10))
    assert _scope(build(settings)) == CYCLE
    assert windows(raw_db) == [("veh-a", at(10, 0), None), ("veh-b", at(10, 10), None)]
    # The view the notifier reads sees the new car without being rebuilt.
    assert (
        query(raw_db, "select vehicle_id from marts.vehicles_to_notify order by 1")
        == []
    )  # no recipient registered yet: nobody to tell


def test_full_build_runs_again_after_a_day_and_after_a_project_change(
    settings: Settings, raw_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_state(raw_db, CatalogState.of([A]), at(10, 0))
    assert _scope(build(settings)) == FULL
    assert _scope(build(settings)) == CYCLE

    # The database was last fully built from another version of the project.
    raw_db.cursor().execute(
        "comment on schema staging is"
        " 'athlon-flex full build: 0123abcd 2026-01-01T00:00:00+00:00'"
    )
    raw_db.commit()
    assert _scope(build(settings)) == FULL
    assert _scope(build(settings)) == CYCLE

    # A day after the last full build.
    monkeypatch.setattr(runner, "FULL_BUILD_EVERY", timedelta(0))
    assert _scope(build(settings)) == FULL


def test_a_recreated_database_gets_a_full_build_whatever_target_holds(
    settings: Settings, raw_db
) -> None:
    write_state(raw_db, CatalogState.of([A]), at(10, 0))
    assert _scope(build(settings)) == FULL
    # Views and seed dropped (a restored dump, a new database): the record goes too.
    with raw_db.cursor() as cursor:
        cursor.execute("drop schema staging cascade")
    raw_db.commit()
    assert _scope(build(settings)) == FULL
    assert windows(raw_db) == [("veh-a", at(10, 0), None)]
