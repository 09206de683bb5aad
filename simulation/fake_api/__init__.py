"""A simulated Athlon Flex showroom API: a real HTTP server for tests, demos and dev.

The real API (https://flex.athlon.com/api/v1) cannot be reached from tests, and its
stock cannot be changed on demand. This package serves the same endpoints with the same
JSON shapes (checked against real responses and the public `athlon-flex-client`) over a
generated, seeded, mutable catalog:

- `GET VehicleCluster`   clusters (make + model) derived from the current vehicles
- `GET VehicleVariation` vehicle summaries of one make + model (`Filters.*` params)
- `GET Vehicle`          one car with details, pricing and options; personalised when
                         logged in (`contributionInEuro`, and `netCostPerMonthInEuro`
                         with the `TaxGroup`/`TaxGroupLabel` cookies)
- `GET TaxRates`         Dutch tax brackets ("Met loonheffingskorting jaarinkomen ...")
- `POST MemberLogin`, `GET MemberProfile`

Fuel types (`externalFuelTypeId`): 0 Benzine, 1 Diesel, 2 Hybride (plug-in or full
hybrid), 3 Elektrisch. Only 3 is `isElectric`; electric cars have `rangeInKm` > 0 and
emission 0, all others `rangeInKm` 0 (only 0 = Benzine is confirmed by real data).

Usage::

    catalog = Catalog.generate(clusters=20, vehicles_per_cluster=5, seed=1)
    with FakeShowroom(catalog, username="user@example.com", password="secret") as api:
        ...  # api.url, api.catalog.remove_vehicle(...), api.faults.add(...), api.stats,
        # api.tampering.detail(vehicle_id, {"details": None})
"""

from simulation.fake_api.catalog import Catalog, CatalogSnapshot
from simulation.fake_api.faults import ENDPOINTS, Fault, Faults
from simulation.fake_api.members import (
    SESSION_COOKIE,
    TAX_RATES,
    TAX_RATES_PAGE_ID,
    MemberAccount,
    TaxRate,
)
from simulation.fake_api.reference_data import MODELS, FuelType
from simulation.fake_api.server import FakeShowroom, serve
from simulation.fake_api.stats import Stats
from simulation.fake_api.tampering import MISSING, Tampering
from simulation.fake_api.vehicle import (
    KM_PER_MONTH,
    Option,
    Vehicle,
    contribution_per_month,
    net_cost_per_month,
)

__all__ = [
    "ENDPOINTS",
    "KM_PER_MONTH",
    "MISSING",
    "MODELS",
    "SESSION_COOKIE",
    "TAX_RATES",
    "TAX_RATES_PAGE_ID",
    "Catalog",
    "CatalogSnapshot",
    "FakeShowroom",
    "Fault",
    "Faults",
    "FuelType",
    "MemberAccount",
    "Option",
    "Stats",
    "Tampering",
    "TaxRate",
    "Vehicle",
    "contribution_per_month",
    "net_cost_per_month",
    "serve",
]
