"""Real API answers map to the documented rows; odd values become null, named.

Uses the real responses in tests/fake_api/samples and, for the tax bracket, the
public client's own TaxRates logic as the reference the loader reimplements.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from athlon_flex_client.models.tax_rate import TaxRate as ClientTaxRate
from athlon_flex_client.models.tax_rate import TaxRates as ClientTaxRates
from athlon_flex_client.models.vehicle import Vehicle as ClientVehicle
from athlon_flex_client.models.vehicle_cluster import VehicleCluster as ClientCluster
from pydantic import BaseModel

from loader.account import TaxRate, rate_of_income
from loader.shapes import (
    Cluster,
    Details,
    Option,
    Pricing,
    ShapeError,
    Summary,
    Vehicle,
    cluster_row,
    detail_row,
    summary_row,
)
from simulation.fake_api import TAX_RATES

# The repository's copy of shared/athlon-api-samples (real API responses).
SAMPLES = Path(__file__).resolve().parents[1] / "fake_api" / "samples"
RUN = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
VEHICLE_ID = "eaea219f-f155-497f-52ba-08dbdab64212"


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def test_real_cluster_sample_maps_to_a_raw_cluster_row() -> None:
    unknown: set[str] = set()
    problems: list[str] = []

    row = cluster_row(_sample("vehicle_cluster.json"), RUN, unknown, problems)

    assert row == {
        "make": "BMW",
        "model": "3 Serie Touring",
        "first_vehicle_id": VEHICLE_ID,
        "external_type_id": "a11a5e02-f559-4441-868e-2df14f541361",
        "latest_model_year": 2022,
        "vehicle_count": 1,
        "min_price_in_euro_per_month": 1010.0,
        "fiscal_value_in_euro": 54219.0,
        "addition_percentage": 22.0,
        "external_fuel_type_id": 0,
        "max_co2_emission": 153,
        "image_uri": "https://services.athlon.com/api/photos/imagin/v2/photo/"
        "[#width#]/bmw/3_serie_touring/2022/5cv/",
        "uri": "https://flex.athlon.com/app/showroom/BMW/3 Serie Touring",
        "extracted_at": RUN,
    }
    assert unknown == set()
    assert problems == []


def test_real_vehicle_sample_maps_to_details_pricing_and_options() -> None:
    unknown: set[str] = set()
    problems: list[str] = []

    columns = detail_row(_sample("vehicle.json"), VEHICLE_ID, unknown, problems)

    options = columns.pop("options")
    assert columns == {
        "id": VEHICLE_ID,
        "make": "BMW",
        "model": "3 Serie Touring",
        "type": "320iA Business Edition 5D 135kW",
        "model_year": 2022,
        "paint_id": None,
        "external_paint_id": "P0A96",
        "price_in_euro_per_month": None,
        "fiscal_value_in_euro": None,
        "addition_percentage": None,
        "range_in_km": 0,
        "external_fuel_type_id": 0,
        "external_type_id": "a11a5e02-f559-4441-868e-2df14f541361",
        "image_uri": "https://services.athlon.com/api/photos/imagin/v2/image/"
        "[#width#]/01/bmw/3_serie_touring/2022/5cv/null/null/P0A96",
        "is_electric": False,
        "details__license_plate": "P-648-SV",
        "details__color": "Wit",
        "details__official_color": "Mineralweiß",
        "details__body_type": "Stationwagon",
        "details__emission": 153.0,
        "details__registration_date": datetime(2022, 6, 22, 0, 0, tzinfo=UTC),
        "details__registered_mileage": 15987.0,
        "details__transmission_type": "Automatisch",
        "details__avg_fuel_consumption": 6.69999980926514,
        "details__type_spare_wheel": "oppompset",
        "details__addition_percentage": 22.0,
        "pricing__fiscal_value_in_euro": 54219.0,
        "pricing__base_price_per_month_in_euro": 800.0,
        "pricing__calculated_price_per_month_in_euro": 1010.0,
        "pricing__price_per_km": 0.09,
        "pricing__fuel_price_per_km": 0.12,
        "pricing__contribution_in_euro": None,
        "pricing__expected_fuel_cost_per_month_in_euro": 120.0,
        "pricing__net_cost_per_month_in_euro": None,
    }
    assert len(options) == 19
    assert options[0] == {
        "vehicle_id": VEHICLE_ID,
        "id": "7531b0bc-34ce-4bc1-7645-08db6334fbf7",
        "external_id": "6e09a259-871f-401b-ad4a-cb09ca614699",
        "option_name": "Airconditioning",
        "included": True,
    }
    assert [o["option_name"] for o in options if not o["included"]][:2] == [
        "Derde zitrij",
        "Fietsendrager",
    ]
    assert unknown == set()
    assert problems == []


@pytest.mark.parametrize(
    ("path", "value", "column", "expected", "problem"),
    [
        (
            ("details", "licensePlate"),
            None,
            "details__license_plate",
            None,
            "Vehicle.details.licensePlate is missing",
        ),
        (
            ("pricing", "calculatedPricePerMonthInEuro"),
            "1010",
            "pricing__calculated_price_per_month_in_euro",
            1010.0,
            None,
        ),
        (
            ("pricing", "calculatedPricePerMonthInEuro"),
            1e30,
            "pricing__calculated_price_per_month_in_euro",
            None,
            "Vehicle.pricing.calculatedPricePerMonthInEuro is 1e+30: Input should be "
            "less than or equal to 1000000",
        ),
        (
            ("pricing", "pricePerKm"),
            float("nan"),
            "pricing__price_per_km",
            None,
            "Vehicle.pricing.pricePerKm is NaN: Input should be greater than or "
            "equal to 0",
        ),
        (
            ("details", "registeredMileage"),
            True,
            "details__registered_mileage",
            None,
            "Vehicle.details.registeredMileage is true: Value error, expected a "
            "number, not true/false",
        ),
        (
            ("modelYear",),
            2022.5,
            "model_year",
            None,
            None,  # the top level repeats the summary, whose problems are named
        ),
        (
            ("details", "registrationDate"),
            "22-06-2022",
            "details__registration_date",
            None,
            'Vehicle.details.registrationDate is "22-06-2022": Value error, expected '
            "an ISO 8601 date-time",
        ),
        (
            ("details", "color"),
            "Wit\x00",
            "details__color",
            None,
            'Vehicle.details.color is "Wit\\u0000": Value error, holds a NUL character',
        ),
        (
            ("details", "bodyType"),
            "x" * 2001,
            "details__body_type",
            None,
            "Vehicle.details.bodyType is "
            + '"'
            + "x" * 56
            + "...: String should have at most 2000 characters",
        ),
    ],
)
def test_odd_value_becomes_null_and_is_named_the_rest_lands(
    path: tuple[str, ...], value: Any, column: str, expected: Any, problem: str | None
) -> None:
    payload = copy.deepcopy(_sample("vehicle.json"))
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problems: list[str] = []

    row = detail_row(payload, VEHICLE_ID, set(), problems)

    assert row[column] == expected
    assert problems == ([problem] if problem else [])
    assert row["details__official_color"] == "Mineralweiß"
    assert len(row["options"]) == 19


@pytest.mark.parametrize("part", ["details", "pricing", "options"])
@pytest.mark.parametrize("value", [None, "missing", "oops"])
def test_missing_or_malformed_part_is_null_and_named(part: str, value: Any) -> None:
    payload = copy.deepcopy(_sample("vehicle.json"))
    if value == "missing":
        del payload[part]
    else:
        payload[part] = value
    problems: list[str] = []

    row = detail_row(payload, VEHICLE_ID, set(), problems)

    kind = {"details": "dictionary or instance of Details", "options": "list"}
    kind["pricing"] = "dictionary or instance of Pricing"
    assert problems == [
        f"Vehicle.{part} is missing"
        if value in (None, "missing")
        else f'Vehicle.{part} is "oops": Input should be a valid {kind[part]}'
    ]
    if part == "options":
        assert row["options"] == []
    else:
        assert {k: v for k, v in row.items() if k.startswith(f"{part}__")} == {
            k: None for k in row if k.startswith(f"{part}__")
        }
    assert row["make"] == "BMW"


def test_an_odd_option_costs_the_car_only_that_option() -> None:
    payload = copy.deepcopy(_sample("vehicle.json"))
    payload["options"][3] = "oops"
    payload["options"][4]["id"] = None
    problems: list[str] = []

    row = detail_row(payload, VEHICLE_ID, set(), problems)

    assert len(row["options"]) == 17
    assert problems == [
        "Vehicle.options: 1 not an object, skipped",
        "Vehicle.options.id is missing",
        "Vehicle.options[3].id null skipped",
    ]


def test_answer_about_another_vehicle_lands_no_details() -> None:
    payload = copy.deepcopy(_sample("vehicle.json"))
    payload["id"] = "00000000-0000-0000-0000-000000000000"
    problems: list[str] = []

    row = detail_row(payload, VEHICLE_ID, set(), problems)

    assert problems[0] == (
        'the answer is about vehicle "00000000-0000-0000-0000-000000000000"'
    )
    assert row["id"] == VEHICLE_ID
    assert row["details__license_plate"] is None
    assert row["options"] == []


def test_new_api_fields_are_not_loaded_but_reported() -> None:
    payload = copy.deepcopy(_sample("vehicle.json"))
    payload["co2Label"] = "B"
    payload["pricing"]["discountInEuro"] = 10
    payload["options"][0]["category"] = "comfort"
    unknown: set[str] = set()

    columns = detail_row(payload, VEHICLE_ID, unknown, [])

    assert unknown == {
        "Vehicle.co2Label",
        "Vehicle.pricing.discountInEuro",
        "Vehicle.options.category",
    }
    assert "co2_label" not in columns
    assert "category" not in columns["options"][0]


def test_summary_ids_are_lower_cased_and_unusable_ids_skip_the_car() -> None:
    cluster = {"make": "BMW", "model": "3 Serie Touring"}
    problems: list[str] = []

    row = summary_row({"id": VEHICLE_ID.upper(), "type": 5}, cluster, set(), problems)

    assert row is not None
    assert (row["id"], row["make"], row["model"], row["type"]) == (
        VEHICLE_ID,
        "BMW",
        "3 Serie Touring",
        None,
    )
    assert "VehicleVariation.type is 5: Input should be a valid string" in problems
    for odd in ("x" * 65, "", None, 42, "a\x00b"):
        assert summary_row({"id": odd}, cluster, set(), []) is None


def test_cluster_without_make_model_or_count_fails_the_load() -> None:
    cluster = _sample("vehicle_cluster.json")
    del cluster["vehicleCount"]

    with pytest.raises(ShapeError) as failure:
        cluster_row(cluster, RUN, set(), [])

    assert str(failure.value) == (
        "GET VehicleCluster: a cluster without a usable make, model or vehicleCount "
        "(VehicleCluster.vehicleCount is missing)"
    )


@pytest.mark.parametrize("with_credit", [True, False])
def test_tax_bracket_is_chosen_exactly_as_the_public_client_does(
    with_credit: bool,
) -> None:
    ours = [TaxRate(rate.label, rate.percentage) for rate in TAX_RATES]
    theirs = ClientTaxRates(
        tax_rates=[
            ClientTaxRate(label=rate.label, percentage=rate.percentage)
            for rate in TAX_RATES
        ]
    )
    incomes = [1, 28_406, 28_406.5, 28_407, 43_071, 60_000, 76_817, 129_079, 250_000]

    for income in incomes:
        mine = rate_of_income(ours, income, apply_loonheffingskorting=with_credit)
        client = theirs.rate_of_income(income, apply_loonheffingskorting=with_credit)
        assert (mine and (mine.label, mine.percentage)) == (
            client and (client.label, client.percentage)
        ), income
    # A gap between brackets matches none, as in the client.
    assert rate_of_income(ours, 28_406.5, apply_loonheffingskorting=True) is None


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (Cluster, ClientCluster),
        (Summary, ClientVehicle),
        (Details, ClientVehicle.Details),
        (Pricing, ClientVehicle.Pricing),
        (Option, ClientVehicle.Option),
    ],
)
def test_optional_fields_mirror_the_public_client(
    ours: type[BaseModel], theirs: type[BaseModel]
) -> None:
    # The client's summary and details are one model; details, pricing and options
    # are ours alone (required of GET Vehicle, see loader.shapes.Vehicle).
    def required(model: type[BaseModel]) -> dict[str, bool]:
        return {
            name: field.is_required()
            for name, field in model.model_fields.items()
            if name not in ("vehicles", "details", "pricing", "options")
        }

    assert required(ours) == required(theirs)
    assert set(Vehicle.model_fields) == set(ClientVehicle.model_fields)
