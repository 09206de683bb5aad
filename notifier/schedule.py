"""When a daily digest is due, worked out from the clock alone (no extra state).

A daily recipient's digest at slot T (their local digest time on the last day it has
passed) holds every window that opened before T and was not sent yet; windows that
open after T wait for the next slot. It also holds, as gone, each window that opened
before T and closed after the previous slot (`previous_digest_slot`) without having
been sent: a car that came and went between two digests.

So `notify(cadence="daily")` may run as often as the DAG likes: after the first run
past T has sent the digest, later runs find nothing older than T left and send
nothing until the next day's slot. If the scheduler was down at T, the first run
afterwards catches up on the cars still there; a car that came and went before the
slot it missed is not told (gone reaches back one slot only).

`due_daily_digest` lets the DAG skip that run cheaply when no slot has passed since
its previous run.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from athlon_flex.settings import Settings

# How far back `due_daily_digest` looks by default: the DAG's schedule interval.
DEFAULT_LOOKBACK = timedelta(minutes=10)


def last_digest_slot(daily_time: time, timezone: str, now: datetime) -> datetime:
    """The latest moment at or before `now` that is `daily_time` in `timezone`."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    slot = datetime.combine(local_now.date(), daily_time, tzinfo=zone)
    if slot > local_now:
        slot = datetime.combine(
            local_now.date() - timedelta(days=1), daily_time, tzinfo=zone
        )
    return slot


def previous_digest_slot(daily_time: time, timezone: str, slot: datetime) -> datetime:
    """The digest slot before `slot`: `daily_time` on the local day before (23 or
    25 hours earlier across a change of daylight saving time)."""
    return last_digest_slot(daily_time, timezone, slot - timedelta(microseconds=1))


def due_daily_digest(
    settings: Settings, now: datetime, *, since: datetime | None = None
) -> bool:
    """Whether some daily recipient's digest time passed in (since, now].

    `since` defaults to `now` minus one DAG interval (10 minutes); the DAG passes its
    data interval's start. Raises NotifyError when the subscriptions file is invalid.
    """
    from notifier.subscriptions import configured_subscriptions

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    start = since if since is not None else now - DEFAULT_LOOKBACK
    for subscription in configured_subscriptions(settings):
        if subscription.cadence != "daily":
            continue
        slot = last_digest_slot(*subscription.digest_time(settings), now)
        if start < slot <= now:
            return True
    return False
