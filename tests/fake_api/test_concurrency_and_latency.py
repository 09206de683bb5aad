"""The server overlaps concurrent requests, counts them right, and applies latency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from simulation.fake_api import FakeShowroom


def test_concurrent_requests_overlap_and_max_in_flight_counts_them(
    fake_api_factory,
) -> None:
    server = fake_api_factory(latency_ms=400)
    clients = 16
    ready = threading.Barrier(clients)

    def one_request(_: int) -> int:
        with httpx.Client(base_url=server.url) as http:
            ready.wait()
            return http.get("/VehicleCluster").status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(one_request, range(clients)))
    elapsed = time.perf_counter() - started

    assert statuses == [200] * clients
    assert server.stats.max_in_flight == clients
    assert server.stats.in_flight == 0
    assert server.stats.requests_total == clients
    assert elapsed < 0.4 * clients / 2  # serially 6.4 s

    server.stats.reset()

    assert server.stats.max_in_flight == 0
    assert server.stats.requests_total == 0
    assert server.stats.requests_by_endpoint["VehicleCluster"] == 0


def test_sequential_requests_never_count_as_concurrent(fake_api: FakeShowroom) -> None:
    with httpx.Client(base_url=fake_api.url) as http:
        for _ in range(5):
            http.get("/VehicleCluster")

    assert fake_api.stats.max_in_flight == 1
    assert fake_api.stats.requests_by_endpoint == {"VehicleCluster": 5}


def test_latency_is_applied_to_every_request_and_can_change(
    fake_api_factory,
) -> None:
    server = fake_api_factory(latency_ms=250)

    with httpx.Client(base_url=server.url) as http:
        started = time.perf_counter()
        http.get("/VehicleCluster")
        slow = time.perf_counter() - started
        server.latency_ms = 0
        started = time.perf_counter()
        http.get("/VehicleCluster")
        fast = time.perf_counter() - started

    assert 0.25 <= slow < 1.0
    assert fast < 0.1


def test_a_thousand_vehicles_at_50_ms_load_in_parallel_time(fake_api_factory) -> None:
    """16 workers over 1000 details at 50 ms: ideal 3.1 s, serially 50 s.

    The bound is loose because client and server share this process's GIL.
    """
    server = fake_api_factory(clusters=100, vehicles_per_cluster=10, latency_ms=50)
    ids = [vehicle.id for vehicle in server.catalog.vehicles]
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)

    started = time.perf_counter()
    with (
        httpx.Client(base_url=server.url, limits=limits) as http,
        ThreadPoolExecutor(16) as pool,
    ):
        responses = list(
            pool.map(lambda i: http.get("/Vehicle", params={"VehicleId": i}), ids)
        )
    elapsed = time.perf_counter() - started

    assert [r.json()["id"] for r in responses] == ids
    assert server.stats.requests_by_endpoint["Vehicle"] == 1000
    assert server.stats.max_in_flight == 16
    assert elapsed < 10


def test_changing_the_catalog_under_concurrent_load_never_breaks_a_response(
    fake_api_factory,
) -> None:
    server = fake_api_factory(clusters=10, vehicles_per_cluster=5)
    catalog = server.catalog
    ids = [vehicle.id for vehicle in catalog.vehicles]
    stop = threading.Event()
    ready = threading.Barrier(9)  # 8 workers with an open client, and this thread
    statuses: list[int] = []

    def hammer(worker: int) -> None:
        with httpx.Client(base_url=server.url) as http:
            ready.wait()
            while not stop.is_set():
                clusters = http.get("/VehicleCluster")
                clusters.json()
                detail = http.get("/Vehicle", params={"VehicleId": ids[worker]})
                if detail.status_code == 200:
                    assert detail.json()["id"] == ids[worker]
                statuses.extend((clusters.status_code, detail.status_code))

    with ThreadPoolExecutor(8) as pool:
        workers = [pool.submit(hammer, worker) for worker in range(8)]
        ready.wait()
        for round_ in range(100):
            leased = catalog.remove_vehicle(ids[round_ % 8])
            catalog.set_price(ids[10 + round_ % 30], 400 + round_)
            catalog.add_vehicle()
            time.sleep(0.002)  # let requests see the car gone
            catalog.return_vehicle(leased)
        stop.set()
        for worker in workers:
            worker.result()

    assert len(statuses) > 100
    assert set(statuses) == {200, 404}
    assert server.stats.responses_by_status[500] == 0
    assert len(catalog.vehicles) == 150
