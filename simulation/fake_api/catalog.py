"""The showroom's stock: which vehicles are available now, changed while serving.

Scenario tests change the stock between (or during) loader runs: a car is leased
(removed), arrives (added), comes back (returned with its old id), gets a new price.
Every change happens under one lock and bumps `version`; readers take an immutable
`CatalogSnapshot`, so a response never mixes two states and caches know when to drop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from simulation.fake_api.generation import VehicleFactory
from simulation.fake_api.vehicle import Vehicle

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """The stock at one version: vehicles in catalog order and by id."""

    version: int
    vehicles: tuple[Vehicle, ...]
    by_id: Mapping[str, Vehicle]


def group_by_cluster(vehicles: Iterable[Vehicle]) -> list[list[Vehicle]]:
    """Vehicles per (make, model), clusters ordered by make then model.

    Within a cluster the catalog order is kept; an empty cluster cannot exist.
    """
    groups: dict[tuple[str, str], list[Vehicle]] = {}
    for vehicle in vehicles:
        groups.setdefault(vehicle.cluster_key, []).append(vehicle)
    return [
        groups[key]
        for key in sorted(groups, key=lambda k: (k[0].lower(), k[1].lower()))
    ]


class Catalog:
    """Thread-safe, mutable stock of the simulated showroom.

    Build one with `Catalog.generate(clusters, vehicles_per_cluster, seed)`; mutate it
    while a `FakeShowroom` serves it, the next request sees the change.
    """

    def __init__(
        self,
        vehicles: Iterable[Vehicle] = (),
        *,
        seed: int = 0,
        factory: VehicleFactory | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._factory = factory or VehicleFactory(seed)
        self._vehicles: dict[str, Vehicle] = {}
        self._removed: dict[str, Vehicle] = {}
        self._version = 0
        self._snapshot: CatalogSnapshot | None = None
        for vehicle in vehicles:
            if vehicle.id in self._vehicles:
                raise ValueError(f"Vehicle id {vehicle.id} appears twice")
            self._factory.reserve(vehicle)
            self._vehicles[vehicle.id] = vehicle

    @classmethod
    def generate(
        cls, clusters: int = 20, vehicles_per_cluster: int = 5, seed: int = 0
    ) -> Catalog:
        """A realistic showroom of `clusters` makes+models with as many cars each.

        Deterministic: the same arguments give an identical catalog.
        """
        if clusters < 0 or vehicles_per_cluster < 0:
            raise ValueError("clusters and vehicles_per_cluster cannot be negative")
        factory = VehicleFactory(seed)
        specs = factory.pick_models(clusters)
        vehicles = [
            factory.vehicle(spec) for spec in specs for _ in range(vehicles_per_cluster)
        ]
        log.debug(
            "Generated %d vehicles in %d clusters (seed %d)",
            len(vehicles),
            clusters,
            seed,
        )
        return cls(vehicles, factory=factory)

    # --- reading -------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increases with every change; equal versions mean an identical stock."""
        return self._version

    def snapshot(self) -> CatalogSnapshot:
        """The current stock, immutable (built once per version)."""
        with self._lock:
            if self._snapshot is None or self._snapshot.version != self._version:
                self._snapshot = CatalogSnapshot(
                    version=self._version,
                    vehicles=tuple(self._vehicles.values()),
                    by_id=dict(self._vehicles),
                )
            return self._snapshot

    @property
    def vehicles(self) -> list[Vehicle]:
        """The vehicles available now, in catalog order (a copy)."""
        return list(self.snapshot().vehicles)

    @property
    def removed_vehicles(self) -> list[Vehicle]:
        """Vehicles removed (leased) and not returned, in order of removal."""
        with self._lock:
            return list(self._removed.values())

    def __len__(self) -> int:
        return len(self._vehicles)

    def __contains__(self, vehicle_id: object) -> bool:
        return vehicle_id in self._vehicles

    def vehicle(self, vehicle_id: str) -> Vehicle:
        """The available vehicle with this id (KeyError if not in the showroom)."""
        try:
            return self.snapshot().by_id[vehicle_id]
        except KeyError:
            raise KeyError(f"Vehicle {vehicle_id} is not in the showroom") from None

    def clusters_json(self) -> list[dict[str, Any]]:
        """`GET VehicleCluster` (unfiltered) as JSON values, for tests to compare."""
        from simulation.fake_api.shapes import cluster_json

        return [cluster_json(group) for group in group_by_cluster(self.vehicles)]

    # --- changing ------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1

    def _current(self, vehicle_id: str) -> Vehicle:
        vehicle = self._vehicles.get(vehicle_id)
        if vehicle is None:
            raise KeyError(f"Vehicle {vehicle_id} is not in the showroom")
        return vehicle

    def remove_vehicle(self, vehicle_id: str) -> Vehicle:
        """Take a car out of the showroom (leased); it can come back later."""
        with self._lock:
            vehicle = self._current(vehicle_id)
            del self._vehicles[vehicle_id]
            self._removed[vehicle_id] = vehicle
            self._changed()
            return vehicle

    def add_vehicle(
        self,
        make: str | None = None,
        model: str | None = None,
        *,
        calculated_price: float | None = None,
        leasable: bool = True,
    ) -> Vehicle:
        """A new car arrives (new id and plate), in the given or a random make+model.

        An unknown make+model pair opens a new cluster with a plausible car.
        """
        with self._lock:
            spec = self._factory.find_model(make, model)
            vehicle = self._factory.vehicle(
                spec, calculated_price=calculated_price, leasable=leasable
            )
            self._vehicles[vehicle.id] = vehicle
            self._changed()
            return vehicle

    def return_vehicle(self, vehicle: Vehicle | str) -> Vehicle:
        """A removed car comes back with the same id and data (appended at the end)."""
        vehicle_id = vehicle if isinstance(vehicle, str) else vehicle.id
        with self._lock:
            if vehicle_id in self._vehicles:
                raise ValueError(f"Vehicle {vehicle_id} is already in the showroom")
            returned = self._removed.pop(vehicle_id, None)
            if returned is None:
                if isinstance(vehicle, str):
                    raise KeyError(f"Vehicle {vehicle_id} was never removed")
                returned = vehicle  # a vehicle from elsewhere: accept as it is
                self._factory.reserve(returned)
            self._vehicles[vehicle_id] = returned
            self._changed()
            return returned

    def set_price(self, vehicle_id: str, calculated_price_per_month: float) -> Vehicle:
        """Change a car's monthly price (summary, pricing and its cluster follow)."""
        with self._lock:
            updated = self._current(vehicle_id).with_price(calculated_price_per_month)
            self._vehicles[vehicle_id] = updated
            self._changed()
            return updated

    def set_leasable(self, vehicle_id: str, leasable: bool) -> Vehicle:
        """False: logged-in `GET Vehicle` answers 404, anonymous still 200."""
        with self._lock:
            updated = replace(self._current(vehicle_id), leasable=leasable)
            self._vehicles[vehicle_id] = updated
            self._changed()
            return updated

    def remove_fraction(self, fraction: float) -> list[Vehicle]:
        """Remove round(fraction x stock) cars chosen with the catalog's seed."""
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
        with self._lock:
            count = round(len(self._vehicles) * fraction)
            chosen = self._factory.rng.sample(list(self._vehicles), count)
            return [self.remove_vehicle(vehicle_id) for vehicle_id in chosen]

    def clear(self) -> list[Vehicle]:
        """Empty the showroom (every car leased); returns what was removed."""
        with self._lock:
            return [
                self.remove_vehicle(vehicle_id) for vehicle_id in list(self._vehicles)
            ]
