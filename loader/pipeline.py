"""The load stage: `extract` → checks (empty, shrink) → `normalize` → `load` into
`raw_landing` → `loader.publish` replaces `raw` in one transaction. A failure leaves
`raw` as it was; `extracted_at` (the run's start, UTC) is on every row of the run."""

from __future__ import annotations

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
from typing import Any

import dlt
import psycopg2
from dlt.pipeline.exceptions import PipelineStepFailed

from athlon_flex.database import DatabaseError, ensure_postgres
from athlon_flex.errors import StageError
from athlon_flex.settings import Settings
from loader.account import sign_in
from loader.constants import (
    CLUSTERS_ENDPOINT,
    LANDING_DATASET,
    PIPELINE_NAME,
    WORKDIR_PREFIX,
)
from loader.http import ApiClient, ApiError, RequestLimiter
from loader.publish import NoOptionsError, publish, read_previous
from loader.shapes import ShapeError
from loader.source import Showroom, athlon_showroom

log = logging.getLogger(__name__)

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
        clusters, vehicles, options = self.rows.values()
        return (
            f"loaded {clusters} clusters, {vehicles} vehicles, {options} options in "
            f"{self.seconds:.1f} s; {self.requests} requests ({self.retries} retries, "
            f"at most {self.max_in_flight} in flight); details fetched "
            f"{self.details_fetched}, reused {self.details_reused}"
        )


def load(settings: Settings, *, allow_shrink: bool = False) -> LoadSummary:
    """Replace `raw` with the showroom as the API shows it now, or raise LoadError."""
    started, extracted_at = time.perf_counter(), datetime.now(UTC)
    limiter = RequestLimiter(settings.athlon_max_concurrency)
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

        def new_client() -> ApiClient:
            return ApiClient(settings, limiter)

        with _failing_closed(), contextlib.closing(new_client()) as member:
            password = settings.athlon_password
            identity = sign_in(
                member,
                username=settings.athlon_username,
                password=password.get_secret_value() if password else None,
                gross_yearly_income=settings.gross_yearly_income,
                apply_loonheffingskorting=settings.apply_loonheffingskorting,
            )
            hours = settings.athlon_details_refresh_hours
            showroom = Showroom(
                member, new_client, identity, index, extracted_at, hours
            )
            with contextlib.closing(showroom):
                pipeline.extract(athlon_showroom(showroom))
        if showroom.unknown_fields:
            log.info(
                "API fields not loaded (not in loader.shapes): %s",
                ", ".join(sorted(showroom.unknown_fields)),
            )
        _check_complete(showroom)
        _check_plausible(
            showroom.cars, showroom.clusters, baseline, settings, allow_shrink
        )
        with _failing_closed():
            pipeline.normalize()
            info = pipeline.load()
        try:
            rows = publish(connection, extracted_at, info.loads_ids)
        except NoOptionsError as error:
            raise LoadError(f"{error}; {UNCHANGED}") from error
        except psycopg2.Error as error:
            raise LoadError(
                f"Publishing the load to raw failed: {error}; {UNCHANGED}"
            ) from error
    summary = LoadSummary(
        rows=rows,
        requests=limiter.requests,
        retries=limiter.retries,
        seconds=round(time.perf_counter() - started, 3),
        details_fetched=showroom.fetched,
        details_reused=showroom.reused,
        max_in_flight=limiter.max_in_flight,
        anonymous_fallbacks=showroom.anonymous_fallbacks,
        extracted_at=extracted_at,
    )
    log.info("Load: %s", summary)
    return summary


def _dlt_config(settings: Settings) -> dict[str, Any]:
    """dlt's thread pool (twice the requests in flight, so a call waiting out a
    back-off leaves no slot idle) and small buffers and files, which keep every step's
    memory flat (dlt buffers 5,000 items per table; its load step reads files whole)."""
    slots = settings.athlon_max_concurrency
    return {
        "extract.workers": 2 * slots,
        "extract.max_parallel_items": 4 * slots,
        "data_writer.buffer_max_items": 100,
        "normalize.data_writer.buffer_max_items": 1000,
        "normalize.data_writer.file_max_items": 1000,
        "load.workers": 4,
    }


@contextlib.contextmanager
def _failing_closed() -> Iterator[None]:
    """API and shape errors, and dlt's failures, as one LoadError line each."""
    try:
        yield
    except (ApiError, ShapeError) as error:
        raise LoadError(f"{error}; {UNCHANGED}") from error
    except PipelineStepFailed as error:
        cause: BaseException | None = error  # the API's or shape's error inside dlt's
        while cause is not None and not isinstance(cause, ApiError | ShapeError):
            cause = (
                getattr(cause, "exception", None)
                or cause.__cause__
                or cause.__context__
            )
        problem = cause or f"dlt failed in its {error.step} step: {error.exception}"
        raise LoadError(f"{problem}; {UNCHANGED}") from error


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """dlt's pipeline directory: fresh, locked while the load runs, removed after it.
    First removes those of killed loads, whose lock no process holds any more."""
    for stale in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        try:
            with (stale / ".lock").open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(stale, ignore_errors=True)
                log.info("Removed %s, left by a load that was killed", stale)
        except OSError:  # BlockingIOError: a live load's; else not ours to judge
            continue
    # Locked under another name, then renamed: no sweep can see a live directory
    # without its lock held.
    unborn = Path(tempfile.mkdtemp(prefix=f"unborn-{WORKDIR_PREFIX}"))
    work = unborn.with_name(unborn.name.removeprefix("unborn-"))
    try:
        with (unborn / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            unborn.rename(work)
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(unborn, ignore_errors=True)


def _check_complete(showroom: Showroom) -> None:
    """Each cluster's list accounted for its count (loader.source.vehicles); summed
    over the run, a car counts once: a car listed in two clusters must not stand in
    for one missing from either."""
    accounted = showroom.cars + showroom.unusable
    if accounted < showroom.counted:
        raise LoadError(
            f"Athlon API listed {accounted} distinct vehicles in all, but "
            f"{CLUSTERS_ENDPOINT} counts {showroom.counted} (a car listed in two "
            f"clusters stood in for a missing one); {UNCHANGED}"
        )


def _check_plausible(
    cars: int, clusters: int, baseline: int, settings: Settings, allow_shrink: bool
) -> None:
    """Refuse an empty showroom, or one shrunk by more than the setting from the
    `baseline` cars in `raw.vehicles`: more likely an API fault than the showroom."""
    again = "load again with allow_shrink (--allow-shrink)."
    if cars == 0 and not allow_shrink:
        raise LoadError(
            f"Athlon API showed an empty showroom ({clusters} clusters, 0 vehicles; "
            f"raw.vehicles has {baseline}); {UNCHANGED}. If the showroom really is "
            f"empty, {again}"
        )
    if cars == 0:
        log.warning("The showroom is empty; emptying raw (allow_shrink)")
        return
    shrink = 100 * (baseline - cars) / baseline if baseline else 0
    limit = settings.athlon_max_shrink_percent
    if shrink <= limit:
        return
    if not allow_shrink:
        raise LoadError(
            f"The showroom shrank from {baseline} to {cars} vehicles ({shrink:.0f}%, "
            f"more than ATHLON_MAX_SHRINK_PERCENT={limit:g}); {UNCHANGED}. If the "
            f"drop is real, {again}"
        )
    log.warning(
        "Showroom shrank from %d to %d vehicles (%.0f%%): allowed",
        baseline,
        cars,
        shrink,
    )


__all__ = ["LoadError", "LoadSummary", "load"]
