"""Tampering bends the content of good answers, exactly as asked, and can be undone."""

from __future__ import annotations

import httpx
import pytest

from simulation.fake_api import MISSING, FakeShowroom
from simulation.fake_api.shapes import vehicle_detail


@pytest.fixture
def http(fake_api: FakeShowroom):
    with httpx.Client(base_url=fake_api.url) as client:
        yield client


def _variations(http: httpx.Client, make: str, model: str) -> list[dict]:
    params = {"Filters.Make": make, "Filters.Model": model}
    return http.get("/VehicleVariation", params=params).json()


def test_empty_variations_answer_an_empty_list_while_the_cluster_counts_cars(
    fake_api: FakeShowroom, http: httpx.Client
) -> None:
    vehicle = fake_api.catalog.vehicles[0]
    fake_api.tampering.empty_variations(vehicle.make, vehicle.model, times=1)

    assert _variations(http, vehicle.make, vehicle.model) == []
    (cluster,) = [
        c
        for c in http.get("/VehicleCluster").json()
        if (c["make"], c["model"]) == vehicle.cluster_key
    ]
    assert cluster["vehicleCount"] == 3
    assert len(_variations(http, vehicle.make, vehicle.model)) == 3


def test_summary_and_detail_changes_and_duplicates(
    fake_api: FakeShowroom, http: httpx.Client
) -> None:
    vehicle = fake_api.catalog.vehicles[0]
    fake_api.tampering.summary(vehicle.id, {"rangeInKm": 3_000_000_000})
    fake_api.tampering.duplicate(vehicle.id, vehicle.id.upper())
    fake_api.tampering.detail(
        vehicle.id,
        {"pricing": MISSING, "details.registrationDate": "22-06-2022", "options": None},
    )

    listed = _variations(http, vehicle.make, vehicle.model)
    mine = [s for s in listed if s["id"].lower() == vehicle.id]
    assert [(s["id"], s["rangeInKm"]) for s in mine] == [
        (vehicle.id, 3_000_000_000),
        (vehicle.id.upper(), 3_000_000_000),
    ]
    detail = http.get(
        "/Vehicle", params={"Segment": "Cars", "VehicleId": vehicle.id.upper()}
    ).json()
    assert "pricing" not in detail
    assert detail["options"] is None
    assert detail["details"]["registrationDate"] == "22-06-2022"
    assert detail["details"]["licensePlate"] == vehicle.license_plate

    fake_api.tampering.clear()

    assert [s["id"] for s in _variations(http, vehicle.make, vehicle.model)].count(
        vehicle.id
    ) == 1
    honest = http.get(
        "/Vehicle", params={"Segment": "Cars", "VehicleId": vehicle.id}
    ).json()
    assert honest == vehicle_detail(vehicle)
