"""The JSON shapes of the real API's responses, built from the catalog's values.

Field names, nesting, order and JSON types follow the real responses in
shared/athlon-api-samples (vehicle.json, vehicle_cluster.json) and the public client's
pydantic models (profile, tax rates, vehicle summaries). Each `*_DECIMALS` mapping says
which keys the real API writes with a fixed scale (see `encoding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from simulation.fake_api.generation import IMAGE_BASE, slug, stable_guid
from simulation.fake_api.members import MemberAccount, TaxRate
from simulation.fake_api.vehicle import contribution_per_month, net_cost_per_month

if TYPE_CHECKING:
    from simulation.fake_api.vehicle import Vehicle

SUMMARY_DECIMALS = {"priceInEuroPerMonth": 2}
DETAIL_DECIMALS = {
    "calculatedPricePerMonthInEuro": 2,
    "expectedFuelCostPerMonthInEuro": 2,
    "contributionInEuro": 2,
    "netCostPerMonthInEuro": 2,
}
CLUSTER_DECIMALS = {
    "minPriceInEuroPerMonth": 6,
    "fiscalValueInEuro": 2,
    "additionPercentage": 2,
}


def vehicle_summary(vehicle: Vehicle) -> dict[str, Any]:
    """One element of `GET VehicleVariation` (no details, pricing or options)."""
    return {
        "id": vehicle.id,
        "make": vehicle.make,
        "model": vehicle.model,
        "type": vehicle.type,
        "modelYear": vehicle.model_year,
        "paintId": vehicle.paint_id,
        "externalPaintId": vehicle.external_paint_id,
        "priceInEuroPerMonth": vehicle.calculated_price,
        "fiscalValueInEuro": vehicle.fiscal_value,
        "additionPercentage": vehicle.addition_percentage,
        "rangeInKm": vehicle.range_km,
        "externalFuelTypeId": int(vehicle.fuel),
        "externalTypeId": vehicle.external_type_id,
        "imageUri": vehicle.image_uri,
        "isElectric": vehicle.is_electric,
    }


def vehicle_detail(
    vehicle: Vehicle,
    *,
    budget_per_month: float | None = None,
    tax_percentage: float | None = None,
) -> dict[str, Any]:
    """`GET Vehicle`: the car with details, pricing and options (as vehicle.json).

    Anonymous (no budget) responses have neither `contributionInEuro` nor
    `netCostPerMonthInEuro`; the keys are absent, not null, like the real API.
    """
    pricing: dict[str, Any] = {
        "fiscalValueInEuro": vehicle.fiscal_value,
        "basePricePerMonthInEuro": vehicle.base_price,
        "calculatedPricePerMonthInEuro": vehicle.calculated_price,
        "pricePerKm": vehicle.price_per_km,
        "fuelPricePerKm": vehicle.fuel_price_per_km,
    }
    if budget_per_month is not None:
        pricing["contributionInEuro"] = contribution_per_month(
            vehicle, budget_per_month
        )
    pricing["expectedFuelCostPerMonthInEuro"] = vehicle.expected_fuel_cost
    if budget_per_month is not None and tax_percentage is not None:
        pricing["netCostPerMonthInEuro"] = net_cost_per_month(
            vehicle, budget_per_month, tax_percentage
        )
    return {
        "id": vehicle.id,
        "make": vehicle.make,
        "model": vehicle.model,
        "type": vehicle.type,
        "modelYear": vehicle.model_year,
        "externalPaintId": vehicle.external_paint_id,
        "externalTypeId": vehicle.external_type_id,
        "externalFuelTypeId": int(vehicle.fuel),
        "imageUri": vehicle.image_uri,
        "rangeInKm": vehicle.range_km,
        "isElectric": vehicle.is_electric,
        "details": {
            "licensePlate": vehicle.license_plate,
            "color": vehicle.color,
            "officialColor": vehicle.official_color,
            "bodyType": vehicle.body_type,
            "emission": vehicle.emission,
            "registrationDate": vehicle.registration_date,
            "registeredMileage": vehicle.registered_mileage,
            "transmissionType": vehicle.transmission,
            "avgFuelConsumption": vehicle.avg_fuel_consumption,
            "typeSpareWheel": vehicle.spare_wheel,
            "additionPercentage": vehicle.addition_percentage,
        },
        "pricing": pricing,
        "options": [
            {
                "id": option.id,
                "externalId": option.external_id,
                "optionName": option.name,
                "included": option.included,
            }
            for option in vehicle.options
        ],
    }


def first_vehicle(vehicles: Sequence[Vehicle]) -> Vehicle:
    """The cluster's representative: the cheapest car, the earliest one on a tie."""
    return min(vehicles, key=lambda vehicle: vehicle.calculated_price)


def cluster_json(vehicles: Sequence[Vehicle]) -> dict[str, Any]:
    """One element of `GET VehicleCluster`, derived from the cluster's vehicles.

    Price, fiscal value, addition, fuel and type come from the first (cheapest) car;
    count, latest model year and maximum CO2 from all of them.
    """
    first = first_vehicle(vehicles)
    latest_year = max(vehicle.model_year for vehicle in vehicles)
    body_code = first.body_code
    return {
        "firstVehicleId": first.id,
        "externalTypeId": first.external_type_id,
        "make": first.make,
        "model": first.model,
        "latestModelYear": latest_year,
        "vehicleCount": len(vehicles),
        "minPriceInEuroPerMonth": first.calculated_price,
        "fiscalValueInEuro": first.fiscal_value,
        "additionPercentage": first.addition_percentage,
        "externalFuelTypeId": int(first.fuel),
        "maxCO2Emission": round(max(vehicle.emission for vehicle in vehicles)),
        "imageUri": (
            f"{IMAGE_BASE}/photo/[#width#]/{slug(first.make)}/{slug(first.model)}/"
            f"{latest_year}/{body_code}/"
        ),
    }


def profile_json(account: MemberAccount) -> dict[str, Any]:
    """`GET MemberProfile` for the account, every field of the client's `Profile`."""
    budget = account.actual_budget_per_month
    maximum = account.max_budget_per_month
    address = {
        "street": "Stationsplein",
        "houseNumber": "12",
        "houseNumberAddendum": "",
        "zipCode": "3511 ED",
        "city": "Utrecht",
    }
    return {
        "id": stable_guid("member", account.username),
        "initials": f"{account.first_name[:1]}.",
        "firstName": account.first_name,
        "lastName": account.last_name,
        "phoneNumber": "+31612345678",
        "email": account.username,
        "customerName": account.customer_name,
        "isConsumer": False,
        "flexPlus": False,
        "relationshipManager": {
            "name": "Athlon Flex Servicedesk",
            "email": "flex@athlon.example",
            "phone": "+31881234567",
        },
        "requiresIncludeTaxInPrices": False,
        "includeMileageCostsInPricing": True,
        "includeFuelCostsInPricing": True,
        "onlyShowNetMonthCosts": False,
        "numberOfKmPerMonth": account.number_of_km_per_month,
        "remainingSwaps": account.remaining_swaps,
        "budget": {
            "actualBudgetPerMonth": budget,
            "maxBudgetPerMonth": maximum,
            "normBudgetPerMonth": budget,
            "normBudgetGasolinePerMonth": budget,
            "normBudgetElectricPerMonth": budget,
            "maxBudgetGasolinePerMonth": maximum,
            "maxBudgetElectricPerMonth": maximum,
            "normUndershootPercentage": 0.0,
            "maxNormUndershootPercentage": 10.0,
            "savedBudget": 0.0,
            "savedBudgetPayoutAllowed": False,
            "holidayCarRaiseAllowed": True,
        },
        "hideIntroPopup": True,
        "chargingStationRequest": False,
        "pendingCancelation": False,
        "pendingBikeCancelation": False,
        "pendingBudgetPayout": False,
        "pendingHolidayCarRaise": False,
        "deliveryAddress": address,
        "officialAddress": address,
        "currentReservation": None,
        "firstReservationAllowedFromUtc": "2024-01-01T00:00:00Z",
        "firstDeliveryAllowedFromUtc": "2024-01-08T00:00:00Z",
        "canOrderBike": False,
        "canMakeReservation": True,
        "canMakeReservationFromUtc": "2024-01-01T00:00:00Z",
        "canMakePickup": False,
        "canMakeBikeReservation": False,
        "canMakeBikePickup": False,
        "canMakeFirstReservation": False,
        "canDecline": False,
        "canDeclineBike": False,
    }


def tax_rates_json(rates: Sequence[TaxRate]) -> list[dict[str, Any]]:
    """`GET TaxRates`: a list of {label, percentage}."""
    return [{"label": rate.label, "percentage": rate.percentage} for rate in rates]


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem_json(status: int, detail: str | None = None) -> dict[str, Any]:
    """ASP.NET Core style problem details for an error status."""
    problem: dict[str, Any] = {
        "type": f"https://httpstatuses.io/{status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        problem["detail"] = detail
    return problem
