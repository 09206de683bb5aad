"""The generated catalog: deterministic, realistic, and changeable while served."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from typing import Any

import httpx
import pytest

from simulation.fake_api import (
    KM_PER_MONTH,
    MODELS,
    Catalog,
    FakeShowroom,
    FuelType,
    Vehicle,
)
from simulation.fake_api.reference_data import COLOURS, OPTIONS
from simulation.fake_api.shapes import vehicle_detail, vehicle_summary

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Dutch sidecodes of recent cars: 6 characters in three groups of letters or digits.
PLATE = re.compile(
    r"^(?:[B-Z]{2}-\d{3}-[B-Z]|[B-Z]-\d{3}-[B-Z]{2}|[B-Z]{3}-\d{2}-[B-Z]|"
    r"[B-Z]-\d{2}-[B-Z]{3}|\d-[B-Z]{3}-\d{2})$"
)


def expected_clusters(vehicles: list[Vehicle]) -> dict[tuple[str, str], dict[str, Any]]:
    """What each cluster must say, derived here independently of the fake's code."""
    groups: dict[tuple[str, str], list[Vehicle]] = defaultdict(list)
    for vehicle in vehicles:
        groups[(vehicle.make, vehicle.model)].append(vehicle)
    expected = {}
    for key, members in groups.items():
        cheapest = min(v.calculated_price for v in members)
        first = next(v for v in members if v.calculated_price == cheapest)
        expected[key] = {
            "firstVehicleId": first.id,
            "externalTypeId": first.external_type_id,
            "make": key[0],
            "model": key[1],
            "latestModelYear": max(v.model_year for v in members),
            "vehicleCount": len(members),
            "minPriceInEuroPerMonth": cheapest,
            "fiscalValueInEuro": first.fiscal_value,
            "additionPercentage": first.addition_percentage,
            "externalFuelTypeId": int(first.fuel),
            "maxCO2Emission": round(max(v.emission for v in members)),
        }
    return expected


def served_clusters(server: FakeShowroom) -> dict[tuple[str, str], dict[str, Any]]:
    response = httpx.get(f"{server.url}/VehicleCluster")
    response.raise_for_status()
    clusters = response.json()
    keys = [(c["make"], c["model"]) for c in clusters]
    assert keys == sorted(keys, key=lambda k: (k[0].lower(), k[1].lower()))
    return {
        key: {name: value for name, value in cluster.items() if name != "imageUri"}
        for key, cluster in zip(keys, clusters, strict=True)
    }


def assert_clusters_match_vehicles(server: FakeShowroom) -> None:
    served = served_clusters(server)
    assert served == expected_clusters(server.catalog.vehicles)
    assert [(c["make"], c["model"]) for c in server.catalog.clusters_json()] == list(
        served
    )


# --- determinism ---------------------------------------------------------------------


def test_same_seed_gives_an_identical_catalog_and_identical_responses(
    fake_api_factory,
) -> None:
    first = fake_api_factory(clusters=10, vehicles_per_cluster=4, seed=3)
    second = fake_api_factory(clusters=10, vehicles_per_cluster=4, seed=3)

    assert first.catalog.vehicles == second.catalog.vehicles
    assert first.catalog.add_vehicle() == second.catalog.add_vehicle()
    for path in ("/VehicleCluster", "/VehicleVariation"):
        assert (
            httpx.get(first.url + path).content == httpx.get(second.url + path).content
        )


def test_another_seed_gives_another_catalog() -> None:
    one = Catalog.generate(clusters=10, vehicles_per_cluster=4, seed=3)
    other = Catalog.generate(clusters=10, vehicles_per_cluster=4, seed=4)

    assert {v.id for v in one.vehicles}.isdisjoint(v.id for v in other.vehicles)
    assert [v.license_plate for v in one.vehicles] != [
        v.license_plate for v in other.vehicles
    ]


# --- realism -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_catalog() -> Catalog:
    return Catalog.generate(clusters=100, vehicles_per_cluster=10, seed=11)


def test_catalog_has_the_requested_size(big_catalog: Catalog) -> None:
    assert len(big_catalog.vehicles) == 1000
    assert len(big_catalog.clusters_json()) == 100
    assert {c["vehicleCount"] for c in big_catalog.clusters_json()} == {10}
    assert Catalog.generate(clusters=0, vehicles_per_cluster=5).vehicles == []


def test_more_clusters_than_models_and_variants_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"can make 1[0-9]{3} clusters; asked for 5000"
    ):
        Catalog.generate(clusters=5000, vehicles_per_cluster=1)


def test_ids_are_unique_guids_and_plates_unique_dutch_sidecodes(
    big_catalog: Catalog,
) -> None:
    vehicles = big_catalog.vehicles
    assert all(GUID.match(v.id) for v in vehicles)
    assert len({v.id for v in vehicles}) == 1000
    assert all(PLATE.match(v.license_plate) for v in vehicles), [
        v.license_plate for v in vehicles if not PLATE.match(v.license_plate)
    ]
    assert len({v.license_plate for v in vehicles}) == 1000
    assert all(not re.search(r"[AEIOUCQ]", v.license_plate) for v in vehicles)


def test_fuel_type_electric_flag_range_and_emission_agree(big_catalog: Catalog) -> None:
    for vehicle in big_catalog.vehicles:
        summary = vehicle_summary(vehicle)
        electric = summary["externalFuelTypeId"] == FuelType.ELEKTRISCH
        assert summary["isElectric"] is electric
        assert (summary["rangeInKm"] > 0) is electric
        assert (vehicle.emission == 0.0) is electric
    fuels = {v.fuel for v in big_catalog.vehicles}
    assert fuels == set(FuelType)


def test_vehicle_values_are_plausible(big_catalog: Catalog) -> None:
    known_models = {spec.key for spec in MODELS}
    option_names = [name for name, _ in OPTIONS]
    for vehicle in big_catalog.vehicles:
        detail = vehicle_detail(vehicle)
        details, pricing = detail["details"], detail["pricing"]
        assert (vehicle.make, vehicle.model) in known_models
        assert 2020 <= vehicle.model_year <= 2025
        assert details["color"] in COLOURS
        assert details["transmissionType"] in {"Automatisch", "Handgeschakeld"}
        registered = datetime.fromisoformat(details["registrationDate"])
        assert registered.utcoffset().total_seconds() in {3600, 7200}
        assert details["additionPercentage"] in {4.0, 8.0, 12.0, 16.0, 17.0, 22.0}
        assert 300 < pricing["calculatedPricePerMonthInEuro"] < 2500
        running = (pricing["pricePerKm"] + pricing["fuelPricePerKm"]) * KM_PER_MONTH
        assert pricing["calculatedPricePerMonthInEuro"] == pytest.approx(
            pricing["basePricePerMonthInEuro"] + running
        )
        assert [o["optionName"] for o in detail["options"]] == option_names
        assert all(GUID.match(o["id"]) for o in detail["options"])
        assert "[#width#]" in vehicle.image_uri
    assert {v.color for v in big_catalog.vehicles} == set(COLOURS)


# --- changes while served: clusters follow their vehicles ----------------------------


def test_clusters_are_derived_from_their_vehicles(fake_api: FakeShowroom) -> None:
    assert_clusters_match_vehicles(fake_api)


def test_removing_the_cheapest_vehicle_moves_first_vehicle_and_min_price(
    fake_api: FakeShowroom,
) -> None:
    catalog = fake_api.catalog
    make, model = catalog.vehicles[0].cluster_key
    cluster = [v for v in catalog.vehicles if v.cluster_key == (make, model)]
    cheapest = min(cluster, key=lambda v: v.calculated_price)

    removed = catalog.remove_vehicle(cheapest.id)

    assert removed == cheapest
    served = served_clusters(fake_api)[(make, model)]
    assert served["vehicleCount"] == 2
    assert served["firstVehicleId"] != cheapest.id
    assert served["minPriceInEuroPerMonth"] == min(
        v.calculated_price for v in cluster if v.id != cheapest.id
    )
    assert_clusters_match_vehicles(fake_api)
    detail = httpx.get(f"{fake_api.url}/Vehicle", params={"VehicleId": cheapest.id})
    assert detail.status_code == 404


def test_a_price_cut_makes_the_vehicle_first_of_its_cluster(
    fake_api: FakeShowroom,
) -> None:
    catalog = fake_api.catalog
    dearest = max(catalog.vehicles[:3], key=lambda v: v.calculated_price)

    updated = catalog.set_price(dearest.id, 99.5)

    assert updated.calculated_price == 99.5
    served = served_clusters(fake_api)[dearest.cluster_key]
    assert served["firstVehicleId"] == dearest.id
    assert served["minPriceInEuroPerMonth"] == 99.5
    assert_clusters_match_vehicles(fake_api)
    summaries = httpx.get(
        f"{fake_api.url}/VehicleVariation",
        params={
            "Filters.Make": dearest.make,
            "Filters.Model": dearest.model,
            "Filters.SortBy": "PriceInEuro",
        },
    ).json()
    assert summaries[0]["id"] == dearest.id
    assert summaries[0]["priceInEuroPerMonth"] == 99.5
    prices = [s["priceInEuroPerMonth"] for s in summaries]
    assert prices == sorted(prices)
    pricing = httpx.get(
        f"{fake_api.url}/Vehicle", params={"VehicleId": dearest.id}
    ).json()["pricing"]
    assert pricing["calculatedPricePerMonthInEuro"] == 99.5


def test_a_new_vehicle_can_open_a_new_cluster_or_join_one(
    fake_api: FakeShowroom,
) -> None:
    catalog = fake_api.catalog
    existing = catalog.vehicles[0].cluster_key

    joined = catalog.add_vehicle(*existing)
    opened = catalog.add_vehicle("Lotus", "Emeya", calculated_price=1999.0)

    served = served_clusters(fake_api)
    assert len(served) == 5
    assert served[existing]["vehicleCount"] == 4
    assert served[("Lotus", "Emeya")]["vehicleCount"] == 1
    assert served[("Lotus", "Emeya")]["firstVehicleId"] == opened.id
    assert served[("Lotus", "Emeya")]["minPriceInEuroPerMonth"] == 1999.0
    assert joined.license_plate not in {
        v.license_plate for v in catalog.vehicles if v.id != joined.id
    }
    assert_clusters_match_vehicles(fake_api)


def test_a_returned_vehicle_comes_back_with_the_same_id_and_data(
    fake_api: FakeShowroom,
) -> None:
    catalog = fake_api.catalog
    vehicle = catalog.vehicles[4]
    url = f"{fake_api.url}/Vehicle"
    before = httpx.get(url, params={"VehicleId": vehicle.id}).content
    catalog.remove_vehicle(vehicle.id)
    assert httpx.get(url, params={"VehicleId": vehicle.id}).status_code == 404

    catalog.return_vehicle(vehicle)

    assert httpx.get(url, params={"VehicleId": vehicle.id}).content == before
    assert catalog.vehicles[-1] == vehicle
    assert catalog.removed_vehicles == []
    with pytest.raises(ValueError, match="already in the showroom"):
        catalog.return_vehicle(vehicle)
    assert_clusters_match_vehicles(fake_api)


def test_a_cluster_without_vehicles_disappears(fake_api: FakeShowroom) -> None:
    catalog = fake_api.catalog
    gone = catalog.vehicles[0].cluster_key

    for vehicle in [v for v in catalog.vehicles if v.cluster_key == gone]:
        catalog.remove_vehicle(vehicle.id)

    served = served_clusters(fake_api)
    assert gone not in served
    assert len(served) == 3
    variations = httpx.get(
        f"{fake_api.url}/VehicleVariation",
        params={"Filters.Make": gone[0], "Filters.Model": gone[1]},
    )
    assert variations.json() == []


def test_removing_a_fraction_and_clearing_the_showroom(fake_api: FakeShowroom) -> None:
    catalog = fake_api.catalog

    removed = catalog.remove_fraction(0.6)

    assert len(removed) == 7  # round(0.6 x 12)
    assert len(catalog.vehicles) == 5
    assert_clusters_match_vehicles(fake_api)

    catalog.clear()

    assert catalog.vehicles == []
    assert httpx.get(f"{fake_api.url}/VehicleCluster").json() == []
    assert len(catalog.removed_vehicles) == 12


def test_unknown_vehicles_cannot_be_changed(fake_api: FakeShowroom) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(KeyError):
        fake_api.catalog.remove_vehicle(missing)
    with pytest.raises(KeyError):
        fake_api.catalog.set_price(missing, 500)
    with pytest.raises(KeyError):
        fake_api.catalog.return_vehicle(missing)
    with pytest.raises(ValueError):
        fake_api.catalog.remove_fraction(1.5)


def test_a_thousand_clusters_are_a_thousand_distinct_makes_and_models() -> None:
    """Benchmarks ask for more clusters than known models: variants fill the rest."""
    catalog = Catalog.generate(clusters=1000, vehicles_per_cluster=1, seed=3)
    keys = {(c["make"], c["model"]) for c in catalog.clusters_json()}
    assert len(keys) == 1000
    assert len(catalog.vehicles) == 1000
