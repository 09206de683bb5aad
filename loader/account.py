"""Who the loader is to the API: anonymous, or a member (net costs by tax group), as the
public `athlon-flex-client` does it, without importing it: `POST MemberLogin`, then
`GET MemberProfile` for the figures each member's `GET Vehicle` sends; with a gross
yearly income, the one `GET TaxRates` bracket matching it goes back as the cookies
`TaxGroupLabel` and `TaxGroup`. The profile never filters: the whole showroom lands."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    BaseModel,
    FiniteFloat,
    StrictBool,
    TypeAdapter,
    ValidationError,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

from loader.constants import TAX_RATES_PAGE_ID
from loader.http import ApiClient, ApiError
from loader.shapes import ShapeError

log = logging.getLogger(__name__)

_EURO_AMOUNT = re.compile(r"€\s?(\d+(?:\.\d+)?)")


@pydantic_dataclass(frozen=True)
class TaxRate:
    """A bracket of `GET TaxRates`."""

    label: str
    percentage: FiniteFloat  # JSON may say NaN or Infinity: a cookie of no use

    def is_for_income(self, income: float, *, apply_loonheffingskorting: bool) -> bool:
        """Income within the label's bounds (inclusive: two amounts, or one, open
        upwards; dots separate thousands, as in the client) and Met/Zonder matching."""
        amounts = [float(m.replace(".", "")) for m in _EURO_AMOUNT.findall(self.label)]
        low, high = {1: (*amounts, math.inf), 2: amounts}.get(len(amounts), (0, 0))
        wanted = "Met" if apply_loonheffingskorting else "Zonder"
        return low <= income <= high and f"{wanted} loonheffingskorting" in self.label


def rate_of_income(
    rates: list[TaxRate], income: float, *, apply_loonheffingskorting: bool
) -> TaxRate | None:
    """The single bracket for this income; None when none or several match."""
    credit = apply_loonheffingskorting
    matching = [
        r for r in rates if r.is_for_income(income, apply_loonheffingskorting=credit)
    ]
    return matching[0] if len(matching) == 1 else None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    return value


# Finite: NaN or Infinity (which Python's JSON reader accepts) would go out as every
# GET Vehicle's parameter and price all cars wrongly without a warning.
Figure = Annotated[int | float, AfterValidator(_finite)]


class _Budget(BaseModel):
    actualBudgetPerMonth: Figure


class _Profile(BaseModel):
    """The part of the client's `Profile` a member's `GET Vehicle` needs."""

    requiresIncludeTaxInPrices: StrictBool
    includeMileageCostsInPricing: StrictBool
    includeFuelCostsInPricing: StrictBool
    numberOfKmPerMonth: Figure
    budget: _Budget


def _parse(kind: Any, payload: Any, endpoint: str) -> Any:
    """`payload` as `kind`; ShapeError naming the endpoint and the first problem."""
    try:
        return TypeAdapter(kind).validate_python(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the answer"
        raise ShapeError(f"GET {endpoint}: {where}: {first['msg']}") from None


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


def _log_in(client: ApiClient, username: str, password: str) -> dict[str, Any]:
    """The member's `GET Vehicle` parameters, as the client takes them from the
    profile."""
    try:
        client.post("MemberLogin", {"username": username, "password": password})
    except ApiError as error:
        if error.status not in (400, 401, 403):
            raise
        raise ApiError(
            "POST MemberLogin",
            f"refused the login ({error.status}); check ATHLON_USERNAME and "
            "ATHLON_PASSWORD",
            error.status,
        ) from None
    member = _parse(_Profile, client.get("MemberProfile"), "MemberProfile")
    log.info("Logged in to the Athlon API as a member")
    flags = {
        "IncludeTaxInPrices": member.requiresIncludeTaxInPrices,
        "IncludeMileageCostsInPricing": member.includeMileageCostsInPricing,
        "IncludeFuelCostsInPricing": member.includeFuelCostsInPricing,
    }
    return {name: str(value).lower() for name, value in flags.items()} | {
        "NumberOfKmPerMonth": member.numberOfKmPerMonth,
        "ActualBudgetPerMonth": member.budget.actualBudgetPerMonth,
    }


def _choose_tax_group(client: ApiClient, income: float, credit: bool) -> str | None:
    payload = client.get("TaxRates", {"pageId": TAX_RATES_PAGE_ID})
    rates = _parse(list[TaxRate], payload, "TaxRates")
    rate = rate_of_income(rates, income, apply_loonheffingskorting=credit)
    if rate is None:
        log.warning(
            "No single tax rate matches the gross yearly income (%d rates); "
            "net costs will be missing",
            len(rates),
        )
        return None
    # The label has spaces and a euro sign: percent-encoded it is a valid cookie
    # value (ASP.NET Core decodes it); only TaxGroup drives the prices.
    client.cookies.set("TaxGroupLabel", quote(rate.label, safe=""))
    client.cookies.set("TaxGroup", str(rate.percentage))
    log.info("Tax group: %s (%s)", rate.label, rate.percentage)
    return f"{rate.label} ({rate.percentage})"


def sign_in(
    client: ApiClient,
    *,
    username: str | None,
    password: str | None,
    gross_yearly_income: float | None,
    apply_loonheffingskorting: bool,
) -> Identity:
    """Log in and pick the tax group when configured; anonymous otherwise."""
    params = _log_in(client, username, password) if username and password else {}
    tax_group = None
    if gross_yearly_income:
        credit = apply_loonheffingskorting
        tax_group = _choose_tax_group(client, gross_yearly_income, credit)
    return Identity(logged_in=bool(params), detail_params=params, tax_group=tax_group)
