"""Injected faults make matching requests fail exactly as asked, then stop."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from simulation.fake_api import FakeShowroom


def get_vehicle(http: httpx.Client, vehicle_id: str) -> httpx.Response:
    return http.get("/Vehicle", params={"Segment": "Cars", "VehicleId": vehicle_id})


@pytest.fixture
def http(fake_api: FakeShowroom):
    with httpx.Client(base_url=fake_api.url) as client:
        yield client


def test_503_twice_then_200(fake_api: FakeShowroom, http: httpx.Client) -> None:
    vehicle = fake_api.catalog.vehicles[0]
    fault = fake_api.faults.add(endpoint="Vehicle", status=503, times=2)

    statuses = [get_vehicle(http, vehicle.id).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert fault.hits == 2
    assert fake_api.faults.active == []
    assert http.get("/VehicleCluster").status_code == 200
    assert fake_api.stats.responses_by_status == {503: 2, 200: 2}


def test_a_fault_for_one_vehicle_leaves_the_others_alone(
    fake_api: FakeShowroom, http: httpx.Client
) -> None:
    broken, healthy = fake_api.catalog.vehicles[:2]
    fake_api.faults.add(endpoint="Vehicle", status=500, vehicle_id=broken.id)

    assert get_vehicle(http, healthy.id).status_code == 200
    assert get_vehicle(http, broken.id).status_code == 500
    assert get_vehicle(http, broken.id).status_code == 500  # times=None: forever

    fake_api.faults.clear()

    assert get_vehicle(http, broken.id).status_code == 200


def test_429_carries_retry_after(fake_api: FakeShowroom, http: httpx.Client) -> None:
    fake_api.faults.add(endpoint="VehicleCluster", status=429, retry_after=3, times=1)

    limited = http.get("/VehicleCluster")

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert http.get("/VehicleCluster").status_code == 200


def test_retry_after_alone_means_429(
    fake_api: FakeShowroom, http: httpx.Client
) -> None:
    fake_api.faults.add(endpoint="VehicleVariation", retry_after=1.5, times=1)

    response = http.get("/VehicleVariation")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1.5"


def test_malformed_json_is_not_parseable(
    fake_api: FakeShowroom, http: httpx.Client
) -> None:
    vehicle = fake_api.catalog.vehicles[0]
    fake_api.faults.add(endpoint="Vehicle", malformed=True, times=1)

    response = get_vehicle(http, vehicle.id)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert get_vehicle(http, vehicle.id).json()["id"] == vehicle.id


def test_a_dropped_connection_gets_no_response(
    fake_api: FakeShowroom, http: httpx.Client
) -> None:
    fake_api.faults.add(endpoint="VehicleCluster", drop=True, times=1)

    with pytest.raises(httpx.TransportError):
        http.get("/VehicleCluster")

    assert http.get("/VehicleCluster").status_code == 200
    assert fake_api.stats.requests_by_endpoint["VehicleCluster"] == 2
    assert fake_api.stats.responses_by_status == {200: 1}
    assert fake_api.stats.in_flight == 0


def test_a_slow_response_is_delayed_then_normal(
    fake_api: FakeShowroom, http: httpx.Client
) -> None:
    fake_api.faults.add(endpoint="VehicleCluster", delay_ms=300, times=1)

    started = time.perf_counter()
    slow = http.get("/VehicleCluster")
    slow_seconds = time.perf_counter() - started
    started = time.perf_counter()
    http.get("/VehicleCluster")
    fast_seconds = time.perf_counter() - started

    assert slow.status_code == 200
    assert len(slow.json()) == 4
    assert slow_seconds >= 0.3
    assert fast_seconds < 0.2


def test_a_fault_without_endpoint_hits_every_endpoint(
    fake_api: FakeShowroom, http: httpx.Client
) -> None:
    fake_api.faults.add(status=502, times=2)

    assert http.get("/VehicleCluster").status_code == 502
    assert http.get("/TaxRates").status_code == 502
    assert http.get("/VehicleCluster").status_code == 200


def test_a_fault_needs_a_known_endpoint_and_an_effect(fake_api: FakeShowroom) -> None:
    with pytest.raises(ValueError, match="Unknown endpoint"):
        fake_api.faults.add(endpoint="Vehicles", status=503)
    with pytest.raises(ValueError, match="needs an effect"):
        fake_api.faults.add(endpoint="Vehicle")
