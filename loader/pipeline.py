"""The load stage: `extract` → checks → `normalize` → `load` into `raw_landing` →
one transaction publishes `raw` (`loader.publish`).

Extract raises on a request that fails for good or a cluster short of its
`vehicleCount`; the checks refuse an empty showroom or a shrink of more than
ATHLON_MAX_SHRINK_PERCENT (unless `allow_shrink`). A failure before the publish
leaves `raw` untouched; one in it rolls all of it back. `extracted_at`, the run's
start (UTC), is the same on every row of the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import psycopg2
from dlt.pipeline.exceptions import PipelineStepFailed

from athlon_flex.database import DatabaseError, ensure_postgres
from athlon_flex.errors import StageError
from athlon_flex.settings import Settings
from loader.account import sign_in
from loader.constants import (
    CLUSTERS_TABLE,
    LANDING_DATASET,
    OPTIONS_TABLE,
    PIPELINE_NAME,
    VEHICLES_TABLE,
    WORKDIR_PREFIX,
)
from loader.http import ApiClient, ApiError, RequestLimiter
from loader.publish import NoOptionsError, publish, read_previous
from loader.shapes import ShapeError
from loader.source import ReuseIndex, Showroom, athlon_showroom

log = logging.getLogger(__name__)

# Items dlt's extract buffers per table before writing them to its files.
PAGE_ROWS = 100
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
    limiter = RequestLimiter(settings.athlon_max_concurrency)

    def new_client() -> ApiClient:
        return ApiClient(
            settings.athlon_api_url,
            limiter,
            max_retries=settings.athlon_http_max_retries,
            backoff_seconds=settings.athlon_http_backoff_seconds,
            timeout_seconds=settings.athlon_http_timeout_seconds,
        )

    with _workdir() as work, dlt.config.values(_dlt_config(settings)):
        try:
            connection = ensure_postgres(settings)
            baseline, index = read_previous(connection)
        except (DatabaseError, psycopg2.Error) as error:
            raise LoadError(
                f"Could not read the current raw tables: {error}; {UNCHANGED}"
            ) from error
        pipeline = dlt.pipeline(
            pipeline_name=PIPELINE_NAME,
            pipelines_dir=str(work),
            destination=dlt.destinations.postgres(
                credentials=connection.dlt_credentials()
            ),
            dataset_name=LANDING_DATASET,
        )
        # Nothing of a previous run may come back: no state or schema from landing.
        pipeline.config.restore_from_destination = False
        showroom = _extract(settings, pipeline, new_client, index, extracted_at)
        if showroom.unknown_fields:
            log.info(
                "API fields not loaded (not in loader.shapes): %s",
                ", ".join(sorted(showroom.unknown_fields)),
            )
        _check_plausible(showroom, baseline, settings, allow_shrink=allow_shrink)
        try:
            pipeline.normalize()
            info = pipeline.load()
        except PipelineStepFailed as error:
            raise LoadError(
                f"dlt failed in its {error.step} step: {error.exception}; {UNCHANGED}"
            ) from error
        try:
            rows = publish(connection, extracted_at, info.loads_ids)
        except NoOptionsError as error:
            raise LoadError(f"{error}; {UNCHANGED}") from error
        except psycopg2.Error as error:
            raise LoadError(
                f"Publishing the load to raw failed: {error}; {UNCHANGED}"
            ) from error

    stats = limiter.stats
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


def _dlt_config(settings: Settings) -> dict[str, Any]:
    """dlt settings of a load: its thread pool, buffers and files.

    The pool runs the per-cluster and per-car calls; twice the requests in flight, so
    a call waiting out a back-off leaves no slot idle. dlt buffers 5,000 items per
    table before writing (extract and normalize) and its load step reads each INSERT
    file whole: small buffers and files keep every step's memory flat.
    """
    slots = settings.athlon_max_concurrency
    return {
        "extract.workers": 2 * slots,
        "extract.max_parallel_items": 4 * slots,
        "data_writer.buffer_max_items": PAGE_ROWS,
        "normalize.data_writer.buffer_max_items": NORMALIZE_BUFFER_ROWS,
        "normalize.data_writer.file_max_items": NORMALIZE_BUFFER_ROWS,
        "load.workers": LOAD_WORKERS,
    }


def _extract(
    settings: Settings,
    pipeline: dlt.Pipeline,
    new_client: Callable[[], ApiClient],
    index: ReuseIndex,
    extracted_at: datetime,
) -> Showroom:
    """Sign in and let dlt extract the whole showroom; LoadError if it cannot."""
    member = new_client()
    showroom: Showroom | None = None
    try:
        password = settings.athlon_password
        identity = sign_in(
            member,
            username=settings.athlon_username,
            password=password.get_secret_value() if password else None,
            gross_yearly_income=settings.gross_yearly_income,
            apply_loonheffingskorting=settings.apply_loonheffingskorting,
        )
        showroom = Showroom(
            member,
            new_client,
            identity,
            index,
            extracted_at,
            settings.athlon_details_refresh_hours,
        )
        pipeline.extract(athlon_showroom(showroom))
    except (ApiError, ShapeError) as error:
        raise LoadError(f"{error}; {UNCHANGED}") from error
    except PipelineStepFailed as error:
        cause = _api_cause(error)
        raise LoadError(
            f"{cause or f'dlt failed in its extract step: {error.exception}'}; "
            f"{UNCHANGED}"
        ) from error
    finally:
        if showroom is not None:
            showroom.close()
        else:
            member.close()
    return showroom


def _api_cause(error: BaseException | None) -> BaseException | None:
    """The ApiError or ShapeError behind dlt's wrapping of a failed extract."""
    while error is not None and not isinstance(error, ApiError | ShapeError):
        error = (
            getattr(error, "exception", None) or error.__cause__ or error.__context__
        )
    return error


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """dlt's pipeline directory: fresh, locked while this load runs, removed after it.

    First removes those of killed loads: those whose lock no process holds (the
    kernel drops a killed process's locks).
    """
    for stale in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        lock = stale / _LOCK_FILE
        try:
            with lock.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(stale, ignore_errors=True)
                log.info("Removed %s, left by a load that was killed", stale)
        except OSError:  # BlockingIOError: a live load's; else not ours to judge
            continue
    # Made under another name, locked, then renamed: a directory is never visible
    # under WORKDIR_PREFIX without its lock held, so another load's sweep above
    # cannot take a live load's fresh directory for a killed one's.
    unborn = Path(tempfile.mkdtemp(prefix=f"unborn-{WORKDIR_PREFIX}"))
    work = unborn.with_name(unborn.name.removeprefix("unborn-"))
    try:
        with (unborn / _LOCK_FILE).open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            unborn.rename(work)
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(unborn, ignore_errors=True)


def _check_plausible(
    showroom: Showroom, baseline: int, settings: Settings, *, allow_shrink: bool
) -> None:
    """Refuse a picture that is more likely an API fault than the real showroom.

    `baseline` is the number of vehicles in `raw.vehicles` before this run.
    """
    count = showroom.cars
    if count == 0:
        if allow_shrink:
            log.warning("The showroom is empty; emptying raw (allow_shrink)")
            return
        raise LoadError(
            f"Athlon API showed an empty showroom ({showroom.clusters} clusters, "
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


__all__ = ["LoadError", "LoadSummary", "load"]
