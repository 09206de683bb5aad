"""The words every channel uses for what kind of news a car is.

Email, push text and console say the same thing the same way, so a recipient who
reads a push and then the email is never told two stories. A row handed to the
renderer may carry these optional keys besides the mart's columns:

- `alert_kind`: "new" (default when absent), "back", "price_drop" or "gone" (a
  daily digest's car that came and went since the recipient's previous digest:
  its window is closed, `available_until` set);
- `left_at`: when a car that is back again last left the showroom ("back");
- `previous_price_per_month_in_euro`: the price before the drop ("price_drop");
- `lease_speed_median_hours`: how long cars of this make and model usually stay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

AlertKind = Literal["new", "back", "price_drop", "gone"]
# Also the order the subject counts them in: what can still be leased first.
ALERT_KINDS: tuple[AlertKind, ...] = ("new", "back", "price_drop", "gone")

# The short badge beside a car, and the word the subject counts it under.
BADGES: dict[AlertKind, str] = {
    "new": "NEW",
    "back": "BACK",
    "price_drop": "CHEAPER",
    "gone": "GONE",
}
SUBJECT_WORDS: dict[AlertKind, str] = {
    "new": "new",
    "back": "back",
    "price_drop": "cheaper",
    "gone": "gone",
}

# Past two days a figure in hours is harder to read than one in days.
HOURS_UNTIL_DAYS = 48


def alert_kind(row: Mapping[str, Any]) -> AlertKind:
    """The row's kind; rows from before the kinds existed are new cars."""
    kind = row.get("alert_kind") or "new"
    if kind not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    return kind


def price_drop_phrase(now: str, was: str) -> str:
    """`now € 489,00 (was € 539,00)`; both amounts already formatted."""
    return f"now {now} (was {was})"


def back_phrase(left_at: str | None) -> str:
    """`back again (left 28-11-2026 14:10)`; the time already formatted."""
    return f"back again (left {left_at})" if left_at else "back again"


def gone_phrase(until: str) -> str:
    """`available until 02-12-2026 14:10`; the time already formatted."""
    return f"available until {until}"


def lease_speed_phrase(median_hours: Any) -> str | None:
    """`cars like this are usually leased within 3 h` (or `within 2 days`).

    None when there is no usable figure (too few cars leased, NaN, negative).
    """
    if median_hours is None or isinstance(median_hours, bool):
        return None
    try:
        hours = float(median_hours)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(hours) or hours < 0:
        return None
    if hours < HOURS_UNTIL_DAYS:
        return f"cars like this are usually leased within {max(1, math.ceil(hours))} h"
    days = math.ceil(hours / 24)
    return f"cars like this are usually leased within {days} days"
