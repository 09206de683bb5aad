"""The notifier's SQL: check the contract, sync recipients, read what is new, record.

Emails go through the outbox (write_intent, send, mark_sent): see notifier/stage.py.

Every value travels as a bound parameter; object names are the contract's constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from notifier.contract import (
    LEASE_SPEED_MIN_LEASED,
    NOTIFICATIONS,
    OUTBOX,
    PRICE_DROP_NOTIFICATIONS,
    RECIPIENTS,
    REQUIRED_OBJECTS,
    STATE,
    VEHICLE_AVAILABILITY,
    VEHICLE_LEASE_SPEED,
    VEHICLE_PRICE_CHANGES,
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


def fold_address_case(conn: Connection) -> int:
    """Rewrite recipients stored in mixed case (older versions, migrated rows) to
    lower case, the one spelling addresses now have (athlon_flex/addresses.py).

    A window recorded for `Anna@Example.NL` counts for `anna@example.nl`; when both
    spellings hold it, one row stays. The caller commits. Returns rows rewritten.
    """
    moved = 0
    with conn.cursor() as cursor:
        # Read first: most runs find nothing to fold and then write nothing.
        cursor.execute(
            f"select exists (select from {NOTIFICATIONS} "
            "where recipient <> lower(recipient)) "
            f"or exists (select from {RECIPIENTS} where recipient <> lower(recipient)) "
            f"or exists (select from {OUTBOX} where recipient <> lower(recipient)) "
            f"or exists (select from {PRICE_DROP_NOTIFICATIONS} "
            "where recipient <> lower(recipient))"
        )
        (found,) = cursor.fetchone()
        if not found:
            return 0
        cursor.execute(
            f"insert into {NOTIFICATIONS} (vehicle_id, available_since, recipient, "
            "notified_at, message_id) select vehicle_id, available_since, "
            f"lower(recipient), notified_at, message_id from {NOTIFICATIONS} "
            "where recipient <> lower(recipient) "
            "on conflict (vehicle_id, available_since, recipient) do nothing"
        )
        cursor.execute(
            f"delete from {NOTIFICATIONS} where recipient <> lower(recipient)"
        )
        moved += cursor.rowcount
        cursor.execute(
            f"insert into {PRICE_DROP_NOTIFICATIONS} (vehicle_id, changed_at, "
            "recipient, notified_at, message_id) select vehicle_id, changed_at, "
            "lower(recipient), notified_at, message_id "
            f"from {PRICE_DROP_NOTIFICATIONS} "
            "where recipient <> lower(recipient) "
            "on conflict (vehicle_id, changed_at, recipient) do nothing"
        )
        cursor.execute(
            f"delete from {PRICE_DROP_NOTIFICATIONS} "
            "where recipient <> lower(recipient)"
        )
        moved += cursor.rowcount
        # The earliest registration and baseline decision of any spelling win.
        cursor.execute(
            f"insert into {RECIPIENTS} (recipient, registered_at, baseline_decided_at) "
            "select lower(recipient), min(registered_at), min(baseline_decided_at) "
            f"from {RECIPIENTS} where recipient <> lower(recipient) group by 1 "
            "on conflict (recipient) do update set "
            "registered_at = least(excluded.registered_at, "
            f"{RECIPIENTS}.registered_at), baseline_decided_at = coalesce("
            f"least(excluded.baseline_decided_at, {RECIPIENTS}.baseline_decided_at), "
            f"excluded.baseline_decided_at, {RECIPIENTS}.baseline_decided_at)"
        )
        cursor.execute(f"delete from {RECIPIENTS} where recipient <> lower(recipient)")
        moved += cursor.rowcount
        cursor.execute(
            f"update {OUTBOX} set recipient = lower(recipient) "
            "where recipient <> lower(recipient)"
        )
        moved += cursor.rowcount
    return moved


def sync_recipients(conn: Connection, recipients: Sequence[str]) -> None:
    """Register recipients not seen before (registered_at now); never remove one.

    A recipient missing from this run's configuration keeps their row, so their
    first registration (the start of NOTIFY_BASELINE's "news from now on") and
    their baseline decision survive a configuration slip. The caller commits; the
    view marts.vehicles_to_notify reads this table.
    """
    with conn.cursor() as cursor:
        cursor.execute(
            f"insert into {RECIPIENTS} (recipient) "
            "select unnest(%s::text[]) on conflict (recipient) do nothing",
            (list(recipients),),
        )


def recipient_starts(
    conn: Connection, recipients: Sequence[str]
) -> dict[str, tuple[datetime, datetime | None]]:
    """recipient → (first registered, when their baseline was decided or None)."""
    with conn.cursor() as cursor:
        cursor.execute(
            f"select recipient, registered_at, baseline_decided_at from {RECIPIENTS} "
            "where recipient = any(%s::text[])",
            (list(recipients),),
        )
        return {name: (since, decided) for name, since, decided in cursor.fetchall()}


def decide_baseline(
    conn: Connection,
    recipient: str,
    rows: Sequence[Row],
    drops: Sequence[Row] = (),
) -> int:
    """Record `rows` (windows) and `drops` (price drops) as notified without sending
    and remember that this recipient's baseline is decided, in one transaction;
    returns rows recorded."""
    recorded = _insert(conn, recipient, rows, message_id=None)
    recorded += _insert_drops(conn, recipient, drops, message_id=None)
    with conn.cursor() as cursor:
        cursor.execute(
            f"update {RECIPIENTS} set baseline_decided_at = now() "
            "where recipient = %s and baseline_decided_at is null",
            (recipient,),
        )
    conn.commit()
    return recorded


def get_state(conn: Connection, key: str) -> str | None:
    """A value the notifier remembered (notifier.state), or None."""
    with conn.cursor() as cursor:
        cursor.execute(f"select value from {STATE} where key = %s", (key,))
        row = cursor.fetchone()
    return row[0] if row else None


def set_state(conn: Connection, key: str, value: str | None) -> None:
    """Remember (or, with None, forget) a value; the caller commits."""
    with conn.cursor() as cursor:
        if value is None:
            cursor.execute(f"delete from {STATE} where key = %s", (key,))
        else:
            cursor.execute(
                f"insert into {STATE} (key, value) values (%s, %s) on conflict (key) "
                "do update set value = excluded.value, updated_at = now()",
                (key, value),
            )


def _as_dicts(cursor: psycopg2.extensions.cursor) -> list[Row]:
    """The cursor's rows as dicts: zip with the column names once per row, several
    times faster than RealDictCursor's item-by-item fill on thousands of rows."""
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def pending(conn: Connection, recipients: Sequence[str]) -> list[Row]:
    """Open windows not yet notified, for these recipients, in email order."""
    with conn.cursor() as cursor:
        cursor.execute(
            f"select * from {VEHICLES_TO_NOTIFY} "
            "where recipient = any(%s::text[]) "
            "order by recipient, make, model, price_per_month_in_euro nulls last, "
            "license_plate, vehicle_id",
            (list(recipients),),
        )
        return _as_dicts(cursor)


def untold_closed_windows(
    conn: Connection, bounds: Sequence[tuple[str, datetime, datetime]]
) -> list[Row]:
    """Closed windows not yet told, per (recipient, closed after, opened before),
    in email order: a daily digest's cars that came and went.

    Each row has the columns of a marts.vehicles_to_notify row: `recipient`, the
    window's marts.vehicle_availability columns, `left_at` (null: a car gone is
    not "back") and `alert_kind` = "gone". The caller applies the recipient's
    filters. Only windows that closed after `closed after` (their previous digest
    slot): an older one is history, not news.
    """
    if not bounds:
        return []
    with conn.cursor() as cursor:
        cursor.execute(
            "select bounds.recipient, windows.*, null::timestamptz as left_at, "
            "'gone' as alert_kind "
            "from unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) "
            "as bounds(recipient, closed_after, opened_before) "
            f"join {VEHICLE_AVAILABILITY} as windows "
            "on windows.available_until > bounds.closed_after "
            "and windows.available_since < bounds.opened_before "
            "where not windows.is_available "
            f"and not exists (select from {NOTIFICATIONS} as told "
            "where told.vehicle_id = windows.vehicle_id "
            "and told.available_since = windows.available_since "
            "and told.recipient = bounds.recipient) "
            "order by bounds.recipient, windows.make, windows.model, "
            "windows.price_per_month_in_euro nulls last, windows.license_plate, "
            "windows.vehicle_id, windows.available_since",
            (
                [recipient for recipient, _, _ in bounds],
                [after for _, after, _ in bounds],
                [before for _, _, before in bounds],
            ),
        )
        return _as_dicts(cursor)


def pending_price_drops(conn: Connection, recipients: Sequence[str]) -> list[Row]:
    """Price drops not yet told, for these recipients, in email order.

    Only a car still in the showroom, only its window's latest price change, and only
    while the car still has that price: a drop a later rise undid is no news, and of
    two untold drops only the second (the price now) is. Each row is the car's
    window (marts.vehicle_availability's columns, its price the new one) plus
    `recipient`, `changed_at` (the price version), `previous_price_per_month_in_euro`
    and `alert_kind` = "price_drop". The caller decides who hears of which (their
    thresholds, their filters, and whether the same email announces the car as new).
    """
    with conn.cursor() as cursor:
        cursor.execute(
            "with latest_changes as ("
            " select distinct on (availability_id) availability_id, vehicle_id,"
            " changed_at, previous_price_per_month_in_euro, price_per_month_in_euro,"
            f" is_drop from {VEHICLE_PRICE_CHANGES} where is_available"
            " order by availability_id, changed_at desc) "
            "select recipients.recipient, windows.*, changes.changed_at, "
            "changes.previous_price_per_month_in_euro, 'price_drop' as alert_kind "
            "from latest_changes as changes "
            f"join {VEHICLE_AVAILABILITY} as windows "
            "on windows.availability_id = changes.availability_id "
            "cross join unnest(%s::text[]) as recipients(recipient) "
            "where changes.is_drop and windows.is_available "
            "and windows.price_per_month_in_euro = changes.price_per_month_in_euro "
            f"and not exists (select from {PRICE_DROP_NOTIFICATIONS} as told "
            "where told.vehicle_id = changes.vehicle_id "
            "and told.changed_at = changes.changed_at "
            "and told.recipient = recipients.recipient) "
            "order by recipients.recipient, windows.make, windows.model, "
            "windows.price_per_month_in_euro, windows.license_plate, "
            "windows.vehicle_id",
            (list(recipients),),
        )
        return _as_dicts(cursor)


def lease_speeds(conn: Connection) -> dict[tuple[str, str], float]:
    """(make, model) → median hours in the showroom of its cars that left in the
    last 90 days (marts.vehicle_lease_speed), for models with enough such cars."""
    with conn.cursor() as cursor:
        cursor.execute(
            f"select make, model, median_hours_available from {VEHICLE_LEASE_SPEED} "
            "where leased_count >= %s and median_hours_available is not null",
            (LEASE_SPEED_MIN_LEASED,),
        )
        return {(make, model): float(hours) for make, model, hours in cursor}


# (price drop, recipient) and (window, recipient) rows claimed by message_id (None:
# told without an outbox); one already there is left as it was. Parameters:
# _claim_parameters.
_INSERT_DROPS = (
    f"insert into {PRICE_DROP_NOTIFICATIONS} "
    "(vehicle_id, changed_at, recipient, message_id) "
    "select vehicle_id, changed_at, %(recipient)s, %(message_id)s "
    "from unnest(%(drop_vehicles)s::text[], %(drops_changed_at)s::timestamptz[]) "
    "as drop_(vehicle_id, changed_at) "
    "on conflict (vehicle_id, changed_at, recipient) do nothing"
)
_INSERT_WINDOWS = (
    f"insert into {NOTIFICATIONS} "
    "(vehicle_id, available_since, recipient, message_id) "
    "select vehicle_id, available_since, %(recipient)s, %(message_id)s "
    "from unnest(%(window_vehicles)s::text[], %(windows_since)s::timestamptz[]) "
    "as window_(vehicle_id, available_since) "
    "on conflict (vehicle_id, available_since, recipient) do nothing"
)


def _claim_parameters(
    recipient: str, message_id: str | None, rows: Sequence[Row], drops: Sequence[Row]
) -> dict[str, Any]:
    return {
        "recipient": recipient,
        "message_id": message_id,
        "window_vehicles": [row["vehicle_id"] for row in rows],
        "windows_since": [row["available_since"] for row in rows],
        "drop_vehicles": [drop["vehicle_id"] for drop in drops],
        "drops_changed_at": [drop["changed_at"] for drop in drops],
    }


def _insert_drops(
    conn: Connection, recipient: str, drops: Sequence[Row], *, message_id: str | None
) -> int:
    """Insert (price drop, recipient) rows; one already there is left as it was."""
    if not drops:
        return 0
    with conn.cursor() as cursor:
        cursor.execute(
            _INSERT_DROPS, _claim_parameters(recipient, message_id, (), drops)
        )
        return cursor.rowcount


def _insert(
    conn: Connection, recipient: str, rows: Sequence[Row], *, message_id: str | None
) -> int:
    """Insert (window, recipient) rows; one already there is left as it was."""
    if not rows:
        return 0
    with conn.cursor() as cursor:
        cursor.execute(
            _INSERT_WINDOWS, _claim_parameters(recipient, message_id, rows, ())
        )
        return cursor.rowcount


def record(
    conn: Connection, recipient: str, rows: Sequence[Row], drops: Sequence[Row] = ()
) -> int:
    """Record these windows and price drops as notified to `recipient` and commit:
    one transaction.

    For what needs no outbox: the console channel and a forced baseline. Returns
    how many rows were new.
    """
    inserted = _insert(conn, recipient, rows, message_id=None)
    inserted += _insert_drops(conn, recipient, drops, message_id=None)
    conn.commit()
    return inserted


def write_intent(
    conn: Connection,
    recipient: str,
    message_id: str,
    message: bytes,
    rows: Sequence[Row],
    drops: Sequence[Row] = (),
) -> int:
    """Before sending: the email's full text in the outbox, its windows in
    notifications and its price drops in price_drop_notifications (all claimed by
    message_id), in one committed transaction: one statement.

    From here on they are no longer "to notify"; the outbox row is what carries
    them until it is marked sent. Returns the rows claimed.
    """
    value, parameter = _message_parameter(message)
    with conn.cursor() as cursor:
        cursor.execute(
            f"with outbox as (insert into {OUTBOX} (message_id, recipient, message) "
            f"values (%(message_id)s, %(recipient)s, {value}) "
            "on conflict (message_id) do nothing), "
            f"windows as ({_INSERT_WINDOWS} returning 1), "
            f"drops as ({_INSERT_DROPS} returning 1) "
            "select (select count(*) from windows) + (select count(*) from drops)",
            {
                **_claim_parameters(recipient, message_id, rows, drops),
                "message": parameter,
            },
        )
        (claimed,) = cursor.fetchone()
    conn.commit()
    return claimed


def _message_parameter(message: bytes) -> tuple[str, Any]:
    """(SQL of the message as bytea, its parameter): ASCII as text when it is so
    (every email: headers encoded, bodies quoted-printable), which the server reads
    in half the time of the hex text psycopg2 makes of bytes; bytes otherwise (a
    push's UTF-8, or a NUL, which PostgreSQL text cannot hold)."""
    if message.isascii() and b"\x00" not in message:
        return "convert_to(%(message)s, 'UTF8')", message.decode("ascii")
    return "%(message)s", psycopg2.Binary(message)


def unsent(conn: Connection, recipient: str) -> list[tuple[str, bytes, int]]:
    """The recipient's emails written but not marked sent, oldest first:
    (message_id, the message as it was written, windows and price drops it
    carries)."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select o.message_id, o.message, "
            f"(select count(*) from {NOTIFICATIONS} as n "
            "where n.message_id = o.message_id) "
            f"+ (select count(*) from {PRICE_DROP_NOTIFICATIONS} as p "
            "where p.message_id = o.message_id) "
            f"from {OUTBOX} as o "
            "where o.recipient = %s and o.sent_at is null "
            "order by o.created_at, o.message_id",
            (recipient,),
        )
        return [(mid, bytes(message), count) for mid, message, count in cursor]


def mark_sent(conn: Connection, message_id: str) -> None:
    """After the server accepted the email: its windows' notified_at becomes the
    moment of sending, the outbox row is marked sent and its text dropped (it is
    never sent again); one transaction, one statement."""
    with conn.cursor() as cursor:
        cursor.execute(
            f"with windows as (update {NOTIFICATIONS} set notified_at = now() "
            "where message_id = %(message_id)s), "
            f"drops as (update {PRICE_DROP_NOTIFICATIONS} set notified_at = now() "
            "where message_id = %(message_id)s) "
            f"update {OUTBOX} set sent_at = now(), message = null "
            "where message_id = %(message_id)s",
            {"message_id": message_id},
        )
    conn.commit()


def drop_intent(conn: Connection, message_id: str) -> None:
    """The server refused the email outright (it was not delivered): release its
    windows so the next run sends them afresh; one transaction."""
    with conn.cursor() as cursor:
        for table in (NOTIFICATIONS, PRICE_DROP_NOTIFICATIONS):
            cursor.execute(f"delete from {table} where message_id = %s", (message_id,))
        cursor.execute(f"delete from {OUTBOX} where message_id = %s", (message_id,))
    conn.commit()
