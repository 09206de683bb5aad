"""Responses have exactly the real API's keys, nesting, JSON types and number formats.

The references are real responses (shared/athlon-api-samples) and, where no sample
exists, the public client's pydantic models.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from athlon_flex_client.models.profile import Profile
from athlon_flex_client.models.tax_rate import TaxRate
from athlon_flex_client.models.vehicle import Vehicle as ClientVehicle

from simulation.fake_api import TAX_RATES_PAGE_ID, FakeShowroom
from tests.support.fake_api import FAKE_PASSWORD, FAKE_USERNAME

# Real responses, copied unchanged with their README (where they come from).
SAMPLES = Path(__file__).parent / "samples"
_NUMBER = re.compile(r'"(\w+)":\s*(-?\d+(?:\.\d+)?)[,\s}\]]')


def assert_same_shape(actual: Any, expected: Any, path: str = "$") -> None:
    """Same keys at every level and the same JSON type for every value.

    Every element of a list is held against the expected list's first element; bool
    and int are different types (as JSON true and 1 are).
    """
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, dict):
        assert set(actual) == set(expected), f"{path}: keys differ"
        for key in expected:
            assert_same_shape(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert actual, f"{path}: empty list"
        for index, item in enumerate(actual):
            assert_same_shape(item, expected[0], f"{path}[{index}]")


def number_formats(text: str) -> dict[str, str]:
    """Per numeric key: "int", "shortest" float, or "N" fixed decimals (1010.00 = 2).

    A literal with more than one decimal ending in 0 is fixed scale ("1010.00"); one
    like "54219.0" or "6.69999980926514" is a shortest float representation.
    """
    formats: dict[str, str] = {}
    for key, literal in _NUMBER.findall(text):
        if "." not in literal:
            kind = "int"
        else:
            decimals = literal.split(".")[1]
            fixed = len(decimals) > 1 and decimals.endswith("0")
            kind = str(len(decimals)) if fixed else "shortest"
        formats.setdefault(key, kind)
    return formats


def assert_number_formats(text: str, reference: dict[str, str]) -> None:
    for key, literal in _NUMBER.findall(text):
        kind = reference.get(key)
        if kind is None:
            continue
        if kind == "int":
            assert "." not in literal, f"{key}: {literal} should be an integer"
        elif kind == "shortest":
            assert "." in literal, f"{key}: {literal} should be a float"
            assert float(literal).__repr__() == literal, f"{key}: {literal}"
        else:
            assert re.fullmatch(rf"-?\d+\.\d{{{kind}}}", literal), (
                f"{key}: {literal} should have {kind} decimals"
            )


def test_every_vehicle_has_the_shape_of_the_real_vehicle_response(
    fake_api: FakeShowroom,
) -> None:
    sample_text = (SAMPLES / "vehicle.json").read_text()
    sample = json.loads(sample_text)
    with httpx.Client(base_url=fake_api.url) as http:
        for vehicle in fake_api.catalog.vehicles:
            response = http.get(
                "/Vehicle", params={"Segment": "Cars", "VehicleId": vehicle.id}
            )
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json; charset=utf-8"
            assert_same_shape(response.json(), sample)
            assert_number_formats(response.text, number_formats(sample_text))
            ClientVehicle(**response.json())


def test_every_cluster_has_the_shape_of_the_real_cluster_response(
    fake_api: FakeShowroom,
) -> None:
    sample_text = (SAMPLES / "vehicle_cluster.json").read_text()
    sample = json.loads(sample_text)

    response = httpx.get(f"{fake_api.url}/VehicleCluster")

    clusters = response.json()
    assert len(clusters) == 4
    for cluster in clusters:
        assert_same_shape(cluster, sample)
        assert "[#width#]" in cluster["imageUri"]
    assert_number_formats(response.text, number_formats(sample_text))


def test_number_formats_of_the_samples_are_what_the_fake_reproduces() -> None:
    """Pins the reference itself, so a changed sample cannot silently relax tests."""
    vehicle = number_formats((SAMPLES / "vehicle.json").read_text())
    cluster = number_formats((SAMPLES / "vehicle_cluster.json").read_text())

    assert vehicle["calculatedPricePerMonthInEuro"] == "2"
    assert vehicle["avgFuelConsumption"] == "shortest"
    assert vehicle["modelYear"] == "int"
    assert cluster["minPriceInEuroPerMonth"] == "6"
    assert cluster["maxCO2Emission"] == "int"


def test_vehicle_summaries_have_every_summary_field_of_the_client_model(
    fake_api: FakeShowroom,
) -> None:
    vehicle = fake_api.catalog.vehicles[0]
    summary_fields = set(ClientVehicle.model_fields) - {"details", "pricing", "options"}

    response = httpx.get(
        f"{fake_api.url}/VehicleVariation",
        params={"Filters.Make": vehicle.make, "Filters.Model": vehicle.model},
    )

    summaries = response.json()
    assert len(summaries) == 3
    for summary in summaries:
        assert set(summary) == summary_fields
        parsed = ClientVehicle(**summary)
        assert parsed.priceInEuroPerMonth == (
            fake_api.catalog.vehicle(summary["id"]).calculated_price
        )
    assert re.search(r'"priceInEuroPerMonth":\d+\.\d{2},', response.text)


def test_profile_has_every_field_of_the_client_profile(fake_api: FakeShowroom) -> None:
    with httpx.Client(base_url=fake_api.url) as http:
        http.post(
            "/MemberLogin", json={"username": FAKE_USERNAME, "password": FAKE_PASSWORD}
        ).raise_for_status()
        response = http.get("/MemberProfile")

    profile = response.json()
    assert set(profile) == set(Profile.model_fields)
    assert set(profile["budget"]) == set(Profile.Budget.model_fields)
    assert Profile(**profile).email == FAKE_USERNAME


def test_tax_rates_are_label_and_percentage_pairs(fake_api: FakeShowroom) -> None:
    response = httpx.get(
        f"{fake_api.url}/TaxRates", params={"pageId": TAX_RATES_PAGE_ID}
    )

    rates = response.json()
    assert rates
    for rate in rates:
        assert set(rate) == {"label", "percentage"}
        assert type(rate["percentage"]) is float
        assert TaxRate(**rate).bounds != (0.0, 0.0)
