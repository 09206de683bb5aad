"""The `raw` tables as the loader (dlt) leaves them, so dbt can be exercised without it.

`create_raw_tables` makes the three tables of docs/architecture.md with the types dlt
gives them on PostgreSQL (varchar, bigint, double precision, boolean, timestamptz, plus
dlt's `_dlt_load_id`/`_dlt_id` bookkeeping). `write_state` replaces their contents with
one catalog state, all rows stamped with one `extracted_at`, in one transaction: what a
loader run with `replace` does. `generate_history` yields a stream of such states with
churn (cars leave, arrive, come back, change price) for long-history measurements.

A state is plain rows (`dict` per row, keys = raw column names), so a test can write
exactly the catalog it needs with `make_vehicle(...)` and derive the clusters the API
would show for it with `clusters_for(...)`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import execute_values

RAW_SCHEMA = "raw"

# Column name → PostgreSQL type, in the order dlt creates them (docs/architecture.md).
CLUSTER_COLUMNS: dict[str, str] = {
    "make": "varchar",
    "model": "varchar",
    "first_vehicle_id": "varchar",
    "external_type_id": "varchar",
    "latest_model_year": "bigint",
    "vehicle_count": "bigint",
    "min_price_in_euro_per_month": "double precision",
    "fiscal_value_in_euro": "double precision",
    "addition_percentage": "double precision",
    "external_fuel_type_id": "bigint",
    "max_co2_emission": "bigint",
    "image_uri": "varchar",
    "uri": "varchar",
    "extracted_at": "timestamp with time zone",
}

VEHICLE_COLUMNS: dict[str, str] = {
    "id": "varchar",
    "make": "varchar",
    "model": "varchar",
    "type": "varchar",
    "model_year": "bigint",
    "paint_id": "varchar",
    "external_paint_id": "varchar",
    "price_in_euro_per_month": "double precision",
    "fiscal_value_in_euro": "double precision",
    "addition_percentage": "double precision",
    "range_in_km": "bigint",
    "external_fuel_type_id": "bigint",
    "external_type_id": "varchar",
    "image_uri": "varchar",
    "is_electric": "boolean",
    "details__license_plate": "varchar",
    "details__color": "varchar",
    "details__official_color": "varchar",
    "details__body_type": "varchar",
    "details__emission": "double precision",
    "details__registration_date": "timestamp with time zone",
    "details__registered_mileage": "double precision",
    "details__transmission_type": "varchar",
    "details__avg_fuel_consumption": "double precision",
    "details__type_spare_wheel": "varchar",
    "details__addition_percentage": "double precision",
    "pricing__fiscal_value_in_euro": "double precision",
    "pricing__base_price_per_month_in_euro": "double precision",
    "pricing__calculated_price_per_month_in_euro": "double precision",
    "pricing__price_per_km": "double precision",
    "pricing__fuel_price_per_km": "double precision",
    "pricing__contribution_in_euro": "double precision",
    "pricing__expected_fuel_cost_per_month_in_euro": "double precision",
    "pricing__net_cost_per_month_in_euro": "double precision",
    "uri": "varchar",
    "extracted_at": "timestamp with time zone",
    "summary_hash": "varchar",
    "details_fetched_at": "timestamp with time zone",
}

OPTION_COLUMNS: dict[str, str] = {
    "vehicle_id": "varchar",
    "id": "varchar",
    "external_id": "varchar",
    "option_name": "varchar",
    "included": "boolean",
    "extracted_at": "timestamp with time zone",
}

# dlt's own columns: every table has a load id and a row id; a child table also points
# at its parent row and keeps the list position.
_DLT_COLUMNS = {
    "_dlt_load_id": "varchar not null",
    "_dlt_id": "varchar not null unique",
}
_DLT_CHILD_COLUMNS = {
    "_dlt_parent_id": "varchar not null",
    "_dlt_list_idx": "bigint not null",
    **_DLT_COLUMNS,
}

TABLES: dict[str, dict[str, str]] = {
    "vehicle_clusters": {**CLUSTER_COLUMNS, **_DLT_COLUMNS},
    "vehicles": {**VEHICLE_COLUMNS, **_DLT_COLUMNS},
    "vehicles__options": {**OPTION_COLUMNS, **_DLT_CHILD_COLUMNS},
}

SHOWROOM = "https://flex.athlon.com/app/showroom"
IMAGE_BASE = "https://services.athlon.com/api/photos/imagin/v2"
OPTION_NAMES = ("Airconditioning", "Cruise control", "Navigatiesysteem", "Trekhaak")

# (make, model, body type, fuel type id, list price): enough variety for clusters.
MODELS: tuple[tuple[str, str, str, int, float], ...] = (
    ("Volkswagen", "Golf", "Hatchback", 0, 38000.0),
    ("BMW", "3 Serie Touring", "Stationwagon", 0, 54000.0),
    ("Kia", "Niro", "SUV", 2, 41000.0),
    ("Tesla", "Model 3", "Sedan", 3, 47000.0),
    ("Skoda", "Octavia Combi", "Stationwagon", 1, 39000.0),
    ("Peugeot", "e-208", "Hatchback", 3, 36000.0),
)


def create_raw_tables(conn: Connection) -> None:
    """Create schema `raw` and its three tables (no-op for the parts that exist)."""
    with conn.cursor() as cursor:
        cursor.execute(f"create schema if not exists {RAW_SCHEMA}")
        for table, columns in TABLES.items():
            ddl = ", ".join(f"{name} {kind}" for name, kind in columns.items())
            cursor.execute(f"create table if not exists {RAW_SCHEMA}.{table} ({ddl})")
    if not conn.autocommit:
        conn.commit()


def make_vehicle(
    vehicle_id: str,
    *,
    make: str = "Volkswagen",
    model: str = "Golf",
    price: float = 499.0,
    fuel_type_id: int = 0,
    **columns: Any,
) -> dict[str, Any]:
    """One raw `vehicles` row with plausible values; `columns` override any column.

    `price` is the calculated monthly price (what the mart shows); the summary price
    follows it, as the API's do.
    """
    electric = fuel_type_id == 3
    plate_digits = sum(vehicle_id.encode()) % 1000
    row: dict[str, Any] = {
        "id": vehicle_id,
        "make": make,
        "model": model,
        "type": f"1.5 TSI Life 5D 110kW ({vehicle_id})",
        "model_year": 2023,
        "paint_id": f"paint-{make}".lower(),
        "external_paint_id": "P0A96",
        "price_in_euro_per_month": price,
        "fiscal_value_in_euro": 38000.0,
        "addition_percentage": 16.0 if electric else 22.0,
        "range_in_km": 450 if electric else 0,
        "external_fuel_type_id": fuel_type_id,
        "external_type_id": f"type-{make}-{model}".lower().replace(" ", "-"),
        "image_uri": f"{IMAGE_BASE}/image/[#width#]/01/{make}/{model}".lower(),
        "is_electric": electric,
        "details__license_plate": f"X-{plate_digits:03d}-ZZ",
        "details__color": "Wit",
        "details__official_color": "Mineralweiß",
        "details__body_type": "Hatchback",
        "details__emission": 0.0 if electric else 128.0,
        "details__registration_date": datetime(2022, 6, 21, 22, tzinfo=UTC),
        "details__registered_mileage": 15987.0,
        "details__transmission_type": "Automatisch",
        "details__avg_fuel_consumption": 6.7,
        "details__type_spare_wheel": "oppompset",
        "details__addition_percentage": 16.0 if electric else 22.0,
        "pricing__fiscal_value_in_euro": 38000.0,
        "pricing__base_price_per_month_in_euro": price - 210.0,
        "pricing__calculated_price_per_month_in_euro": price,
        "pricing__price_per_km": 0.09,
        "pricing__fuel_price_per_km": 0.12,
        "pricing__contribution_in_euro": None,
        "pricing__expected_fuel_cost_per_month_in_euro": 120.0,
        "pricing__net_cost_per_month_in_euro": None,
        "uri": f"{SHOWROOM}/vehicle/{vehicle_id}",
        "summary_hash": uuid.uuid4().hex,
        "details_fetched_at": None,
    }
    unknown = set(columns) - set(VEHICLE_COLUMNS)
    if unknown:
        raise KeyError(f"not columns of raw.vehicles: {sorted(unknown)}")
    row.update(columns)
    return row


def with_price(vehicle: dict[str, Any], price: float) -> dict[str, Any]:
    """The same car at another monthly price (summary and calculated price move)."""
    return {
        **vehicle,
        "price_in_euro_per_month": price,
        "pricing__calculated_price_per_month_in_euro": price,
        "pricing__base_price_per_month_in_euro": price - 210.0,
        "summary_hash": uuid.uuid4().hex,
    }


def make_options(
    vehicle_id: str, names: Sequence[str] = OPTION_NAMES
) -> list[dict[str, Any]]:
    """Raw `vehicles__options` rows for one car; ids are stable per option name."""
    return [
        {
            "vehicle_id": vehicle_id,
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"option/{name}")),
            "external_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"external/{name}")),
            "option_name": name,
            "included": index % 2 == 0,
        }
        for index, name in enumerate(names)
    ]


def clusters_for(vehicles: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `VehicleCluster` rows the API shows for these cars: one per make + model.

    The aggregates (count, minimum price, first vehicle, ...) move whenever a car of
    the cluster comes or goes, as the real ones do.
    """
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for vehicle in vehicles:
        by_key.setdefault((vehicle["make"], vehicle["model"]), []).append(vehicle)
    clusters = []
    for (make, model), members in sorted(by_key.items()):
        cheapest = min(
            members, key=lambda v: v["pricing__calculated_price_per_month_in_euro"]
        )
        clusters.append(
            {
                "make": make,
                "model": model,
                "first_vehicle_id": cheapest["id"],
                "external_type_id": cheapest["external_type_id"],
                "latest_model_year": max(v["model_year"] for v in members),
                "vehicle_count": len(members),
                "min_price_in_euro_per_month": cheapest[
                    "pricing__calculated_price_per_month_in_euro"
                ],
                "fiscal_value_in_euro": cheapest["fiscal_value_in_euro"],
                "addition_percentage": cheapest["addition_percentage"],
                "external_fuel_type_id": cheapest["external_fuel_type_id"],
                "max_co2_emission": int(max(v["details__emission"] for v in members)),
                "image_uri": cheapest["image_uri"].replace("/image/", "/photo/"),
                "uri": f"{SHOWROOM}/{make}/{model}".lower().replace(" ", "-"),
            }
        )
    return clusters


@dataclass(frozen=True)
class CatalogState:
    """What one loader run would land: cars, their options and (derived) clusters."""

    vehicles: tuple[dict[str, Any], ...]
    options: tuple[dict[str, Any], ...] = ()
    clusters: tuple[dict[str, Any], ...] | None = None  # None: clusters_for(vehicles)

    @classmethod
    def of(
        cls, vehicles: Iterable[dict[str, Any]], *, with_options: bool = True
    ) -> CatalogState:
        """A state of these cars, each with the default options when asked."""
        vehicles = tuple(vehicles)
        options = tuple(
            option
            for vehicle in vehicles
            for option in (make_options(vehicle["id"]) if with_options else [])
        )
        return cls(vehicles=vehicles, options=options)

    def cluster_rows(self) -> tuple[dict[str, Any], ...]:
        if self.clusters is not None:
            return self.clusters
        return tuple(clusters_for(self.vehicles))


def append_rows(
    cursor: Cursor,
    table: str,
    rows: Iterable[dict[str, Any]],
    *,
    parent_ids: dict[str, str] | None = None,
) -> dict[str, str]:
    """Insert raw rows (dicts with the table's columns, `extracted_at` included).

    dlt's bookkeeping is filled in as dlt would: the load id from extracted_at, a
    fresh `_dlt_id` per row; an option points at the `_dlt_id` of its vehicle's row
    when `parent_ids` (vehicle id → `_dlt_id`) knows it, and gets its list position.
    Returns id → `_dlt_id` of the rows written (the first per id), the parent ids
    of the options of these rows.
    """
    parent_ids = parent_ids or {}
    columns = {
        "vehicle_clusters": CLUSTER_COLUMNS,
        "vehicles": VEHICLE_COLUMNS,
        "vehicles__options": OPTION_COLUMNS,
    }[table]
    is_child = table == "vehicles__options"
    written: dict[str, str] = {}
    list_index: dict[str, int] = {}
    values = []
    for row in rows:
        if row.get("extracted_at") is None:
            raise ValueError(f"a {table} row without extracted_at: {row}")
        dlt_id = uuid.uuid4().hex
        record = [row.get(name) for name in columns]
        if is_child:
            parent = row["vehicle_id"]
            index = list_index.get(parent, 0)
            list_index[parent] = index + 1
            record += [parent_ids.get(parent, "orphan"), index]
        record += [f"{row['extracted_at'].timestamp():.6f}", dlt_id]
        values.append(record)
        if "id" in row:
            written.setdefault(str(row["id"]), dlt_id)
    names = [*columns, *(["_dlt_parent_id", "_dlt_list_idx"] if is_child else [])]
    names += ["_dlt_load_id", "_dlt_id"]
    if values:
        execute_values(
            cursor,
            f"insert into {RAW_SCHEMA}.{table} ({', '.join(names)}) values %s",
            values,
            page_size=1000,
        )
    return written


def write_state(conn: Connection, state: CatalogState, extracted_at: datetime) -> None:
    """Replace the raw tables' contents with `state`, all in one transaction.

    Every row gets `extracted_at` (and so one `_dlt_load_id`), as one loader run
    gives them; options point at their vehicle's `_dlt_id`.
    """
    if extracted_at.tzinfo is None:
        raise ValueError("extracted_at must be timezone-aware (UTC)")
    stamp = {"extracted_at": extracted_at}
    autocommit = conn.autocommit
    conn.autocommit = False
    try:
        with conn, conn.cursor() as cursor:
            for table in TABLES:
                cursor.execute(f"delete from {RAW_SCHEMA}.{table}")
            append_rows(
                cursor,
                "vehicle_clusters",
                ({**c, **stamp} for c in state.cluster_rows()),
            )
            vehicle_ids = append_rows(
                cursor, "vehicles", ({**v, **stamp} for v in state.vehicles)
            )
            append_rows(
                cursor,
                "vehicles__options",
                ({**o, **stamp} for o in state.options),
                parent_ids=vehicle_ids,
            )
    finally:
        conn.autocommit = autocommit


@dataclass
class _Showroom:
    """The generator's mutable world: cars on display, cars that left (may return)."""

    rng: random.Random
    present: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Cars that left, in the order they left; any of them may come back.
    departed: list[dict[str, Any]] = field(default_factory=list)
    counter: int = 0

    def take_departed(self) -> dict[str, Any]:
        """A random car that left (O(1): swap with the last, pop)."""
        index = self.rng.randrange(len(self.departed))
        self.departed[index], self.departed[-1] = (
            self.departed[-1],
            self.departed[index],
        )
        return self.departed.pop()

    def new_vehicle(self) -> dict[str, Any]:
        self.counter += 1
        make, model, body, fuel, list_price = self.rng.choice(MODELS)
        price = float(round(list_price * self.rng.uniform(0.011, 0.016) + 210, 2))
        return make_vehicle(
            f"veh-{self.counter:06d}",
            make=make,
            model=model,
            price=price,
            fuel_type_id=fuel,
            model_year=self.rng.choice((2021, 2022, 2023, 2024)),
            details__body_type=body,
            details__color=self.rng.choice(("Wit", "Zwart", "Grijs", "Blauw")),
            details__registered_mileage=float(self.rng.randrange(1000, 90000)),
            fiscal_value_in_euro=list_price,
            pricing__fiscal_value_in_euro=list_price,
        )


def generate_history(
    cycles: int,
    *,
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    every: timedelta = timedelta(minutes=10),
    showroom_size: int = 40,
    churn: float = 0.03,
    returns: float = 0.3,
    price_changes: float = 0.02,
    seed: int = 0,
    with_options: bool = False,
) -> Iterator[tuple[datetime, CatalogState]]:
    """`cycles` states, one every `every` from `start`, with a living showroom.

    Each cycle about `churn` of the cars leave; as many arrive, a share `returns` of
    them cars that left before (same id, a new availability window); `price_changes`
    of the cars get a new monthly price. Deterministic for a given `seed`.
    """
    world = _Showroom(rng=random.Random(seed))
    for _ in range(showroom_size):
        vehicle = world.new_vehicle()
        world.present[vehicle["id"]] = vehicle
    rng = world.rng
    for cycle in range(cycles):
        if cycle:
            # list(dict) is in insertion order: deterministic for a seed.
            leaving = rng.sample(
                list(world.present),
                k=min(len(world.present), _count(rng, churn, showroom_size)),
            )
            arriving = []
            for _ in range(len(leaving)):
                if world.departed and rng.random() < returns:
                    arriving.append(world.take_departed())
                else:
                    arriving.append(world.new_vehicle())
            for vehicle_id in leaving:
                world.departed.append(world.present.pop(vehicle_id))
            for vehicle in arriving:
                world.present[vehicle["id"]] = vehicle
            for vehicle_id in rng.sample(
                list(world.present),
                k=min(len(world.present), _count(rng, price_changes, showroom_size)),
            ):
                vehicle = world.present[vehicle_id]
                step = rng.choice((-20.0, -10.0, 10.0, 25.0))
                world.present[vehicle_id] = with_price(
                    vehicle,
                    vehicle["pricing__calculated_price_per_month_in_euro"] + step,
                )
        state = CatalogState.of(world.present.values(), with_options=with_options)
        yield start + cycle * every, state


def _count(rng: random.Random, fraction: float, size: int) -> int:
    """A whole number of cars whose mean is `fraction * size` (fractions accumulate)."""
    expected = fraction * size
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)
