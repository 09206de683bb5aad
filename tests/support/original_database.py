"""A database as the older athlon-flex-notifier left it, for the migration's tests.

The tables are written from its published Alembic migrations (revisions
a491bf92b0f3, e7672a631bab, c6d237b3de6a): four SCD2 tables in `public`, each row a
version with a uuid `id`, `key_hash` (sha256 of the business key joined by "-"),
`active_from`/`active_to`, `is_current`; options point at a vehicle *row* (uuid),
vehicles at a cluster row. `OriginalDatabase` writes versions the way its upserter
did: a change closes the open row and opens one at the same moment, a car that
leaves has its open row closed, one that returns gets a new row later.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2.extensions
import psycopg2.extras

psycopg2.extras.register_uuid()  # uuid.UUID as a parameter, as SQLAlchemy sent it

SCD2_COLUMNS = """
    id uuid primary key,
    key_hash varchar,
    attribute_hash_scd1 varchar,
    attribute_hash_scd2 varchar,
    active_from timestamptz not null,
    active_to timestamptz,
    is_current boolean,
    created_at timestamptz default now(),
    updated_at timestamptz default now()
"""

SCHEMA = f"""
create table alembic_version (
    version_num varchar(32) not null primary key
);
insert into alembic_version values ('c6d237b3de6a');

create table notification (
    {SCD2_COLUMNS},
    vehicle_key_hash varchar not null,
    available_since timestamptz not null,
    notified_at timestamptz default now()
);
create table vehicle_cluster (
    {SCD2_COLUMNS},
    first_vehicle_id varchar not null,
    external_type_id varchar not null,
    make varchar not null,
    model varchar not null,
    latest_model_year integer not null,
    vehicle_count integer not null,
    min_price_in_euro_per_month double precision not null,
    fiscal_value_in_euro double precision not null,
    addition_percentage double precision not null,
    external_fuel_type_id integer not null,
    max_co2_emission integer not null,
    image_uri varchar not null
);
create table vehicle (
    {SCD2_COLUMNS},
    athlon_id varchar not null,
    make varchar not null,
    model varchar not null,
    type varchar not null,
    model_year integer not null,
    paint_id varchar,
    external_paint_id varchar,
    addition_percentage double precision,
    range_in_km integer not null,
    external_fuel_type_id integer not null,
    external_type_id varchar not null,
    image_uri varchar,
    is_electric boolean,
    uri varchar not null,
    license_plate varchar,
    color varchar,
    official_color varchar,
    body_type varchar,
    emission double precision,
    registration_date varchar,
    registered_mileage double precision,
    transmission_type varchar,
    avg_fuel_consumption double precision,
    type_spare_wheel varchar,
    fiscal_value_in_euro double precision,
    base_price_in_euro_per_month double precision,
    calculated_price_in_euro_per_month double precision,
    price_per_km double precision,
    fuel_price_per_km double precision,
    contribution_in_euro double precision,
    expected_fuel_cost_in_euro_per_month double precision,
    net_cost_in_euro_per_month double precision,
    vehicle_cluster_id uuid not null references vehicle_cluster (id)
);
create table "option" (
    {SCD2_COLUMNS},
    athlon_id varchar not null,
    "externalId" varchar not null,
    "optionName" varchar not null,
    included boolean not null,
    vehicle_id uuid not null references vehicle (id)
);
create index ix_notification_key_hash on notification (key_hash);
create index ix_option_key_hash on "option" (key_hash);
create index ix_vehicle_key_hash on vehicle (key_hash);
create index ix_vehicle_cluster_key_hash on vehicle_cluster (key_hash);
"""


def key_hash(*parts: object) -> str:
    """The old tool's business-key hash: sha256 of the values joined by "-"."""
    return hashlib.sha256("-".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class OriginalDatabase:
    """Writes rows into a database created with `SCHEMA`."""

    conn: psycopg2.extensions.connection
    clusters: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)

    @classmethod
    def create(cls, conn: psycopg2.extensions.connection) -> OriginalDatabase:
        with conn.cursor() as cursor:
            cursor.execute(SCHEMA)
        conn.commit()
        return cls(conn)

    def cluster(
        self, make: str, model: str, since: datetime, until: datetime | None = None
    ) -> uuid.UUID:
        row_id = uuid.uuid4()
        with self.conn.cursor() as cursor:
            cursor.execute(
                "insert into vehicle_cluster (id, key_hash, active_from, active_to, "
                "is_current, first_vehicle_id, external_type_id, make, model, "
                "latest_model_year, vehicle_count, min_price_in_euro_per_month, "
                "fiscal_value_in_euro, addition_percentage, external_fuel_type_id, "
                "max_co2_emission, image_uri) values (%s, %s, %s, %s, true, 'v1', "
                "'t1', %s, %s, 2024, 2, 399.0, 40000.0, 22.0, 5, 0, "
                "'https://img.example/[#width#]/c.png')",
                (row_id, key_hash(make, model), since, until, make, model),
            )
        self.conn.commit()
        self.clusters[(make, model)] = row_id
        return row_id

    def vehicle(
        self,
        athlon_id: str,
        since: datetime,
        until: datetime | None,
        *,
        make: str = "Kia",
        model: str = "Niro",
        price: float = 450.0,
        options: Mapping[str, str] | None = None,
        **values: Any,
    ) -> uuid.UUID:
        """One version of a vehicle (and of its options, valid over the same time)."""
        row_id = uuid.uuid4()
        cluster_id = self.clusters.get((make, model)) or self.cluster(
            make, model, since
        )
        columns = {
            "id": row_id,
            "key_hash": key_hash(athlon_id),
            "active_from": since,
            "active_to": until,
            "is_current": until is None,
            "athlon_id": athlon_id,
            "make": make,
            "model": model,
            "type": "1.6 GDi",
            "model_year": 2023,
            "range_in_km": 450,
            "external_fuel_type_id": 5,
            "external_type_id": "t1",
            "is_electric": True,
            "uri": f"https://flex.athlon.com/app/showroom/{make}/{model}/{athlon_id}",
            "license_plate": f"OLD-{athlon_id[-3:]}",
            "color": "Blauw",
            "registration_date": "2023-04-01T00:00:00",
            "calculated_price_in_euro_per_month": price,
            "vehicle_cluster_id": cluster_id,
            **values,
        }
        with self.conn.cursor() as cursor:
            names = ", ".join(columns)
            marks = ", ".join(["%s"] * len(columns))
            cursor.execute(
                f"insert into vehicle ({names}) values ({marks})",
                list(columns.values()),
            )
            for option_id, name in (options or {}).items():
                cursor.execute(
                    'insert into "option" (id, key_hash, active_from, active_to, '
                    'is_current, athlon_id, "externalId", "optionName", included, '
                    "vehicle_id) values (%s, %s, %s, %s, %s, %s, %s, %s, true, %s)",
                    (
                        uuid.uuid4(),
                        key_hash(option_id, row_id),
                        since,
                        until,
                        until is None,
                        option_id,
                        f"x-{option_id}",
                        name,
                        row_id,
                    ),
                )
        self.conn.commit()
        return row_id

    def notified(
        self, athlon_id: str, available_since: datetime, notified_at: datetime
    ) -> None:
        """The old tool mailed the window of `athlon_id` that opened then."""
        with self.conn.cursor() as cursor:
            cursor.execute(
                "insert into notification (id, key_hash, active_from, is_current, "
                "vehicle_key_hash, available_since, notified_at) "
                "values (%s, %s, %s, true, %s, %s, %s)",
                (
                    uuid.uuid4(),
                    key_hash(key_hash(athlon_id), available_since),
                    notified_at,
                    key_hash(athlon_id),
                    available_since,
                    notified_at,
                ),
            )
        self.conn.commit()
