"""Loader test helpers: settings pointed at the simulated API, `raw` read back whole."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from athlon_flex.settings import Settings
from loader.pipeline import LoadError, load
from simulation.fake_api import FakeShowroom, Vehicle
from tests.support.fake_api import FAKE_PASSWORD, FAKE_USERNAME

SHOWROOM = "https://flex.athlon.com/app/showroom"


@pytest.fixture
def loader_settings(
    make_settings: Callable[..., Settings],
) -> Callable[..., Settings]:
    """Settings for a load against `api`: quick retries, the test's own database."""

    def build(api: FakeShowroom, *, member: bool = False, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "athlon_api_url": api.url,
            "athlon_http_max_retries": 3,
            "athlon_http_backoff_seconds": 0.01,
            "athlon_http_timeout_seconds": 10,
        }
        if member:
            values |= {
                "athlon_username": FAKE_USERNAME,
                "athlon_password": FAKE_PASSWORD,
            }
        return make_settings(**(values | overrides))

    return build


def raw_contents(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in schema `raw` (dlt's own included), sorted."""
    with db.cursor() as cursor:
        cursor.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'raw' order by table_name"
        )
        tables = [name for (name,) in cursor.fetchall()]
        contents = {}
        for table in tables:
            cursor.execute(f'select * from raw."{table}"')
            contents[table] = sorted(cursor.fetchall(), key=repr)
        return contents


def assert_load_fails_and_raw_unchanged(
    settings: Settings, db: Any, before: dict[str, list[tuple[Any, ...]]]
) -> str:
    """Run a load that must raise LoadError; check `raw` still equals `before`.

    Returns the error's message for the caller's own assertions about its wording.
    """
    with pytest.raises(LoadError) as failure:
        load(settings)
    assert raw_contents(db) == before
    return str(failure.value)


def rows(db: Any, table: str, order_by: str = "1") -> list[dict[str, Any]]:
    """The rows of one raw table as dicts."""
    with db.cursor() as cursor:
        cursor.execute(f"select * from raw.{table} order by {order_by}")
        names = [column.name for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def without(row: dict[str, Any], *columns: str) -> dict[str, Any]:
    """The row without the given columns."""
    return {key: value for key, value in row.items() if key not in columns}


def expected_vehicle(vehicle: Vehicle) -> dict[str, Any]:
    """The `raw.vehicles` columns of an anonymously loaded vehicle, from the catalog.

    Built from the simulated car's attributes, not from the JSON the loader parsed.
    """
    return {
        "id": vehicle.id,
        "make": vehicle.make,
        "model": vehicle.model,
        "type": vehicle.type,
        "model_year": vehicle.model_year,
        "paint_id": vehicle.paint_id,
        "external_paint_id": vehicle.external_paint_id,
        "price_in_euro_per_month": vehicle.calculated_price,
        "fiscal_value_in_euro": vehicle.fiscal_value,
        "addition_percentage": vehicle.addition_percentage,
        "range_in_km": vehicle.range_km,
        "external_fuel_type_id": vehicle.external_fuel_type_id,
        "external_type_id": vehicle.external_type_id,
        "image_uri": vehicle.image_uri,
        "is_electric": vehicle.is_electric,
        "details__license_plate": vehicle.license_plate,
        "details__color": vehicle.color,
        "details__official_color": vehicle.official_color,
        "details__body_type": vehicle.body_type,
        "details__emission": vehicle.emission,
        "details__registration_date": datetime.fromisoformat(vehicle.registration_date),
        "details__registered_mileage": vehicle.registered_mileage,
        "details__transmission_type": vehicle.transmission,
        "details__avg_fuel_consumption": vehicle.avg_fuel_consumption,
        "details__type_spare_wheel": vehicle.spare_wheel,
        "details__addition_percentage": vehicle.addition_percentage,
        "pricing__fiscal_value_in_euro": vehicle.fiscal_value,
        "pricing__base_price_per_month_in_euro": vehicle.base_price,
        "pricing__calculated_price_per_month_in_euro": vehicle.calculated_price,
        "pricing__price_per_km": vehicle.price_per_km,
        "pricing__fuel_price_per_km": vehicle.fuel_price_per_km,
        "pricing__contribution_in_euro": None,
        "pricing__expected_fuel_cost_per_month_in_euro": vehicle.expected_fuel_cost,
        "pricing__net_cost_per_month_in_euro": None,
        "uri": f"{SHOWROOM}/{vehicle.make}/{vehicle.model}/{vehicle.id}",
    }


def comparable_vehicle(row: dict[str, Any]) -> dict[str, Any]:
    """A loaded row in `expected_vehicle`'s terms (without the run's bookkeeping)."""
    return without(
        row,
        "extracted_at",
        "summary_hash",
        "details_fetched_at",
        "_dlt_id",
        "_dlt_load_id",
    )
