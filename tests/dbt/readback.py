"""Read back what dbt built, as plain tuples, for exact assertions."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg2.extensions

SNAPSHOTS = ("snap_vehicles", "snap_vehicle_clusters", "snap_vehicle_options")


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    """A UTC moment on January `day`, 2025 (the scenarios' clock)."""
    return datetime(2025, 1, day, hour, minute, tzinfo=UTC)


def windows(db: psycopg2.extensions.connection) -> list[tuple]:
    """(vehicle_id, available_since, available_until) of every availability window."""
    with db.cursor() as cursor:
        cursor.execute(
            "select vehicle_id, available_since, available_until"
            " from marts.vehicle_availability order by vehicle_id, available_since"
        )
        return cursor.fetchall()


def snapshot_counts(db: psycopg2.extensions.connection) -> dict[str, int]:
    """Rows per snapshot table."""
    counts = {}
    with db.cursor() as cursor:
        for name in SNAPSHOTS:
            cursor.execute(f"select count(*) from snapshots.{name}")
            counts[name] = cursor.fetchone()[0]
    return counts


def query(db: psycopg2.extensions.connection, sql: str) -> list[tuple]:
    with db.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()
