"""Walk the showroom through time with real dbt on real PostgreSQL; assert exact rows.

Each step writes one catalog state to `raw` (as a loader run would) and runs
`transform.runner.build`; the assertions pin marts.vehicle_availability, the
snapshot row counts and the timestamps the snapshots carry.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from athlon_flex.dbt_project import model_columns
from athlon_flex.settings import Settings
from notifier.contract import VEHICLE_ATTRIBUTES
from tests.dbt.readback import at, query, snapshot_counts, windows
from tests.support.raw_tables import (
    CatalogState,
    make_options,
    make_vehicle,
    with_price,
    write_state,
)
from transform.runner import TransformError, build, run_unit_tests

A = make_vehicle("veh-a", make="Volkswagen", model="Golf", price=500.0)
B = make_vehicle("veh-b", make="Volkswagen", model="Polo", price=450.0)
C = make_vehicle("veh-c", make="BMW", model="X1", price=700.0, fuel_type_id=3)
D = make_vehicle("veh-d", make="Volkswagen", model="Golf", price=480.0)

OPTIONS_PER_VEHICLE = 4  # make_options' default


@pytest.fixture
def settings(make_settings) -> Settings:
    """Without a grace period: the windows below are pinned for loads ten minutes
    apart where a car that leaves is gone (the grace period has its own unit tests
    and tests/faults/test_exactly_once.py)."""
    return make_settings(notify_grace_minutes=0)


def _build_and_check(settings: Settings) -> None:
    summary = build(settings)
    assert summary.snapshots_passed == 3
    assert summary.models_failed == summary.tests_failed == summary.skipped == 0


def test_availability_windows_follow_the_showroom_through_leave_return_and_price_change(
    settings, raw_db
):
    t1, t2, t3, t4 = at(10, 0), at(10, 10), at(10, 20), at(10, 30)
    c_repriced = with_price(C, 720.0)

    # 1. First load: three cars, three open windows.
    write_state(raw_db, CatalogState.of([A, B, C]), t1)
    _build_and_check(settings)
    assert windows(raw_db) == [
        ("veh-a", t1, None),
        ("veh-b", t1, None),
        ("veh-c", t1, None),
    ]
    assert snapshot_counts(raw_db) == {
        "snap_vehicles": 3,
        "snap_vehicle_clusters": 3,
        "snap_vehicle_options": 3 * OPTIONS_PER_VEHICLE,
    }

    # 2. A leaves, D (another Golf, now the cheapest) arrives, C changes price.
    write_state(raw_db, CatalogState.of([B, c_repriced, D]), t2)
    _build_and_check(settings)
    assert windows(raw_db) == [
        ("veh-a", t1, t2),
        ("veh-b", t1, None),
        ("veh-c", t1, None),  # a price change keeps the window
        ("veh-d", t2, None),
    ]
    assert snapshot_counts(raw_db) == {
        "snap_vehicles": 5,  # + C's new price, + D
        "snap_vehicle_clusters": 3,  # Golf's aggregates moved: no new version
        "snap_vehicle_options": 4 * OPTIONS_PER_VEHICLE,  # + D's; A's closed
    }

    # 3. A returns: a second window for A.
    write_state(raw_db, CatalogState.of([A, B, c_repriced, D]), t3)
    _build_and_check(settings)
    windows_after_return = [
        ("veh-a", t1, t2),
        ("veh-a", t3, None),
        ("veh-b", t1, None),
        ("veh-c", t1, None),
        ("veh-d", t2, None),
    ]
    assert windows(raw_db) == windows_after_return
    counts_after_return = {
        "snap_vehicles": 6,
        "snap_vehicle_clusters": 3,
        "snap_vehicle_options": 5 * OPTIONS_PER_VEHICLE,
    }
    assert snapshot_counts(raw_db) == counts_after_return

    # 4. A load with no change adds no snapshot rows and changes no window.
    write_state(raw_db, CatalogState.of([A, B, c_repriced, D]), t4)
    _build_and_check(settings)
    assert snapshot_counts(raw_db) == counts_after_return
    assert windows(raw_db) == windows_after_return

    # Every snapshot timestamp is an extraction time, valid_from = the version's load.
    assert query(
        raw_db,
        "select vehicle_id, calculated_price_per_month_in_euro, extracted_at,"
        " dbt_valid_from, dbt_updated_at, dbt_valid_to"
        " from snapshots.snap_vehicles order by vehicle_id, dbt_valid_from",
    ) == [
        ("veh-a", 500, t1, t1, t1, t2),
        ("veh-a", 500, t3, t3, t3, None),
        ("veh-b", 450, t1, t1, t1, None),
        ("veh-c", 700, t1, t1, t1, t2),
        ("veh-c", 720, t2, t2, t2, None),
        ("veh-d", 480, t2, t2, t2, None),
    ]

    # The window shows its latest version: C at its new price, fuel type named.
    assert query(
        raw_db,
        "select vehicle_id, price_per_month_in_euro, fuel_type, is_available,"
        " cluster_showroom_uri from marts.vehicle_availability"
        " where vehicle_id = 'veh-c'",
    ) == [
        (
            "veh-c",
            720,
            "Elektrisch",
            True,
            "https://flex.athlon.com/app/showroom/bmw/x1",
        )
    ]

    # C's rise inside its stay is a price change; A's return at the same price and
    # D's arrival are not.
    assert query(
        raw_db,
        "select vehicle_id, make, model, changed_at, previous_price_per_month_in_euro,"
        " price_per_month_in_euro, change_in_euro, change_percent, is_drop,"
        " is_available from marts.vehicle_price_changes",
    ) == [("veh-c", "BMW", "X1", t2, 700, 720, 20, Decimal("2.86"), False, True)]
    # Only A's first stay has ended (10 minutes): the Golf's lease speed.
    assert query(
        raw_db,
        "select make, model, leased_count, median_hours_available,"
        " p90_hours_available from marts.vehicle_lease_speed",
    ) == [("Volkswagen", "Golf", 1, Decimal("0.2"), Decimal("0.2"))]

    # The incremental mart equals a full recomputation from the whole history.
    assert query(
        raw_db,
        "select vehicle_id, available_since, available_until, price_per_month_in_euro"
        " from marts.vehicle_availability order by 1, 2",
    ) == query(
        raw_db,
        "select vehicle_id, available_since, available_until, price_per_month_in_euro"
        " from staging.int_vehicle_availability_windows order by 1, 2",
    )

    # Clusters: one version each (A/D coming and going moved only the aggregates),
    # and the mart shows the latest aggregates.
    assert query(
        raw_db,
        "select make, model, dbt_valid_from, dbt_valid_to"
        " from snapshots.snap_vehicle_clusters order by make, model",
    ) == [
        ("BMW", "X1", t1, None),
        ("Volkswagen", "Golf", t1, None),
        ("Volkswagen", "Polo", t1, None),
    ]
    assert query(
        raw_db,
        "select make, model, vehicle_count, min_price_per_month_in_euro,"
        " first_vehicle_id, first_seen_at, aggregates_extracted_at"
        " from marts.vehicle_clusters order by make, model",
    ) == [
        ("BMW", "X1", 1, 720, "veh-c", t1, t4),
        ("Volkswagen", "Golf", 2, 480, "veh-d", t1, t4),
        ("Volkswagen", "Polo", 1, 450, "veh-b", t1, t4),
    ]

    # vehicles_to_notify: every open window a recipient has not been told about.
    with raw_db.cursor() as cursor:
        cursor.execute("insert into notifier.recipients (recipient) values ('console')")
        cursor.execute(
            "insert into notifier.notifications"
            " (vehicle_id, available_since, recipient)"
            " values ('veh-b', %s, 'console'), ('veh-a', %s, 'console')",
            (t1, t1),  # A's *first* window was announced; its return was not
        )
    assert query(
        raw_db,
        "select recipient, vehicle_id, available_since from marts.vehicles_to_notify"
        " order by vehicle_id",
    ) == [
        ("console", "veh-a", t3),
        ("console", "veh-c", t1),
        ("console", "veh-d", t2),
    ]

    # The reader role may read the marts and nothing else.
    assert query(
        raw_db,
        "select has_schema_privilege('reader', 'marts', 'usage'),"
        " has_table_privilege('reader', 'marts.vehicle_availability', 'select'),"
        " has_table_privilege('reader', 'marts.vehicles_to_notify', 'select'),"
        " has_schema_privilege('reader', 'snapshots', 'usage'),"
        " has_table_privilege('reader', 'marts.vehicle_availability', 'insert')",
    ) == [(True, True, True, False, False)]


def test_duplicate_vehicle_id_in_raw_fails_the_build_and_leaves_history_unchanged(
    settings, raw_db
):
    write_state(raw_db, CatalogState.of([A, B]), at(10, 0))
    _build_and_check(settings)
    history = query(raw_db, "select * from snapshots.snap_vehicles order by 1")
    marts = windows(raw_db)

    corrupt = CatalogState(
        vehicles=(A, with_price(A, 510.0), C),  # veh-a twice
        options=tuple(make_options("veh-a") + make_options("veh-c")),
    )
    write_state(raw_db, corrupt, at(10, 10))
    with pytest.raises(TransformError) as failure:
        build(settings)

    message = str(failure.value)
    assert message.startswith(
        "dbt build failed: 1 node(s) failed: source_relation_tests_athlon_vehicles_"
        " (test): Got 1 result, configured to fail if != 0"
        " [failed: source_unique_athlon_vehicles_id on 1 row(s)]."
    )
    assert "raw data and the snapshots' earlier history are unchanged" in message
    # The snapshots never saw the corrupt load: B is not closed, C not added.
    assert query(raw_db, "select * from snapshots.snap_vehicles order by 1") == history
    assert windows(raw_db) == marts


def test_first_build_on_empty_raw_tables_succeeds_and_unit_tests_pass(settings, raw_db):
    summary = build(settings)

    assert summary.models_failed == summary.tests_failed == 0
    assert snapshot_counts(raw_db) == {
        "snap_vehicles": 0,
        "snap_vehicle_clusters": 0,
        "snap_vehicle_options": 0,
    }
    assert windows(raw_db) == []
    # The marts the notifier reads have exactly the columns their contracts declare
    # (the notifier takes its column list from the same YAML).
    for mart in ("vehicle_availability", "vehicles_to_notify", "vehicle_clusters"):
        built = query(
            raw_db,
            "select column_name from information_schema.columns"
            f" where table_schema = 'marts' and table_name = '{mart}'"
            " order by ordinal_position",
        )
        assert tuple(name for (name,) in built) == model_columns(mart)
    assert model_columns("vehicles_to_notify") == (
        "recipient",
        *VEHICLE_ATTRIBUTES,
        "left_at",
        "alert_kind",
    )
    # on-run-start created the notifier's tables, so its view exists and is empty.
    assert query(raw_db, "select count(*) from marts.vehicles_to_notify") == [(0,)]
    assert query(
        raw_db,
        "select table_name from information_schema.tables"
        " where table_schema = 'notifier' order by 1",
    ) == [
        ("notifications",),
        ("outbox",),
        ("pipeline_health",),
        ("price_drop_notifications",),
        ("recipients",),
        ("state",),
    ]
    assert query(
        raw_db,
        "select schema_name from information_schema.schemata"
        " where schema_name in ('raw', 'snapshots', 'staging', 'marts', 'notifier')"
        " order by 1",
    ) == [("marts",), ("notifier",), ("raw",), ("snapshots",), ("staging",)]

    # The unit tests (not part of the ten-minute build) run on the built database.
    unit = run_unit_tests(settings)
    assert (unit.tests_passed, unit.tests_failed) == (14, 0)


def test_build_without_raw_tables_says_to_run_the_load_first(settings, db):
    with pytest.raises(TransformError) as failure:
        build(settings)

    message = str(failure.value)
    assert (
        "raw.vehicle_clusters, raw.vehicles, raw.vehicles__options missing" in message
    )
    assert "run it first" in message
    assert "Nothing was built or changed" in message
    assert query(
        db,
        "select count(*) from information_schema.schemata"
        " where schema_name in ('snapshots', 'staging', 'marts')",
    ) == [(0,)]
