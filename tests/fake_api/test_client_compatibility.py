"""The public athlon-flex-client reads the simulated showroom like the real one.

The client's pydantic models are the most complete description of the real API there
is; if it loads everything without a validation error, so will our loader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from athlon_flex_client import AthlonFlexClient
from athlon_flex_client.models.vehicle_cluster import DetailLevel

from simulation.fake_api import (
    FakeShowroom,
    contribution_per_month,
    net_cost_per_month,
)
from tests.support.fake_api import FAKE_PASSWORD, FAKE_USERNAME

# 60 000 a year with loonheffingskorting falls in "€ 43.072 t/m € 76.817": 50.33 %.
INCOME = 60_000
INCOME_TAX_PERCENTAGE = 50.33


@pytest.fixture(autouse=True)
def event_loop_for_the_client() -> Iterator[None]:
    """The client calls asyncio.get_event_loop(), which fails in a thread where an
    earlier asyncio.run() (another test in this worker) left no loop set."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def showroom(
    fake_api_factory: Callable[..., FakeShowroom], monkeypatch: pytest.MonkeyPatch
) -> FakeShowroom:
    """20 clusters x 5 vehicles on "localhost" (aiohttp keeps no cookies from IPs)."""
    server = fake_api_factory(
        clusters=20, vehicles_per_cluster=5, seed=1, host="localhost"
    )
    monkeypatch.setattr(AthlonFlexClient, "BASE_URL", server.url)
    return server


def test_anonymous_client_reads_every_cluster_and_vehicle_with_details(
    showroom: FakeShowroom,
) -> None:
    client = AthlonFlexClient()

    clusters = client.vehicle_clusters(detail_level=DetailLevel.INCLUDE_VEHICLE_DETAILS)

    catalog = showroom.catalog
    assert len(clusters.vehicle_clusters) == 20
    assert {(c.make, c.model) for c in clusters} == {
        v.cluster_key for v in catalog.vehicles
    }
    vehicles = [vehicle for cluster in clusters for vehicle in cluster.vehicles]
    assert len(vehicles) == 100
    assert sorted(v.id for v in vehicles) == sorted(v.id for v in catalog.vehicles)
    for vehicle in vehicles:
        expected = catalog.vehicle(vehicle.id)
        assert vehicle.details.licensePlate == expected.license_plate
        assert vehicle.pricing.calculatedPricePerMonthInEuro == (
            expected.calculated_price
        )
        assert vehicle.pricing.contributionInEuro is None
        assert vehicle.pricing.netCostPerMonthInEuro is None
        assert len(vehicle.options) == 19
    assert showroom.stats.requests_by_endpoint == {
        "VehicleCluster": 1,
        "VehicleVariation": 20,
        "Vehicle": 100,
    }


def test_logged_in_client_with_income_gets_net_costs_for_every_vehicle(
    showroom: FakeShowroom,
) -> None:
    client = AthlonFlexClient(
        email=FAKE_USERNAME, password=FAKE_PASSWORD, gross_yearly_income=INCOME
    )

    clusters = client.vehicle_clusters()

    account = showroom.account
    assert account is not None
    # Logged in, the client asks only for cars within the profile's maximum budget.
    affordable = [
        v
        for v in showroom.catalog.vehicles
        if v.calculated_price <= account.max_budget_per_month
    ]
    assert 0 < len(affordable) < 100
    vehicles = [vehicle for cluster in clusters for vehicle in cluster.vehicles]
    assert sorted(v.id for v in vehicles) == sorted(v.id for v in affordable)
    budget = account.actual_budget_per_month
    for vehicle in vehicles:
        expected = showroom.catalog.vehicle(vehicle.id)
        assert vehicle.details.licensePlate == expected.license_plate
        assert vehicle.pricing.contributionInEuro == contribution_per_month(
            expected, budget
        )
        assert vehicle.pricing.netCostPerMonthInEuro == net_cost_per_month(
            expected, budget, INCOME_TAX_PERCENTAGE
        )
    assert showroom.stats.requests_by_endpoint["MemberLogin"] == 1
    assert showroom.stats.requests_by_endpoint["TaxRates"] == 1


def test_client_refetches_a_vehicle_not_leasable_by_the_profile_anonymously(
    showroom: FakeShowroom,
) -> None:
    cheapest = min(showroom.catalog.vehicles, key=lambda v: v.calculated_price)
    showroom.catalog.set_leasable(cheapest.id, False)
    client = AthlonFlexClient(
        email=FAKE_USERNAME, password=FAKE_PASSWORD, gross_yearly_income=INCOME
    )

    clusters = client.vehicle_clusters()
    vehicles = {v.id: v for cluster in clusters for v in cluster.vehicles}

    refetched = vehicles[cheapest.id]
    assert refetched.details.licensePlate == cheapest.license_plate
    assert refetched.pricing.netCostPerMonthInEuro is None  # the anonymous answer
    others = [v for v in vehicles.values() if v.id != cheapest.id]
    assert all(v.pricing.netCostPerMonthInEuro is not None for v in others)
    assert showroom.stats.responses_by_status[404] == 1
    assert showroom.stats.requests_by_endpoint["Vehicle"] == len(vehicles) + 1
