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
from loader.shapes import (
    CLUSTER_COLUMNS,
    OPTION_COLUMNS,
    SUMMARY_COLUMN_NAMES,
    VEHICLE_COLUMNS,
)

# Columns that stay NOT NULL in tables an older loader created; every other column
# is loosened, since a car's odd value now lands as null.
_KEYS = {"id", "make", "model", "vehicle_id", "extracted_at"}
_DLT = ("_dlt_load_id", "_dlt_id")
_DETAILS = ("details__", "pricing__", "details_fetched_at")

Cursor = psycopg2.extensions.cursor
ReuseIndex = dict[str, tuple[str, datetime]]


class NoOptionsError(Exception):
    """Cars but not one option between them: an API fault, not a showroom."""


def _table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def _exists(cursor: Cursor, schema: str, table: str) -> bool:
    cursor.execute("select to_regclass(%s) is not null", (f'{schema}."{table}"',))
    return cursor.fetchone()[0]


def read_previous(connection: PostgresAddress) -> tuple[int, ReuseIndex]:
    """Cars in `raw.vehicles` now (the shrink baseline), and whose details are kept:
    id -> (summary hash, fetched at), for details published and still in landing."""
    with connect(connection) as conn, conn.cursor() as cursor:
        if not _exists(cursor, DATASET_NAME, VEHICLES_TABLE):
            return 0, {}
        raw = _table(DATASET_NAME, VEHICLES_TABLE)
        cursor.execute(sql.SQL("select count(*) from {}").format(raw))
        (count,) = cursor.fetchone()
        if not _exists(cursor, LANDING_DATASET, LANDING_DETAILS):
            return count, {}
        cursor.execute(
            sql.SQL(
                "select v.id, v.summary_hash, v.details_fetched_at from {} v join {} d "
                "on d.id = v.id and d.summary_hash = v.summary_hash "
                "where d.details_fetched_at is not null "
                "and v.details_fetched_at is not null"
            ).format(raw, _table(LANDING_DATASET, LANDING_DETAILS))
        )
        return count, {row[0]: (row[1], row[2]) for row in cursor}


def _select(values: dict[str, str], rest: str, **tables: str) -> sql.Composed:
    """`select <value> as <column>, ... <rest>`, landing tables filled into `rest`."""
    columns = sql.SQL(", ").join(
        sql.SQL(value + " as {}").format(sql.Identifier(column))
        for column, value in values.items()
    )
    landing = {key: _table(LANDING_DATASET, name) for key, name in tables.items()}
    return sql.SQL("select {} ").format(columns) + sql.SQL(rest).format(**landing)


def _selects(cursor: Cursor, extracted_at: datetime) -> dict[str, sql.Composed]:
    """The query of each raw table's new contents, for the landing tables that exist:
    the rows of this run's load (`%(loads)s`) only, whatever else landing holds."""

    def pick(column: str) -> str:
        if column in SUMMARY_COLUMN_NAMES:
            return f'coalesce(s."{column}", d."{column}")'
        return f'{"d" if column.startswith(_DETAILS) else "s"}."{column}"'

    selects = {
        CLUSTERS_TABLE: _select(
            {c: f'"{c}"' for c in (*CLUSTER_COLUMNS, *_DLT)},
            "from {clusters} where _dlt_load_id = any(%(loads)s)",
            clusters=CLUSTERS_TABLE,
        ),
        VEHICLES_TABLE: _select(
            {c: pick(c) for c in (*VEHICLE_COLUMNS, *_DLT)},
            "from {s} s left join {d} d on d.id = s.id "
            "where s._dlt_load_id = any(%(loads)s)",
            s=LANDING_SUMMARIES,
            d=LANDING_DETAILS,
        ),
        OPTIONS_TABLE: _select(
            {c: f'o."{c}"' for c in OPTION_COLUMNS}
            | {"extracted_at": "%(extracted_at)s::timestamptz"}
            | {c: f"o.{c}" for c in ("_dlt_parent_id", "_dlt_list_idx", "_dlt_id")},
            "from {o} o join {s} s on s.id = o.vehicle_id and "
            "s._dlt_load_id = any(%(loads)s) order by o.vehicle_id, o._dlt_list_idx",
            o=LANDING_OPTIONS,
            s=LANDING_SUMMARIES,
        ),
    }
    needs = {
        CLUSTERS_TABLE: (CLUSTERS_TABLE,),
        VEHICLES_TABLE: (LANDING_SUMMARIES,),
        OPTIONS_TABLE: (LANDING_SUMMARIES, LANDING_OPTIONS),
    }
    return {
        table: select
        for table, select in selects.items()
        if all(_exists(cursor, LANDING_DATASET, name) for name in needs[table])
    }


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
                    _table(DATASET_NAME, table), sql.Identifier(column)
                )
            )


def publish(
    connection: PostgresAddress, extracted_at: datetime, loads: list[str]
) -> dict[str, int]:
    """Replace every raw table from this run's landed rows (`loads`: its dlt load
    ids) in one transaction; rows per table. NoOptionsError (rolled back) when cars
    came without any option."""
    counts = dict.fromkeys((CLUSTERS_TABLE, VEHICLES_TABLE, OPTIONS_TABLE), 0)
    values = {"loads": loads, "extracted_at": extracted_at}
    with connect(connection) as conn, conn.cursor() as cursor:
        schema = sql.Identifier(DATASET_NAME)
        cursor.execute(sql.SQL("create schema if not exists {}").format(schema))
        selects = _selects(cursor, extracted_at)
        for table in counts:
            raw, select = _table(DATASET_NAME, table), selects.get(table)
            if select is not None:
                create = sql.SQL("create table if not exists {} as {} with no data")
                cursor.execute(create.format(raw, select), values)
                _loosen(cursor, table)
            if _exists(cursor, DATASET_NAME, table):
                cursor.execute(sql.SQL("delete from {}").format(raw))
            if select is not None:
                cursor.execute(sql.SQL("insert into {} {}").format(raw, select), values)
                counts[table] = cursor.rowcount
        if counts[VEHICLES_TABLE] and not counts[OPTIONS_TABLE]:
            raise NoOptionsError(
                f"Athlon API answered no options for any of the "
                f"{counts[VEHICLES_TABLE]} vehicles"
            )
        # Keep details only of cars in the showroom now.
        for table, key in ((LANDING_OPTIONS, "vehicle_id"), (LANDING_DETAILS, "id")):
            if _exists(cursor, LANDING_DATASET, table):
                prune = sql.SQL(
                    "delete from {} x where not exists (select from {} s "
                    "where s.id = x.{} and s._dlt_load_id = any(%(loads)s))"
                )
                landing = _table(LANDING_DATASET, LANDING_SUMMARIES)
                target = _table(LANDING_DATASET, table)
                cursor.execute(
                    prune.format(target, landing, sql.Identifier(key)), values
                )
    return counts
