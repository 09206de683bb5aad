"""One car of the simulated showroom, and the money arithmetic the API does with it.

A `Vehicle` is an immutable value: the catalog swaps in a new one when a price or a flag
changes, so a response is always built from one consistent state and tests can compare
vehicles with `==`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from simulation.fake_api.reference_data import FuelType

# Prices are quoted for this many km a month (the real anonymous showroom does too:
# 800 base + (0.09 + 0.12) * 1000 = 1010 in the real sample).
KM_PER_MONTH = 1000


@dataclass(frozen=True, slots=True)
class Option:
    """An equipment option of a vehicle; `included` says whether this car has it."""

    id: str
    external_id: str
    name: str
    included: bool


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A leasable car with everything `GET Vehicle` and `GET VehicleVariation` show.

    `leasable` False makes a logged-in `GET Vehicle` answer 404 ("not leasable by this
    profile") while anonymous requests still get the car, as the real API does.
    """

    id: str
    make: str
    model: str
    type: str
    model_year: int
    fuel: FuelType
    external_type_id: str
    paint_id: str
    external_paint_id: str
    image_uri: str
    body_code: str
    range_km: int
    license_plate: str
    color: str
    official_color: str
    body_type: str
    emission: float
    registration_date: str
    registered_mileage: float
    transmission: str
    avg_fuel_consumption: float
    spare_wheel: str
    addition_percentage: float
    fiscal_value: float
    base_price: float
    price_per_km: float
    fuel_price_per_km: float
    calculated_price: float
    options: tuple[Option, ...] = field(default=(), repr=False)
    leasable: bool = True

    @property
    def is_electric(self) -> bool:
        """Only fully electric cars count as electric (hybrids do not)."""
        return self.fuel is FuelType.ELEKTRISCH

    @property
    def external_fuel_type_id(self) -> int:
        """The API's numeric fuel type (see `FuelType`)."""
        return int(self.fuel)

    @property
    def cluster_key(self) -> tuple[str, str]:
        """The (make, model) cluster this vehicle belongs to."""
        return (self.make, self.model)

    @property
    def expected_fuel_cost(self) -> float:
        """Fuel or electricity per month at the quoted mileage."""
        return round(self.fuel_price_per_km * KM_PER_MONTH, 2)

    def with_price(self, calculated_price: float) -> Vehicle:
        """This vehicle at another monthly price; the base price absorbs the change.

        The running costs per km stay, so base + km costs = calculated still holds
        unless the base would go negative (then it stops at 0).
        """
        if calculated_price <= 0:
            raise ValueError(
                f"A monthly price must be positive, got {calculated_price}"
            )
        running = (self.price_per_km + self.fuel_price_per_km) * KM_PER_MONTH
        return replace(
            self,
            calculated_price=round(float(calculated_price), 2),
            base_price=max(0.0, round(calculated_price - running, 2)),
        )


def contribution_per_month(vehicle: Vehicle, budget_per_month: float) -> float:
    """What the member pays on top of the employer's budget (eigen bijdrage), gross."""
    return round(max(0.0, vehicle.calculated_price - budget_per_month), 2)


def net_cost_per_month(
    vehicle: Vehicle, budget_per_month: float, tax_percentage: float
) -> float:
    """Net monthly cost for the member: tax on the bijtelling plus own contribution.

    The bijtelling (fiscal value x addition percentage, per month) is taxed at the
    member's rate; the own contribution is paid from gross salary, so it costs
    (1 - rate) of itself net. Plausible, not Athlon's exact formula (unknown).
    """
    rate = tax_percentage / 100
    addition = vehicle.fiscal_value * vehicle.addition_percentage / 100 / 12
    contribution = contribution_per_month(vehicle, budget_per_month)
    return round(addition * rate + contribution * (1 - rate), 2)
