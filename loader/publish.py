"""`raw` ← `raw_landing`, every table in one PostgreSQL transaction.

dlt lands a run in `raw_landing` (see `loader.source`); only when that whole load has
succeeded does `publish` replace the contents of `raw.vehicle_clusters`,
`raw.vehicles` and `raw.vehicles__options` together: a reader sees the old showroom
or the new one, never a mix, and a failure anywhere (a constraint, a lost
connection, the options check) rolls all three back. The tables are emptied with
DELETE and refilled, never dropped or renamed, since dbt's staging views depend on
them (and DELETE, unlike TRUNCATE, is safe for readers with an older snapshot).

`raw.vehicles` is each listed car's summary (this run) joined to its details (the
run that fetched them), the summary's value winning where both have one; its options
are those of its details. `raw_landing.vehicle_details` then keeps only listed cars.
"""

from __future__ import annotations

from datetime import datetime

import psycopg2.extensions
from psycopg2 import sql

from athlon_flex.database import PostgresAddress, connect
from loader.constants import (
    CLUSTERS_TABLE,
    DATASET_NAME,
    LANDING_DATASET,
    LANDING_DETAILS,
    LANDING_OPTIONS,
    LANDING_SUMMARIES,
    OPTIONS_TABLE,
    VEHICLES_TABLE,
)
from loader.shapes import CLUSTER_COLUMNS, SUMMARY_COLUMN_NAMES, VEHICLE_COLUMNS

# Columns that stay NOT NULL in tables an older loader created; every other column
# is loosened, since a car's odd value now lands as null.
_KEYS = {"id", "make", "model", "vehicle_id", "extracted_at"}
_OPTION_VALUES = ("vehicle_id", "id", "external_id", "option_name", "included")

Cursor = psycopg2.extensions.cursor
ReuseIndex = dict[str, tuple[str, datetime]]


class NoOptionsError(Exception):
    """Cars but not one option between them: an API fault, not a showroom."""


def _landing(name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(
        sql.Identifier(LANDING_DATASET), sql.Identifier(name)
    )


def _raw(name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(DATASET_NAME), sql.Identifier(name))


def _exists(cursor: Cursor, schema: str, table: str) -> bool:
    cursor.execute("select to_regclass(%s) is not null", (f'{schema}."{table}"',))
    return cursor.fetchone()[0]


def read_previous(connection: PostgresAddress) -> tuple[int, ReuseIndex]:
    """Cars in `raw.vehicles` now (the shrink baseline), and whose details are kept:
    id -> (summary hash, fetched at), for details published and still in landing."""
    with connect(connection) as conn, conn.cursor() as cursor:
        if not _exists(cursor, DATASET_NAME, VEHICLES_TABLE):
            return 0, {}
        cursor.execute(sql.SQL("select count(*) from {}").format(_raw(VEHICLES_TABLE)))
        (count,) = cursor.fetchone()
        if not _exists(cursor, LANDING_DATASET, LANDING_DETAILS):
            return count, {}
        cursor.execute(
            sql.SQL(
                "select v.id, v.summary_hash, v.details_fetched_at from {} v join {} d "
                "on d.id = v.id and d.summary_hash = v.summary_hash "
                "where d.details_fetched_at is not null "
                "and v.details_fetched_at is not null"
            ).format(_raw(VEHICLES_TABLE), _landing(LANDING_DETAILS))
        )
        return count, {row[0]: (row[1], row[2]) for row in cursor}


def _selects(
    extracted_at: datetime, loads: list[str], with_options: bool
) -> dict[str, sql.Composable]:
    """The query that yields each raw table's new contents, columns in order: the
    rows of this run's load (`loads`) only, whatever else landing still holds."""
    this_load = sql.SQL("_dlt_load_id = any({})").format(sql.Literal(loads))
    cluster_columns = [*CLUSTER_COLUMNS, "_dlt_load_id", "_dlt_id"]
    clusters = sql.SQL("select {} from {} where {}").format(
        sql.SQL(", ").join(map(sql.Identifier, cluster_columns)),
        _landing(CLUSTERS_TABLE),
        this_load,
    )
    vehicle_values = []
    for column in (*VEHICLE_COLUMNS, "_dlt_load_id", "_dlt_id"):
        name = sql.Identifier(column)
        if column in SUMMARY_COLUMN_NAMES:
            value = sql.SQL("coalesce(s.{0}, d.{0})").format(name)
        elif column == "details_fetched_at" or column.startswith(("details", "pric")):
            value = sql.SQL("d.{}").format(name)
        else:
            value = sql.SQL("s.{}").format(name)
        vehicle_values.append(sql.SQL("{} as {}").format(value, name))
    vehicles = sql.SQL(
        "select {} from {} s left join {} d on d.id = s.id where s.{}"
    ).format(
        sql.SQL(", ").join(vehicle_values),
        _landing(LANDING_SUMMARIES),
        _landing(LANDING_DETAILS),
        this_load,
    )
    option_values = sql.SQL(", ").join(
        [
            *(sql.SQL("o.{}").format(sql.Identifier(c)) for c in _OPTION_VALUES),
            sql.SQL("{}::timestamptz as extracted_at").format(
                sql.Literal(extracted_at)
            ),
            sql.SQL("o._dlt_parent_id, o._dlt_list_idx, o._dlt_id"),
        ]
    )
    if with_options:
        options = sql.SQL(
            "select {} from {} o join {} s on s.id = o.vehicle_id and s.{} "
            "order by o.vehicle_id, o._dlt_list_idx"
        ).format(
            option_values,
            _landing(LANDING_OPTIONS),
            _landing(LANDING_SUMMARIES),
            this_load,
        )
    else:  # no car ever had options: an empty result of the right shape
        options = sql.SQL(
            "select null::varchar as vehicle_id, null::varchar as id, "
            "null::varchar as external_id, null::varchar as option_name, "
            "null::boolean as included, null::timestamptz as extracted_at, "
            "null::varchar as _dlt_parent_id, null::bigint as _dlt_list_idx, "
            "null::varchar as _dlt_id where false"
        )
    return {CLUSTERS_TABLE: clusters, VEHICLES_TABLE: vehicles, OPTIONS_TABLE: options}


def _loosen(cursor: Cursor, table: str) -> None:
    """Let a table an older loader made NOT NULL take a null in a non-key column."""
    cursor.execute(
        "select column_name from information_schema.columns where table_schema = %s "
        "and table_name = %s and is_nullable = 'NO'",
        (DATASET_NAME, table),
    )
    for (column,) in cursor.fetchall():
        if column not in _KEYS and not column.startswith("_dlt"):
            cursor.execute(
                sql.SQL("alter table {} alter column {} drop not null").format(
                    _raw(table), sql.Identifier(column)
                )
            )


def publish(
    connection: PostgresAddress, extracted_at: datetime, loads: list[str]
) -> dict[str, int]:
    """Replace every raw table from this run's landed rows in one transaction; rows
    per table. `loads` are the run's dlt load ids.

    Raises NoOptionsError (after rolling back) when cars came without any option.
    """
    counts: dict[str, int] = {}
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute(
            sql.SQL("create schema if not exists {}").format(
                sql.Identifier(DATASET_NAME)
            )
        )
        if not _exists(cursor, LANDING_DATASET, LANDING_SUMMARIES):
            # No car was ever landed (an empty showroom, allowed, on a first load).
            for table in (CLUSTERS_TABLE, VEHICLES_TABLE, OPTIONS_TABLE):
                if _exists(cursor, DATASET_NAME, table):
                    cursor.execute(sql.SQL("delete from {}").format(_raw(table)))
            return dict.fromkeys((CLUSTERS_TABLE, VEHICLES_TABLE, OPTIONS_TABLE), 0)
        with_options = _exists(cursor, LANDING_DATASET, LANDING_OPTIONS)
        selects = _selects(extracted_at, loads, with_options)
        this_load = sql.SQL("_dlt_load_id = any({})").format(sql.Literal(loads))
        for table, select in selects.items():
            cursor.execute(
                sql.SQL("create table if not exists {} as {} with no data").format(
                    _raw(table), select
                )
            )
            _loosen(cursor, table)
            cursor.execute(sql.SQL("delete from {}").format(_raw(table)))
            cursor.execute(sql.SQL("insert into {} {}").format(_raw(table), select))
            counts[table] = cursor.rowcount
        if counts[VEHICLES_TABLE] and not counts[OPTIONS_TABLE]:
            raise NoOptionsError(
                f"Athlon API answered no options for any of the "
                f"{counts[VEHICLES_TABLE]} vehicles"
            )
        # Keep details only of cars in the showroom now.
        prune = (
            "delete from {} x where not exists "
            "(select from {} s where s.id = x.{} and s.{})"
        )
        for table in (LANDING_OPTIONS, LANDING_DETAILS):
            if _exists(cursor, LANDING_DATASET, table):
                key = "vehicle_id" if table == LANDING_OPTIONS else "id"
                cursor.execute(
                    sql.SQL(prune).format(
                        _landing(table),
                        _landing(LANDING_SUMMARIES),
                        sql.Identifier(key),
                        this_load,
                    )
                )
    return counts
