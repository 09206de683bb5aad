"""A hostile showroom API over real HTTP: answers that are 200 and parse as JSON (or
nearly), but carry values Python's json module or the loader's id handling trip on.

The simulated API cannot encode some of these (a 5,000-digit number, JSON nested a
hundred thousand deep), so `_rewrite` swaps a marker string in the simulated API's
answer body for the raw bytes, after the API built it and before it is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from athlon_flex.settings import Settings
from loader.pipeline import LoadError
from simulation.fake_api import FakeShowroom
from simulation.fake_api.api import ApiRequest, ApiResponse
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    notifications,
    query,
    raw_contents,
    windows,
)
from tests.support.smtp import SmtpServer
from watcher.cycle import run_cycle

MARKER = "@@ADVERSARY@@"


def _texts(smtp_server: SmtpServer) -> list[str]:
    return [mail.text for mail in smtp_server.messages_to(RECIPIENT)]


def _rewrite(showroom: FakeShowroom, raw: bytes) -> None:
    """Every answer's `"@@ADVERSARY@@"` (the JSON string) becomes `raw`, verbatim."""
    api = showroom.api
    handle = api.handle

    def rewritten(request: ApiRequest) -> ApiResponse:
        response = handle(request)
        quoted = f'"{MARKER}"'.encode()
        if quoted not in response.body:
            return response
        body = response.body.replace(quoted, raw)
        return ApiResponse(
            response.status, body, response.content_type, response.headers
        )

    api.handle = rewritten  # type: ignore[method-assign]


def _column(settings: Settings, vehicle_id: str, column: str) -> Any:
    ((value,),) = query(
        settings, f'select "{column}" from raw.vehicles where id = %s', (vehicle_id,)
    )
    return value


def test_an_id_padded_with_spaces_is_the_same_car_and_blocks_no_one(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    run_cycle(settings)
    cars = showroom.catalog.vehicles
    # The same GUID, padded (and in upper case): still the one car.
    showroom.tampering.summary(cars[0].id, {"id": f" {cars[0].id.upper()} "})

    summary = run_cycle(settings)

    assert summary.load.rows["vehicles"] == 6
    assert query(settings, "select id from raw.vehicles order by id") == [
        (car.id,) for car in sorted(cars, key=lambda car: car.id)
    ]
    assert _column(settings, cars[0].id, "details__license_plate") == (
        cars[0].license_plate
    )
    texts = _texts(smtp_server)
    assert len(texts) == 1  # the padded id was not a new car
    assert_nothing_lost_or_doubled(settings, showroom.catalog, texts)


def test_a_number_too_long_for_python_in_one_cars_details_blocks_no_one(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    cars = showroom.catalog.vehicles
    # Valid JSON (RFC 8259 sets no limit), but past Python's 4,300 digits for int().
    showroom.tampering.detail(cars[0].id, {"details.emission": MARKER})
    _rewrite(showroom, b"1" * 5_000)

    summary = run_cycle(settings)

    assert summary.load.rows["vehicles"] == 6
    assert _column(settings, cars[0].id, "details__emission") is None
    assert _column(settings, cars[0].id, "details__license_plate") == (
        cars[0].license_plate
    )
    assert_nothing_lost_or_doubled(settings, showroom.catalog, _texts(smtp_server))


def test_json_nested_too_deep_fails_naming_the_car_and_changes_nothing(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom, athlon_details_refresh_hours=0)
    run_cycle(settings)
    raw_before, windows_before = raw_contents(settings), windows(settings)
    notified_before = notifications(settings)
    car = showroom.catalog.vehicles[0]
    showroom.tampering.detail(car.id, {"details.color": MARKER})
    _rewrite(showroom, b"[" * 100_000 + b"]" * 100_000)

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    assert str(failure.value) == (
        f"Athlon API GET Vehicle for vehicle {car.id} answered 200 with JSON nested "
        "too deeply to read; raw tables left unchanged"
    )
    assert raw_contents(settings) == raw_before
    assert windows(settings) == windows_before
    assert notifications(settings) == notified_before
