"""A daily digest's cars gone: which closed windows it may tell, and as which lines.

A car that came and went between two digests never reaches a daily recipient as
new (marts.vehicles_to_notify holds open windows only). Their digest tells it as
gone instead, once: its window is claimed, sent and marked like a new car's
(notifier/stage.py). Instant recipients heard of the car when it came.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from athlon_flex.settings import Settings
from notifier.schedule import last_digest_slot, previous_digest_slot
from notifier.subscriptions import Subscription


def gone_bounds(
    subscription: Subscription,
    settings: Settings,
    now: datetime,
    *,
    baseline: bool = False,
) -> tuple[datetime, datetime]:
    """(closed after, opened before) of the closed windows a daily recipient may
    hear of as gone at `now`: closed since their previous digest slot (an older
    one is history, not news) and opened before this slot (a later window waits
    for the next digest, as a new car does). A baseline takes those opened up to
    `now` too: old news as well.
    """
    daily_time, timezone = subscription.digest_time(settings)
    slot = last_digest_slot(daily_time, timezone, now)
    return (
        previous_digest_slot(daily_time, timezone, slot),
        now if baseline else slot,
    )


def gone_lines(
    announced: Sequence[dict[str, Any]], gone: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The digest's closed windows (filters applied) as (lines, earlier stays).

    One line per car: a car `announced` as new or back in this message is not
    also gone (its BACK line says when it last left), and of a car that came and
    went twice only the last stay is a line. The earlier stays are told with the
    line that shows their car: recorded with the message that carries it, never
    a line of their own (stage._carried).
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in announced:
        latest[row["vehicle_id"]] = row
    for row in gone:
        known = latest.get(row["vehicle_id"])
        if known is None or row["available_since"] > known["available_since"]:
            latest[row["vehicle_id"]] = row
    lines = [row for row in gone if latest[row["vehicle_id"]] is row]
    earlier = [row for row in gone if latest[row["vehicle_id"]] is not row]
    return lines, earlier
