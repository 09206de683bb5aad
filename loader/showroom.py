"""Fetch the whole showroom into validated rows on disk, before anything is written.

Order of a run: sign in (if configured) → `GET VehicleCluster` → one
`GET VehicleVariation` per cluster (all at once, bounded by the shared limit) → one
`GET Vehicle` per vehicle whose details cannot be reused (a fixed pool of workers,
again bounded by the shared limit). Any request that fails for good, or any answer of
the wrong shape, cancels the rest and raises; the caller turns that into a LoadError
before dlt sees a single row.

Memory: each fetched vehicle's row goes straight into a `RowSpool` (a file in the
run's working directory), as the stored rows went into another while the summaries
were fetched (`PreviousSnapshot.read`); only the reused vehicles' summaries stay in
memory, and `reused_pages` joins them to their stored rows while dlt reads. So the
run never holds the showroom, let alone twice.

Details are the expensive part (one request per vehicle). A vehicle's stored row is
reused when its summary hash (the VehicleVariation JSON plus who asked) is unchanged and
its details are younger than `athlon_details_refresh_hours` (see `PreviousSnapshot`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from athlon_flex.settings import Settings
from loader.account import Identity, sign_in
from loader.http import ApiClient, ApiError, HttpStats, RequestLimiter, RetryPolicy
from loader.previous import PreviousSnapshot
from loader.settings import (
    CLUSTERS_ENDPOINT,
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
    detail_columns,
    expect_list,
    summary_columns,
    summary_hash,
    vehicle_row,
)
from loader.spool import RowSpool

log = logging.getLogger(__name__)
T = TypeVar("T")

# Detail workers per allowed request in flight: a worker waiting out a back-off holds
# no request slot, so a few spare workers keep the limit busy.
_WORKERS_PER_SLOT = 2


@dataclass
class Planned:
    """A vehicle whose summary is validated and hashed: to reuse or to fetch."""

    summary: Row
    hash_: str


@dataclass(repr=False)
class Showroom:
    """What the API showed besides the fetched rows (those are in the caller's spool).

    `reused` holds the plans of the vehicles whose details are reused, completed from
    their stored rows by `reused_pages`. No generated repr: asyncio formats the
    result of the finished task.
    """

    clusters: list[Row]
    reused: dict[str, Planned]
    anonymous_fallbacks: int = 0
    unknown_fields: set[str] = field(default_factory=set)
    stats: HttpStats = field(default_factory=HttpStats)

    def __repr__(self) -> str:
        return f"Showroom({len(self.clusters)} clusters, {len(self.reused)} reused)"


async def fetch_showroom(
    settings: Settings,
    previous: Awaitable[PreviousSnapshot],
    extracted_at: datetime,
    fetched: RowSpool,
) -> Showroom:
    """Everything the API shows now; ApiError or ShapeError on any failure.

    `previous` (the raw snapshot being read) is awaited only once the summaries are
    in, so copying it overlaps the first requests. Rows of fetched vehicles go to
    `fetched` as they arrive.
    """
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
        run = _Run(settings, previous, extracted_at, identity, member, new_client)
        showroom = await run.fetch(fetched)
        showroom.stats = limiter.stats
        return showroom
    finally:
        await member.aclose()
        if run is not None and run.anonymous is not None:
            await run.anonymous.aclose()


def reused_pages(
    stored: RowSpool, reused: dict[str, Planned], extracted_at: datetime
) -> Iterator[list[Row]]:
    """The reused vehicles' rows, a page at a time: this run's summary, stored details.

    `stored` is the spool `PreviousSnapshot.read` filled; vehicles no longer listed
    or whose details are refetched are skipped.
    """
    for page in stored.pages():
        rows = []
        for row in page:
            plan = reused.get(row["id"])
            if plan is not None:
                rows.append(
                    vehicle_row(
                        plan.summary,
                        row,
                        hash_=plan.hash_,
                        extracted_at=extracted_at,
                        details_fetched_at=row["details_fetched_at"],
                    )
                )
        if rows:
            yield rows


class _Run:
    """One fetch: the clients, the identity and the counters it accumulates."""

    def __init__(
        self,
        settings: Settings,
        previous: Awaitable[PreviousSnapshot],
        extracted_at: datetime,
        identity: Identity,
        member: ApiClient,
        new_client: Callable[[], ApiClient],
    ) -> None:
        self.settings = settings
        self._previous = previous
        self.extracted_at = extracted_at
        self.identity = identity
        self.member = member
        # Cookie-less client for vehicles a member may not lease; made when needed.
        self.anonymous: ApiClient | None = None
        self._new_client = new_client
        self.unknown: set[str] = set()
        self.fallbacks = 0
        self.done = 0

    async def fetch(self, spool: RowSpool) -> Showroom:
        clusters = await self._clusters()
        summaries = await _all(self._summaries(cluster) for cluster in clusters)
        _refuse_duplicates(clusters, summaries)
        # The copy of the stored snapshot ran while the summaries were asked for.
        previous = await self._previous
        refresh_hours = self.settings.athlon_details_refresh_hours
        to_fetch: list[Planned] = []
        reused: dict[str, Planned] = {}
        for plans in summaries:
            for plan in plans:
                vehicle_id = plan.summary["id"]
                if previous.reusable(
                    vehicle_id, plan.hash_, self.extracted_at, refresh_hours
                ):
                    reused[vehicle_id] = plan
                else:
                    to_fetch.append(plan)
        del summaries
        log.info(
            "Showroom: %d clusters, %d vehicles; fetching details of %d, reusing %d",
            len(clusters),
            len(to_fetch) + len(reused),
            len(to_fetch),
            len(reused),
        )
        await self._fetch_details(to_fetch, spool)
        return Showroom(
            clusters=clusters,
            reused=reused,
            anonymous_fallbacks=self.fallbacks,
            unknown_fields=self.unknown,
        )

    async def _clusters(self) -> list[Row]:
        where = f"GET {CLUSTERS_ENDPOINT}"
        payload = await self.member.get(CLUSTERS_ENDPOINT, {"Filters.Segment": SEGMENT})
        clusters = [
            cluster_row(item, self.extracted_at, self.unknown)
            for item in expect_list(payload, where)
        ]
        seen: set[tuple[str, str]] = set()
        for cluster in clusters:
            key = (cluster["make"], cluster["model"])
            if key in seen:
                raise ShapeError(f"{where}: cluster {key[0]} {key[1]} appears twice")
            seen.add(key)
        return clusters

    async def _summaries(self, cluster: Row) -> list[Planned]:
        """The summaries of one cluster, validated and hashed.

        No profile filters: the whole showroom. The answer's JSON is dropped once
        its summaries and hashes are taken.
        """
        params = {
            "Filters.Segment": SEGMENT,
            "Filters.Make": cluster["make"],
            "Filters.Model": cluster["model"],
            "Filters.SortBy": SORT_BY,
        }
        name = f"{cluster['make']} {cluster['model']}"
        where = f"GET {VARIATIONS_ENDPOINT} for {name}"
        payload = await self.member.get(VARIATIONS_ENDPOINT, params, subject=name)
        return [
            Planned(
                summary_columns(item, where, self.unknown),
                summary_hash(item, self.identity.context),
            )
            for item in expect_list(payload, where)
        ]

    async def _fetch_details(self, plans: list[Planned], spool: RowSpool) -> None:
        """Fetch each plan's details and spool its row as soon as it arrives."""
        pending = iter(plans)
        total = len(plans)

        async def worker() -> None:
            for plan in pending:  # shared: each plan goes to exactly one worker
                details = await self._details(plan, total)
                spool.add(
                    vehicle_row(
                        plan.summary,
                        details,
                        hash_=plan.hash_,
                        extracted_at=self.extracted_at,
                        details_fetched_at=self.extracted_at,
                    )
                )

        workers = min(total, _WORKERS_PER_SLOT * self.settings.athlon_max_concurrency)
        await _all(worker() for _ in range(workers))

    async def _details(self, plan: Planned, total: int) -> Row:
        """`GET Vehicle` for one vehicle; a member's 404 is retried anonymously."""
        vehicle_id = plan.summary["id"]
        params = {"Segment": SEGMENT, "VehicleId": vehicle_id}
        params.update(self.identity.detail_params)
        try:
            payload = await self.member.get(
                DETAILS_ENDPOINT, params, subject=f"vehicle {vehicle_id}"
            )
        except ApiError as error:
            if not (error.status == 404 and self.identity.logged_in):
                raise
            # Not leasable for this member: the public showroom still shows it.
            log.debug(
                "Vehicle %s not leasable for the member; fetching anonymously",
                vehicle_id,
            )
            self.fallbacks += 1
            if self.anonymous is None:
                self.anonymous = self._new_client()
            payload = await self.anonymous.get(
                DETAILS_ENDPOINT, params, subject=f"vehicle {vehicle_id}"
            )
        details = detail_columns(payload, vehicle_id, self.extracted_at, self.unknown)
        self._progress(total)
        return details

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


def _refuse_duplicates(clusters: list[Row], planned: list[list[Planned]]) -> None:
    """A vehicle listed under two clusters is an API fault (checked in list order)."""
    cluster_of: dict[str, str] = {}
    for cluster, plans in zip(clusters, planned, strict=True):
        name = f"{cluster['make']} {cluster['model']}"
        for plan in plans:
            vehicle_id = plan.summary["id"]
            if vehicle_id in cluster_of:
                raise ShapeError(
                    f"GET {VARIATIONS_ENDPOINT} for {name}: vehicle {vehicle_id} was "
                    f"already listed under {cluster_of[vehicle_id]}"
                )
            cluster_of[vehicle_id] = name


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
