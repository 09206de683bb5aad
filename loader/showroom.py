"""Fetch the whole showroom: clusters, every car's summary, the details that changed.

Order of a run: sign in (if configured) → `GET VehicleCluster` → one
`GET VehicleVariation` per cluster (all at once, bounded by the shared limit) → one
`GET Vehicle` per car whose details cannot be reused (a fixed pool of workers, again
bounded by the shared limit). A request that fails for good cancels the rest and
raises; the caller refuses the load before anything is written.

Complete: each cluster's list must account for the cluster's `vehicleCount`. A
shorter list is asked for again (the API has answered [] for whole makes while still
counting their cars), and if it stays short the load fails naming the cluster and both
counts. Tolerant per car: an odd field, odd details or an unusable id never fail the
load (see `loader.shapes`); each odd car gets one warning naming it. Ids are
lower-cased; a car listed twice (in another case, or in two clusters) is kept once.

Details are the expensive part (one request per car). A car's details are reused when
its summary hash (the VehicleVariation JSON plus who asked) is unchanged and they are
younger than `athlon_details_refresh_hours`; fetched rows go to a spool file, not into
memory, until dlt reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from athlon_flex.settings import Settings
from loader.account import Identity, sign_in
from loader.http import ApiClient, ApiError, HttpStats, RequestLimiter, RetryPolicy
from loader.settings import (
    CLUSTERS_ENDPOINT,
    COMPLETENESS_RETRIES,
    DETAILS_ENDPOINT,
    PROGRESS_STEP,
    SEGMENT,
    SORT_BY,
    VARIATIONS_ENDPOINT,
)
from loader.shapes import (
    Row,
    ShapeError,
    cluster_row,
    detail_row,
    expect_list,
    summary_hash,
    summary_row,
)
from loader.spool import RowSpool

log = logging.getLogger(__name__)
T = TypeVar("T")

# Detail workers per allowed request in flight: a worker waiting out a back-off holds
# no request slot, so a few spare workers keep the limit busy.
_WORKERS_PER_SLOT = 2

# vehicle id -> (summary hash, details fetched at) of the details the last load kept
ReuseIndex = dict[str, tuple[str, datetime]]


@dataclass(repr=False)
class Showroom:
    """What the API showed: clusters and summaries in memory, details in the spool."""

    clusters: list[Row]
    summaries: list[Row]
    fetched: int = 0
    reused: int = 0
    anonymous_fallbacks: int = 0
    unknown_fields: set[str] = field(default_factory=set)
    stats: HttpStats = field(default_factory=HttpStats)

    def __repr__(self) -> str:  # asyncio formats the result of a finished task
        return f"Showroom({len(self.clusters)} clusters, {len(self.summaries)} cars)"


def reusable(index: ReuseIndex, row: Row, now: datetime, refresh_hours: float) -> bool:
    """Whether the kept details of this car still hold (same summary, fresh enough).

    Each car's age limit is spread between half and all of `refresh_hours` (stable per
    id), so after a full load the refreshes trickle in instead of all at once.
    """
    kept = index.get(row["id"])
    if kept is None or kept[0] != row["summary_hash"]:
        return False
    digest = hashlib.sha256(row["id"].encode()).digest()
    spread = 0.5 + int.from_bytes(digest[:4], "big") / 2**33
    return now - kept[1] < timedelta(hours=refresh_hours * spread)


async def fetch_showroom(
    settings: Settings, index: ReuseIndex, extracted_at: datetime, spool: RowSpool
) -> Showroom:
    """Everything the API shows now; ApiError or ShapeError if it cannot be had."""
    limiter = RequestLimiter(settings.athlon_max_concurrency)
    policy = RetryPolicy(
        settings.athlon_http_max_retries, settings.athlon_http_backoff_seconds
    )

    def new_client() -> ApiClient:
        return ApiClient(
            settings.athlon_api_url,
            limiter,
            policy,
            timeout_seconds=settings.athlon_http_timeout_seconds,
        )

    member = new_client()
    run: _Run | None = None
    try:
        identity = await sign_in(
            member,
            username=settings.athlon_username,
            password=(
                settings.athlon_password.get_secret_value()
                if settings.athlon_password
                else None
            ),
            gross_yearly_income=settings.gross_yearly_income,
            apply_loonheffingskorting=settings.apply_loonheffingskorting,
        )
        run = _Run(settings, extracted_at, identity, member, new_client)
        showroom = await run.fetch(index, spool)
        showroom.stats = limiter.stats
        return showroom
    finally:
        await member.aclose()
        if run is not None and run.anonymous is not None:
            await run.anonymous.aclose()


class _Run:
    """One fetch: the clients, the identity and the counters it accumulates."""

    def __init__(
        self,
        settings: Settings,
        extracted_at: datetime,
        identity: Identity,
        member: ApiClient,
        new_client: Callable[[], ApiClient],
    ) -> None:
        self.settings = settings
        self.extracted_at = extracted_at
        self.identity = identity
        self.member = member
        # Cookie-less client for vehicles a member may not lease; made when needed.
        self.anonymous: ApiClient | None = None
        self._new_client = new_client
        self.unknown: set[str] = set()
        self.fallbacks = 0
        self.done = 0

    async def fetch(self, index: ReuseIndex, spool: RowSpool) -> Showroom:
        clusters = await self._clusters()
        lists = await _all(self._summaries(cluster) for cluster in clusters)
        summaries = _once_each(clusters, lists)
        hours = self.settings.athlon_details_refresh_hours
        to_fetch = [
            row
            for row in summaries
            if not reusable(index, row, self.extracted_at, hours)
        ]
        log.info(
            "Showroom: %d clusters, %d vehicles; fetching details of %d, reusing %d",
            len(clusters),
            len(summaries),
            len(to_fetch),
            len(summaries) - len(to_fetch),
        )
        await self._fetch_details(to_fetch, spool)
        return Showroom(
            clusters=clusters,
            summaries=summaries,
            fetched=len(to_fetch),
            reused=len(summaries) - len(to_fetch),
            anonymous_fallbacks=self.fallbacks,
            unknown_fields=self.unknown,
        )

    async def _clusters(self) -> list[Row]:
        where = f"GET {CLUSTERS_ENDPOINT}"
        payload = await self.member.get(CLUSTERS_ENDPOINT, {"Filters.Segment": SEGMENT})
        clusters: dict[tuple[str, str], Row] = {}
        for item in expect_list(payload, where):
            problems: list[str] = []
            row = cluster_row(item, self.extracted_at, self.unknown, problems)
            key = (row["make"], row["model"])
            if key in clusters:
                raise ShapeError(f"{where}: cluster {key[0]} {key[1]} appears twice")
            if problems:
                log.warning("Cluster %s %s: %s (null)", *key, "; ".join(problems))
            clusters[key] = row
        return list(clusters.values())

    async def _summaries(self, cluster: Row) -> list[Row]:
        """The cluster's summary rows; its list must hold at least `vehicleCount`.

        No profile filters: the whole showroom.
        """
        params = {
            "Filters.Segment": SEGMENT,
            "Filters.Make": cluster["make"],
            "Filters.Model": cluster["model"],
            "Filters.SortBy": SORT_BY,
        }
        name = f"{cluster['make']} {cluster['model']}"
        where = f"GET {VARIATIONS_ENDPOINT} for {name}"
        count = cluster["vehicle_count"]
        for attempt in range(COMPLETENESS_RETRIES + 1):
            payload = await self.member.get(VARIATIONS_ENDPOINT, params, subject=name)
            items = expect_list(payload, where)
            if len(items) >= count:
                break
            log.info(
                "%s listed %d vehicles of the %d its cluster counts (try %d of %d)",
                where,
                len(items),
                count,
                attempt + 1,
                COMPLETENESS_RETRIES + 1,
            )
        else:
            raise ShapeError(
                f"{where} listed {len(items)} vehicles, but {CLUSTERS_ENDPOINT} counts "
                f"{count} in that cluster (asked {COMPLETENESS_RETRIES + 1} times)"
            )
        rows = []
        for item in items:
            problems: list[str] = []
            row = summary_row(item, cluster, self.unknown, problems)
            if row is None:
                shown = item.get("id") if isinstance(item, dict) else item
                log.warning(
                    "%s: skipped a vehicle without a usable id (%.80r)", where, shown
                )
                continue
            if problems:
                log.warning(
                    "Vehicle %s (%s): %s (null)", row["id"], where, _join(problems)
                )
            row["summary_hash"] = summary_hash(item, self.identity.context)
            row["extracted_at"] = self.extracted_at
            rows.append(row)
        return rows

    async def _fetch_details(self, rows: list[Row], spool: RowSpool) -> None:
        """Fetch each car's details and spool its row as soon as it arrives."""
        pending = iter(rows)
        total = len(rows)

        async def worker() -> None:
            for row in pending:  # shared: each car goes to exactly one worker
                spool.add(await self._details(row, total))

        workers = min(total, _WORKERS_PER_SLOT * self.settings.athlon_max_concurrency)
        await _all(worker() for _ in range(workers))

    async def _details(self, summary: Row, total: int) -> Row:
        """`GET Vehicle` for one car as a details row; a member's 404 is retried
        anonymously. Odd content is null, with one warning naming the car."""
        vehicle_id = summary["id"]
        params = {"Segment": SEGMENT, "VehicleId": vehicle_id}
        params.update(self.identity.detail_params)
        subject = f"vehicle {vehicle_id}"
        try:
            payload = await self.member.get(DETAILS_ENDPOINT, params, subject=subject)
        except ApiError as error:
            if not (error.status == 404 and self.identity.logged_in):
                raise
            # Not leasable for this member: the public showroom still shows it.
            log.debug("Vehicle %s not leasable for the member: anonymous", vehicle_id)
            self.fallbacks += 1
            if self.anonymous is None:
                self.anonymous = self._new_client()
            payload = await self.anonymous.get(
                DETAILS_ENDPOINT, params, subject=subject
            )
        problems: list[str] = []
        row = detail_row(payload, vehicle_id, self.unknown, problems)
        row["summary_hash"] = summary["summary_hash"]
        # Details with a problem are not kept for reuse: the next run asks again.
        row["details_fetched_at"] = None if problems else self.extracted_at
        if problems:
            log.warning(
                "Vehicle %s (GET %s): %s; loaded with those values null",
                vehicle_id,
                DETAILS_ENDPOINT,
                _join(problems),
            )
        self._progress(total)
        return row

    def _progress(self, total: int) -> None:
        before = self.done
        self.done += 1
        step = max(1, round(total * PROGRESS_STEP))
        if self.done // step > before // step or self.done == total:
            log.info(
                "Vehicle details: %d of %d (%d%%)",
                self.done,
                total,
                100 * self.done // total,
            )


def _join(problems: list[str]) -> str:
    shown = "; ".join(problems[:5])
    return shown + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")


def _once_each(clusters: list[Row], lists: list[list[Row]]) -> list[Row]:
    """Every car once: the first listing wins, a second one is warned about."""
    first: dict[str, str] = {}
    cars = []
    for cluster, rows in zip(clusters, lists, strict=True):
        name = f"{cluster['make']} {cluster['model']}"
        for row in rows:
            if row["id"] in first:
                log.warning(
                    "Vehicle %s is listed twice (in %s and %s, ids compared without "
                    "case); loaded once",
                    row["id"],
                    first[row["id"]],
                    name,
                )
                continue
            first[row["id"]] = name
            cars.append(row)
    return cars


async def _all(coroutines: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; the first failure cancels the rest and is raised alone."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except ExceptionGroup as failures:
        raise _first_failure(failures) from None
    return [task.result() for task in tasks]


def _first_failure(group: BaseExceptionGroup) -> BaseException:
    """The first ApiError/ShapeError in a (nested) exception group, else the group."""
    for failure in group.exceptions:
        if isinstance(failure, BaseExceptionGroup):
            inner = _first_failure(failure)
            if inner is not failure:
                return inner
        elif isinstance(failure, ApiError | ShapeError):
            return failure
    return group
