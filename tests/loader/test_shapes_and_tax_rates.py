"""Real API answers map to the documented rows; bad ones fail naming the field.

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

from loader.account import TaxRate, rate_of_income
from loader.shapes import ShapeError, cluster_row, detail_columns, summary_columns
from simulation.fake_api import TAX_RATES

# The repository's copy of shared/athlon-api-samples (real API responses).
SAMPLES = Path(__file__).resolve().parents[1] / "fake_api" / "samples"
RUN = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
VEHICLE_ID = "eaea219f-f155-497f-52ba-08dbdab64212"


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def test_real_cluster_sample_maps_to_a_raw_cluster_row() -> None:
    unknown: set[str] = set()

    row = cluster_row(_sample("vehicle_cluster.json"), RUN, unknown)

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


def test_real_vehicle_sample_maps_to_details_pricing_and_options() -> None:
    unknown: set[str] = set()

    columns = detail_columns(_sample("vehicle.json"), VEHICLE_ID, RUN, unknown)

    options = columns.pop("options")
    assert columns == {
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
        "extracted_at": RUN,
    }
    assert [o["option_name"] for o in options if not o["included"]][:2] == [
        "Derde zitrij",
        "Fietsendrager",
    ]
    assert unknown == set()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("details", "licensePlate"),
            None,
            f"GET Vehicle for vehicle {VEHICLE_ID}: required field "
            "Vehicle.details.licensePlate is missing or null",
        ),
        (
            ("pricing", "calculatedPricePerMonthInEuro"),
            "1010",
            f"GET Vehicle for vehicle {VEHICLE_ID}: field Vehicle.pricing."
            'calculatedPricePerMonthInEuro is "1010", expected a number',
        ),
        (
            ("modelYear",),
            2022.5,
            f"GET Vehicle for vehicle {VEHICLE_ID}: field Vehicle.modelYear is 2022.5, "
            "expected a whole number",
        ),
        (
            ("details", "registrationDate"),
            "yesterday",
            f"GET Vehicle for vehicle {VEHICLE_ID}: field "
            'Vehicle.details.registrationDate is "yesterday", expected an ISO 8601 '
            "date-time",
        ),
        (
            ("id",),
            "00000000-0000-0000-0000-000000000000",
            f"GET Vehicle for vehicle {VEHICLE_ID}: answered vehicle "
            "00000000-0000-0000-0000-000000000000 instead",
        ),
    ],
)
def test_bad_vehicle_answer_fails_naming_vehicle_and_field(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    payload = copy.deepcopy(_sample("vehicle.json"))
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(ShapeError) as failure:
        detail_columns(payload, VEHICLE_ID, RUN, set())

    assert str(failure.value) == message


def test_new_api_fields_are_not_loaded_but_reported() -> None:
    payload = copy.deepcopy(_sample("vehicle.json"))
    payload["co2Label"] = "B"
    payload["pricing"]["discountInEuro"] = 10
    payload["options"][0]["category"] = "comfort"
    unknown: set[str] = set()

    columns = detail_columns(payload, VEHICLE_ID, RUN, unknown)

    assert unknown == {
        "Vehicle.co2Label",
        "Vehicle.pricing.discountInEuro",
        "Vehicle.options.category",
    }
    assert "co2_label" not in columns
    assert "category" not in columns["options"][0]


def test_summary_without_a_required_key_fails_naming_the_cluster() -> None:
    where = "GET VehicleVariation for BMW 3 Serie Touring"
    summary = {"id": VEHICLE_ID, "make": "BMW", "model": "3 Serie Touring"}

    with pytest.raises(ShapeError) as failure:
        summary_columns(summary, where, set())

    assert str(failure.value) == (
        f"{where}: required field VehicleVariation.type is missing or null"
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
