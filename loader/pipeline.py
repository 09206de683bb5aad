"""The load stage: fetch and check the whole showroom, land it with dlt, publish `raw`.

Steps of `load()`, inside one temporary working directory:
1. Read the shrink baseline (cars in `raw.vehicles`) and which cars' details are kept
   in `raw_landing` (`loader.publish.read_previous`).
2. Fetch the showroom (`loader.showroom`): clusters and summaries into memory, the
   details that are not reused into a spool file. Incomplete lists, failed requests
   and unaccountable answers raise here.
3. Refuse implausible pictures: an empty showroom or a shrink of more than
   ATHLON_MAX_SHRINK_PERCENT against `raw.vehicles` (both unless `allow_shrink`).
4. dlt extracts, normalizes and loads into `raw_landing` (a fresh pipeline directory,
   no state restored from the destination, so nothing stale is replayed).
5. `loader.publish` replaces every raw table from landing in one transaction (and
   refuses cars without a single option between them).
A failure in 1-4 leaves `raw` untouched; a failure in 5 rolls back all of it.

Temporary files: the working directory (the spool, dlt's pipeline directory) is
removed when the load ends; a load killed with SIGKILL cannot, so every load first
removes the working directories no live load holds (each holds a lock on its own).

Timing: `LoadSummary.seconds` is the wall time of `load()` itself. `extracted_at` is
the run's start (UTC), the same on every row of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dlt
import psycopg2
from dlt.pipeline.exceptions import PipelineStepFailed

from athlon_flex.database import DatabaseError, PostgresConnection, ensure_postgres
from athlon_flex.errors import StageError
from athlon_flex.settings import Settings
from loader.http import ApiError
from loader.publish import NoOptionsError, publish, read_previous
from loader.settings import (
    CLUSTERS_TABLE,
    LANDING_DATASET,
    OPTIONS_TABLE,
    PIPELINE_NAME,
    VEHICLES_TABLE,
    WORKDIR_PREFIX,
)
from loader.shapes import ShapeError
from loader.showroom import Showroom, fetch_showroom
from loader.source import athlon_showroom
from loader.spool import PAGE_ROWS, RowSpool

log = logging.getLogger(__name__)

# Rows per table that dlt's normalize step buffers before writing its load files.
NORMALIZE_BUFFER_ROWS = 1000
# Load jobs dlt runs at once (its default is 20).
LOAD_WORKERS = 4
_LOCK_FILE = ".lock"

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
    with _workdir() as work:
        spool = RowSpool(work / "details.pickle")
        try:
            connection = ensure_postgres(settings)
            baseline, index = read_previous(connection)
            showroom = asyncio.run(fetch_showroom(settings, index, extracted_at, spool))
        except (ApiError, ShapeError) as error:
            raise LoadError(f"{error}; {UNCHANGED}") from error
        except (DatabaseError, psycopg2.Error) as error:
            raise LoadError(
                f"Could not read the current raw tables: {error}; {UNCHANGED}"
            ) from error
        finally:
            spool.close()
        if showroom.unknown_fields:
            log.info(
                "API fields not loaded (not in loader.shapes): %s",
                ", ".join(sorted(showroom.unknown_fields)),
            )
        _check_plausible(showroom, baseline, settings, allow_shrink=allow_shrink)
        _land(showroom, spool, connection, work / "dlt")
        try:
            rows = publish(connection, extracted_at)
        except NoOptionsError as error:
            raise LoadError(f"{error}; {UNCHANGED}") from error
        except psycopg2.Error as error:
            raise LoadError(
                f"Publishing the load to raw failed: {error}; {UNCHANGED}"
            ) from error

    stats = showroom.stats
    summary = LoadSummary(
        rows=rows,
        requests=stats.requests,
        retries=stats.retries,
        seconds=round(time.perf_counter() - started, 3),
        details_fetched=showroom.fetched,
        details_reused=showroom.reused,
        max_in_flight=stats.max_in_flight,
        anonymous_fallbacks=showroom.anonymous_fallbacks,
        extracted_at=extracted_at,
    )
    log.info("Load: %s", summary)
    return summary


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """A fresh working directory, locked while this load runs, removed after it.

    First removes the directories of loads that were killed: those whose lock no
    process holds (the kernel drops a killed process's locks).
    """
    for stale in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        lock = stale / _LOCK_FILE
        try:
            with lock.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(stale, ignore_errors=True)
                log.info("Removed %s, left by a load that was killed", stale)
        except BlockingIOError:
            continue  # a live load's
        except OSError:
            continue  # not ours to judge (not a directory, no permission)
    work = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    try:
        with (work / _LOCK_FILE).open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_plausible(
    showroom: Showroom, baseline: int, settings: Settings, *, allow_shrink: bool
) -> None:
    """Refuse a picture that is more likely an API fault than the real showroom.

    `baseline` is the number of vehicles in `raw.vehicles` before this run.
    """
    count = len(showroom.summaries)
    if count == 0:
        if allow_shrink:
            log.warning("The showroom is empty; emptying raw (allow_shrink)")
            return
        raise LoadError(
            f"Athlon API showed an empty showroom ({len(showroom.clusters)} clusters, "
            f"0 vehicles; raw.vehicles has {baseline}); {UNCHANGED}. If the showroom "
            "really is empty, load again with allow_shrink (--allow-shrink)."
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


def _land(
    showroom: Showroom,
    spool: RowSpool,
    connection: PostgresConnection,
    pipelines_dir: Path,
) -> None:
    """dlt: extract, normalize and load the run into `raw_landing`."""
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=str(pipelines_dir),
        destination=dlt.destinations.postgres(credentials=connection.dlt_credentials()),
        dataset_name=LANDING_DATASET,
    )
    # Nothing of a previous run may come back: no state or schema from landing.
    pipeline.config.restore_from_destination = False
    # dlt buffers 5,000 items per table before writing (extract and normalize). In
    # extract an item is a page of cars with their options, and normalize parses each
    # buffer as one line: smaller buffers keep both steps' memory flat. The load step
    # reads each INSERT file whole, so normalize starts a new file every so many rows.
    buffer = {
        "sources.data_writer.buffer_max_items": PAGE_ROWS,
        "normalize.data_writer.buffer_max_items": NORMALIZE_BUFFER_ROWS,
        "normalize.data_writer.file_max_items": NORMALIZE_BUFFER_ROWS,
        # Each load job holds its file's statements: a few at once, not one per file.
        "load.workers": LOAD_WORKERS,
    }
    source = athlon_showroom(showroom.clusters, showroom.summaries, spool.pages())
    try:
        with dlt.config.values(buffer):
            # INSERT, not CSV + COPY: dlt's COPY reads "" as NULL in nullable columns,
            # and every column but the keys is nullable.
            pipeline.run(source)
    except PipelineStepFailed as error:
        raise LoadError(
            f"dlt failed in its {error.step} step: {error.exception}; {UNCHANGED}"
        ) from error


__all__ = ["LoadError", "LoadSummary", "load"]
