"""Who the loader is to the API: anonymous, or a member (with net costs by tax group).

Reimplements what the public `athlon-flex-client` does, without importing it:
- `POST MemberLogin` {username, password} sets a session cookie; `GET MemberProfile`
  gives the figures the client sends with every `GET Vehicle` of a member;
- with a gross yearly income, `GET TaxRates` lists brackets whose Dutch label holds the
  income bounds ("Met loonheffingskorting jaarinkomen € 75.519 t/m € 134.929"); the
  one bracket that matches income and loonheffingskorting goes back as the cookies
  `TaxGroupLabel` and `TaxGroup`, and the API then adds net costs to each vehicle.
The profile is NOT used to filter clusters or vehicles (the client does that): the
loader always lands the whole showroom.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from loader.constants import (
    LOGIN_ENDPOINT,
    PROFILE_ENDPOINT,
    TAX_GROUP_COOKIE,
    TAX_GROUP_LABEL_COOKIE,
    TAX_RATES_ENDPOINT,
    TAX_RATES_PAGE_ID,
)
from loader.http import ApiClient, ApiError
from loader.shapes import ShapeError

log = logging.getLogger(__name__)

_EURO_AMOUNT = re.compile(r"€\s?(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class TaxRate:
    """A bracket of `GET TaxRates`."""

    label: str
    percentage: float

    @property
    def bounds(self) -> tuple[float, float]:
        """Income bounds in the label: two amounts, one (open upwards), else (0, 0).

        Dots are thousands separators ("€ 75.519" is 75519), as in the client.
        """
        amounts = [m.replace(".", "") for m in _EURO_AMOUNT.findall(self.label)]
        if len(amounts) == 1:
            return float(amounts[0]), math.inf
        if len(amounts) == 2:
            return float(amounts[0]), float(amounts[1])
        return 0.0, 0.0

    def is_for_income(self, income: float, *, apply_loonheffingskorting: bool) -> bool:
        """Income within the bounds (inclusive) and the label's Met/Zonder matches."""
        low, high = self.bounds
        wanted = ("Met" if apply_loonheffingskorting else "Zonder") + (
            " loonheffingskorting"
        )
        return low <= income <= high and wanted in self.label


def rate_of_income(
    rates: list[TaxRate], income: float, *, apply_loonheffingskorting: bool
) -> TaxRate | None:
    """The single bracket for this income; None when none or several match."""
    matching = [
        rate
        for rate in rates
        if rate.is_for_income(
            income, apply_loonheffingskorting=apply_loonheffingskorting
        )
    ]
    return matching[0] if len(matching) == 1 else None


def parse_tax_rates(payload: Any) -> list[TaxRate]:
    """`GET TaxRates` as TaxRate values; ShapeError when it is not that shape."""
    where = f"GET {TAX_RATES_ENDPOINT}"
    if not isinstance(payload, list):
        raise ShapeError(f"{where}: expected a list of tax rates")
    rates = []
    for item in payload:
        label = item.get("label") if isinstance(item, Mapping) else None
        percentage = item.get("percentage") if isinstance(item, Mapping) else None
        if not isinstance(label, str) or isinstance(percentage, bool):
            raise ShapeError(f"{where}: an element has no text label")
        if not isinstance(percentage, int | float):
            raise ShapeError(f"{where}: rate {label!r} has no numeric percentage")
        rates.append(TaxRate(label, float(percentage)))
    return rates


def _flag(value: bool) -> str:
    return "true" if value else "false"


def member_detail_params(profile: Any) -> dict[str, str | int | float]:
    """What the client adds to `GET Vehicle` for a member, taken from the profile."""
    where = f"GET {PROFILE_ENDPOINT}"
    if not isinstance(profile, Mapping) or not isinstance(
        profile.get("budget"), Mapping
    ):
        raise ShapeError(f"{where}: expected a profile object with a budget")
    try:
        flags = {
            "IncludeTaxInPrices": profile["requiresIncludeTaxInPrices"],
            "IncludeMileageCostsInPricing": profile["includeMileageCostsInPricing"],
            "IncludeFuelCostsInPricing": profile["includeFuelCostsInPricing"],
        }
        km = profile["numberOfKmPerMonth"]
        budget = profile["budget"]["actualBudgetPerMonth"]
    except KeyError as error:
        raise ShapeError(
            f"{where}: required field {error.args[0]} is missing"
        ) from None
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ShapeError(f"{where}: {name} is not true or false")
    for name, value in (("numberOfKmPerMonth", km), ("actualBudgetPerMonth", budget)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ShapeError(f"{where}: {name} is not a number")
    return {
        "IncludeTaxInPrices": _flag(flags["IncludeTaxInPrices"]),
        "NumberOfKmPerMonth": km,
        "IncludeMileageCostsInPricing": _flag(flags["IncludeMileageCostsInPricing"]),
        "IncludeFuelCostsInPricing": _flag(flags["IncludeFuelCostsInPricing"]),
        "ActualBudgetPerMonth": budget,
    }


@dataclass(frozen=True)
class Identity:
    """How the run asks for vehicle details, and a fingerprint of it for the hashes."""

    logged_in: bool = False
    detail_params: Mapping[str, str | int | float] = field(default_factory=dict)
    tax_group: str | None = None

    @property
    def context(self) -> str:
        """Changes whenever the prices the API answers would change."""
        return json.dumps(
            [self.logged_in, dict(self.detail_params), self.tax_group], sort_keys=True
        )


def sign_in(
    client: ApiClient,
    *,
    username: str | None,
    password: str | None,
    gross_yearly_income: float | None,
    apply_loonheffingskorting: bool,
) -> Identity:
    """Log in and pick the tax group when configured; anonymous otherwise."""
    logged_in = False
    params: Mapping[str, str | int | float] = {}
    if username and password:
        try:
            client.post(LOGIN_ENDPOINT, {"username": username, "password": password})
        except ApiError as error:
            if error.status in (400, 401, 403):
                raise ApiError(
                    "POST",
                    LOGIN_ENDPOINT,
                    f"refused the login ({error.status}); check ATHLON_USERNAME and "
                    "ATHLON_PASSWORD",
                    status=error.status,
                ) from None
            raise
        params = member_detail_params(client.get(PROFILE_ENDPOINT))
        logged_in = True
        log.info("Logged in to the Athlon API as a member")
    tax_group = None
    if gross_yearly_income:
        rates = parse_tax_rates(
            client.get(TAX_RATES_ENDPOINT, {"pageId": TAX_RATES_PAGE_ID})
        )
        rate = rate_of_income(
            rates,
            gross_yearly_income,
            apply_loonheffingskorting=apply_loonheffingskorting,
        )
        if rate is None:
            log.warning(
                "No single tax rate matches the gross yearly income (%d rates); "
                "net costs will be missing",
                len(rates),
            )
        else:
            # The label has spaces and a euro sign: percent-encoded it is a valid
            # cookie value (ASP.NET Core decodes it); only TaxGroup drives the prices.
            client.set_cookie(TAX_GROUP_LABEL_COOKIE, quote(rate.label, safe=""))
            client.set_cookie(TAX_GROUP_COOKIE, str(rate.percentage))
            tax_group = f"{rate.label} ({rate.percentage})"
            log.info("Tax group: %s", tax_group)
    return Identity(logged_in=logged_in, detail_params=params, tax_group=tax_group)
