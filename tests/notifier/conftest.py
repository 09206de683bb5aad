"""Arrange the notifier's input in the objects the real `dbt build` created.

Every test's database is a clone of one built by dbt on empty raw tables (fixture
`dbt_built_template`): marts.vehicle_availability (dbt's incremental table),
marts.vehicles_to_notify (dbt's view), notifier.notifications and notifier.recipients
(dbt's on-run-start). Tests insert windows straight into the mart, which is what a
build would have written, and read notifier.*.
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
from notifier.contract import VEHICLE_ATTRIBUTES
from tests.notifier.push_server import push_server  # noqa: F401 (a fixture)

# The mart's columns, as the notifier's contract names them.
COLUMNS = VEHICLE_ATTRIBUTES

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


def many_windows(
    count: int, makes: list[tuple[str, str]], **values_of: Any
) -> list[dict[str, Any]]:
    """`count` windows `v000`, `v001`, ... (plates `P-000`, ...), their makes and
    models taken from `makes` in turn; each of `values_of` maps the car's number to
    one of its values."""
    return [
        window(
            f"v{n:03}",
            make=makes[n % len(makes)][0],
            model=makes[n % len(makes)][1],
            license_plate=f"P-{n:03}",
            **{name: value(n) for name, value in values_of.items()},
        )
        for n in range(count)
    ]


@pytest.fixture
def database_template(dbt_built_template: str) -> str:
    """Each notifier test starts from a database dbt has built (see module doc)."""
    return dbt_built_template


@pytest.fixture
def contract_objects(db: psycopg2.extensions.connection) -> None:
    """The dbt-built objects the notifier reads and writes exist in `db`."""
    with db.cursor() as cursor:
        cursor.execute("select to_regclass('marts.vehicles_to_notify')")
        assert cursor.fetchone()[0] == "marts.vehicles_to_notify"


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
def add_price_drop(
    db: psycopg2.extensions.connection, contract_objects: None
) -> Callable[..., None]:
    """Insert the price change that brought a window (a row from `window(...)`) to
    its price, from `previous`, at `changed_at`: marts.vehicle_price_changes's row
    as a build would have written it."""

    def add(row: dict[str, Any], *, previous: Decimal, changed_at: datetime) -> None:
        now = row["price_per_month_in_euro"]
        with db.cursor() as cursor:
            cursor.execute(
                "insert into marts.vehicle_price_changes (price_change_id, "
                "availability_id, vehicle_id, make, model, type, license_plate, "
                "changed_at, previous_price_per_month_in_euro, "
                "price_per_month_in_euro, change_in_euro, change_percent, is_drop, "
                "is_available) values (md5(%s), %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s, %s)",
                (
                    f"{row['vehicle_id']}|{changed_at.isoformat()}",
                    row["availability_id"],
                    row["vehicle_id"],
                    row["make"],
                    row["model"],
                    row["type"],
                    row["license_plate"],
                    changed_at,
                    previous,
                    now,
                    now - previous,
                    (now - previous) * 100 / previous,
                    now < previous,
                    row["is_available"],
                ),
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
