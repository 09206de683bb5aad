"""API JSON in, `raw` rows out: the one place that knows both shapes.

Each table's columns are declared once here (API key, column, dlt data type, whether
the API must send it); the dlt resources take their column hints from the same lists,
so a row can never carry a column the schema does not declare.

Validation fails closed: a required field that is missing or null, or any field of the
wrong JSON type, raises `ShapeError` naming the endpoint, the vehicle or cluster and the
field. "Required" is what the public client's pydantic models require (plus the keys).
Fields the API sends that are not listed here are not loaded; they are collected so the
run can log them once (see the schema contract in `loader/__init__.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from loader.settings import SHOWROOM_URL

# Part of every summary hash: bump it when the mapping below changes, so the next run
# fetches every vehicle's details again instead of reusing rows of the old mapping.
SHAPE_VERSION = "1"

Row = dict[str, Any]


class ShapeError(Exception):
    """The API answered JSON that is not the shape the loader knows."""


@dataclass(frozen=True)
class Field:
    """One API key and the `raw` column it lands in."""

    key: str
    column: str
    data_type: str
    required: bool = True


# --- GET VehicleCluster: one object per make + model ---------------------------------
CLUSTER_FIELDS: tuple[Field, ...] = (
    Field("make", "make", "text"),
    Field("model", "model", "text"),
    Field("firstVehicleId", "first_vehicle_id", "text"),
    Field("externalTypeId", "external_type_id", "text"),
    Field("latestModelYear", "latest_model_year", "bigint"),
    Field("vehicleCount", "vehicle_count", "bigint"),
    Field("minPriceInEuroPerMonth", "min_price_in_euro_per_month", "double"),
    Field("fiscalValueInEuro", "fiscal_value_in_euro", "double"),
    Field("additionPercentage", "addition_percentage", "double", required=False),
    Field("externalFuelTypeId", "external_fuel_type_id", "bigint"),
    Field("maxCO2Emission", "max_co2_emission", "bigint"),
    Field("imageUri", "image_uri", "text"),
)

# --- GET VehicleVariation: the summary of each vehicle of a cluster ------------------
# `GET Vehicle` repeats most of these at its top level; the summary's value wins and
# the detail's fills what the summary left out (both are the same car at one moment).
SUMMARY_FIELDS: tuple[Field, ...] = (
    Field("id", "id", "text"),
    Field("make", "make", "text"),
    Field("model", "model", "text"),
    Field("type", "type", "text"),
    Field("modelYear", "model_year", "bigint"),
    Field("paintId", "paint_id", "text", required=False),
    Field("externalPaintId", "external_paint_id", "text", required=False),
    Field("priceInEuroPerMonth", "price_in_euro_per_month", "double", required=False),
    Field("fiscalValueInEuro", "fiscal_value_in_euro", "double", required=False),
    Field("additionPercentage", "addition_percentage", "double", required=False),
    Field("rangeInKm", "range_in_km", "bigint"),
    Field("externalFuelTypeId", "external_fuel_type_id", "bigint"),
    Field("externalTypeId", "external_type_id", "text"),
    Field("imageUri", "image_uri", "text", required=False),
    Field("isElectric", "is_electric", "bool", required=False),
)
_DETAIL_TOP_FIELDS = tuple(
    Field(f.key, f.column, f.data_type, required=f.key == "id") for f in SUMMARY_FIELDS
)

# --- GET Vehicle: details, pricing, options -------------------------------------------
DETAILS_FIELDS: tuple[Field, ...] = (
    Field("licensePlate", "details__license_plate", "text"),
    Field("color", "details__color", "text"),
    Field("officialColor", "details__official_color", "text"),
    Field("bodyType", "details__body_type", "text"),
    Field("emission", "details__emission", "double"),
    Field("registrationDate", "details__registration_date", "timestamp"),
    Field("registeredMileage", "details__registered_mileage", "double"),
    Field("transmissionType", "details__transmission_type", "text"),
    Field("avgFuelConsumption", "details__avg_fuel_consumption", "double"),
    Field("typeSpareWheel", "details__type_spare_wheel", "text"),
    Field(
        "additionPercentage", "details__addition_percentage", "double", required=False
    ),
)
PRICING_FIELDS: tuple[Field, ...] = (
    Field("fiscalValueInEuro", "pricing__fiscal_value_in_euro", "double"),
    Field("basePricePerMonthInEuro", "pricing__base_price_per_month_in_euro", "double"),
    Field(
        "calculatedPricePerMonthInEuro",
        "pricing__calculated_price_per_month_in_euro",
        "double",
    ),
    Field("pricePerKm", "pricing__price_per_km", "double"),
    Field("fuelPricePerKm", "pricing__fuel_price_per_km", "double"),
    # Only for a logged-in member.
    Field(
        "contributionInEuro", "pricing__contribution_in_euro", "double", required=False
    ),
    Field(
        "expectedFuelCostPerMonthInEuro",
        "pricing__expected_fuel_cost_per_month_in_euro",
        "double",
    ),
    # Only with the tax cookies (member with GROSS_YEARLY_INCOME).
    Field(
        "netCostPerMonthInEuro",
        "pricing__net_cost_per_month_in_euro",
        "double",
        required=False,
    ),
)
OPTION_FIELDS: tuple[Field, ...] = (
    Field("id", "id", "text"),
    Field("externalId", "external_id", "text"),
    Field("optionName", "option_name", "text"),
    Field("included", "included", "bool"),
)


# --- Column hints for dlt (order = column order of the created tables) ----------------
# A required field's column is NOT NULL; only optional fields may be null. Besides
# documenting the contract in the database, this matters for loading: dlt's CSV +
# COPY (see source.py) reads an empty string as NULL in nullable columns only, and
# optional text fields are mapped "" -> None below, so nothing changes on the way.
def _hints(fields: Sequence[Field]) -> dict[str, dict[str, Any]]:
    return {
        f.column: {"data_type": f.data_type, "nullable": not f.required} for f in fields
    }


_SNAPSHOT_TIME = {"data_type": "timestamp", "nullable": False}
CLUSTER_KEY = ("make", "model")
CLUSTER_COLUMNS: dict[str, dict[str, Any]] = {
    **_hints(CLUSTER_FIELDS),
    "uri": {"data_type": "text", "nullable": False},
    "extracted_at": _SNAPSHOT_TIME,
}
VEHICLE_KEY = ("id",)
VEHICLE_COLUMNS: dict[str, dict[str, Any]] = {
    **_hints(SUMMARY_FIELDS),
    **_hints(DETAILS_FIELDS),
    **_hints(PRICING_FIELDS),
    "uri": {"data_type": "text", "nullable": False},
    "extracted_at": _SNAPSHOT_TIME,
    "summary_hash": {"data_type": "text", "nullable": False},
    "details_fetched_at": {"data_type": "timestamp", "nullable": False},
}
OPTION_KEY = ("vehicle_id", "id")
OPTION_COLUMNS: dict[str, dict[str, Any]] = {
    "vehicle_id": {"data_type": "text", "nullable": False},
    **_hints(OPTION_FIELDS),
    "extracted_at": _SNAPSHOT_TIME,
}


# --- Conversion -----------------------------------------------------------------------
def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bigint(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _double(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _timestamp(value: Any) -> datetime | None:
    """ISO 8601 with offset, as the API writes dates; no offset is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "bigint": _bigint,
    "double": _double,
    "bool": _bool,
    "timestamp": _timestamp,
}
_EXPECTED = {
    "text": "a string",
    "bigint": "a whole number",
    "double": "a number",
    "bool": "true or false",
    "timestamp": "an ISO 8601 date-time",
}


def _object(value: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ShapeError(f"{where}: {what} is {_describe(value)}, expected an object")
    return value


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(
    obj: Mapping[str, Any],
    fields: tuple[Field, ...],
    where: str,
    unknown: set[str],
    path: str,
) -> Row:
    """The columns of `fields` from `obj`; ShapeError on a missing or mistyped one."""
    row: Row = {}
    for field in fields:
        value = obj.get(field.key)
        if value == "" and not field.required:
            value = None  # an empty optional text is simply absent
        if value is None:
            if field.required:
                raise ShapeError(
                    f"{where}: required field {path}{field.key} is missing or null"
                )
            row[field.column] = None
            continue
        converted = _CONVERTERS[field.data_type](value)
        if converted is None:
            raise ShapeError(
                f"{where}: field {path}{field.key} is {_describe(value)}, expected "
                f"{_EXPECTED[field.data_type]}"
            )
        row[field.column] = converted
    known = _keys(fields)
    unknown.update(f"{path}{key}" for key in obj if key not in known)
    return row


@cache
def _keys(fields: tuple[Field, ...]) -> frozenset[str]:
    return frozenset(field.key for field in fields)


def expect_list(value: Any, where: str) -> list[Any]:
    """The response must be a JSON array."""
    if not isinstance(value, list):
        raise ShapeError(f"{where}: answered {_describe(value)}, expected a list")
    return value


# --- Rows -----------------------------------------------------------------------------
def showroom_uri(make: str, model: str, vehicle_id: str | None = None) -> str:
    """The web app's page of a cluster, or of one vehicle (as the client builds it)."""
    uri = f"{SHOWROOM_URL}/{make}/{model}"
    return f"{uri}/{vehicle_id}" if vehicle_id else uri


def cluster_row(item: Any, extracted_at: datetime, unknown: set[str]) -> Row:
    """One `raw.vehicle_clusters` row from one element of `GET VehicleCluster`."""
    where = "GET VehicleCluster"
    obj = _object(item, where, "an element")
    row = _convert(obj, CLUSTER_FIELDS, where, unknown, "VehicleCluster.")
    row["uri"] = showroom_uri(row["make"], row["model"])
    row["extracted_at"] = extracted_at
    return row


def summary_columns(item: Any, where: str, unknown: set[str]) -> Row:
    """The summary columns of one element of `GET VehicleVariation`."""
    obj = _object(item, where, "an element")
    return _convert(obj, SUMMARY_FIELDS, where, unknown, "VehicleVariation.")


def summary_hash(item: Mapping[str, Any], context: str) -> str:
    """Fingerprint of a summary as the API sent it, in the run's identity context.

    The whole object counts (also keys the loader does not load), plus `context`
    (who asked: anonymous, member, tax group) and SHAPE_VERSION: when any of them
    differs from the stored row's, that vehicle's details are fetched again.
    """
    canonical = json.dumps(
        [SHAPE_VERSION, context, item], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def detail_columns(
    payload: Any, vehicle_id: str, extracted_at: datetime, unknown: set[str]
) -> Row:
    """Columns of `GET Vehicle` for one vehicle: top level, details, pricing, options.

    The options come back as a list under "options", each row with `vehicle_id` and
    `extracted_at` (dlt makes them the child table `vehicles__options`).
    """
    where = f"GET Vehicle for vehicle {vehicle_id}"
    obj = _object(payload, where, "the answer")
    top = _convert(obj, _DETAIL_TOP_FIELDS, where, set(), "Vehicle.")
    if top["id"].lower() != vehicle_id.lower():
        raise ShapeError(f"{where}: answered vehicle {top['id']} instead")
    for key in obj:
        if key not in _DETAIL_KEYS:
            unknown.add(f"Vehicle.{key}")
    details = _convert(
        _object(obj.get("details"), where, "details"),
        DETAILS_FIELDS,
        where,
        unknown,
        "Vehicle.details.",
    )
    pricing = _convert(
        _object(obj.get("pricing"), where, "pricing"),
        PRICING_FIELDS,
        where,
        unknown,
        "Vehicle.pricing.",
    )
    options = _option_rows(obj.get("options"), vehicle_id, extracted_at, where, unknown)
    del top["id"]
    return {**top, **details, **pricing, "options": options}


_DETAIL_KEYS = {f.key for f in _DETAIL_TOP_FIELDS} | {"details", "pricing", "options"}


def _option_rows(
    value: Any,
    vehicle_id: str,
    extracted_at: datetime,
    where: str,
    unknown: set[str],
) -> list[Row]:
    if value is None:
        raise ShapeError(f"{where}: required field options is missing or null")
    items = expect_list(value, f"{where} (options)")
    rows: list[Row] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        option = _object(item, where, f"options[{index}]")
        row = _convert(option, OPTION_FIELDS, where, unknown, "Vehicle.options.")
        if row["id"] in seen:
            raise ShapeError(f"{where}: option {row['id']} appears twice")
        seen.add(row["id"])
        rows.append({"vehicle_id": vehicle_id, **row, "extracted_at": extracted_at})
    return rows


def vehicle_row(
    summary: Row,
    details: Row,
    *,
    hash_: str,
    extracted_at: datetime,
    details_fetched_at: datetime,
) -> Row:
    """A `raw.vehicles` row: the summary, completed by details (fresh or reused).

    `details` is `detail_columns(...)` of a fresh `GET Vehicle`, or the previous raw
    row of an unchanged vehicle; either way the summary's non-null values win.
    """
    row: Row = {column: details.get(column) for column in VEHICLE_COLUMNS}
    row.update(
        (column, value) for column, value in summary.items() if value is not None
    )
    row["uri"] = showroom_uri(row["make"], row["model"], row["id"])
    row["extracted_at"] = extracted_at
    row["summary_hash"] = hash_
    row["details_fetched_at"] = details_fetched_at
    row["options"] = [
        {**option, "extracted_at": extracted_at} for option in details["options"]
    ]
    return row
