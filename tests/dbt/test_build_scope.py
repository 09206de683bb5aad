"""Which nodes a build runs: the full build after a change and daily, the cycle's
build in between (selectors.yml; docs/benchmarks.md says why that is safe)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from athlon_flex.settings import Settings
from tests.dbt.readback import at, query, windows
from tests.support.raw_tables import (
    CatalogState,
    clusters_for,
    make_vehicle,
    write_state,
)
from transform import runner
from transform.runner import TransformError, build

A = make_vehicle("veh-a", make="Volkswagen", model="Golf", price=500.0)
B = make_vehicle("veh-b", make="Kia", model="Niro", price=450.0)

# 14 models (10 views, the incremental mart and three table marts), 1 seed, 121
# data tests.
FULL = ("full", 3, 14, 121)
# The four marts that are tables; the tests on raw, snapshots and marts, with one
# columns_not_null per relation in place of its 44 not_null tests.
CYCLE = ("cycle", 3, 4, 45)


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


def test_the_cycle_checks_every_not_null_column_it_leaves_out_in_one_query_per_relation(
    settings: Settings, raw_db
) -> None:
    write_state(raw_db, CatalogState.of([A]), at(10, 0))
    build(settings)  # full: writes manifest.json
    target = settings.data_dir / "dbt" / "target"
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    # `dbt ls` names a test by its fully qualified name; the manifest by its name.
    in_cycle = {
        fqn.split(".")[-1] for fqn in runner.list_nodes(settings, "cycle", "test")
    }
    assert _scope(build(settings)) == CYCLE  # compiles the cycle's tests

    def tested(test: dict) -> str:
        return test["attached_node"] or test["depends_on"]["nodes"][0]

    def kind(test: dict) -> str:
        return (test.get("test_metadata") or {}).get("name", "")

    # Every not_null test the cycle leaves out, by the relation it tests.
    left_out: dict[str, set[str]] = {}
    for test in nodes.values():
        if kind(test) == "not_null" and test["name"] not in in_cycle:
            column = test["test_metadata"]["kwargs"]["column_name"]
            left_out.setdefault(tested(test), set()).add(column)
    combined = {
        tested(test): test
        for test in nodes.values()
        if kind(test) == "columns_not_null"
    }
    checked: dict[str, set[str]] = {}
    for relation, test in combined.items():
        assert test["name"] in in_cycle, test["name"]
        sql = next(target.glob(f"compiled/**/{test['name']}.sql")).read_text()
        checked[relation] = set(re.findall(r"where (\w+) is null", sql))
    # Left out of the cycle and not combined: only relations the cycle does not
    # build (staging views, the seed) or that refuse nulls themselves (the
    # notifier's primary keys).
    unguarded = {
        relation: columns
        for relation, columns in left_out.items()
        if not columns <= checked.get(relation, set())
    }
    assert all(
        relation.startswith(
            (
                "model.athlon_flex.stg_",
                "seed.athlon_flex.",
                "source.athlon_flex.notifier.",
            )
        )
        for relation in unguarded
    ), unguarded
    assert sum(len(columns) for columns in checked.values()) == 44
    assert len(checked) == 11


def test_a_null_in_a_guarded_column_fails_the_cycles_build_naming_column_and_relation(
    settings: Settings, raw_db
) -> None:
    write_state(raw_db, CatalogState.of([A]), at(10, 0))
    assert _scope(build(settings)) == FULL
    broken = {**B, "make": None}
    state = CatalogState(vehicles=(A, broken), clusters=tuple(clusters_for([A])))
    write_state(raw_db, state, at(10, 10))

    with pytest.raises(TransformError) as failed:
        build(settings)

    assert "source_columns_not_null_athlon_vehicles_ (test)" in str(failed.value)
    # Nothing downstream ran: the snapshot holds only the first load's car.
    assert windows(raw_db) == [("veh-a", at(10, 0), None)]
