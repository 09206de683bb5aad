"""Which vehicles a recipient wants: regexes on attributes plus numeric bounds.

A filter set is one mapping, as the old tool's `{attribute: regex}` filters were, with a
few numeric bounds next to them:

    make: "^(Tesla|Polestar)$"        # regex, searched case-insensitively
    fuel_type: electric
    max_net_cost_per_month: 450       # bound on net_cost_per_month_in_euro
    min_range_km: 350

Within a set every key must hold. A recipient may list several sets; a vehicle matches
when it matches any of them. A vehicle without a value for a filtered attribute does
not match (a bound cannot be checked against nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from notifier.contract import VEHICLE_ATTRIBUTES

# bound name → (column of marts.vehicle_availability, which side it limits)
BOUNDS: dict[str, tuple[str, Literal["max", "min"]]] = {
    "max_price_per_month": ("price_per_month_in_euro", "max"),
    "min_price_per_month": ("price_per_month_in_euro", "min"),
    "max_net_cost_per_month": ("net_cost_per_month_in_euro", "max"),
    "max_contribution": ("contribution_in_euro", "max"),
    "max_fiscal_value": ("fiscal_value_in_euro", "max"),
    "min_range_km": ("range_in_km", "min"),
    "min_model_year": ("model_year", "min"),
    "max_registered_mileage": ("registered_mileage", "max"),
    "max_emission": ("emission", "max"),
}


def as_text(value: Any) -> str:
    """The text a regex is matched against: booleans as true/false, times as ISO."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print to stderr; we raise one line instead
    return options


# How much of a refused pattern an error quotes.
QUOTED_PATTERN_CHARS = 100


def _cut(text: str) -> str:
    if len(text) <= QUOTED_PATTERN_CHARS:
        return text
    return f"{text[:QUOTED_PATTERN_CHARS]}... ({len(text):,} characters)"


def _compile(key: str, value: Any) -> Any:
    """A regex from a filter value; plain numbers and booleans must match exactly.

    RE2 matches in time linear in the text, whatever the pattern (`^(a+)+$` cannot
    hang a run), and refuses at compile time what it cannot run that way
    (backreferences, lookaround): the refusal is the validation error.
    """
    if isinstance(value, str):
        try:
            return re2.compile(value, _options())
        except re2.error as error:
            reason = error.args[0] if error.args else error
            if isinstance(reason, bytes):
                reason = reason.decode(errors="replace")
            # RE2's reason quotes the pattern: both are cut, so a pattern of
            # megabytes still makes an error a person can read.
            raise ValueError(
                f"key {key!r}: regex {_cut(value)!r} is refused "
                f"({_cut(str(reason))}); filters use RE2 syntax, without "
                "backreferences or lookaround"
            ) from None
    if isinstance(value, bool | int | float):
        return re2.compile(f"^{re2.escape(as_text(value))}$", _options())
    kind = "nothing" if value is None else type(value).__name__
    raise ValueError(f"key {key!r}: expected a regex (text), got {kind}")


class FilterSet(BaseModel):
    """One set of conditions that must all hold (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    # attribute → compiled RE2 regex; filled from the mapping's non-bound keys.
    patterns: dict[str, Any] = Field(default_factory=dict)
    max_price_per_month: float | None = Field(default=None, ge=0)
    min_price_per_month: float | None = Field(default=None, ge=0)
    max_net_cost_per_month: float | None = None
    max_contribution: float | None = None
    max_fiscal_value: float | None = Field(default=None, ge=0)
    min_range_km: float | None = Field(default=None, ge=0)
    min_model_year: int | None = Field(default=None, ge=1900, le=2200)
    max_registered_mileage: float | None = Field(default=None, ge=0)
    max_emission: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _split_patterns_from_bounds(cls, data: Any) -> Any:
        """Bound keys stay fields; every other key must be a vehicle attribute."""
        if isinstance(data, FilterSet):
            return data
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise ValueError(
                "a filter is a mapping of attribute: regex and bound: number, "
                f"got {type(data).__name__}"
            )
        if "patterns" in data:
            raise ValueError("key 'patterns': not a vehicle attribute")
        fields: dict[str, Any] = {}
        patterns: dict[str, Any] = {}
        for key, value in data.items():
            if key in BOUNDS:
                fields[key] = value
            elif key in VEHICLE_ATTRIBUTES:
                patterns[key] = _compile(key, value)
            else:
                raise ValueError(
                    f"key {key!r}: unknown attribute; use a vehicle attribute "
                    f"({', '.join(VEHICLE_ATTRIBUTES)}) or a bound "
                    f"({', '.join(BOUNDS)})"
                )
        fields["patterns"] = patterns
        return fields

    def matches(self, vehicle: Mapping[str, Any]) -> bool:
        """Whether every regex finds a match and every bound holds for this row."""
        for attribute, pattern in self.patterns.items():
            value = vehicle.get(attribute)
            if value is None or not pattern.search(as_text(value)):
                return False
        for name, (column, side) in BOUNDS.items():
            bound = getattr(self, name)
            if bound is None:
                continue
            try:
                number = float(vehicle.get(column))  # type: ignore[arg-type]
            except (TypeError, ValueError):  # unknown: a bound cannot hold
                return False
            if not math.isfinite(number):  # NaN would pass every comparison
                return False
            if side == "max" and number > bound:
                return False
            if side == "min" and number < bound:
                return False
        return True


def matches_any(alternatives: Sequence[FilterSet], vehicle: Mapping[str, Any]) -> bool:
    """No filter sets means everything; otherwise any one set must match."""
    return not alternatives or any(item.matches(vehicle) for item in alternatives)
