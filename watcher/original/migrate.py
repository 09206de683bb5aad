"""Carry the older tool's database over: SCD2 history and what it already mailed.

The older tool (Prefect + SQLModel, tables created by its Alembic migrations) kept
one SCD2 table per entity in schema `public`: `vehicle_cluster`, `vehicle` and
`option`, each row a version valid from `active_from` until `active_to` (null while
current; a car that left has its last version closed, one that returns gets a new
row), and `notification`: one row per availability window it mailed, keyed by the
vehicle's `key_hash` (sha256 of the Athlon id) and the window's start.

This module writes that history into this project's dbt snapshot tables (the same
columns and types dbt creates, from the staging views' casts) and the old
notifications into `notifier.notifications` for the recipients the old tool mailed
(EMAIL_TO), so that:

- availability windows reach back as far as the old data (a car still in the
  showroom keeps the window it opened under the old tool);
- no window the old tool mailed is mailed again (its notification is recorded at
  the start of the window that contains it, which is the same start unless the two
  tools' histories were joined);
- a second run changes nothing: a migrated version has a fixed id (from its key and
  start), rows already there are never touched, notifications are `on conflict do
  nothing`.

When this project already holds history (the new stack ran before the migration),
its first load is the cut-off: old versions starting after it are left out (the new
history governs), and old versions still open then end at it, joining the new
history's first version when the car was still there. Its own notifications of
windows that now start earlier are recorded at the new start too, so joining never
re-mails a car. Any change to the history drops `marts.vehicle_availability` (an
incremental mart that only looks forward) so the next `dbt build` rebuilds it whole.

Everything is computed first and written in one transaction, so a dry run reports
exactly what `--apply` writes, and a failure leaves the target as it was.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.dbt_project import PROJECT_DIR
from athlon_flex.errors import ConfigurationError, StageError
from athlon_flex.settings import Settings
from transform.runner import forget_full_build

log = logging.getLogger(__name__)

STAGING_DIR = PROJECT_DIR / "models" / "staging"
SNAPSHOT_SCHEMA = "snapshots"
NOTIFICATIONS = "notifier.notifications"
INCREMENTAL_MART = "marts.vehicle_availability"

# The older tool's tables and the columns this migration reads from each, as its
# Alembic migrations (a491bf92b0f3 and later) create them.
ORIGINAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "vehicle_cluster": (
        "id", "key_hash", "active_from", "active_to", "make", "model",
        "external_type_id", "external_fuel_type_id", "first_vehicle_id",
        "latest_model_year", "vehicle_count", "min_price_in_euro_per_month",
        "fiscal_value_in_euro", "addition_percentage", "max_co2_emission", "image_uri",
    ),
    "vehicle": (
        "id", "key_hash", "active_from", "active_to", "athlon_id", "make", "model",
        "type", "model_year", "paint_id", "external_paint_id", "addition_percentage",
        "range_in_km", "external_fuel_type_id", "external_type_id", "image_uri",
        "is_electric", "uri", "license_plate", "color", "official_color",
        "body_type", "emission", "registration_date", "registered_mileage",
        "transmission_type", "avg_fuel_consumption", "type_spare_wheel",
        "fiscal_value_in_euro", "base_price_in_euro_per_month",
        "calculated_price_in_euro_per_month", "price_per_km", "fuel_price_per_km",
        "contribution_in_euro", "expected_fuel_cost_in_euro_per_month",
        "net_cost_in_euro_per_month", "vehicle_cluster_id",
    ),
    "option": (
        "id", "active_from", "active_to", "athlon_id", "externalId", "optionName",
        "included", "vehicle_id",
    ),
    "notification": ("vehicle_key_hash", "available_since", "notified_at"),
}  # fmt: skip
# Old column → this project's snapshot column (the rest keep their name).
VEHICLE_RENAMES = {
    "athlon_id": "vehicle_id",
    "uri": "showroom_uri",
    "addition_percentage": "summary_addition_percentage",
    "base_price_in_euro_per_month": "base_price_per_month_in_euro",
    "calculated_price_in_euro_per_month": "calculated_price_per_month_in_euro",
    "price_per_km": "price_per_km_in_euro",
    "fuel_price_per_km": "fuel_price_per_km_in_euro",
    "expected_fuel_cost_in_euro_per_month": "expected_fuel_cost_per_month_in_euro",
    "net_cost_in_euro_per_month": "net_cost_per_month_in_euro",
}
CLUSTER_RENAMES = {"min_price_in_euro_per_month": "min_price_per_month_in_euro"}

# snapshot → (the staging view it snapshots, its unique key), as snapshots/*.yml.
SNAPSHOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "snap_vehicle_clusters": ("stg_athlon__vehicle_clusters", ("make", "model")),
    "snap_vehicles": ("stg_athlon__vehicles", ("vehicle_id",)),
    "snap_vehicle_options": (
        "stg_athlon__vehicle_options",
        ("vehicle_id", "option_id"),
    ),
}
DBT_COLUMNS = (
    ("dbt_scd_id", "text"),
    ("dbt_updated_at", "timestamptz"),
    ("dbt_valid_from", "timestamptz"),
    ("dbt_valid_to", "timestamptz"),
)
_CAST = re.compile(r"cast\(\s*.+?\s+as\s+(\w+)\s*\)\s+as\s+(\w+)", re.DOTALL)


class MigrationError(StageError):
    """The migration could not read its source or write its target."""


class BadMigrationInput(MigrationError, ConfigurationError):
    """What the user gave cannot be migrated (bad input: the CLI exits with 2)."""


class SourceNotRecognised(BadMigrationInput):
    """The source database is not the older tool's."""


def snapshot_columns(snapshot: str) -> list[tuple[str, str]]:
    """The snapshot's columns and types: its staging view's casts, then dbt's own.

    dbt creates a snapshot table as `select *` from the staging view plus its four
    columns; every staging column is a `cast(... as type) as name`, so reading the
    casts gives the very table dbt would create (a test compares the two).
    """
    model = SNAPSHOTS[snapshot][0]
    text = (STAGING_DIR / f"{model}.sql").read_text()
    return [(name, kind) for kind, name in _CAST.findall(text)] + list(DBT_COLUMNS)


@dataclass
class Counts:
    """One kind of row: read from the source, added, already there, left out."""

    read: int = 0
    to_add: int = 0
    present: int = 0
    left_out: int = 0
    merged: int = 0  # identical, contiguous copies kept as one version

    def line(self, what: str, applied: bool) -> str:
        verb = "added" if applied else "to add"
        merged = f", {self.merged} identical copies merged" if self.merged else ""
        return (
            f"{what}: {self.read} read, {self.to_add} {verb}, {self.present} already "
            f"there, {self.left_out} left out{merged}"
        )


@dataclass
class MigrationSummary:
    """What the migration found and did (or, in a dry run, would do)."""

    source: str
    revision: str | None
    applied: bool
    recipients: tuple[str, ...]
    clusters: Counts = field(default_factory=Counts)
    vehicles: Counts = field(default_factory=Counts)
    options: Counts = field(default_factory=Counts)
    notifications: Counts = field(default_factory=Counts)
    carried_over: int = 0
    windows: int = 0
    history_since: datetime | None = None
    cutoff: datetime | None = None
    mart_dropped: bool = False

    @property
    def changed(self) -> bool:
        return any(
            counts.to_add
            for counts in (
                self.clusters,
                self.vehicles,
                self.options,
                self.notifications,
            )
        )

    def lines(self) -> list[str]:
        revision = f", Alembic revision {self.revision}" if self.revision else ""
        since = (
            self.history_since.strftime("%Y-%m-%d %H:%M UTC")
            if self.history_since
            else "-"
        )
        lines = [
            f"Original database {self.source}{revision}: history since {since}, "
            f"{self.windows} availability window(s)",
            "  " + self.clusters.line("cluster versions", self.applied),
            "  " + self.vehicles.line("vehicle versions", self.applied),
            "  " + self.options.line("option versions", self.applied),
            "  "
            + self.notifications.line(
                f"notifications (for {', '.join(self.recipients)})", self.applied
            ),
        ]
        if self.cutoff:
            lines.append(
                f"  this project's history starts {self.cutoff:%Y-%m-%d %H:%M} UTC: "
                "older versions end there at the latest"
            )
        if self.carried_over:
            lines.append(
                f"  {self.carried_over} of this project's notification(s) recorded at "
                "the earlier start of their window too"
            )
        if self.applied:
            tail = "Applied."
            if self.mart_dropped:
                tail += f" {INCREMENTAL_MART} is rebuilt whole by the next dbt build."
            if not self.changed:
                tail = "Nothing to do: everything was already there."
        else:
            tail = "Dry run: nothing was written; run again with --apply to write it."
        lines.append(tail)
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class _Version:
    """One version of one entity, in this project's column names."""

    key: tuple[str, ...]
    valid_from: datetime
    valid_to: datetime | None
    values: Mapping[str, Any]

    @property
    def scd_id(self) -> str:
        # Fixed by the key and the start alone, so a second run finds it (a later
        # dbt run may close it: its end is not part of its identity).
        text = "|".join(
            ["athlon-flex-original", *self.key, self.valid_from.isoformat()]
        )
        return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (an id, not a secret)


def describe_source(dsn: str) -> str:
    """The source without its password, for messages and logs."""
    try:
        parts = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "(an unreadable connection string)"
    user = parts.get("user", "")
    host = parts.get("host", "localhost")
    port = parts.get("port", "5432")
    return f"postgresql://{user}@{host}:{port}/{parts.get('dbname', '')}"


def _recognise(conn: psycopg2.extensions.connection, where: str) -> str | None:
    """Check the source has the older tool's tables; return its Alembic revision."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = current_schema() and table_name = any(%s)",
            (list(ORIGINAL_COLUMNS),),
        )
        present: dict[str, set[str]] = defaultdict(set)
        for table, column in cursor.fetchall():
            present[table].add(column)
        missing = []
        for table, columns in ORIGINAL_COLUMNS.items():
            if table not in present:
                missing.append(f"table {table}")
                continue
            missing.extend(f"{table}.{c}" for c in columns if c not in present[table])
        if missing:
            shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
            raise SourceNotRecognised(
                f"{where} is not the older athlon-flex-notifier's database: missing "
                f"{shown} (expected its tables vehicle_cluster, vehicle, option and "
                "notification as its Alembic migrations create them). Nothing was "
                "read or written."
            )
        cursor.execute("select to_regclass('alembic_version') is not null")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("select version_num from alembic_version")
        row = cursor.fetchone()
        return row[0] if row else None


def _read(conn: psycopg2.extensions.connection, query: str) -> list[dict[str, Any]]:
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
        cursor.execute(query)
        return [dict(row) for row in cursor.fetchall()]


def _registered_at(value: Any) -> datetime | None:
    """The old tool kept the registration date as the API's text; ours is a time."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _read_versions(
    conn: psycopg2.extensions.connection,
) -> tuple[dict[str, list[_Version]], dict[str, str], list[dict[str, Any]], int]:
    """The old tables as versions per snapshot, key_hash → vehicle id, notifications,
    and how many option rows the old table held."""
    from loader.shapes import showroom_uri  # the loader's page links, as it builds them

    clusters = [
        _Version(
            key=(row["make"], row["model"]),
            valid_from=row["active_from"],
            valid_to=row["active_to"],
            values={
                "make": row["make"],
                "model": row["model"],
                "external_type_id": row["external_type_id"],
                "external_fuel_type_id": row["external_fuel_type_id"],
                "showroom_uri": showroom_uri(row["make"], row["model"]),
                "first_vehicle_id": row["first_vehicle_id"],
                "vehicle_count": row["vehicle_count"],
                "min_price_per_month_in_euro": row["min_price_in_euro_per_month"],
                "fiscal_value_in_euro": row["fiscal_value_in_euro"],
                "addition_percentage": row["addition_percentage"],
                "latest_model_year": row["latest_model_year"],
                "max_co2_emission": row["max_co2_emission"],
                "image_uri": row["image_uri"],
                "extracted_at": row["active_from"],
            },
        )
        for row in _read(conn, "select * from vehicle_cluster")
    ]
    vehicle_rows = _read(conn, "select * from vehicle")
    vehicles = []
    vehicle_ids: dict[str, str] = {}
    for row in vehicle_rows:
        values = {VEHICLE_RENAMES.get(k, k): v for k, v in row.items()}
        values["registered_at"] = _registered_at(row["registration_date"])
        values["extracted_at"] = row["active_from"]
        vehicles.append(
            _Version(
                key=(row["athlon_id"],),
                valid_from=row["active_from"],
                valid_to=row["active_to"],
                values=values,
            )
        )
        if row["key_hash"]:
            vehicle_ids[row["key_hash"]] = row["athlon_id"]
    with conn.cursor() as cursor:
        cursor.execute('select count(*) from "option"')
        option_rows = cursor.fetchone()[0]
    options = list(_merged(_option_versions(conn)))
    notifications = _read(
        conn, "select vehicle_key_hash, available_since, notified_at from notification"
    )
    versions = {
        "snap_vehicle_clusters": clusters,
        "snap_vehicles": vehicles,
        "snap_vehicle_options": options,
    }
    return versions, vehicle_ids, notifications, option_rows


def _option_versions(conn: psycopg2.extensions.connection) -> Iterator[_Version]:
    """The old options, streamed in key order (the table is the old tool's largest).

    Its option key held the vehicle's *row* id, so every new version of a car
    closed all its options and opened identical ones: streaming and merging those
    keeps memory to the real history rather than the copies.
    """
    with conn.cursor(
        name="athlon_flex_options", cursor_factory=psycopg2.extras.RealDictCursor
    ) as cursor:
        cursor.itersize = 5000
        cursor.execute(
            'select "option".athlon_id, "option"."externalId", "option"."optionName", '
            '"option".included, "option".active_from, "option".active_to, '
            'vehicle.athlon_id as vehicle_athlon_id from "option" '
            'join vehicle on vehicle.id = "option".vehicle_id '
            'order by vehicle.athlon_id, "option".athlon_id, "option".active_from'
        )
        for row in cursor:
            yield _Version(
                key=(row["vehicle_athlon_id"], row["athlon_id"]),
                valid_from=row["active_from"],
                valid_to=row["active_to"],
                values={
                    "vehicle_id": row["vehicle_athlon_id"],
                    "option_id": row["athlon_id"],
                    "external_option_id": row["externalId"],
                    "option_name": row["optionName"],
                    "is_included": row["included"],
                    "extracted_at": row["active_from"],
                },
            )


def _same_attributes(one: _Version, other: _Version) -> bool:
    """Equal but for when they were seen: one version, not two."""
    return {k: v for k, v in one.values.items() if k != "extracted_at"} == {
        k: v for k, v in other.values.items() if k != "extracted_at"
    }


def _merged(versions: Iterable[_Version]) -> Iterator[_Version]:
    """Versions in key order with each run of identical, contiguous ones as one."""
    held: _Version | None = None
    for version in versions:
        if (
            held is not None
            and held.key == version.key
            and held.valid_to == version.valid_from
            and _same_attributes(held, version)
        ):
            held = _Version(held.key, held.valid_from, version.valid_to, held.values)
            continue
        if held is not None:
            yield held
        held = version
    if held is not None:
        yield held


def _tidy(versions: Iterable[_Version]) -> tuple[list[_Version], int]:
    """One key's versions in order, never overlapping; empty ones dropped.

    The old tool's own writes never overlap, but an edited or half-written table
    may; the snapshot tests (windows_do_not_overlap) must hold for what we write.
    """
    ordered = sorted(
        versions, key=lambda v: (v.key, v.valid_from, v.valid_to is None, v.valid_to)
    )
    kept: list[_Version] = []
    dropped = 0
    for index, version in enumerate(ordered):
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        end = version.valid_to
        overlaps = (
            following is not None
            and following.key == version.key
            and (end is None or end > following.valid_from)
        )
        if overlaps:
            end = following.valid_from
        if end is not None and end <= version.valid_from:
            dropped += 1
            continue
        kept.append(_Version(version.key, version.valid_from, end, version.values))
    return kept, dropped


def _cut(
    versions: list[_Version], cutoff: datetime | None
) -> tuple[list[_Version], int]:
    """Only what happened before this project's own history starts."""
    if cutoff is None:
        return versions, 0
    kept = [
        _Version(
            v.key,
            v.valid_from,
            cutoff if v.valid_to is None or v.valid_to > cutoff else v.valid_to,
            v.values,
        )
        for v in versions
        if v.valid_from < cutoff
    ]
    return kept, len(versions) - len(kept)


def _windows(
    periods: Iterable[tuple[str, datetime, datetime | None]],
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Availability windows per vehicle: versions that follow without a gap."""
    by_vehicle: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for vehicle_id, start, end in sorted(
        periods, key=lambda p: (p[0], p[1], p[2] is None, p[2])
    ):
        windows = by_vehicle[vehicle_id]
        if windows and windows[-1][1] == start:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return by_vehicle


def _window_start(
    windows: Sequence[tuple[datetime, datetime | None]], moment: datetime
) -> datetime | None:
    for start, end in windows:
        if start <= moment and (end is None or moment < end):
            return start
    return None


def _exists(cursor: psycopg2.extensions.cursor, name: str) -> bool:
    cursor.execute("select to_regclass(%s) is not null", (name,))
    return bool(cursor.fetchone()[0])


def migrate(
    settings: Settings,
    source: str,
    *,
    recipients: Sequence[str],
    apply: bool = False,
) -> MigrationSummary:
    """Read the older tool's database at `source`; write (with apply) into ours."""
    where = describe_source(source)
    if not recipients:
        raise BadMigrationInput(
            "No recipients: the old tool mailed EMAIL_TO; set it or name them with "
            "--recipient. Nothing was read or written."
        )
    try:
        old = psycopg2.connect(
            source, connect_timeout=10, application_name="athlon-flex"
        )
    except psycopg2.Error as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else error
        raise MigrationError(
            f"Cannot connect to the original database {where}: {first}. Nothing was "
            "written."
        ) from None
    try:
        old.set_session(readonly=True)
        revision = _recognise(old, where)
        versions, vehicle_ids, old_notifications, option_rows = _read_versions(old)
    except psycopg2.Error as error:
        raise MigrationError(
            f"Reading the original database {where} failed: {str(error).strip()}. "
            "Nothing was written."
        ) from None
    finally:
        old.close()

    summary = MigrationSummary(
        source=where, revision=revision, applied=apply, recipients=tuple(recipients)
    )
    connection = ensure_postgres(settings)
    if apply:
        with connect(connection) as conn, conn.cursor() as cursor:
            has_notifications = _exists(cursor, NOTIFICATIONS)
        if not has_notifications:
            # One definition of the notifier's tables: the project's dbt macro.
            from transform.runner import run_operation

            run_operation(settings, "ensure_notifier_tables")
    with connect(connection) as conn:
        summary.options.read = option_rows
        summary.options.merged = option_rows - len(versions["snap_vehicle_options"])
        _plan_and_write(conn, summary, versions, vehicle_ids, old_notifications, apply)
        if not apply:
            conn.rollback()
    log.info("%s", summary)
    return summary


def _plan_and_write(
    conn: psycopg2.extensions.connection,
    summary: MigrationSummary,
    versions: dict[str, list[_Version]],
    vehicle_ids: Mapping[str, str],
    old_notifications: list[dict[str, Any]],
    apply: bool,
) -> None:
    """Compute everything from the target as it is, then write it (one transaction)."""
    cursor = conn.cursor()
    counts = {
        "snap_vehicle_clusters": summary.clusters,
        "snap_vehicles": summary.vehicles,
        "snap_vehicle_options": summary.options,
    }
    tidy: dict[str, list[_Version]] = {}
    for snapshot, found in versions.items():
        if snapshot != "snap_vehicle_options":  # counted as rows of the old table
            counts[snapshot].read = len(found)
        tidy[snapshot], counts[snapshot].left_out = _tidy(found)

    # This project's own history (if any) starts at its first load: the cut-off.
    existing_tables = {
        name for name in SNAPSHOTS if _exists(cursor, f"{SNAPSHOT_SCHEMA}.{name}")
    }
    starts = []
    for snapshot in existing_tables:
        ours = [v.scd_id for v in tidy[snapshot]]
        cursor.execute(
            sql.SQL(
                "select min(dbt_valid_from) from {} where not (dbt_scd_id = any(%s))"
            ).format(sql.Identifier(SNAPSHOT_SCHEMA, snapshot)),
            (ours,),
        )
        first = cursor.fetchone()[0]
        if first is not None:
            starts.append(first)
    summary.cutoff = min(starts) if starts else None

    to_add: dict[str, list[_Version]] = {}
    for snapshot, found in tidy.items():
        kept, cut = _cut(found, summary.cutoff)
        counts[snapshot].left_out += cut
        present: set[str] = set()
        if snapshot in existing_tables:
            cursor.execute(
                sql.SQL("select dbt_scd_id from {} where dbt_scd_id = any(%s)").format(
                    sql.Identifier(SNAPSHOT_SCHEMA, snapshot)
                ),
                ([v.scd_id for v in kept],),
            )
            present = {row[0] for row in cursor.fetchall()}
        to_add[snapshot] = [v for v in kept if v.scd_id not in present]
        counts[snapshot].present = len(kept) - len(to_add[snapshot])
        counts[snapshot].to_add = len(to_add[snapshot])

    # Windows as they will be: this project's vehicle history plus what is added.
    migrated_vehicles = sorted({v.key[0] for v in tidy["snap_vehicles"]})
    periods = [(v.key[0], v.valid_from, v.valid_to) for v in to_add["snap_vehicles"]]
    if "snap_vehicles" in existing_tables:
        cursor.execute(
            "select vehicle_id, dbt_valid_from, dbt_valid_to "
            f"from {SNAPSHOT_SCHEMA}.snap_vehicles where vehicle_id = any(%s)",
            (migrated_vehicles,),
        )
        periods.extend(cursor.fetchall())
    windows = _windows(periods)
    summary.windows = sum(len(w) for w in windows.values())
    summary.history_since = min(
        (v.valid_from for found in tidy.values() for v in found), default=None
    )

    # Notifications: the old tool's (to the recipients it mailed), and this
    # project's own whose window now starts earlier, at that window's start.
    wanted: dict[tuple[str, datetime, str], datetime | None] = {}
    summary.notifications.read = len(old_notifications)
    for row in old_notifications:
        vehicle_id = vehicle_ids.get(row["vehicle_key_hash"])
        start = (
            _window_start(windows.get(vehicle_id, []), row["available_since"])
            if vehicle_id
            else None
        )
        if start is None:
            summary.notifications.left_out += 1
            continue
        for recipient in summary.recipients:
            key = (vehicle_id, start, recipient)
            earlier = wanted.get(key)
            notified = row["notified_at"]
            if key not in wanted or (notified and earlier and notified < earlier):
                wanted[key] = notified
    present_notifications: set[tuple[str, datetime, str]] = set()
    if _exists(cursor, NOTIFICATIONS):
        cursor.execute(
            f"select vehicle_id, available_since, recipient, notified_at "
            f"from {NOTIFICATIONS} where vehicle_id = any(%s)",
            (migrated_vehicles,),
        )
        for vehicle_id, since, recipient, notified in cursor.fetchall():
            present_notifications.add((vehicle_id, since, recipient))
            start = _window_start(windows.get(vehicle_id, []), since)
            if start is not None and start != since:
                key = (vehicle_id, start, recipient)
                if key not in wanted:
                    summary.carried_over += 1
                    wanted[key] = notified
    new_notifications = {
        key: at for key, at in wanted.items() if key not in present_notifications
    }
    summary.notifications.to_add = len(new_notifications)
    summary.notifications.present = len(wanted) - len(new_notifications)

    if not apply:
        cursor.close()
        return
    _write(cursor, to_add, new_notifications)
    if any(to_add.values()):
        cursor.execute(f"drop table if exists {INCREMENTAL_MART} cascade")
        # The cascade takes the views on the mart, which only a full build makes.
        forget_full_build(cursor)
        summary.mart_dropped = True
    cursor.close()


def _write(
    cursor: psycopg2.extensions.cursor,
    to_add: Mapping[str, list[_Version]],
    notifications: Mapping[tuple[str, datetime, str], datetime | None],
) -> None:
    cursor.execute(
        sql.SQL("create schema if not exists {}").format(
            sql.Identifier(SNAPSHOT_SCHEMA)
        )
    )
    for snapshot, versions in to_add.items():
        columns = snapshot_columns(snapshot)
        table = sql.Identifier(SNAPSHOT_SCHEMA, snapshot)
        cursor.execute(
            sql.SQL("create table if not exists {} ({})").format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                    for name, kind in columns
                ),
            )
        )
        if not versions:
            continue
        names = [name for name, _ in columns]
        rows = [
            tuple(
                {
                    "dbt_scd_id": v.scd_id,
                    "dbt_updated_at": v.valid_from,
                    "dbt_valid_from": v.valid_from,
                    "dbt_valid_to": v.valid_to,
                }.get(name, v.values.get(name))
                for name in names
            )
            for v in versions
        ]
        psycopg2.extras.execute_values(
            cursor,
            sql.SQL("insert into {} ({}) values %s")
            .format(table, sql.SQL(", ").join(map(sql.Identifier, names)))
            .as_string(cursor),
            rows,
            page_size=1000,
        )
    if notifications:
        # Today's columns, named: columns added later take their defaults, under
        # which a row counts as sent.
        psycopg2.extras.execute_values(
            cursor,
            f"insert into {NOTIFICATIONS} "
            "(vehicle_id, available_since, recipient, notified_at) values %s "
            "on conflict (vehicle_id, available_since, recipient) do nothing",
            [
                (vehicle_id, since, recipient, notified_at)
                for (vehicle_id, since, recipient), notified_at in notifications.items()
            ],
            template="(%s, %s, %s, coalesce(%s, now()))",
            page_size=1000,
        )
