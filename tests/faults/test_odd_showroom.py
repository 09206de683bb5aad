"""The showroom API answers 200 with odd content (issue 11): an incomplete list is
refused, a publish that fails half-way changes no raw table, one odd car never blocks
the others, out-of-range values and case-twin ids never reach dbt or an email.

Each test runs whole cycles (load, dbt build, notify over SMTP) against the simulated
API over real HTTP and ends in raw unchanged or exactly the expected windows, with no
car notified twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.settings import Settings
from loader.pipeline import LoadError
from simulation.fake_api import MISSING, FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    notifications,
    query,
    raw_contents,
    windows,
)
from tests.support.smtp import SmtpServer
from watcher.cycle import run_cycle


def _texts(smtp_server: SmtpServer) -> list[str]:
    return [mail.text for mail in smtp_server.messages_to(RECIPIENT)]


def _execute(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> None:
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)


def _vehicle(settings: Settings, vehicle_id: str) -> dict[str, Any]:
    rows = query(settings, "select * from raw.vehicles where id = %s", (vehicle_id,))
    (row,) = rows
    names = [
        name
        for (name,) in query(
            settings,
            "select column_name from information_schema.columns where table_schema "
            "= 'raw' and table_name = 'vehicles' order by ordinal_position",
        )
    ]
    return dict(zip(names, row, strict=True))


def test_cluster_listed_empty_is_refused_and_no_car_is_sent_twice(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    run_cycle(settings)
    raw_before, windows_before = raw_contents(settings), windows(settings)
    notified_before = notifications(settings)
    # A third of the showroom: under the 50% shrink limit, so only the count catches it.
    make, model = showroom.catalog.vehicles[0].cluster_key
    showroom.tampering.empty_variations(make, model)
    showroom.stats.reset()

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    assert str(failure.value) == (
        f"GET VehicleVariation for {make} {model} listed 0 vehicles, but "
        "VehicleCluster counts 2 in that cluster (asked 3 times); raw tables left "
        "unchanged"
    )
    # The cluster three times; the other two once each, unless the failure came
    # before dlt's pool got to them.
    assert 3 <= showroom.stats.requests_by_endpoint["VehicleVariation"] <= 3 + 2
    assert raw_contents(settings) == raw_before
    assert windows(settings) == windows_before
    assert notifications(settings) == notified_before

    showroom.tampering.clear()
    run_cycle(settings)

    texts = _texts(smtp_server)
    assert len(texts) == 1  # the cluster's cars were never "new" again
    assert windows(settings) == windows_before
    assert_nothing_lost_or_doubled(settings, showroom.catalog, texts)


def test_cluster_listed_empty_once_is_asked_again_and_loads_whole(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    make, model = showroom.catalog.vehicles[0].cluster_key
    showroom.tampering.empty_variations(make, model, times=1)

    summary = run_cycle(cycle_settings(showroom))

    assert summary.load.rows["vehicles"] == 6
    assert showroom.stats.requests_by_endpoint["VehicleVariation"] == 3 + 1
    assert_nothing_lost_or_doubled(
        cycle_settings(showroom), showroom.catalog, _texts(smtp_server)
    )


def test_publish_failing_after_the_first_table_changes_no_raw_table(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    first = run_cycle(settings)
    raw_before, windows_before = raw_contents(settings), windows(settings)
    catalog = showroom.catalog
    # One cluster leaves, and a NUL character arrives in another car's colour.
    leaving = catalog.vehicles[0].cluster_key
    gone = [v for v in catalog.vehicles if v.cluster_key == leaving]
    for vehicle in gone:
        catalog.remove_vehicle(vehicle.id)
    odd = catalog.vehicles[0]
    catalog.set_price(odd.id, odd.calculated_price + 1)  # so its details are fetched
    showroom.tampering.detail(odd.id, {"details.color": "Wit\x00"})
    # The database refuses this run's options: clusters and vehicles are in by then.
    _execute(
        settings,
        "alter table raw.vehicles__options add constraint only_the_first_load "
        "check (extracted_at <= %s) not valid",
        (first.load.extracted_at,),
    )

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    message = str(failure.value)
    assert message.startswith("Publishing the load to raw failed: new row for ")
    assert 'violates check constraint "only_the_first_load"' in message
    assert message.endswith("raw tables left unchanged")
    assert raw_contents(settings) == raw_before
    assert windows(settings) == windows_before  # the cluster's cars stay open

    _execute(
        settings,
        "alter table raw.vehicles__options drop constraint only_the_first_load",
    )
    run_cycle(settings)

    assert _vehicle(settings, odd.id)["details__color"] is None
    assert (
        query(
            settings,
            "select make, model from raw.vehicle_clusters where make = %s "
            "and model = %s",
            leaving,
        )
        == []
    )
    texts = _texts(smtp_server)
    assert len(texts) == 1
    assert_nothing_lost_or_doubled(
        settings, catalog, texts, left={vehicle.id for vehicle in gone}
    )
    assert {w[0] for w in windows(settings) if w[2] is not None} == {
        vehicle.id for vehicle in gone
    }


def test_odd_details_of_some_cars_block_no_one(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom, athlon_details_refresh_hours=0)
    cars = showroom.catalog.vehicles
    tampered = {
        cars[0].id: {"details": None},
        cars[1].id: {"pricing": MISSING},
        cars[2].id: {"options": None},
        cars[3].id: {"details.registrationDate": "22-06-2022"},
        cars[4].id: {"pricing.calculatedPricePerMonthInEuro": "1010.5"},
    }
    for vehicle_id, changes in tampered.items():
        showroom.tampering.detail(vehicle_id, changes)

    run_cycle(settings)

    rows = {car.id: _vehicle(settings, car.id) for car in cars}
    assert rows[cars[0].id]["details__license_plate"] is None
    assert rows[cars[0].id]["pricing__base_price_per_month_in_euro"] == (
        cars[0].base_price
    )
    assert rows[cars[1].id]["pricing__calculated_price_per_month_in_euro"] is None
    assert rows[cars[1].id]["details__license_plate"] == cars[1].license_plate
    assert query(
        settings,
        "select count(*) from raw.vehicles__options where vehicle_id = %s",
        (cars[2].id,),
    ) == [(0,)]
    assert rows[cars[3].id]["details__registration_date"] is None
    assert rows[cars[4].id]["pricing__calculated_price_per_month_in_euro"] == 1010.5
    assert rows[cars[5].id]["details__license_plate"] == cars[5].license_plate
    # Every car has its window and was notified once, in the one email.
    assert len(smtp_server.messages) == 1
    first_windows = windows(settings)
    assert {w[0] for w in first_windows if w[2] is None} == {car.id for car in cars}
    assert [n[0] for n in notifications(settings)] == sorted(car.id for car in cars)

    # The API heals: the cars get their details, nobody hears of them again.
    showroom.tampering.clear()
    run_cycle(settings)

    assert _vehicle(settings, cars[0].id)["details__license_plate"] == (
        cars[0].license_plate
    )
    assert windows(settings) == first_windows
    assert len(smtp_server.messages) == 1
    assert [n[0] for n in notifications(settings)] == sorted(car.id for car in cars)


def test_out_of_range_values_become_null_and_the_cycle_completes(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    cars = showroom.catalog.vehicles
    showroom.tampering.summary(cars[0].id, {"rangeInKm": 3_000_000_000})
    showroom.tampering.detail(cars[0].id, {"rangeInKm": 3e9})
    showroom.tampering.duplicate(cars[1].id, "f" * 6_000)
    showroom.tampering.summary(cars[2].id, {"priceInEuroPerMonth": 1e30})
    showroom.tampering.detail(
        cars[3].id, {"pricing.calculatedPricePerMonthInEuro": 1e30}
    )

    summary = run_cycle(settings)

    assert summary.load.rows["vehicles"] == 6
    assert _vehicle(settings, cars[0].id)["range_in_km"] is None
    summary_priced = _vehicle(settings, cars[2].id)
    assert summary_priced["price_in_euro_per_month"] is None
    assert summary_priced["pricing__calculated_price_per_month_in_euro"] == (
        cars[2].calculated_price
    )
    detail_priced = _vehicle(settings, cars[3].id)
    assert detail_priced["pricing__calculated_price_per_month_in_euro"] is None
    assert detail_priced["price_in_euro_per_month"] == cars[3].calculated_price
    assert query(settings, "select max(length(id)) from raw.vehicles") == [(36,)]
    assert_nothing_lost_or_doubled(settings, showroom.catalog, _texts(smtp_server))


def test_an_id_in_upper_and_lower_case_is_one_car(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    cars = showroom.catalog.vehicles
    showroom.tampering.duplicate(cars[0].id, cars[0].id.upper())
    showroom.tampering.summary(cars[1].id, {"id": cars[1].id.upper()})

    summary = run_cycle(settings)

    assert summary.load.rows["vehicles"] == 6
    assert query(settings, "select id from raw.vehicles order by id") == [
        (car.id,) for car in sorted(cars, key=lambda car: car.id)
    ]
    # Listed in lower case again: the same cars, no new window, no second email.
    showroom.tampering.clear()
    run_cycle(settings)

    texts = _texts(smtp_server)
    assert len(texts) == 1
    assert_nothing_lost_or_doubled(settings, showroom.catalog, texts)
