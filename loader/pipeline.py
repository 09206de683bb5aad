"""The load stage: fetch and check the whole showroom, then let dlt replace `raw`.

Steps of `load()`, all inside one temporary working directory:
1. Copy the current `raw` snapshot to a spool on disk, in a thread while the API is
   asked for the summaries (vehicle count for the shrink check; the rows whose
   details can be reused).
2. Fetch everything from the API into validated rows (`loader.showroom`), spooled to
   disk as they arrive.
3. Refuse implausible pictures: an empty showroom (unless `allow_shrink`), a shrink
   of more than ATHLON_MAX_SHRINK_PERCENT against `raw.vehicles` (unless
   `allow_shrink`), vehicles without a single option between them (the API lists
   every option of every car, included or not).
4. Hand the spooled rows (reused vehicles completed with this run's summary) to dlt,
   a page at a time, in a fresh pipeline directory (no
   stale package can be replayed, no state is restored from the destination) and
   load with `replace` + `insert-from-staging`, as CSV through COPY.
Any failure in 1-3 raises `LoadError` before dlt runs; `raw` is untouched. A failure
inside dlt's load leaves each table as it was too, since each is swapped from
`raw_staging` in one transaction at the very end (vehicles together with options;
clusters in their own transaction).

Memory hardly grows with the showroom: rows live in the spool files, dlt reads them
back a page at a time, and its extract is told to write a page per line (so its
normalize step never parses more than a page at once). What stays in memory per
vehicle is its summary and reuse index entry, about 2.5 KiB. See docs/benchmarks.md.

`allow_shrink=True` accepts a real large drop, including an empty showroom: then the
three tables are emptied together in one statement (dlt would leave an empty child
table's old rows in place, since it only replaces tables that receive rows).

Timing: `LoadSummary.seconds` is the wall time of `load()` itself. `extracted_at` is
the run's start (UTC), the same on every row of the run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dlt
import psycopg2
from dlt.pipeline.exceptions import PipelineStepFailed
from psycopg2 import sql

from athlon_flex.database import (
    DatabaseError,
    PostgresConnection,
    connect,
    ensure_postgres,
)
from athlon_flex.errors import StageError
from athlon_flex.settings import Settings
from loader.http import ApiError
from loader.previous import PreviousSnapshot
from loader.settings import (
    CLUSTERS_TABLE,
    DATASET_NAME,
    OPTIONS_TABLE,
    PIPELINE_NAME,
    VEHICLES_TABLE,
)
from loader.shapes import Row, ShapeError
from loader.showroom import Showroom, fetch_showroom, reused_pages
from loader.source import athlon_showroom
from loader.spool import PAGE_ROWS, RowSpool

log = logging.getLogger(__name__)

# Rows per table that dlt's normalize step buffers before writing its load files.
NORMALIZE_BUFFER_ROWS = 1000

UNCHANGED = "raw tables left unchanged"


class LoadError(StageError):
    """The load failed; the message says what, and that `raw` was left unchanged."""


@dataclass(frozen=True)
class LoadSummary:
    """What one load landed and what it cost."""

    rows: dict[str, int]
    requests: int
    retries: int
    seconds: float
    details_fetched: int
    details_reused: int
    max_in_flight: int
    anonymous_fallbacks: int
    extracted_at: datetime

    def __str__(self) -> str:
        return (
            f"loaded {self.rows[CLUSTERS_TABLE]} clusters, "
            f"{self.rows[VEHICLES_TABLE]} vehicles, {self.rows[OPTIONS_TABLE]} options "
            f"in {self.seconds:.1f} s; {self.requests} requests ({self.retries} "
            f"retries, at most {self.max_in_flight} in flight); details fetched "
            f"{self.details_fetched}, reused {self.details_reused}"
        )


def load(settings: Settings, *, allow_shrink: bool = False) -> LoadSummary:
    """Replace `raw` with the showroom as the API shows it now, or raise LoadError."""
    started = time.perf_counter()
    extracted_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="athlon-load-") as workdir:
        work = Path(workdir)
        fetched = RowSpool(work / "fetched.pickle")
        stored = RowSpool(work / "stored.pickle")
        try:
            connection = ensure_postgres(settings)
            previous = PreviousSnapshot(connection)
            showroom = asyncio.run(
                _fetch(settings, previous, stored, extracted_at, fetched)
            )
        except (ApiError, ShapeError) as error:
            raise LoadError(f"{error}; {UNCHANGED}") from error
        except (DatabaseError, psycopg2.Error) as error:
            raise LoadError(
                f"Could not read the current raw tables: {error}; {UNCHANGED}"
            ) from error
        finally:
            fetched.close()
            stored.close()
        if showroom.unknown_fields:
            log.info(
                "API fields not loaded (not in loader.shapes): %s",
                ", ".join(sorted(showroom.unknown_fields)),
            )
        counts = {
            CLUSTERS_TABLE: len(showroom.clusters),
            VEHICLES_TABLE: fetched.rows + len(showroom.reused),
            OPTIONS_TABLE: fetched.options + previous.option_count(showroom.reused),
        }
        _check_plausible(
            counts,
            previous.vehicle_count,
            settings,
            allow_shrink=allow_shrink,
        )
        if counts[VEHICLES_TABLE]:
            vehicle_pages = itertools.chain(
                fetched.pages(), reused_pages(stored, showroom.reused, extracted_at)
            )
            _write(showroom.clusters, vehicle_pages, connection, work / "dlt")
        else:
            _empty_raw(connection)

    stats = showroom.stats
    summary = LoadSummary(
        rows=counts,
        requests=stats.requests,
        retries=stats.retries,
        seconds=round(time.perf_counter() - started, 3),
        details_fetched=fetched.rows,
        details_reused=len(showroom.reused),
        max_in_flight=stats.max_in_flight,
        anonymous_fallbacks=showroom.anonymous_fallbacks,
        extracted_at=extracted_at,
    )
    log.info("Load: %s", summary)
    return summary


async def _fetch(
    settings: Settings,
    previous: PreviousSnapshot,
    stored: RowSpool,
    extracted_at: datetime,
    fetched: RowSpool,
) -> Showroom:
    """Fetch the showroom while a thread copies the current raw snapshot."""
    opening = asyncio.ensure_future(asyncio.to_thread(previous.read, stored))
    try:
        return await fetch_showroom(settings, opening, extracted_at, fetched)
    finally:
        # After a failed fetch the read may still run (a thread cannot be cancelled):
        # wait for it, and take its outcome so asyncio has nothing left to report.
        await asyncio.wait([opening])
        if not opening.cancelled():
            opening.exception()


def _check_plausible(
    counts: dict[str, int], baseline: int, settings: Settings, *, allow_shrink: bool
) -> None:
    """Refuse a picture that is more likely an API fault than the real showroom.

    `counts` are the rows per table this run would load; `baseline` is the number of
    vehicles in `raw.vehicles` before this run.
    """
    count = counts[VEHICLES_TABLE]
    if count == 0:
        if allow_shrink:
            log.warning("The showroom is empty; emptying raw (allow_shrink)")
            return
        raise LoadError(
            f"Athlon API showed an empty showroom ({counts[CLUSTERS_TABLE]} clusters, "
            f"0 vehicles; raw.vehicles has {baseline}); {UNCHANGED}. If the showroom "
            "really is empty, load again with allow_shrink (--allow-shrink)."
        )
    if counts[OPTIONS_TABLE] == 0:
        raise LoadError(
            f"Athlon API answered no options for any of the {count} vehicles; "
            f"{UNCHANGED}"
        )
    if baseline == 0 or count >= baseline:
        return
    shrink = 100 * (baseline - count) / baseline
    if shrink <= settings.athlon_max_shrink_percent:
        return
    if allow_shrink:
        log.warning(
            "Showroom shrank from %d to %d vehicles (%.0f%%): allowed",
            baseline,
            count,
            shrink,
        )
        return
    raise LoadError(
        f"The showroom shrank from {baseline} to {count} vehicles ({shrink:.0f}%, more "
        f"than ATHLON_MAX_SHRINK_PERCENT={settings.athlon_max_shrink_percent:g}); "
        f"{UNCHANGED}. If the drop is real, load again with allow_shrink "
        "(--allow-shrink)."
    )


def _write(
    clusters: list[Row],
    vehicle_pages: Iterable[list[Row]],
    connection: PostgresConnection,
    pipelines_dir: Path,
) -> None:
    """Run dlt over the rows in the run's throw-away working directory."""
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=str(pipelines_dir),
        destination=dlt.destinations.postgres(
            credentials=connection.dlt_credentials(),
            replace_strategy="insert-from-staging",
        ),
        dataset_name=DATASET_NAME,
    )
    # Nothing of a previous run may come back: no state or schema from `raw`.
    pipeline.config.restore_from_destination = False
    # dlt buffers 5,000 items per table before writing (extract and normalize). In
    # extract an item is a whole vehicle with its options, and normalize parses each
    # buffer as one line: ~100 MiB per 1,000 vehicles. Smaller buffers keep both
    # steps' memory flat at a negligible cost in time.
    buffer = {
        "sources.data_writer.buffer_max_items": PAGE_ROWS,
        "normalize.data_writer.buffer_max_items": NORMALIZE_BUFFER_ROWS,
    }
    try:
        with dlt.config.values(buffer):
            # CSV + COPY is ~2x faster than dlt's INSERT batches for ~20k option
            # rows. dlt's COPY reads "" as NULL in nullable columns; shapes makes
            # that a no-op (required columns are NOT NULL, optional "" is None).
            pipeline.run(
                athlon_showroom(clusters, vehicle_pages), loader_file_format="csv"
            )
    except PipelineStepFailed as error:
        raise LoadError(
            f"dlt failed in its {error.step} step: {error.exception}; {UNCHANGED}"
        ) from error


def _empty_raw(connection: PostgresConnection) -> None:
    """Empty the three tables in one statement (allow_shrink and no vehicles)."""
    tables = (CLUSTERS_TABLE, VEHICLES_TABLE, OPTIONS_TABLE)
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select table_name from information_schema.tables "
            "where table_schema = %s and table_name = any(%s)",
            (DATASET_NAME, list(tables)),
        )
        existing = [name for (name,) in cursor.fetchall()]
        if existing:
            cursor.execute(
                sql.SQL("truncate {}").format(
                    sql.SQL(", ").join(
                        sql.Identifier(DATASET_NAME, name) for name in existing
                    )
                )
            )


__all__ = ["LoadError", "LoadSummary", "load"]
