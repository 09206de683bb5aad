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
    with_price,
    write_state,
)
from transform import runner
from transform.runner import TransformError, build

A = make_vehicle("veh-a", make="Volkswagen", model="Golf", price=500.0)
B = make_vehicle("veh-b", make="Kia", model="Niro", price=450.0)

# 14 models (10 views, the incremental mart and three table marts), 1 seed, 121
# data tests.
FULL = ("full", 3, 14, 121)
# The four marts that are tables; one relation_tests per relation in place of the
# tests it combines, the singular test and the one warning test.
CYCLE = ("cycle", 3, 4, 13)


def _scope(summary: runner.BuildSummary) -> tuple[str, int, int, int]:
    assert summary.models_failed == summary.tests_failed == summary.skipped == 0
    return (
        summary.scope,
        summary.snapshots_passed,
        summary.models_passed,
        summary.tests_passed + summary.tests_warned,
    )


def _failure(settings: Settings) -> str:
    """The message of a build that must fail."""
    with pytest.raises(TransformError) as failed:
        build(settings)
    return str(failed.value)


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


def test_the_cycle_runs_every_test_it_leaves_out_in_its_relations_one_query(
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
        metadata = test.get("test_metadata") or {}
        if test["attached_node"]:
            return test["attached_node"]
        # A source's relationships test depends on its `to` source too.
        model = metadata.get("kwargs", {}).get("model", "")
        return next(
            node
            for node in test["depends_on"]["nodes"]
            if node.endswith("." + re.findall(r"'(\w+)'", model)[-1])
        )

    def kind(test: dict) -> str:
        return (test.get("test_metadata") or {}).get("name", "")

    tests = [node for node in nodes.values() if node["resource_type"] == "test"]
    # Every test the cycle leaves out, by the relation it tests.
    left_out: dict[str, set[str]] = {}
    for test in tests:
        if test["name"] not in in_cycle:
            left_out.setdefault(tested(test), set()).add(test["name"])
    combined: dict[str, set[str]] = {}
    for test in tests:
        if kind(test) == "relation_tests":
            assert test["name"] in in_cycle, test["name"]
            sql = next(target.glob(f"compiled/**/{test['name']}.sql")).read_text()
            combined[tested(test)] = set(re.findall(r"'(\w+)' as test_name", sql))
    # Each combined test is one the full build runs on its own, of that relation.
    by_name = {test["name"]: test for test in tests}
    assert all(
        tested(by_name[name]) == relation and name not in in_cycle
        for relation, names in combined.items()
        for name in names
    )
    # Left out of the cycle and not combined: only tests of relations the cycle
    # does not build (staging views, the seed) or whose tables refuse a duplicate
    # or a null themselves (the notifier's primary keys), and relation_tests runs
    # every error test of the relations it is on.
    unguarded = {
        relation: names - combined.get(relation, set())
        for relation, names in left_out.items()
        if names - combined.get(relation, set())
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
    assert len(combined) == 11
    assert sum(len(names) for names in combined.values()) == 76
    assert sum(len(names) for names in left_out.values()) == 121 - 13


def test_a_null_in_a_guarded_column_fails_the_cycles_build_naming_column_and_relation(
    settings: Settings, raw_db
) -> None:
    write_state(raw_db, CatalogState.of([A]), at(10, 0))
    assert _scope(build(settings)) == FULL
    broken = {**B, "make": None}
    state = CatalogState(vehicles=(A, broken), clusters=tuple(clusters_for([A])))
    write_state(raw_db, state, at(10, 10))

    message = _failure(settings)

    assert (
        "source_relation_tests_athlon_vehicles_ (test): Got 1 result, configured to "
        "fail if != 0 [failed: source_not_null_athlon_vehicles_make on 1 row(s)]"
    ) in message
    # Nothing downstream ran: the snapshot holds only the first load's car.
    assert windows(raw_db) == [("veh-a", at(10, 0), None)]


def _lose_scd_id(db, vehicle_id: str) -> None:
    """Null the dbt_scd_id of a car's snapshot rows (a test on that column fails)."""
    with db.cursor() as cursor:
        cursor.execute(
            "update snapshots.snap_vehicles set dbt_scd_id = null"
            " where vehicle_id = %s",
            (vehicle_id,),
        )
    db.commit()


def _tested_through(db) -> list[tuple]:
    return query(
        db, "select obj_description('snapshots'::regnamespace, 'pg_namespace')"
    )


def test_the_cycle_tests_a_snapshots_keys_changed_since_the_last_build_that_passed(
    settings: Settings, raw_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_state(raw_db, CatalogState.of([A]), at(10, 0))
    assert _scope(build(settings)) == FULL
    write_state(raw_db, CatalogState.of([A]), at(10, 10))
    assert _scope(build(settings)) == CYCLE
    assert _tested_through(raw_db) == [
        ("athlon-flex tested through 2025-01-01T10:10:00+00:00",)
    ]

    # Car A's row broken after the build that passed it: no snapshot run has changed
    # A since, so the cycle does not test A again; the daily full build does.
    _lose_scd_id(raw_db, "veh-a")
    write_state(raw_db, CatalogState.of([A, B]), at(10, 20))
    assert _scope(build(settings)) == CYCLE

    # Car B's row, from the load the last passing build snapshotted, is in the
    # cycle's scope, which a failing build does not move on: every cycle fails,
    # counting B's row only, until it is mended.
    _lose_scd_id(raw_db, "veh-b")
    write_state(raw_db, CatalogState.of([A, B]), at(10, 30))
    for _ in range(2):
        message = _failure(settings)
        assert (
            "relation_tests_snap_vehicles_ (test): Got 1 result, configured to fail "
            "if != 0 [failed: not_null_snap_vehicles_dbt_scd_id on 1 row(s)]"
        ) in message
    assert _tested_through(raw_db) == [
        ("athlon-flex tested through 2025-01-01T10:20:00+00:00",)
    ]

    # The full build tests every row: both cars.
    monkeypatch.setattr(runner, "FULL_BUILD_EVERY", timedelta(0))
    assert "not_null_snap_vehicles_dbt_scd_id (test): Got 2 results" in _failure(
        settings
    )


def test_a_load_stamped_before_the_last_passing_build_is_still_tested(
    settings: Settings, raw_db
) -> None:
    write_state(raw_db, CatalogState.of([A]), at(10, 0))
    assert _scope(build(settings)) == FULL
    cheaper = with_price(A, 450.0)
    write_state(raw_db, CatalogState.of([cheaper]), at(10, 10))
    assert _scope(build(settings)) == CYCLE  # A's second version, from 10:10
    write_state(raw_db, CatalogState.of([cheaper, B]), at(10, 20))
    assert _scope(build(settings)) == CYCLE  # passed: tested through 10:20

    # The machine's clock set back: car A leaves at 10:05, which closes its 10:10
    # version before it began. Stamped before the record, still in scope.
    write_state(raw_db, CatalogState.of([B]), at(10, 5))
    message = _failure(settings)

    assert (
        "relation_tests_snap_vehicles_ (test): Got 1 result, configured to fail if "
        "!= 0 [failed: ends_not_before_start_snap_vehicles_dbt_valid_from__dbt_valid_to"
        " on 1 row(s)]"
    ) in message
