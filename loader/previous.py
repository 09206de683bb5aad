"""The snapshot the last successful run left in `raw`: baseline and reusable details.

Two uses: the vehicle count is the baseline of the shrink check, and the rows (with
their options) let the run reuse the details of vehicles whose summary did not change,
so a steady run asks the API only for clusters and summaries.

A missing table (first run) or a table from an older loader without the bookkeeping
columns is not an error: there is simply nothing to reuse.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg2
from psycopg2 import sql

from athlon_flex.database import PostgresConnection, connect
from loader.settings import DATASET_NAME, OPTIONS_TABLE, VEHICLES_TABLE
from loader.shapes import OPTION_COLUMNS, VEHICLE_COLUMNS, Row

log = logging.getLogger(__name__)


@dataclass
class PreviousSnapshot:
    """Vehicle rows of the current `raw` snapshot by id, options included."""

    vehicle_count: int = 0
    rows: dict[str, Row] = field(default_factory=dict)

    def take_reusable(
        self, vehicle_id: str, hash_: str, now: datetime, refresh_hours: float
    ) -> Row | None:
        """The stored row if its summary is unchanged and its details fresh enough.

        The row is removed from the snapshot when handed out, so the run never holds
        a vehicle twice. Details expire after `refresh_hours` at the latest; each
        vehicle's age limit is spread between half and all of that (stable per id),
        so after a full load the refreshes trickle in instead of all at once.
        """
        row = self.rows.pop(vehicle_id, None)
        if row is None or row.get("summary_hash") != hash_:
            return None
        fetched_at = row.get("details_fetched_at")
        if fetched_at is None:
            return None
        if now - fetched_at >= timedelta(hours=refresh_hours * _spread(vehicle_id)):
            return None
        return row


def _spread(vehicle_id: str) -> float:
    """A stable number in [0.5, 1) per vehicle id."""
    digest = hashlib.sha256(vehicle_id.encode()).digest()
    return 0.5 + int.from_bytes(digest[:4], "big") / 2**33


def _table(name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(DATASET_NAME), sql.Identifier(name))


def read_previous(connection: PostgresConnection) -> PreviousSnapshot:
    """Read `raw.vehicles` and `raw.vehicles__options` (empty snapshot if absent)."""
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select to_regclass(%s), to_regclass(%s)",
            (f"{DATASET_NAME}.{VEHICLES_TABLE}", f"{DATASET_NAME}.{OPTIONS_TABLE}"),
        )
        vehicles_table, options_table = cursor.fetchone()
        if vehicles_table is None:
            return PreviousSnapshot()
        cursor.execute(
            sql.SQL("select count(*) from {}").format(_table(VEHICLES_TABLE))
        )
        (count,) = cursor.fetchone()
        snapshot = PreviousSnapshot(vehicle_count=count)
        if options_table is None or count == 0:
            return snapshot
        try:
            snapshot.rows = _read_rows(cursor)
        except psycopg2.errors.UndefinedColumn as error:
            log.info(
                "Not reusing details: raw tables lack a column (%s)", error.pgerror
            )
            conn.rollback()
    return snapshot


def _read_rows(cursor: psycopg2.extensions.cursor) -> dict[str, Row]:
    vehicle_columns = list(VEHICLE_COLUMNS)
    cursor.execute(
        sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(map(sql.Identifier, vehicle_columns)),
            _table(VEHICLES_TABLE),
        )
    )
    rows: dict[str, Row] = {}
    for values in cursor:
        row = dict(zip(vehicle_columns, values, strict=True))
        row["options"] = []
        rows[row["id"]] = row
    option_columns = list(OPTION_COLUMNS)
    cursor.execute(
        sql.SQL("select {} from {} order by vehicle_id, _dlt_list_idx").format(
            sql.SQL(", ").join(map(sql.Identifier, option_columns)),
            _table(OPTIONS_TABLE),
        )
    )
    for values in cursor:
        option = dict(zip(option_columns, values, strict=True))
        parent = rows.get(option["vehicle_id"])
        if parent is not None:
            parent["options"].append(option)
    return rows
