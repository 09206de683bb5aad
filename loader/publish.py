"""`raw` ← this run's rows in `raw_landing`, every table in one PostgreSQL transaction
(emptied with DELETE and refilled, never dropped: dbt's staging views depend on them).
`raw.vehicles` is each listed car's summary joined to its kept details, the summary's
value winning; `raw_landing.vehicle_details` then keeps only the listed cars. Table
and column names below are the loader's constants, never input."""

from __future__ import annotations

from datetime import datetime

import psycopg2.extensions

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
_RAW, _LANDING = f'"{DATASET_NAME}"', f'"{LANDING_DATASET}"'

Cursor = psycopg2.extensions.cursor
ReuseIndex = dict[str, tuple[str, datetime]]


class NoOptionsError(Exception):
    """Cars but not one option between them: an API fault, not a showroom."""


def _exists(cursor: Cursor, schema: str, table: str) -> bool:
    cursor.execute("select to_regclass(%s) is not null", (f'{schema}."{table}"',))
    return cursor.fetchone()[0]


def read_previous(connection: PostgresAddress) -> tuple[int, ReuseIndex]:
    """Cars in `raw.vehicles` now (the shrink baseline), and whose details are kept:
    id -> (summary hash, fetched at), for details published and still in landing."""
    with connect(connection) as conn, conn.cursor() as cursor:
        if not _exists(cursor, _RAW, VEHICLES_TABLE):
            return 0, {}
        cursor.execute(f'select count(*) from {_RAW}."{VEHICLES_TABLE}"')
        (count,) = cursor.fetchone()
        if not _exists(cursor, _LANDING, LANDING_DETAILS):
            return count, {}
        cursor.execute(
            f"select v.id, v.summary_hash, v.details_fetched_at "
            f'from {_RAW}."{VEHICLES_TABLE}" v join {_LANDING}."{LANDING_DETAILS}" d '
            "on d.id = v.id and d.summary_hash = v.summary_hash "
            "where d.details_fetched_at is not null "
            "and v.details_fetched_at is not null"
        )
        return count, {row[0]: (row[1], row[2]) for row in cursor}


def _select(values: dict[str, str]) -> str:
    return "select " + ", ".join(f'{value} as "{c}"' for c, value in values.items())


def _pick(column: str) -> str:
    if column in SUMMARY_COLUMN_NAMES:
        return f'coalesce(s."{column}", d."{column}")'
    return f'{"d" if column.startswith(_DETAILS) else "s"}."{column}"'


_CLUSTERS = _select({c: f'"{c}"' for c in (*CLUSTER_COLUMNS, *_DLT)})
_VEHICLES = _select({c: _pick(c) for c in (*VEHICLE_COLUMNS, *_DLT)})
_OPTIONS = _select(
    {c: f'o."{c}"' for c in OPTION_COLUMNS}
    | {"extracted_at": "%(extracted_at)s::timestamptz"}
    | {c: f"o.{c}" for c in ("_dlt_parent_id", "_dlt_list_idx", "_dlt_id")}
)
# raw table -> (its new contents: this run's rows only, the landing tables it needs)
_SELECTS = {
    CLUSTERS_TABLE: (
        f'{_CLUSTERS} from {_LANDING}."{CLUSTERS_TABLE}" '
        "where _dlt_load_id = any(%(loads)s)",
        (CLUSTERS_TABLE,),
    ),
    VEHICLES_TABLE: (
        f'{_VEHICLES} from {_LANDING}."{LANDING_SUMMARIES}" s '
        f'left join {_LANDING}."{LANDING_DETAILS}" d on d.id = s.id '
        "where s._dlt_load_id = any(%(loads)s)",
        (LANDING_SUMMARIES,),  # a car listed means its details were fetched once
    ),
    OPTIONS_TABLE: (
        f'{_OPTIONS} from {_LANDING}."{LANDING_OPTIONS}" o '
        f'join {_LANDING}."{LANDING_SUMMARIES}" s on s.id = o.vehicle_id '
        "and s._dlt_load_id = any(%(loads)s) order by o.vehicle_id, o._dlt_list_idx",
        (LANDING_SUMMARIES, LANDING_OPTIONS),
    ),
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
                f'alter table {_RAW}."{table}" alter column "{column}" drop not null'
            )


def publish(
    connection: PostgresAddress, extracted_at: datetime, loads: list[str]
) -> dict[str, int]:
    """Replace every raw table from this run's landed rows (`loads`: its dlt load
    ids) in one transaction; rows per table. NoOptionsError (rolled back) when cars
    came without any option."""
    counts = dict.fromkeys(_SELECTS, 0)
    values = {"loads": loads, "extracted_at": extracted_at}
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute(f"create schema if not exists {_RAW}")
        for table, (select, needs) in _SELECTS.items():
            raw = f'{_RAW}."{table}"'
            landed = all(_exists(cursor, _LANDING, name) for name in needs)
            if landed:
                create = f"create table if not exists {raw} as {select} with no data"
                cursor.execute(create, values)
                _loosen(cursor, table)
            if _exists(cursor, _RAW, table):
                cursor.execute(f"delete from {raw}")
            if landed:
                cursor.execute(f"insert into {raw} {select}", values)
                counts[table] = cursor.rowcount
        if counts[VEHICLES_TABLE] and not counts[OPTIONS_TABLE]:
            raise NoOptionsError(
                f"Athlon API answered no options for any of the "
                f"{counts[VEHICLES_TABLE]} vehicles"
            )
        for table, key in ((LANDING_OPTIONS, "vehicle_id"), (LANDING_DETAILS, "id")):
            if _exists(cursor, _LANDING, table):  # keep details of listed cars only
                cursor.execute(
                    f'delete from {_LANDING}."{table}" x where not exists (select '
                    f'from {_LANDING}."{LANDING_SUMMARIES}" s where s.id = x."{key}" '
                    "and s._dlt_load_id = any(%(loads)s))",
                    values,
                )
    return counts
