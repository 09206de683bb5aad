"""A failed or implausible run raises LoadError and leaves every raw table as it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from athlon_flex.settings import Settings
from loader.pipeline import load
from simulation.fake_api import Catalog, FakeShowroom
from tests.loader.conftest import (
    assert_load_fails_and_raw_unchanged,
    raw_contents,
    rows,
)


@pytest.fixture
def fake_api(fake_api_factory: Callable[..., FakeShowroom]) -> FakeShowroom:
    """10 vehicles (5 clusters x 2), so that removing 60% leaves exactly 4."""
    return fake_api_factory(clusters=5, vehicles_per_cluster=2)


@pytest.fixture
def loaded(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> dict[str, list[tuple[Any, ...]]]:
    """A first good load; returns the full contents of `raw` after it."""
    load(loader_settings(fake_api))
    contents = raw_contents(db)
    assert len(contents["vehicles"]) == 10
    return contents


@pytest.fixture
def refused_load(
    fake_api: FakeShowroom,
    loader_settings: Callable[..., Settings],
    db: Any,
    loaded: dict[str, list[tuple[Any, ...]]],
) -> Callable[[], str]:
    """After a good first load: a second load that must fail and leave `raw` as it was.

    Calling it returns the LoadError's message.
    """
    return lambda: assert_load_fails_and_raw_unchanged(
        loader_settings(fake_api), db, loaded
    )


def test_persistent_503_on_one_vehicle_fails_naming_it_and_changes_nothing(
    fake_api: FakeShowroom, refused_load: Callable[[], str]
) -> None:
    broken = fake_api.catalog.vehicles[5]
    fake_api.catalog.set_price(broken.id, 777.0)  # its details must be fetched again
    fake_api.faults.add("Vehicle", status=503, vehicle_id=broken.id)

    message = refused_load()

    assert message == (
        f"Athlon API GET Vehicle for vehicle {broken.id} answered 503 after 4 tries; "
        "raw tables left unchanged"
    )


def test_malformed_json_fails_naming_the_endpoint_and_changes_nothing(
    fake_api: FakeShowroom, refused_load: Callable[[], str]
) -> None:
    names = {f"{c['make']} {c['model']}" for c in fake_api.catalog.clusters_json()}
    fake_api.faults.add("VehicleVariation", malformed=True)

    message = refused_load()

    # Every cluster's list is broken; whichever ran out of tries first is named.
    assert message in {
        f"Athlon API GET VehicleVariation for {name} answered 200 with a body that "
        "is not JSON after 4 tries; raw tables left unchanged"
        for name in names
    }


def test_empty_showroom_is_refused_and_changes_nothing(
    fake_api: FakeShowroom, refused_load: Callable[[], str]
) -> None:
    fake_api.catalog.clear()

    message = refused_load()

    assert message.startswith(
        "Athlon API showed an empty showroom (0 clusters, 0 vehicles; raw.vehicles "
        "has 10); raw tables left unchanged."
    )
    assert "--allow-shrink" in message


def test_empty_showroom_with_allow_shrink_empties_all_three_tables(
    fake_api: FakeShowroom,
    loader_settings: Callable[..., Settings],
    db: Any,
    loaded: dict[str, list[tuple[Any, ...]]],
) -> None:
    fake_api.catalog.clear()

    summary = load(loader_settings(fake_api), allow_shrink=True)

    assert summary.rows == {
        "vehicle_clusters": 0,
        "vehicles": 0,
        "vehicles__options": 0,
    }
    contents = raw_contents(db)
    for table in ("vehicle_clusters", "vehicles", "vehicles__options"):
        assert contents[table] == [], table


def test_shrink_of_60_percent_is_refused_and_changes_nothing(
    fake_api: FakeShowroom, refused_load: Callable[[], str]
) -> None:
    removed = fake_api.catalog.remove_fraction(0.6)
    assert len(removed) == 6

    message = refused_load()

    assert message.startswith(
        "The showroom shrank from 10 to 4 vehicles (60%, more than "
        "ATHLON_MAX_SHRINK_PERCENT=50); raw tables left unchanged."
    )


def test_shrink_of_60_percent_is_loaded_with_allow_shrink(
    fake_api: FakeShowroom,
    loader_settings: Callable[..., Settings],
    db: Any,
    loaded: dict[str, list[tuple[Any, ...]]],
) -> None:
    fake_api.catalog.remove_fraction(0.6)

    summary = load(loader_settings(fake_api), allow_shrink=True)

    assert summary.rows["vehicles"] == 4
    assert {row["id"] for row in rows(db, "vehicles")} == {
        vehicle.id for vehicle in fake_api.catalog.vehicles
    }
    assert {row["vehicle_id"] for row in rows(db, "vehicles__options")} == {
        vehicle.id for vehicle in fake_api.catalog.vehicles
    }
    # Unchanged survivors reused their details: nothing was fetched.
    assert summary.details_fetched == 0


def test_vehicles_without_any_option_between_them_are_refused(
    fake_api_factory: Callable[..., FakeShowroom],
    loader_settings: Callable[..., Settings],
    db: Any,
) -> None:
    vehicles = Catalog.generate(clusters=1, vehicles_per_cluster=2).vehicles
    bare = [replace(vehicle, options=()) for vehicle in vehicles]
    api = fake_api_factory(catalog=Catalog(bare))

    message = assert_load_fails_and_raw_unchanged(loader_settings(api), db, {})

    assert message == (
        "Athlon API answered no options for any of the 2 vehicles; raw tables left "
        "unchanged"
    )


def test_one_vehicle_without_options_is_loaded_with_none(
    fake_api_factory: Callable[..., FakeShowroom],
    loader_settings: Callable[..., Settings],
    db: Any,
) -> None:
    first, second = Catalog.generate(clusters=1, vehicles_per_cluster=2).vehicles
    api = fake_api_factory(catalog=Catalog([replace(first, options=()), second]))

    summary = load(loader_settings(api))

    assert summary.rows["vehicles"] == 2
    assert {row["vehicle_id"] for row in rows(db, "vehicles__options")} == {second.id}


def test_empty_showroom_on_a_first_load_with_allow_shrink_lands_nothing(
    fake_api_factory: Callable[..., FakeShowroom],
    loader_settings: Callable[..., Settings],
    db: Any,
) -> None:
    api = fake_api_factory(catalog=Catalog([]))

    summary = load(loader_settings(api), allow_shrink=True)

    assert summary.rows == {
        "vehicle_clusters": 0,
        "vehicles": 0,
        "vehicles__options": 0,
    }
    assert {table: rows for table, rows in raw_contents(db).items() if rows} == {}


def test_a_list_padded_with_a_twin_does_not_account_for_a_missing_car(
    fake_api: FakeShowroom, refused_load: Callable[[], str]
) -> None:
    first = fake_api.catalog.vehicles[0]
    second = next(
        v
        for v in fake_api.catalog.vehicles
        if v.cluster_key == first.cluster_key and v is not first
    )
    # The second car's entry comes back as the first car, in upper case: two
    # entries for a cluster of two, but one car.
    fake_api.tampering.summary(second.id, {"id": first.id.upper()})

    message = refused_load()

    assert message == (
        f"GET VehicleVariation for {first.make} {first.model} listed 1 vehicles, but "
        "VehicleCluster counts 2 in that cluster (asked 3 times); raw tables left "
        "unchanged"
    )
