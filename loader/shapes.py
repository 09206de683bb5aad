"""API JSON in, rows out: the API's shapes as pydantic models, and the loader's bounds.

The models mirror athlon-flex-client 1.0.3: a field it declares optional is optional
here, everything else required. They are tolerant per car: a field whose value does
not validate (wrong type, not ISO 8601, outside the bounds below, too long, holding a
NUL, which PostgreSQL text cannot store) or that a required field lacks becomes None,
and one phrase per field goes to the `problems` list in the validation context so the
caller logs one warning naming the car. Numbers sent as strings are read as numbers
(pydantic's lax mode, the client's too). An empty string means "absent" where the
client has the field optional. Keys the models do not declare are not loaded; they
are collected in `unknown` so the run can name them once.

What identifies a car or a cluster is strict: a summary without a usable id is
skipped, a cluster without make, model or vehicleCount fails the load (`ShapeError`).
Column names are dlt's: snake_case, nested objects joined with `__`; the column hints
of the dlt resources are derived from the same models.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from types import NoneType, UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_snake

from loader.constants import SHOWROOM_URL

# Part of every summary hash: bump it when the models change, so the next run fetches
# every car's details again instead of reusing rows of the old mapping.
SHAPE_VERSION = "3"

# --- Bounds: what the later stages can hold (staging casts, indexes, formatting) ------
ID_MAX_CHARS = 64  # the API's ids are GUIDs (36 characters)
TEXT_MAX_CHARS = 2_000  # longer is not a name, colour or link but a fault
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1  # staging casts to PostgreSQL integer
EURO_MAX = 1_000_000.0  # prices, values, costs
KM_MAX = 10_000_000.0  # range and mileage
QUANTITY_MAX = 1_000_000.0  # emission, consumption, percentages, price per km

Row = dict[str, Any]


class ShapeError(Exception):
    """The API answered something the loader cannot account for (fails the load)."""


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("holds a NUL character")
    return value


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic's lax mode would read true as 1
        raise ValueError("expected a number, not true/false")
    return value


def _iso(value: Any) -> datetime:
    """ISO 8601, as the API writes dates; no offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError("expected an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Text = Annotated[
    str, StringConstraints(max_length=TEXT_MAX_CHARS), AfterValidator(_no_nul)
]
# Lower-cased: GUIDs compare case-insensitively.
VehicleId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_MAX_CHARS, to_lower=True),
    AfterValidator(_no_nul),
]
_VEHICLE_ID = TypeAdapter(VehicleId)
Whole = Annotated[int, BeforeValidator(_no_bool), Field(ge=INTEGER_MIN, le=INTEGER_MAX)]
Euro = Annotated[float, BeforeValidator(_no_bool), Field(ge=0, le=EURO_MAX)]
Km = Annotated[float, BeforeValidator(_no_bool), Field(ge=0, le=KM_MAX)]
WholeKm = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=KM_MAX)]
Quantity = Annotated[float, BeforeValidator(_no_bool), Field(ge=0, le=QUANTITY_MAX)]
Timestamp = Annotated[datetime, BeforeValidator(_iso)]


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


class Shape(BaseModel):
    """An API object read tolerantly (see the module's docstring)."""

    where: ClassVar[str]  # how problems and unknown keys name this object's fields
    quiet: ClassVar[frozenset[str]] = frozenset()  # fields whose problems go unsaid

    @model_validator(mode="before")
    @classmethod
    def _every_field(cls, data: Any, info: ValidationInfo) -> Any:
        """Note unknown keys; give every field a value, so a missing one is named."""
        if not isinstance(data, Mapping):
            return data  # refused by pydantic: the field holding it becomes None
        if info.context is not None:
            known = cls.model_fields
            info.context["unknown"].update(
                cls.where + k for k in data if k not in known
            )
        return {
            name: None if value == "" and not field.is_required() else value
            for name, field in cls.model_fields.items()
            for value in [data.get(name)]
        }

    @field_validator("*", mode="wrap")
    @classmethod
    def _or_none(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError as error:
            if info.context is not None and info.field_name not in cls.quiet:
                name = f"{cls.where}{info.field_name}"
                info.context["problems"].append(
                    f"{name} is missing"
                    if value is None
                    else f"{name} is {_describe(value)}: {error.errors()[0]['msg']}"
                )
            return None


# --- GET VehicleCluster: one object per make + model ---------------------------------
class Cluster(Shape):
    where = "VehicleCluster."
    make: Text
    model: Text
    firstVehicleId: Text
    externalTypeId: Text
    latestModelYear: Whole
    vehicleCount: Whole
    minPriceInEuroPerMonth: Euro
    fiscalValueInEuro: Euro
    additionPercentage: Quantity | None = None
    externalFuelTypeId: Whole
    maxCO2Emission: Whole
    imageUri: Text


# --- GET VehicleVariation: the summary of each car of a cluster ----------------------
class Summary(Shape):
    where = "VehicleVariation."
    id: VehicleId
    make: Text
    model: Text
    type: Text
    modelYear: Whole
    paintId: Text | None = None
    externalPaintId: Text | None = None
    priceInEuroPerMonth: Euro | None = None
    fiscalValueInEuro: Euro | None = None
    additionPercentage: Quantity | None = None
    rangeInKm: WholeKm
    externalFuelTypeId: Whole
    externalTypeId: Text
    imageUri: Text | None = None
    isElectric: bool | None = None


# --- GET Vehicle: the summary again, details, pricing, options ------------------------
class Details(Shape):
    where = "Vehicle.details."
    licensePlate: Text
    color: Text
    officialColor: Text
    bodyType: Text
    emission: Quantity
    registrationDate: Timestamp
    registeredMileage: Km
    transmissionType: Text
    avgFuelConsumption: Quantity
    typeSpareWheel: Text
    additionPercentage: Quantity | None = None


class Pricing(Shape):
    where = "Vehicle.pricing."
    fiscalValueInEuro: Euro
    basePricePerMonthInEuro: Euro
    calculatedPricePerMonthInEuro: Euro
    pricePerKm: Quantity
    fuelPricePerKm: Quantity
    contributionInEuro: Euro | None = None  # only for a logged-in member
    expectedFuelCostPerMonthInEuro: Euro
    netCostPerMonthInEuro: Euro | None = None  # only with the tax group cookies


class Option(Shape):
    where = "Vehicle.options."
    id: Text
    externalId: Text
    optionName: Text
    included: bool


class Vehicle(Summary):
    """`GET Vehicle`. The client reuses one model for summaries and details, so it has
    details, pricing and options optional; asked for by id, they are due here."""

    where = "Vehicle."
    quiet = frozenset(Summary.model_fields)  # the summary's own problems are named
    details: Details
    pricing: Pricing
    options: list[Option]


# --- Columns, derived from the models (order = column order of the tables) -----------
_DLT_TYPES = {
    str: "text",
    int: "bigint",
    float: "double",
    bool: "bool",
    datetime: "timestamp",
}


def _base_type(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        (annotation,) = (a for a in get_args(annotation) if a is not NoneType)
    return (
        get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    )


def _fields(model: type[Shape], prefix: str = "") -> dict[str, str]:
    """column -> model field name, scalar fields only."""
    return {
        prefix + to_snake(name): name
        for name, field in model.model_fields.items()
        if _base_type(field.annotation) in _DLT_TYPES
    }


def hints(model: type[Shape], prefix: str = "") -> dict[str, dict[str, Any]]:
    """dlt column hints of a model's scalar fields, every one nullable."""
    return {
        column: {
            "data_type": _DLT_TYPES[_base_type(model.model_fields[name].annotation)],
            "nullable": True,
        }
        for column, name in _fields(model, prefix).items()
    }


def _column(data_type: str) -> dict[str, Any]:
    return {"data_type": data_type, "nullable": True}


CLUSTER_KEY = ("make", "model")
CLUSTER_COLUMNS = {
    **hints(Cluster),
    "uri": _column("text"),
    "extracted_at": _column("timestamp"),
}
# The run's list of cars (landing `vehicles`): summary, link, hash.
SUMMARY_COLUMNS = {
    **hints(Summary),
    "uri": _column("text"),
    "extracted_at": _column("timestamp"),
    "summary_hash": _column("text"),
}
# Kept details (landing `vehicle_details`, merged): top level, details, pricing.
DETAIL_COLUMNS = {
    **hints(Summary),
    **hints(Details, "details__"),
    **hints(Pricing, "pricing__"),
    "summary_hash": _column("text"),
    "details_fetched_at": _column("timestamp"),
}
OPTION_COLUMNS = {"vehicle_id": _column("text"), **hints(Option)}
SUMMARY_COLUMN_NAMES = frozenset(hints(Summary))
# `raw.vehicles` (docs/architecture.md), in this order.
VEHICLE_COLUMNS = (
    *(c for c in DETAIL_COLUMNS if c not in ("summary_hash", "details_fetched_at")),
    "uri",
    "extracted_at",
    "summary_hash",
    "details_fetched_at",
)


def _row(model: Shape | None, kind: type[Shape], prefix: str = "") -> Row:
    fields = _fields(kind, prefix)
    return {c: getattr(model, n) if model else None for c, n in fields.items()}


def _read(kind: type[Shape], data: Any, problems: list[str], unknown: set[str]) -> Any:
    return kind.model_validate(data, context={"problems": problems, "unknown": unknown})


# --- Rows -----------------------------------------------------------------------------
def expect_list(value: Any, where: str) -> list[Any]:
    """The response must be a JSON array."""
    if not isinstance(value, list):
        raise ShapeError(f"{where}: answered {_describe(value)}, expected a list")
    return value


def vehicle_id_of(value: Any) -> str | None:
    """The id as the loader keys cars (lower case); None when it is not usable."""
    try:
        return _VEHICLE_ID.validate_python(value)
    except ValidationError:
        return None


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
    row = _row(_read(Cluster, item, problems, unknown), Cluster)
    if row["make"] is None or row["model"] is None or row["vehicle_count"] is None:
        raise ShapeError(
            f"{where}: a cluster without a usable make, model or vehicleCount "
            f"({'; '.join(problems)})"
        )
    return row | {
        "uri": showroom_uri(row["make"], row["model"]),
        "extracted_at": extracted_at,
    }


def summary_row(
    item: Any, cluster: Row, unknown: set[str], problems: list[str]
) -> Row | None:
    """The `vehicles` columns of one `VehicleVariation` element; None without an id.

    Make and model fall back to the cluster's (the list was asked for by them).
    """
    if not isinstance(item, Mapping):
        problems.append(f"element is {_describe(item)}, not an object")
        return None
    row = _row(_read(Summary, item, problems, unknown), Summary)
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


def detail_row(
    payload: Any, vehicle_id: str, unknown: set[str], problems: list[str]
) -> Row:
    """`GET Vehicle` of one car as a `vehicle_details` row with an `options` list.

    Whatever is missing or malformed is null (no options), with a problem each.
    """
    if not isinstance(payload, Mapping):
        problems.append(f"the answer is {_describe(payload)}, not an object")
        payload = {}
    elif vehicle_id_of(payload.get("id")) != vehicle_id:
        problems.append(f"the answer is about vehicle {_describe(payload.get('id'))}")
        payload = {}
    options = payload.get("options")
    if isinstance(options, list):  # one odd element costs the car only that option
        objects = [option for option in options if isinstance(option, Mapping)]
        if len(objects) < len(options):
            skipped = len(options) - len(objects)
            problems.append(f"Vehicle.options: {skipped} not an object, skipped")
        payload = {**payload, "options": objects}
    car = _read(Vehicle, payload, problems, unknown)
    row = _row(car, Summary) | _row(car.details, Details, "details__")
    row |= _row(car.pricing, Pricing, "pricing__")
    row["id"] = vehicle_id
    row["options"] = []
    seen: set[str] = set()
    for index, option in enumerate(car.options or ()):
        if option.id is None or option.id in seen or len(option.id) > ID_MAX_CHARS:
            problems.append(
                f"Vehicle.options[{index}].id {_describe(option.id)} skipped"
            )
            continue
        seen.add(option.id)
        row["options"].append({"vehicle_id": vehicle_id, **_row(option, Option)})
    return row
