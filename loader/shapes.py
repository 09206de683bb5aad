"""API JSON in, rows out: the one place that knows both shapes, and the loader's bounds.

Each table's columns are declared once here (API key, column, dlt data type, whether
the public client `athlon-flex-client` 1.0.3 requires the key); the dlt resources and
the SQL that publishes `raw` take their columns from the same lists.

Tolerant per car, strict per showroom. A car's odd field never blocks the load: a
value of the wrong JSON type, a date that is not ISO 8601, a number out of the bounds
below or a string too long (or holding a NUL, which PostgreSQL text cannot store)
becomes null, and a `problems` list collects one phrase per field so the caller logs
one warning naming the car. Numbers sent as strings ("1010") are read as numbers, as
pydantic's lax mode (the client's) does. What identifies a car or a cluster is
strict: a summary without a usable id is skipped (warned), a cluster without make,
model or vehicleCount fails the load (`ShapeError`), since its cars could not be
accounted for.

An empty string stays one where the client requires the field and means "absent"
(null) where the client has it optional. Fields the API sends that are not listed are
not loaded; they are collected so the run can log them once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from loader.constants import SHOWROOM_URL

# Part of every summary hash: bump it when the mapping below changes, so the next run
# fetches every vehicle's details again instead of reusing rows of the old mapping.
SHAPE_VERSION = "2"

# --- Bounds: what the later stages can hold (staging casts, indexes, formatting) ------
ID_MAX_CHARS = 64  # the API's ids are GUIDs (36 characters)
TEXT_MAX_CHARS = 2_000  # longer is not a name, colour or link but a fault
INTEGER = (-(2**31), 2**31 - 1)  # staging casts whole numbers to PostgreSQL integer
EURO = (0.0, 1_000_000.0)  # prices, values, costs: 0 to a million euro
KM = (0.0, 10_000_000.0)  # range and mileage
QUANTITY = (0.0, 1_000_000.0)  # emission, consumption, percentages, price per km

Row = dict[str, Any]


class ShapeError(Exception):
    """The API answered something the loader cannot account for (fails the load)."""


@dataclass(frozen=True)
class Field:
    """One API key, the column it lands in, its type and bounds."""

    key: str
    column: str
    data_type: str
    required: bool = True  # by the public client; only changes how "" and null read
    bounds: tuple[float, float] | None = None


def _money(key: str, column: str, required: bool = True) -> Field:
    return Field(key, column, "double", required, EURO)


def _quantity(key: str, column: str, required: bool = True) -> Field:
    return Field(key, column, "double", required, QUANTITY)


def _whole(key: str, column: str, required: bool = True) -> Field:
    return Field(key, column, "bigint", required, INTEGER)


# --- GET VehicleCluster: one object per make + model ---------------------------------
CLUSTER_FIELDS: tuple[Field, ...] = (
    Field("make", "make", "text"),
    Field("model", "model", "text"),
    Field("firstVehicleId", "first_vehicle_id", "text"),
    Field("externalTypeId", "external_type_id", "text"),
    _whole("latestModelYear", "latest_model_year"),
    _whole("vehicleCount", "vehicle_count"),
    _money("minPriceInEuroPerMonth", "min_price_in_euro_per_month"),
    _money("fiscalValueInEuro", "fiscal_value_in_euro"),
    _quantity("additionPercentage", "addition_percentage", required=False),
    _whole("externalFuelTypeId", "external_fuel_type_id"),
    _whole("maxCO2Emission", "max_co2_emission"),
    Field("imageUri", "image_uri", "text"),
)

# --- GET VehicleVariation: the summary of each vehicle of a cluster ------------------
# `GET Vehicle` repeats these at its top level; in `raw.vehicles` the summary's value
# wins and the detail's fills what the summary left out.
SUMMARY_FIELDS: tuple[Field, ...] = (
    Field("id", "id", "text"),
    Field("make", "make", "text"),
    Field("model", "model", "text"),
    Field("type", "type", "text"),
    _whole("modelYear", "model_year"),
    Field("paintId", "paint_id", "text", required=False),
    Field("externalPaintId", "external_paint_id", "text", required=False),
    _money("priceInEuroPerMonth", "price_in_euro_per_month", required=False),
    _money("fiscalValueInEuro", "fiscal_value_in_euro", required=False),
    _quantity("additionPercentage", "addition_percentage", required=False),
    Field("rangeInKm", "range_in_km", "bigint", bounds=KM),
    _whole("externalFuelTypeId", "external_fuel_type_id"),
    Field("externalTypeId", "external_type_id", "text"),
    Field("imageUri", "image_uri", "text", required=False),
    Field("isElectric", "is_electric", "bool", required=False),
)

# --- GET Vehicle: details, pricing, options -------------------------------------------
DETAILS_FIELDS: tuple[Field, ...] = (
    Field("licensePlate", "details__license_plate", "text"),
    Field("color", "details__color", "text"),
    Field("officialColor", "details__official_color", "text"),
    Field("bodyType", "details__body_type", "text"),
    _quantity("emission", "details__emission"),
    Field("registrationDate", "details__registration_date", "timestamp"),
    Field("registeredMileage", "details__registered_mileage", "double", bounds=KM),
    Field("transmissionType", "details__transmission_type", "text"),
    _quantity("avgFuelConsumption", "details__avg_fuel_consumption"),
    Field("typeSpareWheel", "details__type_spare_wheel", "text"),
    _quantity("additionPercentage", "details__addition_percentage", required=False),
)
PRICING_FIELDS: tuple[Field, ...] = (
    _money("fiscalValueInEuro", "pricing__fiscal_value_in_euro"),
    _money("basePricePerMonthInEuro", "pricing__base_price_per_month_in_euro"),
    _money(
        "calculatedPricePerMonthInEuro", "pricing__calculated_price_per_month_in_euro"
    ),
    _quantity("pricePerKm", "pricing__price_per_km"),
    _quantity("fuelPricePerKm", "pricing__fuel_price_per_km"),
    # Only for a logged-in member.
    _money("contributionInEuro", "pricing__contribution_in_euro", required=False),
    _money(
        "expectedFuelCostPerMonthInEuro",
        "pricing__expected_fuel_cost_per_month_in_euro",
    ),
    # Only with the tax cookies (member with GROSS_YEARLY_INCOME).
    _money(
        "netCostPerMonthInEuro", "pricing__net_cost_per_month_in_euro", required=False
    ),
)
OPTION_FIELDS: tuple[Field, ...] = (
    Field("id", "id", "text"),
    Field("externalId", "external_id", "text"),
    Field("optionName", "option_name", "text"),
    Field("included", "included", "bool"),
)


# --- Columns (order = column order of the tables) ---------------------------------
def _hints(fields: Sequence[Field]) -> dict[str, dict[str, Any]]:
    return {f.column: {"data_type": f.data_type, "nullable": True} for f in fields}


def _column(data_type: str) -> dict[str, Any]:
    return {"data_type": data_type, "nullable": True}


CLUSTER_KEY = ("make", "model")
CLUSTER_COLUMNS = {
    **_hints(CLUSTER_FIELDS),
    "uri": _column("text"),
    "extracted_at": _column("timestamp"),
}
# The run's list of cars (landing `vehicles`): summary, link, hash.
SUMMARY_COLUMNS = {
    **_hints(SUMMARY_FIELDS),
    "uri": _column("text"),
    "extracted_at": _column("timestamp"),
    "summary_hash": _column("text"),
}
# Kept details (landing `vehicle_details`, merged): top level, details, pricing.
DETAIL_COLUMNS = {
    **_hints(SUMMARY_FIELDS),
    **_hints(DETAILS_FIELDS),
    **_hints(PRICING_FIELDS),
    "summary_hash": _column("text"),
    "details_fetched_at": _column("timestamp"),
}
OPTION_COLUMNS = {"vehicle_id": _column("text"), **_hints(OPTION_FIELDS)}
# `raw.vehicles` and `raw.vehicles__options` (docs/architecture.md), in this order.
VEHICLE_COLUMNS = (
    *(f.column for f in SUMMARY_FIELDS + DETAILS_FIELDS + PRICING_FIELDS),
    "uri",
    "extracted_at",
    "summary_hash",
    "details_fetched_at",
)
RAW_OPTION_COLUMNS = (*OPTION_COLUMNS, "extracted_at")


# --- Conversion: (value, None) or (None, what is wrong) ----------------------------
def _text(value: Any, field: Field) -> tuple[Any, str | None]:
    if not isinstance(value, str):
        return None, "expected a string"
    if len(value) > TEXT_MAX_CHARS:
        return None, f"longer than {TEXT_MAX_CHARS} characters"
    if "\x00" in value:
        return None, "holds a NUL character"
    return value, None


def _number(value: Any, field: Field) -> tuple[Any, str | None]:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None, "expected a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, "expected a number"
    if isinstance(value, float) and not math.isfinite(value):
        return None, "expected a finite number"
    if field.data_type == "bigint":
        if value != int(value):
            return None, "expected a whole number"
        value = int(value)
    else:
        value = float(value)
    low, high = field.bounds or (-math.inf, math.inf)
    if not low <= value <= high:
        return None, f"outside {low:g} to {high:g}"
    return value, None


def _bool(value: Any, field: Field) -> tuple[Any, str | None]:
    return (value, None) if isinstance(value, bool) else (None, "expected true/false")


def _timestamp(value: Any, field: Field) -> tuple[Any, str | None]:
    """ISO 8601, as the API writes dates; no offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None, "expected an ISO 8601 date-time"
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), None


_CONVERTERS = {
    "text": _text,
    "bigint": _number,
    "double": _number,
    "bool": _bool,
    "timestamp": _timestamp,
}


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(
    obj: Mapping[str, Any],
    fields: tuple[Field, ...],
    path: str,
    problems: list[str],
    unknown: set[str],
) -> Row:
    """The columns of `fields` from `obj`; a bad value is null plus one problem."""
    row: Row = {}
    for field in fields:
        value = obj.get(field.key)
        if value == "" and not field.required:
            value = None  # an empty optional text is simply absent
        converted = None
        if value is None:
            if field.required:
                problems.append(f"{path}{field.key} is missing")
        else:
            converted, wrong = _CONVERTERS[field.data_type](value, field)
            if wrong:
                problems.append(f"{path}{field.key} is {_describe(value)}: {wrong}")
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


def vehicle_id_of(value: Any) -> str | None:
    """The id as the loader keys cars: lower-cased (GUIDs compare case-insensitively);
    None when it is not a usable id (not a string, empty, too long, a NUL)."""
    if not isinstance(value, str) or not 0 < len(value) <= ID_MAX_CHARS:
        return None
    return None if "\x00" in value else value.lower()


# --- Rows -----------------------------------------------------------------------------
def showroom_uri(make: str, model: str, vehicle_id: str | None = None) -> str:
    """The web app's page of a cluster, or of one vehicle (as the client builds it)."""
    uri = f"{SHOWROOM_URL}/{make}/{model}"
    return f"{uri}/{vehicle_id}" if vehicle_id else uri


def cluster_row(
    item: Any, extracted_at: datetime, unknown: set[str], problems: list[str]
) -> Row:
    """One `vehicle_clusters` row; ShapeError without make, model or vehicle count."""
    where = "GET VehicleCluster"
    if not isinstance(item, Mapping):
        raise ShapeError(f"{where}: an element is {_describe(item)}, not an object")
    row = _convert(item, CLUSTER_FIELDS, "VehicleCluster.", problems, unknown)
    if row["make"] is None or row["model"] is None or row["vehicle_count"] is None:
        raise ShapeError(
            f"{where}: a cluster without a usable make, model or vehicleCount "
            f"({'; '.join(problems)})"
        )
    row["uri"] = showroom_uri(row["make"], row["model"])
    row["extracted_at"] = extracted_at
    return row


def summary_row(
    item: Any, cluster: Row, unknown: set[str], problems: list[str]
) -> Row | None:
    """The `vehicles` columns of one `VehicleVariation` element; None without an id.

    Make and model fall back to the cluster's (the list was asked for by them).
    """
    if not isinstance(item, Mapping):
        problems.append(f"element is {_describe(item)}, not an object")
        return None
    row = _convert(item, SUMMARY_FIELDS, "VehicleVariation.", problems, unknown)
    row["id"] = vehicle_id_of(item.get("id"))
    if row["id"] is None:
        return None
    row["make"] = row["make"] or cluster["make"]
    row["model"] = row["model"] or cluster["model"]
    row["uri"] = showroom_uri(row["make"], row["model"], row["id"])
    return row


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


_DETAIL_KEYS = _keys(SUMMARY_FIELDS) | {"details", "pricing", "options"}
_OPTION_KEYS = _keys(OPTION_FIELDS)


def detail_row(
    payload: Any, vehicle_id: str, unknown: set[str], problems: list[str]
) -> Row:
    """`GET Vehicle` of one car as a `vehicle_details` row with an `options` list.

    Whatever is missing or malformed is null (no options), with a problem each.
    """
    obj = payload if isinstance(payload, Mapping) else {}
    if not isinstance(payload, Mapping):
        problems.append(f"the answer is {_describe(payload)}, not an object")
    elif vehicle_id_of(obj.get("id")) != vehicle_id:
        problems.append(f"the answer is about vehicle {_describe(obj.get('id'))}")
        obj = {}
    row = _convert(obj, SUMMARY_FIELDS, "Vehicle.", [], set())
    unknown.update(f"Vehicle.{key}" for key in obj if key not in _DETAIL_KEYS)
    for key, fields in (("details", DETAILS_FIELDS), ("pricing", PRICING_FIELDS)):
        part = obj.get(key)
        if isinstance(part, Mapping):
            row.update(_convert(part, fields, f"Vehicle.{key}.", problems, unknown))
        else:
            problems.append(f"Vehicle.{key} is {_describe(part)}, not an object")
            row.update((field.column, None) for field in fields)
    row["id"] = vehicle_id
    row["options"] = _option_rows(obj.get("options"), vehicle_id, problems, unknown)
    return row


def _option_rows(
    value: Any, vehicle_id: str, problems: list[str], unknown: set[str]
) -> list[Row]:
    if not isinstance(value, list):
        problems.append(f"Vehicle.options is {_describe(value)}, not a list")
        return []
    rows: list[Row] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"Vehicle.options[{index}]."
        option = item if isinstance(item, Mapping) else {}
        row = _convert(option, OPTION_FIELDS, where, problems, set())
        unknown.update(f"Vehicle.options.{k}" for k in option if k not in _OPTION_KEYS)
        if row["id"] is None or row["id"] in seen or len(row["id"]) > ID_MAX_CHARS:
            problems.append(f"{where}id {_describe(option.get('id'))} skipped")
            continue
        seen.add(row["id"])
        rows.append({"vehicle_id": vehicle_id, **row})
    return rows
