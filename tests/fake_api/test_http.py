"""HTTP behaviour around the endpoints: errors, filters, case rules, lifecycle."""

from __future__ import annotations

import httpx
import pytest

from simulation.fake_api import Catalog, FakeShowroom


def test_an_unknown_path_is_a_json_404(fake_api: FakeShowroom) -> None:
    response = httpx.get(f"{fake_api.url}/Vehicles")

    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert fake_api.stats.requests_by_endpoint == {"unknown": 1}


def test_a_wrong_method_is_405(fake_api: FakeShowroom) -> None:
    response = httpx.post(f"{fake_api.url}/VehicleCluster")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"


@pytest.mark.parametrize(
    ("vehicle_id", "status"),
    [(None, 400), ("not-a-guid", 400), ("00000000-0000-0000-0000-000000000000", 404)],
)
def test_vehicle_needs_the_id_of_a_vehicle_in_stock(
    fake_api: FakeShowroom, vehicle_id: str | None, status: int
) -> None:
    params = {"Segment": "Cars"} | ({"VehicleId": vehicle_id} if vehicle_id else {})

    response = httpx.get(f"{fake_api.url}/Vehicle", params=params)

    assert response.status_code == status
    assert response.json()["status"] == status


def test_paths_and_parameter_names_are_case_insensitive(fake_api: FakeShowroom) -> None:
    vehicle = fake_api.catalog.vehicles[0]

    response = httpx.get(
        f"{fake_api.url}/vehicle", params={"segment": "cars", "vehicleid": vehicle.id}
    )

    assert response.status_code == 200
    assert response.json()["id"] == vehicle.id
    assert fake_api.stats.requests_by_endpoint["Vehicle"] == 1


def test_other_segments_have_no_stock(fake_api: FakeShowroom) -> None:
    vehicle = fake_api.catalog.vehicles[0]
    url = fake_api.url

    assert (
        httpx.get(f"{url}/VehicleCluster", params={"Filters.Segment": "Bikes"}).json()
        == []
    )
    assert (
        httpx.get(
            f"{url}/Vehicle", params={"Segment": "Bikes", "VehicleId": vehicle.id}
        ).status_code
        == 404
    )


def test_variations_respect_the_maximum_price(fake_api: FakeShowroom) -> None:
    vehicle = fake_api.catalog.vehicles[0]
    cluster = [
        v for v in fake_api.catalog.vehicles if v.cluster_key == vehicle.cluster_key
    ]
    limit = sorted(v.calculated_price for v in cluster)[1]

    summaries = httpx.get(
        f"{fake_api.url}/VehicleVariation",
        params={
            "Filters.Make": vehicle.make,
            "Filters.Model": vehicle.model,
            "Filters.MaxPricePerMonth": limit,
        },
    ).json()

    assert sorted(s["id"] for s in summaries) == sorted(
        v.id for v in cluster if v.calculated_price <= limit
    )
    assert len(summaries) == 2


def test_make_and_model_with_special_characters_round_trip(
    fake_api: FakeShowroom,
) -> None:
    added = fake_api.catalog.add_vehicle("Lynk & Co", "01")
    fake_api.catalog.add_vehicle("Citroën", "ë-C4")

    lynk = httpx.get(
        f"{fake_api.url}/VehicleVariation",
        params={"Filters.Make": "Lynk & Co", "Filters.Model": "01"},
    ).json()
    citroen = httpx.get(
        f"{fake_api.url}/VehicleVariation",
        params={"Filters.Make": "Citroën", "Filters.Model": "ë-C4"},
    ).json()

    assert [s["id"] for s in lynk] == [added.id]
    assert citroen[0]["make"] == "Citroën"


def test_a_stopped_server_closes_kept_alive_connections() -> None:
    server = FakeShowroom(Catalog.generate(clusters=2, vehicles_per_cluster=1)).start()
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/VehicleCluster").status_code == 200

        server.stop()

        with pytest.raises(httpx.TransportError):
            http.get("/VehicleCluster")
    server.stop()  # a second stop is harmless


def test_context_manager_starts_and_stops(fake_api: FakeShowroom) -> None:
    with FakeShowroom(fake_api.catalog, port=0) as server:
        assert server.running
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url.endswith("/api/v1")
        assert len(httpx.get(f"{server.url}/VehicleCluster").json()) == 4
    assert not server.running
