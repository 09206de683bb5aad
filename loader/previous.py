"""The snapshot the last successful run left in `raw`: baseline and reusable details.

Two uses: the vehicle count is the baseline of the shrink check, and the stored rows
(with their options) let the run reuse the details of vehicles whose summary did not
change, so a steady run asks the API only for clusters and summaries.

`read()` copies every stored row, options attached, into a `RowSpool` on disk and
keeps only a small index in memory (per vehicle: summary hash, when its details were
fetched, how many options it has). It runs in a thread while the API is asked for
the summaries, in one short read-only REPEATABLE READ transaction, so the count, the
index and the copied rows all describe the same snapshot. Vehicles and options come
through server-side cursors and are merged here, so neither table is held whole.

A missing table (first run) or a table without every column the loader writes (an
older loader) is not an error: there is simply nothing to reuse.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import psycopg2.extensions
from psycopg2 import sql

from athlon_flex.database import PostgresConnection, connect
from loader.settings import DATASET_NAME, OPTIONS_TABLE, VEHICLES_TABLE
from loader.shapes import OPTION_COLUMNS, VEHICLE_COLUMNS, Row
from loader.spool import RowSpool

log = logging.getLogger(__name__)

# Rows a server-side cursor sends per round trip.
_VEHICLES_PER_FETCH = 200
_OPTIONS_PER_FETCH = 2000


class PreviousSnapshot:
    """The current `raw` snapshot: its size, and which vehicles' details are reusable.

    `read(spool)` first (a blocking database read: run it in a thread), then
    `reusable()` per vehicle; the reused vehicles' rows are in the spool.
    """

    def __init__(self, connection: PostgresConnection) -> None:
        self._connection = connection
        self.vehicle_count = 0
        # vehicle id -> (summary hash, details fetched at, options) of each stored row
        self._index: dict[str, tuple[str, datetime, int]] = {}

    def read(self, spool: RowSpool) -> PreviousSnapshot:
        """Count the stored vehicles; copy the reusable rows into `spool`."""
        with connect(self._connection) as conn:
            conn.set_session(
                isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ,
                readonly=True,
            )
            with conn.cursor() as cursor:
                cursor.execute(
                    "select to_regclass(%s) is not null",
                    (f"{DATASET_NAME}.{VEHICLES_TABLE}",),
                )
                (exists,) = cursor.fetchone()
                if not exists:
                    return self
                cursor.execute(
                    sql.SQL("select count(*) from {}").format(_table(VEHICLES_TABLE))
                )
                (self.vehicle_count,) = cursor.fetchone()
                if self.vehicle_count == 0 or not _has_every_column(cursor):
                    return self
            for row in _stored_rows(conn):
                self._index[row["id"]] = (
                    row["summary_hash"],
                    row["details_fetched_at"],
                    len(row["options"]),
                )
                spool.add(row)
        return self

    def reusable(
        self, vehicle_id: str, hash_: str, now: datetime, refresh_hours: float
    ) -> bool:
        """Whether the stored row's summary is unchanged and its details fresh enough.

        Details expire after `refresh_hours` at the latest; each vehicle's age limit
        is spread between half and all of that (stable per id), so after a full load
        the refreshes trickle in instead of all at once.
        """
        stored = self._index.get(vehicle_id)
        if stored is None or stored[0] != hash_:
            return False
        age_limit = timedelta(hours=refresh_hours * _spread(vehicle_id))
        return now - stored[1] < age_limit

    def option_count(self, vehicle_ids: Iterable[str]) -> int:
        """Options of these stored vehicles together."""
        return sum(self._index[vehicle_id][2] for vehicle_id in vehicle_ids)


def _stored_rows(conn: psycopg2.extensions.connection) -> Iterator[Row]:
    """Every stored vehicle with its `options`, from two server-side cursors.

    Both are ordered by vehicle id in byte order (also Python's string order) and
    merged here. `extracted_at` is left out: the run sets its own on every row.
    """
    vehicle_columns = [c for c in VEHICLE_COLUMNS if c != "extracted_at"]
    option_columns = [c for c in OPTION_COLUMNS if c != "extracted_at"]
    parent = option_columns.index("vehicle_id")
    vehicles = conn.cursor(name="previous_vehicles")
    vehicles.itersize = _VEHICLES_PER_FETCH
    vehicles.execute(
        sql.SQL('select {} from {} order by id collate "C"').format(
            _columns(vehicle_columns), _table(VEHICLES_TABLE)
        )
    )
    options = conn.cursor(name="previous_options")
    options.itersize = _OPTIONS_PER_FETCH
    options.execute(
        sql.SQL(
            'select {} from {} order by vehicle_id collate "C", _dlt_list_idx'
        ).format(_columns(option_columns), _table(OPTIONS_TABLE))
    )
    try:
        option = next(options, None)
        for values in vehicles:
            row = _as_row(vehicle_columns, values)
            row_options = []
            while option is not None and option[parent] <= row["id"]:
                if option[parent] == row["id"]:
                    row_options.append(_as_row(option_columns, option))
                option = next(options, None)
            row["options"] = row_options
            yield row
    finally:
        vehicles.close()
        options.close()


def _as_row(columns: list[str], values: tuple) -> Row:
    return dict(zip(columns, values, strict=True))


def _spread(vehicle_id: str) -> float:
    """A stable number in [0.5, 1) per vehicle id."""
    digest = hashlib.sha256(vehicle_id.encode()).digest()
    return 0.5 + int.from_bytes(digest[:4], "big") / 2**33


def _table(name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(DATASET_NAME), sql.Identifier(name))


def _columns(names: list[str]) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def _has_every_column(cursor: psycopg2.extensions.cursor) -> bool:
    """Both tables exist with every column this loader writes (else: no reuse)."""
    wanted = {
        VEHICLES_TABLE: set(VEHICLE_COLUMNS),
        OPTIONS_TABLE: set(OPTION_COLUMNS) | {"_dlt_list_idx"},
    }
    cursor.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = %s and table_name = any(%s)",
        (DATASET_NAME, list(wanted)),
    )
    present: dict[str, set[str]] = {table: set() for table in wanted}
    for table, column in cursor:
        present[table].add(column)
    missing = sorted(
        f"{table}.{column}"
        for table, columns in wanted.items()
        for column in columns - present[table]
    )
    if missing:
        log.info(
            "Not reusing details: raw lacks %s%s",
            ", ".join(missing[:5]),
            f" and {len(missing) - 5} more" if len(missing) > 5 else "",
        )
    return not missing
