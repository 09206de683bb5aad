"""A hostile showroom API over real HTTP: answers that are 200 and parse as JSON (or
nearly), but carry values Python's json module or the loader's id handling trip on.

The simulated API cannot encode some of these (a 5,000-digit number, JSON nested a
hundred thousand deep), so `_rewrite` swaps a marker string in the simulated API's
answer body for the raw bytes, after the API built it and before it is sent.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from athlon_flex.settings import Settings
from loader.pipeline import LoadError
from simulation.fake_api import FakeShowroom
from simulation.fake_api.api import ApiRequest, ApiResponse
from simulation.fake_api.handler import ShowroomRequestHandler
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    notifications,
    query,
    raw_contents,
    windows,
)
from tests.support.fake_api import FAKE_PASSWORD, FAKE_USERNAME
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


def _bend(showroom: FakeShowroom, endpoint: str, bend: Callable[[Any], Any]) -> None:
    """`endpoint`'s JSON answers become `bend(answer)`."""
    api = showroom.api
    handle = api.handle

    def bent(request: ApiRequest) -> ApiResponse:
        response = handle(request)
        if request.endpoint != endpoint or response.status != 200:
            return response
        body = json.dumps(bend(json.loads(response.body))).encode()
        return ApiResponse(200, body, response.content_type, response.headers)

    api.handle = bent  # type: ignore[method-assign]


def _answer_first(
    showroom: FakeShowroom, endpoint: str, times: int, response: ApiResponse
) -> list[int]:
    """The first `times` requests to `endpoint` get `response`; returns [hits]."""
    api = showroom.api
    handle = api.handle
    hits = [0]

    def first(request: ApiRequest) -> ApiResponse:
        if request.endpoint == endpoint and hits[0] < times:
            hits[0] += 1
            return response
        return handle(request)

    api.handle = first  # type: ignore[method-assign]
    return hits


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


def test_a_retry_after_date_past_year_9999_is_ignored_and_the_request_retried(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    absurd = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"
    hits = _answer_first(
        showroom,
        "VehicleCluster",
        1,
        ApiResponse(429, b'{"status":429}', headers=(("Retry-After", absurd),)),
    )

    summary = run_cycle(settings)

    assert hits == [1]
    assert summary.load.rows["vehicles"] == 6
    assert_nothing_lost_or_doubled(settings, showroom.catalog, _texts(smtp_server))


def test_a_redirect_for_one_cars_details_is_refused_not_read_as_its_details(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    car = showroom.catalog.vehicles[0]
    # A 302 whose body is JSON (the simulated API's problem details).
    showroom.faults.add("Vehicle", status=302, vehicle_id=car.id)

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    assert str(failure.value) == (
        f"Athlon API GET Vehicle for vehicle {car.id} answered 302, a redirect the "
        "loader does not follow; raw tables left unchanged"
    )
    assert {name: rows for name, rows in raw_contents(settings).items() if rows} == {}
    assert smtp_server.messages == []

    showroom.faults.clear()
    run_cycle(settings)

    assert_nothing_lost_or_doubled(settings, showroom.catalog, _texts(smtp_server))


def test_a_negative_vehicle_count_does_not_let_an_empty_cluster_through(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    run_cycle(settings)
    raw_before, windows_before = raw_contents(settings), windows(settings)
    notified_before = notifications(settings)
    make, model = showroom.catalog.vehicles[0].cluster_key
    showroom.tampering.empty_variations(make, model)

    def negative(clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for cluster in clusters:
            if (cluster["make"], cluster["model"]) == (make, model):
                cluster["vehicleCount"] = -1
        return clusters

    _bend(showroom, "VehicleCluster", negative)

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    message = str(failure.value)
    assert message.startswith(
        "GET VehicleCluster: a cluster without a usable make, model or vehicleCount "
        "(VehicleCluster.vehicleCount is -1: "
    )
    assert message.endswith("raw tables left unchanged")
    assert raw_contents(settings) == raw_before
    assert windows(settings) == windows_before  # the cluster's cars stay open
    assert notifications(settings) == notified_before


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
)
def test_a_date_that_leaves_pythons_range_in_utc_is_null_and_blocks_no_one(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    when: str,
) -> None:
    settings = cycle_settings(showroom)
    cars = showroom.catalog.vehicles
    showroom.tampering.detail(cars[0].id, {"details.registrationDate": when})

    summary = run_cycle(settings)

    assert summary.load.rows["vehicles"] == 6
    assert _column(settings, cars[0].id, "details__registration_date") is None
    assert _column(settings, cars[0].id, "details__license_plate") == (
        cars[0].license_plate
    )
    assert_nothing_lost_or_doubled(settings, showroom.catalog, _texts(smtp_server))


def test_a_list_padded_with_another_clusters_car_does_not_hide_a_missing_one(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    run_cycle(settings)
    raw_before, windows_before = raw_contents(settings), windows(settings)
    notified_before = notifications(settings)
    cars = showroom.catalog.vehicles
    first = cars[0]
    other = next(car for car in cars if car.cluster_key != first.cluster_key)
    missing = next(
        car for car in cars if car.cluster_key == other.cluster_key and car is not other
    )
    # `other`'s cluster lists `other` and, in place of `missing`, `first` (a car of
    # another cluster, which that cluster lists as well): two entries, count 2.
    showroom.tampering.summary(missing.id, {"id": first.id.upper()})
    showroom.tampering.summary(missing.id, {"make": first.make, "model": first.model})

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    assert str(failure.value) == (
        "Athlon API listed 5 distinct vehicles in all, but VehicleCluster counts 6 "
        "(a car listed in two clusters stood in for a missing one); raw tables left "
        "unchanged"
    )
    assert raw_contents(settings) == raw_before
    assert windows(settings) == windows_before  # `missing` stays open
    assert notifications(settings) == notified_before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("budget.actualBudgetPerMonth", float("nan")),
        ("numberOfKmPerMonth", float("inf")),
    ],
)
def test_a_member_profile_with_nan_or_infinity_is_refused(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    field: str,
    value: float,
) -> None:
    settings = cycle_settings(
        showroom, athlon_username=FAKE_USERNAME, athlon_password=FAKE_PASSWORD
    )
    run_cycle(settings)
    raw_before, windows_before = raw_contents(settings), windows(settings)
    showroom.catalog.set_price(showroom.catalog.vehicles[0].id, 2_000.0)

    def bend(profile: dict[str, Any]) -> dict[str, Any]:
        *parents, last = field.split(".")
        target = profile
        for key in parents:
            target = target[key]
        target[last] = value  # json.dumps writes NaN / Infinity, as .NET can
        return profile

    _bend(showroom, "MemberProfile", bend)

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    assert str(failure.value) == (
        f"GET MemberProfile: {field}: Input should be a finite number; raw tables "
        "left unchanged"
    )
    assert raw_contents(settings) == raw_before
    assert windows(settings) == windows_before


def test_a_cluster_listed_again_in_other_case_fails_naming_it(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    run_cycle(settings)
    raw_before, windows_before = raw_contents(settings), windows(settings)
    make, model = showroom.catalog.vehicles[0].cluster_key

    def twice(clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        (same,) = (c for c in clusters if (c["make"], c["model"]) == (make, model))
        return [*clusters, {**same, "make": make.lower(), "model": model.upper()}]

    _bend(showroom, "VehicleCluster", twice)

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    assert str(failure.value) == (
        f"GET VehicleCluster: cluster {make.lower()} {model.upper()} appears twice "
        f"(as {make} {model} too); raw tables left unchanged"
    )
    assert raw_contents(settings) == raw_before
    assert windows(settings) == windows_before


def test_a_twin_whose_id_is_no_guid_is_skipped_not_a_failed_load(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An entry whose id is no GUID is a car without a usable id: skipped with one
    warning, never a `GET Vehicle` the API refuses (400) and so a failed load."""
    settings = cycle_settings(showroom)
    showroom.tampering.duplicate(showroom.catalog.vehicles[0].id, "not-a-guid")

    with caplog.at_level(logging.WARNING, logger="loader"):
        summary = run_cycle(settings)

    assert summary.load.rows["vehicles"] == 6
    skipped = [r.getMessage() for r in caplog.records if "usable id" in r.getMessage()]
    assert len(skipped) == 1
    assert skipped[0].endswith("skipped a car without a usable id ('not-a-guid')")
    assert_nothing_lost_or_doubled(settings, showroom.catalog, _texts(smtp_server))


def test_an_answer_trickled_byte_by_byte_times_out_as_one_request(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ATHLON_HTTP_TIMEOUT_SECONDS is the request's (README), not each read's: a
    server sending its answer a byte at a time over 25 s must not hold the load."""
    settings = cycle_settings(
        showroom, athlon_http_timeout_seconds=1, athlon_http_max_retries=0
    )
    car = showroom.catalog.vehicles[0]
    send = ShowroomRequestHandler._send

    def trickle(handler: ShowroomRequestHandler, response: ApiResponse) -> None:
        if car.id not in handler.path:
            send(handler, response)
            return
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(response.body)))
        handler.end_headers()
        for index in range(len(response.body)):
            handler.wfile.write(response.body[index : index + 1])
            handler.wfile.flush()
            time.sleep(25 / len(response.body))  # the whole answer: 25 s

    monkeypatch.setattr(ShowroomRequestHandler, "_send", trickle)
    started = time.monotonic()

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    assert time.monotonic() - started < 20
    assert str(failure.value).startswith(
        f"Athlon API GET Vehicle for vehicle {car.id} timed out"
    )


def test_a_gzip_bomb_is_refused_before_it_is_read_whole(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Valid JSON, 100 MiB of it padded with spaces, 100 kB as gzip on the wire."""
    settings = cycle_settings(showroom)
    send = ShowroomRequestHandler._send

    def bomb(handler: ShowroomRequestHandler, response: ApiResponse) -> None:
        if "VehicleCluster" not in handler.path:
            send(handler, response)
            return
        body = gzip.compress(response.body + b" " * (100 << 20), compresslevel=9)
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    monkeypatch.setattr(ShowroomRequestHandler, "_send", bomb)

    with pytest.raises(LoadError) as failure:
        run_cycle(settings)

    assert str(failure.value) == (
        "Athlon API GET VehicleCluster answered more than 64 MiB; raw tables left "
        "unchanged"
    )
