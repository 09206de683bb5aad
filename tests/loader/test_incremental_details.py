"""Details are fetched only for new or changed vehicles, or when they grew old."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from athlon_flex.settings import Settings
from loader.pipeline import load
from simulation.fake_api import FakeShowroom
from tests.loader.conftest import comparable_vehicle, expected_vehicle, rows, without

# What moves between two runs over an unchanged showroom: the snapshot time, and dlt's
# load id.
MOVING = ("extracted_at", "_dlt_load_id")


def _tables(db: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        "vehicle_clusters": rows(db, "vehicle_clusters", "make, model"),
        "vehicles": rows(db, "vehicles", "id"),
        "vehicles__options": rows(db, "vehicles__options", "vehicle_id, id"),
    }


def test_second_run_without_changes_fetches_no_details_and_keeps_every_value(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    settings = loader_settings(fake_api)
    first = load(settings)
    before = _tables(db)
    fake_api.stats.reset()

    second = load(settings)

    assert (second.details_fetched, second.details_reused) == (0, 12)
    assert fake_api.stats.requests_by_endpoint["Vehicle"] == 0
    assert second.requests == 5  # clusters + 4 variation lists
    assert second.extracted_at > first.extracted_at
    after = _tables(db)
    for table in before:
        assert [without(row, *MOVING) for row in after[table]] == [
            without(row, *MOVING) for row in before[table]
        ], table
        assert {row["extracted_at"] for row in after[table]} == {second.extracted_at}
    # The details stay those of the first run, and say so.
    assert {row["details_fetched_at"] for row in after["vehicles"]} == {
        first.extracted_at
    }


def test_changed_price_refetches_the_details_of_that_vehicle_only(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    settings = loader_settings(fake_api)
    first = load(settings)
    changed = fake_api.catalog.vehicles[7]
    fake_api.catalog.set_price(changed.id, changed.calculated_price + 55)
    changed = fake_api.catalog.vehicle(changed.id)
    fake_api.stats.reset()

    second = load(settings)

    assert (second.details_fetched, second.details_reused) == (1, 11)
    assert fake_api.stats.requests_by_endpoint["Vehicle"] == 1
    loaded = {row["id"]: row for row in rows(db, "vehicles")}
    assert comparable_vehicle(loaded[changed.id]) == expected_vehicle(changed)
    assert {
        vehicle_id: row["details_fetched_at"] for vehicle_id, row in loaded.items()
    } == {
        vehicle.id: (
            second.extracted_at if vehicle.id == changed.id else first.extracted_at
        )
        for vehicle in fake_api.catalog.vehicles
    }


def test_new_vehicle_is_fetched_and_a_leased_one_disappears_with_its_options(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    settings = loader_settings(fake_api)
    load(settings)
    leased = fake_api.catalog.vehicles[0]
    fake_api.catalog.remove_vehicle(leased.id)
    arrived = fake_api.catalog.add_vehicle()
    fake_api.stats.reset()

    second = load(settings)

    assert (second.details_fetched, second.details_reused) == (1, 11)
    assert fake_api.stats.requests_by_endpoint["Vehicle"] == 1
    loaded = {row["id"]: row for row in rows(db, "vehicles")}
    assert set(loaded) == {vehicle.id for vehicle in fake_api.catalog.vehicles}
    assert comparable_vehicle(loaded[arrived.id]) == expected_vehicle(arrived)
    options = rows(db, "vehicles__options", "vehicle_id, _dlt_list_idx")
    assert {row["vehicle_id"] for row in options} == set(loaded)
    assert [
        row["option_name"] for row in options if row["vehicle_id"] == arrived.id
    ] == [option.name for option in arrived.options]


def test_details_older_than_the_refresh_hours_are_fetched_again(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    settings = loader_settings(fake_api)
    load(settings)
    with db.cursor() as cursor:
        cursor.execute(
            "update raw.vehicles set details_fetched_at = details_fetched_at "
            "- interval '25 hours' where id = %s",
            (fake_api.catalog.vehicles[2].id,),
        )
    fake_api.stats.reset()

    second = load(settings)

    assert (second.details_fetched, second.details_reused) == (1, 11)
    assert fake_api.stats.requests_by_endpoint["Vehicle"] == 1


def test_refresh_hours_zero_fetches_every_vehicle_every_run(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings]
) -> None:
    settings = loader_settings(fake_api, athlon_details_refresh_hours=0)
    load(settings)

    second = load(settings)

    assert (second.details_fetched, second.details_reused) == (12, 0)


def test_logging_in_refetches_all_details_since_prices_depend_on_who_asks(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    load(loader_settings(fake_api))

    member = load(loader_settings(fake_api, member=True, gross_yearly_income=50_000))

    assert (member.details_fetched, member.details_reused) == (12, 0)
    assert all(
        row["pricing__net_cost_per_month_in_euro"] is not None
        for row in rows(db, "vehicles")
    )
