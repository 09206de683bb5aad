"""Members: the one account that can log in, its sessions, and the tax rate table.

The real showroom personalises prices for a logged-in member (budget, own
contribution) and, when the browser holds tax cookies, shows net costs. The tax
cookies come from `GET TaxRates`: the client picks the bracket of the member's income
by parsing the Dutch label, so the labels follow the real wording exactly.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

# Cookie that carries a logged-in session (ASP.NET Core's cookie authentication name).
SESSION_COOKIE = ".AspNetCore.Cookies"
# The only page id `GET TaxRates` answers for (the one the public client sends).
TAX_RATES_PAGE_ID = "4ecf5f24-8985-450a-915d-919aa7ffa9df"


@dataclass(frozen=True, slots=True)
class MemberAccount:
    """Credentials and profile figures of the member who may log in.

    The budget decides `contributionInEuro`; `max_budget_per_month` is what the
    public client sends as `Filters.MaxPricePerMonth`, so it hides dearer cars from
    a logged-in VehicleVariation.
    """

    username: str
    password: str
    first_name: str = "Sanne"
    last_name: str = "de Vries"
    customer_name: str = "Voorbeeld Logistiek B.V."
    actual_budget_per_month: float = 900.0
    max_budget_per_month: float = 1250.0
    number_of_km_per_month: int = 1000
    remaining_swaps: int = 2


@dataclass(frozen=True, slots=True)
class TaxRate:
    """A bracket of `GET TaxRates`: label with income bounds, marginal percentage."""

    label: str
    percentage: float


def _euro(amount: int) -> str:
    return "€ " + f"{amount:,}".replace(",", ".")


def _bracket(
    with_credit: bool, low: int, high: int | None, percentage: float
) -> TaxRate:
    prefix = "Met" if with_credit else "Zonder"
    bounds = (
        f"vanaf {_euro(low)}" if high is None else f"{_euro(low)} t/m {_euro(high)}"
    )
    return TaxRate(f"{prefix} loonheffingskorting jaarinkomen {bounds}", percentage)


# 2025 box 1 rates. With loonheffingskorting the phase-out of the general and labour
# tax credits raises the effective marginal rate in the middle brackets.
TAX_RATES: tuple[TaxRate, ...] = (
    _bracket(True, 0, 28_406, 33.56),
    _bracket(True, 28_407, 38_441, 42.16),
    _bracket(True, 38_442, 43_071, 43.82),
    _bracket(True, 43_072, 76_817, 50.33),
    _bracket(True, 76_818, 129_078, 56.01),
    _bracket(True, 129_079, None, 49.50),
    _bracket(False, 0, 38_441, 35.82),
    _bracket(False, 38_442, 76_817, 37.48),
    _bracket(False, 76_818, None, 49.50),
)


class Sessions:
    """Session tokens handed out by `MemberLogin`, valid until expired."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[str] = set()

    def create(self) -> str:
        """A new random session token."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return token

    def is_valid(self, token: str | None) -> bool:
        """Whether the cookie value belongs to a live session."""
        if not token:
            return False
        with self._lock:
            return token in self._tokens

    def expire_all(self) -> None:
        """Log everybody out (tests of an expired session)."""
        with self._lock:
            self._tokens.clear()
