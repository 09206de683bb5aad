"""A load lands exactly the simulated showroom in `raw`, anonymously or as a member."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from athlon_flex.settings import Settings
from loader.pipeline import load
from simulation.fake_api import (
    TAX_RATES,
    Catalog,
    FakeShowroom,
    net_cost_per_month,
)
from simulation.fake_api.vehicle import contribution_per_month
from tests.loader.conftest import (
    SHOWROOM,
    comparable_vehicle,
    expected_vehicle,
    rows,
    without,
)
from tests.support.raw_tables import CLUSTER_COLUMNS, OPTION_COLUMNS, VEHICLE_COLUMNS


def test_load_lands_every_cluster_vehicle_and_option_of_the_catalog(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    catalog = fake_api.catalog
    summary = load(loader_settings(fake_api))

    vehicles = catalog.vehicles
    option_count = sum(len(vehicle.options) for vehicle in vehicles)
    assert summary.rows == {
        "vehicle_clusters": 4,
        "vehicles": 12,
        "vehicles__options": option_count,
    }
    assert (summary.details_fetched, summary.details_reused) == (12, 0)
    # 1 cluster list + 4 variation lists + 12 details, nothing retried.
    assert (summary.requests, summary.retries) == (17, 0)

    loaded = {row["id"]: row for row in rows(db, "vehicles")}
    assert {
        vehicle_id: comparable_vehicle(row) for vehicle_id, row in loaded.items()
    } == {vehicle.id: expected_vehicle(vehicle) for vehicle in vehicles}
    assert {row["extracted_at"] for row in loaded.values()} == {summary.extracted_at}
    assert {row["details_fetched_at"] for row in loaded.values()} == {
        summary.extracted_at
    }

    options = rows(db, "vehicles__options", "vehicle_id, _dlt_list_idx")
    option_columns = (
        "vehicle_id",
        "_dlt_list_idx",
        "id",
        "external_id",
        "option_name",
        "included",
        "_dlt_parent_id",
    )
    assert [tuple(o[c] for c in option_columns) for o in options] == [
        (
            vehicle.id,
            index,
            option.id,
            option.external_id,
            option.name,
            option.included,
            loaded[vehicle.id]["_dlt_id"],
        )
        for vehicle in sorted(vehicles, key=lambda v: v.id)
        for index, option in enumerate(vehicle.options)
    ]
    assert {o["extracted_at"] for o in options} == {summary.extracted_at}

    clusters = rows(db, "vehicle_clusters", "make, model")
    expected_clusters = sorted(
        (
            {
                "make": c["make"],
                "model": c["model"],
                "first_vehicle_id": c["firstVehicleId"],
                "external_type_id": c["externalTypeId"],
                "latest_model_year": c["latestModelYear"],
                "vehicle_count": c["vehicleCount"],
                "min_price_in_euro_per_month": c["minPriceInEuroPerMonth"],
                "fiscal_value_in_euro": c["fiscalValueInEuro"],
                "addition_percentage": c["additionPercentage"],
                "external_fuel_type_id": c["externalFuelTypeId"],
                "max_co2_emission": c["maxCO2Emission"],
                "image_uri": c["imageUri"],
                "uri": f"{SHOWROOM}/{c['make']}/{c['model']}",
                "extracted_at": summary.extracted_at,
            }
            for c in catalog.clusters_json()
        ),
        key=lambda c: (c["make"], c["model"]),
    )
    assert [without(c, "_dlt_id", "_dlt_load_id") for c in clusters] == (
        expected_clusters
    )


def test_raw_tables_have_the_documented_columns_in_order_and_types(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    load(loader_settings(fake_api))

    dlt_columns = {
        "vehicle_clusters": {"_dlt_load_id", "_dlt_id"},
        "vehicles": {"_dlt_load_id", "_dlt_id"},
        # A dlt child table links to its parent row instead of carrying a load id.
        "vehicles__options": {"_dlt_parent_id", "_dlt_list_idx", "_dlt_id"},
    }
    documented = {
        "vehicle_clusters": CLUSTER_COLUMNS,
        "vehicles": VEHICLE_COLUMNS,
        "vehicles__options": OPTION_COLUMNS,
    }
    with db.cursor() as cursor:
        for table, columns in documented.items():
            cursor.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = %s "
                "order by ordinal_position",
                (table,),
            )
            loaded = cursor.fetchall()
            assert [c for c in loaded if not c[0].startswith("_dlt")] == [
                (name, "character varying" if kind == "varchar" else kind)
                for name, kind in columns.items()
            ], table
            assert {c[0] for c in loaded if c[0].startswith("_dlt")} == (
                dlt_columns[table]
            ), table


def test_member_with_income_gets_contribution_and_net_costs_for_every_vehicle(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    settings = loader_settings(fake_api, member=True, gross_yearly_income=60_000)
    summary = load(settings)

    # 60,000 with loonheffingskorting is the "€ 43.072 t/m € 76.817" bracket.
    (rate,) = [r for r in TAX_RATES if r.label.endswith("€ 43.072 t/m € 76.817")]
    assert rate.label.startswith("Met loonheffingskorting")
    budget = fake_api.account.actual_budget_per_month
    loaded = {row["id"]: row for row in rows(db, "vehicles")}
    assert {
        vehicle_id: (
            row["pricing__contribution_in_euro"],
            row["pricing__net_cost_per_month_in_euro"],
        )
        for vehicle_id, row in loaded.items()
    } == {
        vehicle.id: (
            contribution_per_month(vehicle, budget),
            net_cost_per_month(vehicle, budget, rate.percentage),
        )
        for vehicle in fake_api.catalog.vehicles
    }
    # Still the whole showroom: no profile filter on clusters or summaries.
    assert summary.rows["vehicles"] == len(fake_api.catalog) == 12
    # Login, profile and tax rates come on top of the anonymous 17 requests.
    assert summary.requests == 20
    assert fake_api.stats.requests_by_endpoint["MemberLogin"] == 1


def test_vehicle_not_leasable_for_the_member_is_loaded_anonymously(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    hidden = fake_api.catalog.vehicles[4]
    fake_api.catalog.set_leasable(hidden.id, False)

    summary = load(loader_settings(fake_api, member=True))

    assert summary.anonymous_fallbacks == 1
    assert summary.rows["vehicles"] == 12
    loaded = {row["id"]: row for row in rows(db, "vehicles")}
    # The anonymous answer has the car but no member pricing.
    assert comparable_vehicle(loaded[hidden.id]) == expected_vehicle(hidden)
    assert [
        vehicle_id
        for vehicle_id, row in loaded.items()
        if row["pricing__contribution_in_euro"] is None
    ] == [hidden.id]
    # The member's 404 plus the anonymous retry of that one vehicle.
    assert fake_api.stats.requests_by_endpoint["Vehicle"] == 13


def test_awkward_text_empty_strings_and_nulls_land_exactly(
    fake_api_factory: Callable[..., FakeShowroom],
    loader_settings: Callable[..., Settings],
    db: Any,
) -> None:
    first, second = Catalog.generate(clusters=1, vehicles_per_cluster=2).vehicles
    odd = replace(
        first,
        type='320i "M Sport", 5D\nnieuw; € \\N',
        official_color="",  # required: an empty string stays one
        external_paint_id="",  # optional: empty means absent
        paint_id=None,
    )
    api = fake_api_factory(catalog=Catalog([odd, second]))

    load(loader_settings(api))

    loaded = {row["id"]: row for row in rows(db, "vehicles")}
    assert comparable_vehicle(loaded[odd.id]) == expected_vehicle(odd) | {
        "external_paint_id": None
    }
    assert loaded[odd.id]["type"] == '320i "M Sport", 5D\nnieuw; € \\N'
    assert loaded[odd.id]["details__official_color"] == ""
    assert comparable_vehicle(loaded[second.id]) == expected_vehicle(second)
