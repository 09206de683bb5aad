"""The older tool's notify filter, as a subscriptions file this project reads.

The old filter was a JSON object `{attribute: regex}` over the columns of its
`vehicle` table, each checked with Python's `re.match`: anchored at the start of the
value, case-sensitive. An attribute its vehicles lacked made the filter match no car
at all; a value that was not text (or a number/boolean attribute) raised an error.

Here a filter's regex is searched anywhere in the value, case-insensitively, on the
columns of marts.vehicle_availability (examples/subscriptions.yml). So each regex is
rewritten to `^(?-i:...)`: anchored and case-sensitive again, the same matches; and
renamed columns are mapped. Attributes this project does not keep are named and
left out (which makes the filter wider), never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

# Old `vehicle` column → column of marts.vehicle_availability.
RENAMED = {
    "athlon_id": "vehicle_id",
    "uri": "showroom_uri",
    "calculated_price_in_euro_per_month": "price_per_month_in_euro",
    "net_cost_in_euro_per_month": "net_cost_per_month_in_euro",
}
SAME_NAME = (
    "make", "model", "type", "model_year", "color", "official_color", "body_type",
    "is_electric", "range_in_km", "transmission_type", "license_plate", "emission",
    "registered_mileage", "fiscal_value_in_euro", "contribution_in_euro", "image_uri",
)  # fmt: skip
# Old columns with no counterpart here, and why.
NOT_KEPT = {
    "paint_id": "this project does not show paint ids",
    "external_paint_id": "this project does not show paint ids",
    "addition_percentage": "not in the availability mart",
    "external_fuel_type_id": "the mart has fuel_type (a name, not the id)",
    "external_type_id": "not in the availability mart",
    "registration_date": "not in the availability mart",
    "avg_fuel_consumption": "not in the availability mart",
    "type_spare_wheel": "not in the availability mart",
    "base_price_in_euro_per_month": "not in the availability mart",
    "price_per_km": "not in the availability mart",
    "fuel_price_per_km": "not in the availability mart",
    "expected_fuel_cost_in_euro_per_month": "not in the availability mart",
    "vehicle_cluster_id": "the old tool's own row id",
    "id": "the old tool's own row id",
    "key_hash": "the old tool's own bookkeeping",
    "attribute_hash_scd1": "the old tool's own bookkeeping",
    "attribute_hash_scd2": "the old tool's own bookkeeping",
    "active_from": "the old tool's own bookkeeping",
    "active_to": "the old tool's own bookkeeping",
    "is_current": "the old tool's own bookkeeping",
    "created_at": "the old tool's own bookkeeping",
    "updated_at": "the old tool's own bookkeeping",
}
# Columns that were not text in the old table: re.match raised on them there.
NOT_TEXT = {
    "model_year", "is_electric", "range_in_km", "emission", "registered_mileage",
    "fiscal_value_in_euro", "contribution_in_euro",
    "calculated_price_in_euro_per_month", "net_cost_in_euro_per_month",
}  # fmt: skip
_GLOBAL_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


class FilterImportError(ValueError):
    """The old filter cannot become a subscription (one line says why)."""


@dataclass
class FilterImport:
    """The filter in this project's terms, and what the user must know about it."""

    filters: dict[str, str] = field(default_factory=dict)
    mapped: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        lines = [f"mapped {line}" for line in self.mapped]
        lines += [f"cannot map {line}" for line in self.left_out]
        if self.left_out:
            lines.append(
                "the imported filter is wider than the old one: it leaves out "
                f"{len(self.left_out)} attribute(s) named above"
            )
        return lines


def as_search(pattern: str) -> str:
    """A regex that `re.search(..., IGNORECASE)` runs as `re.match(pattern)` did.

    A leading global flag group (`(?i)Tesla`) is kept as a scoped one, since Python
    refuses global flags after the start.
    """
    try:  # errors as the user wrote it, positions included
        re.compile(pattern)
    except re.error as error:
        raise FilterImportError(f"bad regex {pattern!r} ({error})") from None
    flags = ""
    found = _GLOBAL_FLAGS.match(pattern)
    if found:
        flags, pattern = found.group(1), pattern[found.end() :]
    scoped = f"{flags}:" if "i" in flags else f"{flags}-i:"
    rewritten = f"^(?{scoped}{pattern})"
    try:
        re.compile(rewritten, re.IGNORECASE)
    except re.error as error:
        raise FilterImportError(f"bad regex {pattern!r} ({error})") from None
    return rewritten


def import_filter(old: Mapping[str, Any]) -> FilterImport:
    """Map each `attribute: regex` of the old filter; say what cannot be mapped."""
    result = FilterImport()
    for attribute, value in old.items():
        if attribute in RENAMED or attribute in SAME_NAME:
            target = RENAMED.get(attribute, attribute)
        elif attribute in NOT_KEPT:
            result.left_out.append(f"{attribute}: {NOT_KEPT[attribute]}")
            continue
        else:
            result.left_out.append(
                f"{attribute}: not an attribute of the old tool's vehicles (with it "
                "the old filter matched no car at all)"
            )
            continue
        if not isinstance(value, str):
            result.left_out.append(
                f"{attribute}: {value!r} is not a regex (the old tool raised an "
                "error on it)"
            )
            continue
        try:
            result.filters[target] = as_search(value)
        except FilterImportError as error:
            result.left_out.append(f"{attribute}: {error}")
            continue
        note = "" if target == attribute else " (renamed)"
        if attribute in NOT_TEXT:
            note += " (matched against the value as text; the old tool could not)"
        result.mapped.append(f"{attribute} -> {target}{note}")
    return result


def subscriptions_yaml(
    imported: FilterImport, emails: Sequence[str], cadence: str
) -> str:
    """The subscriptions file: every address with the imported filter."""
    header = (
        "# Imported from the older tool's notify filter (athlon-flex "
        "import-original-filter).\n"
        "# Regexes are rewritten to ^(?-i:...): anchored and case-sensitive, as the\n"
        "# old tool matched them. The old tool mailed once a day at 06:00\n"
        "# Europe/Amsterdam; cadence daily (NOTIFY_DAILY_TIME, default 06:00) keeps\n"
        "# that.\n"
    )
    body = {
        "recipients": [
            {"email": email, "cadence": cadence, "filters": dict(imported.filters)}
            for email in emails
        ]
    }
    return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
