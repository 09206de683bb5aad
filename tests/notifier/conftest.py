"""Arrange the notifier's input: the contract objects, built with plain SQL.

STAND-IN: until the dbt project builds them, `contract_objects` creates
notifier.notifications and notifier.recipients (DDL as in docs/architecture.md), a
marts.vehicle_availability *table* and a marts.vehicles_to_notify view implementing
the contract (recipient x open window not yet notified). Replace it with the
dbt-built objects once they exist; the tests only insert rows into
marts.vehicle_availability and read notifier.*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2.extensions
import pytest
import yaml

from athlon_flex.settings import Settings

CONTRACT_DDL = """
create schema if not exists notifier;

create table if not exists notifier.notifications (
    vehicle_id text not null,
    available_since timestamptz not null,
    recipient text not null,
    notified_at timestamptz not null default now(),
    primary key (vehicle_id, available_since, recipient)
);

create table if not exists notifier.recipients (
    recipient text primary key,
    registered_at timestamptz not null default now()
);

create schema if not exists marts;

create table marts.vehicle_availability (
    availability_id text primary key,
    vehicle_id text not null,
    make text,
    model text,
    type text,
    model_year integer,
    color text,
    official_color text,
    body_type text,
    fuel_type text,
    is_electric boolean,
    range_in_km integer,
    transmission_type text,
    license_plate text,
    emission numeric,
    registered_mileage numeric,
    fiscal_value_in_euro numeric,
    price_per_month_in_euro numeric,
    contribution_in_euro numeric,
    net_cost_per_month_in_euro numeric,
    showroom_uri text,
    image_uri text,
    cluster_showroom_uri text,
    available_since timestamptz not null,
    available_until timestamptz,
    is_available boolean not null,
    unique (vehicle_id, available_since)
);

create view marts.vehicles_to_notify as
select
    recipients.recipient,
    availability.*
from notifier.recipients as recipients
cross join marts.vehicle_availability as availability
where
    availability.available_until is null
    and not exists (
        select 1
        from notifier.notifications as notifications
        where
            notifications.vehicle_id = availability.vehicle_id
            and notifications.available_since = availability.available_since
            and notifications.recipient = recipients.recipient
    );
"""

COLUMNS = (
    "availability_id",
    "vehicle_id",
    "make",
    "model",
    "type",
    "model_year",
    "color",
    "official_color",
    "body_type",
    "fuel_type",
    "is_electric",
    "range_in_km",
    "transmission_type",
    "license_plate",
    "emission",
    "registered_mileage",
    "fiscal_value_in_euro",
    "price_per_month_in_euro",
    "contribution_in_euro",
    "net_cost_per_month_in_euro",
    "showroom_uri",
    "image_uri",
    "cluster_showroom_uri",
    "available_since",
    "available_until",
    "is_available",
)

# A fixed moment an hour ago: windows open before every test's notify run.
EARLIER = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def window(vehicle_id: str, **values: Any) -> dict[str, Any]:
    """One marts.vehicle_availability row with plausible defaults."""
    make = values.get("make", "Tesla")
    model = values.get("model", "Model 3")
    since = values.get("available_since", EARLIER)
    row: dict[str, Any] = {
        "availability_id": f"{vehicle_id}@{since.isoformat()}",
        "vehicle_id": vehicle_id,
        "make": make,
        "model": model,
        "type": "Long Range AWD",
        "model_year": 2024,
        "color": "Zwart",
        "official_color": "ZWART",
        "body_type": "Sedan",
        "fuel_type": "Elektrisch",
        "is_electric": True,
        "range_in_km": 500,
        "transmission_type": "Automaat",
        "license_plate": f"PL-{vehicle_id}",
        "emission": Decimal("0"),
        "registered_mileage": Decimal("12000"),
        "fiscal_value_in_euro": Decimal("45000"),
        "price_per_month_in_euro": Decimal("650"),
        "contribution_in_euro": Decimal("100"),
        "net_cost_per_month_in_euro": Decimal("420.5"),
        "showroom_uri": f"https://flex.athlon.com/app/showroom/{make}/{model}/{vehicle_id}",
        "image_uri": f"https://img.example.com/{vehicle_id}?w=[#width#]",
        "cluster_showroom_uri": f"https://flex.athlon.com/app/showroom/{make}/{model}",
        "available_since": since,
        "available_until": None,
        "is_available": True,
    }
    row.update(values)
    unknown = set(row) - set(COLUMNS)
    assert not unknown, f"not a column: {unknown}"
    return row


@pytest.fixture
def contract_objects(db: psycopg2.extensions.connection) -> None:
    """The objects the notifier reads and writes (stand-in for dbt's, see above)."""
    with db.cursor() as cursor:
        cursor.execute(CONTRACT_DDL)


@pytest.fixture
def add_windows(
    db: psycopg2.extensions.connection, contract_objects: None
) -> Callable[[Sequence[dict[str, Any]]], None]:
    """Insert availability windows (rows from `window(...)`)."""

    def add(rows: Sequence[dict[str, Any]]) -> None:
        columns = ", ".join(COLUMNS)
        marks = ", ".join(["%s"] * len(COLUMNS))
        with db.cursor() as cursor:
            for row in rows:
                cursor.execute(
                    f"insert into marts.vehicle_availability ({columns}) "
                    f"values ({marks})",
                    [row[column] for column in COLUMNS],
                )

    return add


@pytest.fixture
def close_window(
    db: psycopg2.extensions.connection, contract_objects: None
) -> Callable[[str, datetime], None]:
    """Mark a vehicle's open window as closed (the car was leased) at `until`."""

    def close(vehicle_id: str, until: datetime) -> None:
        with db.cursor() as cursor:
            cursor.execute(
                "update marts.vehicle_availability "
                "set available_until = %s, is_available = false "
                "where vehicle_id = %s and available_until is null",
                (until, vehicle_id),
            )

    return close


@pytest.fixture
def notifications(
    db: psycopg2.extensions.connection,
) -> Callable[[], list[tuple[str, datetime, str]]]:
    """notifier.notifications as sorted (vehicle_id, available_since, recipient)."""

    def read() -> list[tuple[str, datetime, str]]:
        with db.cursor() as cursor:
            cursor.execute(
                "select vehicle_id, available_since, recipient "
                "from notifier.notifications order by recipient, vehicle_id, "
                "available_since"
            )
            return cursor.fetchall()

    return read


@pytest.fixture
def write_subscriptions(tmp_path: Path) -> Iterator[Callable[[Any], Path]]:
    """Write a subscriptions file (a dict dumped as YAML, or YAML text as is)."""

    def write(content: Any) -> Path:
        path = tmp_path / "subscriptions.yml"
        text = content if isinstance(content, str) else yaml.safe_dump(content)
        path.write_text(text, encoding="utf-8")
        return path

    yield write


@pytest.fixture
def email_settings(
    make_settings: Callable[..., Settings], smtp_server: Any
) -> Callable[..., Settings]:
    """Settings that send through the test's SMTP server; overrides as keywords."""

    def build(**overrides: Any) -> Settings:
        values = {**smtp_server.settings_overrides(), **overrides}
        return make_settings(**values)

    return build
