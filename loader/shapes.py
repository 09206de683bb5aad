"""The API's shapes as tolerant pydantic models, the loader's bounds, rows and column
hints (docs/architecture.md, "Tolerant per car")."""

from __future__ import annotations

import functools
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

# In every summary hash: bump it when the models change, so that the next run fetches
# every car's details again instead of reusing rows of the old mapping.
SHAPE_VERSION = "3"
ID_MAX_CHARS = 64  # an option's id (a car's is a GUID, 36 characters)
TEXT_MAX_CHARS = 2_000
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1  # staging casts to PostgreSQL integer
EURO_MAX, KM_MAX, QUANTITY_MAX = 1_000_000.0, 10_000_000.0, 1_000_000.0

Row = dict[str, Any]


class ShapeError(Exception):
    """The API answered something the loader cannot account for (fails the load)."""


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValueError("holds a NUL character")
    return value


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic's lax mode would read true as 1
        raise ValueError("expected a number, not true/false")
    return value


def _iso(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError("expected an ISO 8601 date-time") from None
    try:  # in UTC now: dlt converts it later, where year 0 or 10000 fails the load
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError("expected a date-time within years 1 to 9999 in UTC") from None


def _bounded(kind: type, low: float, high: float) -> Any:
    return Annotated[kind, BeforeValidator(_no_bool), Field(ge=low, le=high)]


Text = Annotated[
    str, StringConstraints(max_length=TEXT_MAX_CHARS), AfterValidator(_no_nul)
]
# A car's id is a GUID, trimmed and lower-cased (" GUID " is the car "guid"). An
# entry with any other id is a car without a usable id: skipped, counted, and never a
# `GET Vehicle` the API refuses (400), which would fail every load.
GUID_PATTERN = r"^[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$"
VehicleId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=GUID_PATTERN, to_lower=True),
]
_VEHICLE_ID = TypeAdapter(VehicleId)
Whole = _bounded(int, INTEGER_MIN, INTEGER_MAX)
Euro = _bounded(float, 0, EURO_MAX)
Km = _bounded(float, 0, KM_MAX)
WholeKm = _bounded(int, 0, KM_MAX)
Count = _bounded(int, 0, INTEGER_MAX)
Quantity = _bounded(float, 0, QUANTITY_MAX)
Timestamp = Annotated[datetime, BeforeValidator(_iso)]


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


class Shape(BaseModel):
    """An API object read per field: a field that does not validate, or a required
    one that is missing, is None and named in the context's `problems`; keys the model
    does not declare go to its `unknown`; "" is None where the field is optional."""

    where: ClassVar[str]  # how problems and unknown keys name this object's fields
    quiet: ClassVar[frozenset[str]] = frozenset()  # fields whose problems go unsaid

    @model_validator(mode="before")
    @classmethod
    def _every_field(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data  # refused by pydantic: the field holding it becomes None
        if info.context is not None:
            info.context["unknown"].update(
                cls.where + k for k in data if k not in cls.model_fields
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
    vehicleCount: Count  # below 0 it would let any shorter list through
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


# --- Columns, derived from the models (their order is the tables' column order) ------
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


@functools.cache  # asked for every row of every load
def _fields(model: type[Shape], prefix: str = "") -> dict[str, str]:
    """column -> model field name, scalar fields only (dlt's snake_case names)."""
    return {
        prefix + to_snake(name): name
        for name, field in model.model_fields.items()
        if _base_type(field.annotation) in _DLT_TYPES
    }


def _column(data_type: str) -> dict[str, Any]:
    return {"data_type": data_type, "nullable": True}


def hints(model: type[Shape], prefix: str = "") -> dict[str, dict[str, Any]]:
    """dlt column hints of a model's scalar fields, every one nullable."""
    fields = model.model_fields
    return {
        column: _column(_DLT_TYPES[_base_type(fields[name].annotation)])
        for column, name in _fields(model, prefix).items()
    }


CLUSTER_KEY = ("make", "model")
_RUN = {"uri": _column("text"), "extracted_at": _column("timestamp")}
_HASH = {"summary_hash": _column("text")}
CLUSTER_COLUMNS = hints(Cluster) | _RUN
SUMMARY_COLUMNS = hints(Summary) | _RUN | _HASH  # landing `vehicles`: the run's cars
DETAIL_COLUMNS = (  # landing `vehicle_details`, merged: a car's kept details
    hints(Summary) | hints(Details, "details__") | hints(Pricing, "pricing__") | _HASH
) | {"details_fetched_at": _column("timestamp")}
OPTION_COLUMNS = {"vehicle_id": _column("text"), **hints(Option)}
SUMMARY_COLUMN_NAMES = frozenset(hints(Summary))
VEHICLE_COLUMNS = (  # `raw.vehicles`, in this order (docs/architecture.md)
    *(c for c in DETAIL_COLUMNS if c not in ("summary_hash", "details_fetched_at")),
    *_RUN,
    "summary_hash",
    "details_fetched_at",
)


# --- Rows -----------------------------------------------------------------------------
def _row(model: Shape | None, kind: type[Shape], prefix: str = "") -> Row:
    fields = _fields(kind, prefix)
    return {c: getattr(model, n) if model else None for c, n in fields.items()}


def _read(kind: type[Shape], data: Any, problems: list[str], unknown: set[str]) -> Any:
    return kind.model_validate(data, context={"problems": problems, "unknown": unknown})


def expect_list(value: Any, where: str) -> list[Any]:
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
    uri = showroom_uri(row["make"], row["model"])
    return row | {"uri": uri, "extracted_at": extracted_at}


def summary_row(
    item: Any, cluster: Row, unknown: set[str], problems: list[str]
) -> Row | None:
    """One `VehicleVariation` element's `vehicles` columns, make and model falling
    back to the cluster's (the list was asked for by them); None without an id."""
    if not isinstance(item, Mapping):
        problems.append(f"element is {_describe(item)}, not an object")
        return None
    row = _row(_read(Summary, item, problems, unknown), Summary)
    if row["id"] is None:
        return None
    row["make"] = row["make"] or cluster["make"]
    row["model"] = row["model"] or cluster["model"]
    return row | {"uri": showroom_uri(row["make"], row["model"], row["id"])}


def summary_hash(item: Mapping[str, Any], context: str) -> str:
    """Fingerprint of a summary as sent (keys not loaded too), who asked (`context`)
    and SHAPE_VERSION: when it changes, that car's details are fetched again."""
    canonical = json.dumps(
        [SHAPE_VERSION, context, item], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def detail_row(
    payload: Any, vehicle_id: str, unknown: set[str], problems: list[str]
) -> Row:
    """`GET Vehicle` of one car as a `vehicle_details` row with an `options` list;
    whatever is missing or malformed is null (no options), with a problem each."""
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
    row |= _row(car.pricing, Pricing, "pricing__") | {"id": vehicle_id, "options": []}
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
