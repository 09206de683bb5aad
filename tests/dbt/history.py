"""Fast-forward the snapshots through a long generated history, for measurements.

Running `dbt build` once per 10-minute cycle would take days for a year of history.
`fast_forward` instead computes, in Python, the SCD2 versions that dbt's check
snapshots would have recorded for the cycles of `generate_history` (same keys, same
checked columns, same clock: valid_from/valid_to are extraction times), writes each
version to `raw` with its own extracted_at, lets the real staging views rename and
cast them, and inserts them into the snapshot tables dbt created. Afterwards `raw`
holds the last cycle's state, so the next `dbt build` continues from there as if it
had run every ten minutes. The data tests of that build (one current row per key,
no overlapping versions, open windows = current versions) check the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2.extensions
from psycopg2.extras import execute_values

from tests.support.raw_tables import (
    TABLES,
    CatalogState,
    append_rows,
    make_options,
    write_state,
)

# Which raw columns decide a new version (the snapshots' check_cols, in raw names).
_UNCHECKED_VEHICLE_COLUMNS = frozenset(
    {"extracted_at", "summary_hash", "details_fetched_at"}
)
_CLUSTER_CHECKED = ("external_fuel_type_id", "uri")


@dataclass
class Versions:
    """SCD2 rows per snapshot: (raw row, valid_from, valid_to or None)."""

    vehicles: list[tuple[dict[str, Any], datetime, datetime | None]]
    clusters: list[tuple[dict[str, Any], datetime, datetime | None]]
    options: list[tuple[dict[str, Any], datetime, datetime | None]]
    cycles: int
    last: tuple[datetime, CatalogState]


def _vehicle_signature(vehicle: dict[str, Any]) -> tuple:
    return tuple(
        value
        for name, value in sorted(vehicle.items())
        if name not in _UNCHECKED_VEHICLE_COLUMNS
    )


def versions_of(history: Iterable[tuple[datetime, CatalogState]]) -> Versions:
    """The versions dbt's snapshots would hold after building every cycle."""
    vehicles: list[tuple[dict[str, Any], datetime, datetime | None]] = []
    clusters: list[tuple[dict[str, Any], datetime, datetime | None]] = []
    # key -> (index into the list of its current version, the row)
    current_vehicles: dict[str, tuple[int, dict[str, Any]]] = {}
    current_clusters: dict[tuple[str, str], tuple[int, tuple]] = {}
    cycles = 0
    last: tuple[datetime, CatalogState] | None = None

    for extracted_at, state in history:
        cycles += 1
        last = (extracted_at, state)
        seen = set()
        for vehicle in state.vehicles:
            key = vehicle["id"]
            seen.add(key)
            known = current_vehicles.get(key)
            if known is not None:
                index, row = known
                # Rows are replaced, never mutated: same object = no change.
                if row is vehicle or _vehicle_signature(row) == _vehicle_signature(
                    vehicle
                ):
                    continue
                vehicles[index] = (row, vehicles[index][1], extracted_at)
            vehicles.append((vehicle, extracted_at, None))
            current_vehicles[key] = (len(vehicles) - 1, vehicle)
        for key in [k for k in current_vehicles if k not in seen]:
            index, row = current_vehicles.pop(key)
            vehicles[index] = (row, vehicles[index][1], extracted_at)

        seen_clusters = set()
        for cluster in state.cluster_rows():
            key = (cluster["make"], cluster["model"])
            seen_clusters.add(key)
            signature = tuple(cluster[name] for name in _CLUSTER_CHECKED)
            known_cluster = current_clusters.get(key)
            if known_cluster is not None:
                index, old_signature = known_cluster
                if old_signature == signature:
                    continue
                row, since, _ = clusters[index]
                clusters[index] = (row, since, extracted_at)
            clusters.append((cluster, extracted_at, None))
            current_clusters[key] = (len(clusters) - 1, signature)
        for key in [k for k in current_clusters if k not in seen_clusters]:
            index, _ = current_clusters.pop(key)
            row, since, _ = clusters[index]
            clusters[index] = (row, since, extracted_at)

    if last is None:
        raise ValueError("an empty history")
    return Versions(
        vehicles=vehicles,
        clusters=clusters,
        options=_option_versions(vehicles),
        cycles=cycles,
        last=last,
    )


def _option_versions(
    vehicles: list[tuple[dict[str, Any], datetime, datetime | None]],
) -> list[tuple[dict[str, Any], datetime, datetime | None]]:
    """A car's options (make_options, fixed per car) exist while the car is listed:
    one option version per availability window (touching versions merged)."""
    by_vehicle: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for row, since, until in vehicles:
        by_vehicle.setdefault(row["id"], []).append((since, until))
    options = []
    for vehicle_id, spans in by_vehicle.items():
        spans.sort(key=lambda span: span[0])
        windows: list[list[Any]] = []
        for since, until in spans:
            if windows and windows[-1][1] == since:
                windows[-1][1] = until
            else:
                windows.append([since, until])
        for since, until in windows:
            options.extend(
                (option, since, until) for option in make_options(vehicle_id)
            )
    return options


# snapshot → (staging view, key columns in the view, raw table, raw key columns)
_SNAPSHOTS = {
    "snap_vehicles": (
        "stg_athlon__vehicles",
        ("vehicle_id",),
        "vehicles",
        ("id",),
    ),
    "snap_vehicle_clusters": (
        "stg_athlon__vehicle_clusters",
        ("make", "model"),
        "vehicle_clusters",
        ("make", "model"),
    ),
    "snap_vehicle_options": (
        "stg_athlon__vehicle_options",
        ("vehicle_id", "option_id"),
        "vehicles__options",
        ("vehicle_id", "id"),
    ),
}


def fast_forward(conn: psycopg2.extensions.connection, versions: Versions) -> None:
    """Replace the snapshots' contents with `versions`; leave the last state in raw.

    Needs the snapshot tables and staging views of a first `dbt build`.
    """
    rows_by_snapshot = {
        "snap_vehicles": versions.vehicles,
        "snap_vehicle_clusters": versions.clusters,
        "snap_vehicle_options": versions.options,
    }
    autocommit = conn.autocommit
    conn.autocommit = False
    try:
        with conn, conn.cursor() as cursor:
            for snapshot, (view, view_key, raw_table, raw_key) in _SNAPSHOTS.items():
                _load_versions(
                    cursor,
                    snapshot,
                    view,
                    view_key,
                    raw_table,
                    raw_key,
                    rows_by_snapshot[snapshot],
                )
    finally:
        conn.autocommit = autocommit
    extracted_at, state = versions.last
    write_state(conn, state, extracted_at)
    with conn.cursor() as cursor:
        cursor.execute("analyze")
    if not conn.autocommit:
        conn.commit()


def _load_versions(
    cursor: Any,
    snapshot: str,
    view: str,
    view_key: tuple[str, ...],
    raw_table: str,
    raw_key: tuple[str, ...],
    rows: list[tuple[dict[str, Any], datetime, datetime | None]],
) -> None:
    """Versions → raw (one row each, extracted_at = valid_from) → staging view →
    snapshot table, with valid_to from a scratch table."""
    for table in TABLES:
        cursor.execute(f"delete from raw.{table}")
    append_rows(
        cursor, raw_table, ({**row, "extracted_at": since} for row, since, _ in rows)
    )
    cursor.execute(
        "create temporary table version_ends ("
        + ", ".join(f"{name} text" for name in view_key)
        + ", valid_from timestamptz, valid_to timestamptz)"
    )
    execute_values(
        cursor,
        "insert into version_ends values %s",
        [
            (*(str(row[name]) for name in raw_key), since, until)
            for row, since, until in rows
        ],
        page_size=5000,
    )
    cursor.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'snapshots' and table_name = %s"
        " and column_name not like 'dbt\\_%%' order by ordinal_position",
        (snapshot,),
    )
    columns = [name for (name,) in cursor.fetchall()]
    column_list = ", ".join(f"versions.{name}" for name in columns)
    key_text = " || '|' || ".join(f"versions.{name}::text" for name in view_key)
    join = " and ".join(
        f"version_ends.{name} = versions.{name}::text" for name in view_key
    )
    cursor.execute(f"truncate snapshots.{snapshot}")
    cursor.execute(
        f"insert into snapshots.{snapshot}"
        f" ({', '.join(columns)}, dbt_scd_id, dbt_updated_at, dbt_valid_from,"
        " dbt_valid_to)"
        f" select {column_list}, md5({key_text} || '|' || versions.extracted_at::text),"
        " versions.extracted_at, versions.extracted_at, version_ends.valid_to"
        f" from staging.{view} as versions"
        f" join version_ends on {join}"
        " and version_ends.valid_from = versions.extracted_at"
    )
    cursor.execute("drop table version_ends")
