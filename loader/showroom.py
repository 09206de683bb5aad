"""Fetch the whole showroom into validated rows, before anything is written.

Order of a run: sign in (if configured) → `GET VehicleCluster` → one
`GET VehicleVariation` per cluster (all at once, bounded by the shared limit) → one
`GET Vehicle` per vehicle whose details cannot be reused (again all at once). Any
request that fails for good, or any answer of the wrong shape, cancels the rest and
raises; the caller turns that into a LoadError before dlt sees a single row.

Details are the expensive part (one request per vehicle). A vehicle's stored row is
reused when its summary hash (the VehicleVariation JSON plus who asked) is unchanged and
its details are younger than `athlon_details_refresh_hours` (see `PreviousSnapshot`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
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

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(repr=False)
class Showroom:
    """Every row of one run, validated, plus what it cost to get them.

    No generated repr: asyncio formats the result of the finished task, and a repr
    of every row cost a third of a second.
    """

    clusters: list[Row]
    vehicles: list[Row]
    previous_vehicle_count: int = 0
    details_fetched: int = 0
    details_reused: int = 0
    anonymous_fallbacks: int = 0
    unknown_fields: set[str] = field(default_factory=set)
    stats: HttpStats = field(default_factory=HttpStats)

    @property
    def option_count(self) -> int:
        """Rows of the child table `vehicles__options`."""
        return sum(len(vehicle["options"]) for vehicle in self.vehicles)

    def __repr__(self) -> str:
        return (
            f"Showroom({len(self.clusters)} clusters, {len(self.vehicles)} vehicles, "
            f"{self.option_count} options)"
        )


@dataclass
class _Planned:
    """A vehicle whose summary is known; details reused or still to fetch."""

    summary: Row
    hash_: str
    reused: Row | None


async def fetch_showroom(
    settings: Settings,
    previous: Awaitable[PreviousSnapshot],
    extracted_at: datetime,
) -> Showroom:
    """Everything the API shows now, as rows; ApiError or ShapeError on any failure.

    `previous` (the current raw snapshot) is awaited only once the summaries are in,
    so reading it from the database overlaps the first requests.
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
        showroom = await run.fetch()
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
        previous: Awaitable[PreviousSnapshot],
        extracted_at: datetime,
        identity: Identity,
        member: ApiClient,
        new_client: Callable[[], ApiClient],
    ) -> None:
        self.settings = settings
        self._previous = previous
        self.previous = PreviousSnapshot()
        self.extracted_at = extracted_at
        self.identity = identity
        self.member = member
        # Cookie-less client for vehicles a member may not lease; made when needed.
        self.anonymous: ApiClient | None = None
        self._new_client = new_client
        self.unknown: set[str] = set()
        self.fallbacks = 0
        self.done = 0

    async def fetch(self) -> Showroom:
        clusters = await self._clusters()
        variations = await _all(self._variations(cluster) for cluster in clusters)
        self.previous = await self._previous
        baseline = self.previous.vehicle_count
        planned = self._plan(clusters, variations)
        to_fetch = [plan for plan in planned if plan.reused is None]
        log.info(
            "Showroom: %d clusters, %d vehicles; fetching details of %d, reusing %d",
            len(clusters),
            len(planned),
            len(to_fetch),
            len(planned) - len(to_fetch),
        )
        fetched = await _all(self._details(plan, len(to_fetch)) for plan in to_fetch)
        details_by_id = {
            plan.summary["id"]: details
            for plan, details in zip(to_fetch, fetched, strict=True)
        }
        vehicles = []
        for plan in planned:
            vehicle_id = plan.summary["id"]
            if plan.reused is not None:
                details, fetched_at = plan.reused, plan.reused["details_fetched_at"]
            else:
                details, fetched_at = details_by_id.pop(vehicle_id), self.extracted_at
            vehicles.append(
                vehicle_row(
                    plan.summary,
                    details,
                    hash_=plan.hash_,
                    extracted_at=self.extracted_at,
                    details_fetched_at=fetched_at,
                )
            )
        return Showroom(
            clusters=clusters,
            vehicles=vehicles,
            details_fetched=len(to_fetch),
            details_reused=len(planned) - len(to_fetch),
            anonymous_fallbacks=self.fallbacks,
            unknown_fields=self.unknown,
            previous_vehicle_count=baseline,
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

    async def _variations(self, cluster: Row) -> list[Any]:
        """The summaries of one cluster; no profile filters (the whole showroom)."""
        params = {
            "Filters.Segment": SEGMENT,
            "Filters.Make": cluster["make"],
            "Filters.Model": cluster["model"],
            "Filters.SortBy": SORT_BY,
        }
        name = f"{cluster['make']} {cluster['model']}"
        payload = await self.member.get(VARIATIONS_ENDPOINT, params, subject=name)
        return expect_list(payload, f"GET {VARIATIONS_ENDPOINT} for {name}")

    def _plan(self, clusters: list[Row], variations: list[list[Any]]) -> list[_Planned]:
        """Validate every summary, decide per vehicle: reuse or fetch."""
        planned: list[_Planned] = []
        cluster_of: dict[str, str] = {}
        refresh_hours = self.settings.athlon_details_refresh_hours
        for cluster, items in zip(clusters, variations, strict=True):
            name = f"{cluster['make']} {cluster['model']}"
            where = f"GET {VARIATIONS_ENDPOINT} for {name}"
            for item in items:
                summary = summary_columns(item, where, self.unknown)
                vehicle_id = summary["id"]
                if vehicle_id in cluster_of:
                    raise ShapeError(
                        f"{where}: vehicle {vehicle_id} was already listed under "
                        f"{cluster_of[vehicle_id]}"
                    )
                cluster_of[vehicle_id] = name
                hash_ = summary_hash(item, self.identity.context)
                reused = self.previous.take_reusable(
                    vehicle_id, hash_, self.extracted_at, refresh_hours
                )
                planned.append(_Planned(summary, hash_, reused))
        self.previous.rows.clear()  # vehicles no longer listed: nothing to keep
        return planned

    async def _details(self, plan: _Planned, total: int) -> Row:
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
