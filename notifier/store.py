"""The notifier's SQL: check the contract, sync recipients, read what is new, record.

Every value travels as a bound parameter; object names are the contract's constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from notifier.contract import (
    NOTIFICATIONS,
    RECIPIENTS,
    REQUIRED_OBJECTS,
    VEHICLES_TO_NOTIFY,
)
from notifier.errors import NotifyError

Connection = psycopg2.extensions.connection
Row = dict[str, Any]

# Fixed key ("NOTIFY" in hex) every notify run agrees on; not the pipeline's key.
NOTIFY_LOCK_KEY = 0x4E4F_5449_4659


def wait_for_turn(conn: Connection, timeout: str = "10min") -> None:
    """Hold the notify lock for this session, waiting for a run that holds it.

    Two runs at once (the instant and the daily task, a manual run next to the
    scheduler) would both read the same unsent windows and both send them. The
    second run waits, then reads what the first left. PostgreSQL drops the lock with
    the connection, so a killed run never blocks the next one.
    """
    with conn.cursor() as cursor:
        cursor.execute("select set_config('lock_timeout', %s, false)", (timeout,))
        try:
            cursor.execute("select pg_advisory_lock(%s)", (NOTIFY_LOCK_KEY,))
        except psycopg2.errors.LockNotAvailable:
            conn.rollback()
            raise NotifyError(
                f"Another notify run held the notify lock for {timeout}; this run "
                "did nothing (nothing sent or recorded). The next run catches up."
            ) from None
        cursor.execute("select set_config('lock_timeout', '0', false)")
    conn.commit()


def missing_objects(conn: Connection) -> list[str]:
    """Which of the objects `transform` builds for the notifier do not exist yet."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select name from unnest(%s::text[]) as name "
            "where to_regclass(name) is null",
            (list(REQUIRED_OBJECTS),),
        )
        return [name for (name,) in cursor.fetchall()]


def sync_recipients(conn: Connection, recipients: Sequence[str]) -> None:
    """Make notifier.recipients exactly `recipients` (new ones get registered_at now).

    The caller commits; the view marts.vehicles_to_notify reads this table.
    """
    with conn.cursor() as cursor:
        cursor.execute(
            f"insert into {RECIPIENTS} (recipient) "
            "select unnest(%s::text[]) on conflict (recipient) do nothing",
            (list(recipients),),
        )
        cursor.execute(
            f"delete from {RECIPIENTS} where not (recipient = any(%s::text[]))",
            (list(recipients),),
        )


def registered_at(conn: Connection, recipients: Sequence[str]) -> dict[str, datetime]:
    """When each recipient was first registered (their start of 'news from now on')."""
    with conn.cursor() as cursor:
        cursor.execute(
            f"select recipient, registered_at from {RECIPIENTS} "
            "where recipient = any(%s::text[])",
            (list(recipients),),
        )
        return dict(cursor.fetchall())


def pending(conn: Connection, recipients: Sequence[str]) -> list[Row]:
    """Open windows not yet notified, for these recipients, in email order."""
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
        cursor.execute(
            f"select * from {VEHICLES_TO_NOTIFY} "
            "where recipient = any(%s::text[]) "
            "order by recipient, make, model, price_per_month_in_euro nulls last, "
            "license_plate, vehicle_id",
            (list(recipients),),
        )
        return [dict(row) for row in cursor.fetchall()]


def record(conn: Connection, recipient: str, rows: Sequence[Row]) -> int:
    """Record these windows as notified to `recipient` and commit: one transaction.

    Returns how many rows were new (a row already there is left as it was).
    """
    if not rows:
        return 0
    with conn.cursor() as cursor:
        cursor.execute(
            f"insert into {NOTIFICATIONS} (vehicle_id, available_since, recipient) "
            "select vehicle_id, available_since, %s "
            "from unnest(%s::text[], %s::timestamptz[]) "
            "as window_(vehicle_id, available_since) "
            "on conflict (vehicle_id, available_since, recipient) do nothing",
            (
                recipient,
                [row["vehicle_id"] for row in rows],
                [row["available_since"] for row in rows],
            ),
        )
        inserted = cursor.rowcount
    conn.commit()
    return inserted
