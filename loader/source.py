"""The dlt source of the showroom: clusters → each cluster's cars → each new or changed
car's details, fetched in dlt's thread pool, landed in `raw_landing`."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dlt
from dlt.sources import DltResource

from loader.account import Identity
from loader.constants import (
    CLUSTERS_ENDPOINT,
    CLUSTERS_TABLE,
    COMPLETENESS_RETRIES,
    DETAILS_ENDPOINT,
    LANDING_DETAILS,
    LANDING_SUMMARIES,
    SEGMENT,
    SORT_BY,
    SOURCE_NAME,
    VARIATIONS_ENDPOINT,
)
from loader.http import ApiClient, ApiError
from loader.shapes import (
    CLUSTER_COLUMNS,
    CLUSTER_KEY,
    DETAIL_COLUMNS,
    OPTION_COLUMNS,
    SUMMARY_COLUMNS,
    Row,
    ShapeError,
    cluster_row,
    detail_row,
    expect_list,
    summary_hash,
    summary_row,
)

log = logging.getLogger(__name__)

# Only declared fields reach dlt: an undeclared column or type is a loader bug.
# A first load fetches every car's details: a line every this many says it moves.
PROGRESS_EVERY = 200
SCHEMA_CONTRACT: dict[str, Any] = {
    "tables": "evolve",
    "columns": "freeze",
    "data_type": "freeze",
}

# vehicle id -> (summary hash, details fetched at) of the details the last load kept
ReuseIndex = dict[str, tuple[str, datetime]]


@dataclass
class Showroom:
    """How the API is asked, and what the extraction saw (for the checks after it)."""

    member: ApiClient
    anonymous: Callable[[], ApiClient]  # a cookie-less client, made when first needed
    identity: Identity
    index: ReuseIndex
    extracted_at: datetime
    refresh_hours: float
    clusters: int = 0
    cars: int = 0
    counted: int = 0  # the clusters' vehicleCount, summed
    unusable: int = 0  # listed entries without a usable id
    fetched: int = 0
    reused: int = 0
    anonymous_fallbacks: int = 0
    unknown_fields: set[str] = field(default_factory=set)
    _seen: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _anonymous: ApiClient | None = None

    def reusable(self, car: Row) -> bool:
        """Whether this car's kept details still hold: same summary, and younger than
        its share of `refresh_hours` (half to all of it, stable per id, so that after
        a full load the refreshes trickle in)."""
        kept = self.index.get(car["id"])
        if kept is None or kept[0] != car["summary_hash"]:
            return False
        digest = hashlib.sha256(car["id"].encode()).digest()
        spread = 0.5 + int.from_bytes(digest[:4], "big") / 2**33
        return self.extracted_at - kept[1] < timedelta(
            hours=self.refresh_hours * spread
        )

    def first_listing(self, car: Row, cluster: str) -> bool:
        """Count the car unless a listing of it came first (ids compared in lower
        case, across clusters too); then warn."""
        with self._lock:
            other = self._seen.get(car["id"])
            if other is None:
                self._seen[car["id"]] = cluster
                self.cars += 1
                return True
        log.warning(
            "Vehicle %s is listed twice (in %s and %s; ids compared without case); "
            "loaded once",
            car["id"],
            other,
            cluster,
        )
        return False

    def count(self, what: str) -> int:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
            return getattr(self, what)

    def anonymous_client(self) -> ApiClient:
        with self._lock:
            self.anonymous_fallbacks += 1
            if self._anonymous is None:
                self._anonymous = self.anonymous()
            return self._anonymous

    def close(self) -> None:  # the member's client is its maker's to close
        if self._anonymous is not None:
            self._anonymous.close()


def row_key(*parts: str) -> str:
    """A stable `_dlt_id` from the natural key, not dlt's random one: two runs over an
    unchanged showroom differ only in `extracted_at` and `_dlt_load_id`, and options'
    `_dlt_parent_id` point at their car's row in `raw.vehicles`."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _warn(what: str, problems: list[str]) -> None:
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        log.warning("%s: %s%s; loaded as null", what, "; ".join(problems[:5]), more)


@dlt.source(name=SOURCE_NAME, max_table_nesting=1, schema_contract=SCHEMA_CONTRACT)
def athlon_showroom(showroom: Showroom) -> Sequence[DltResource]:
    """The showroom at one moment: clusters, cars, and the details fetched now."""
    clusters = vehicle_clusters(showroom)
    cars = clusters | vehicles(showroom)
    return clusters, cars, cars | vehicle_details(showroom)


@dlt.resource(
    name=CLUSTERS_TABLE,
    primary_key=list(CLUSTER_KEY),
    write_disposition="replace",
    columns=CLUSTER_COLUMNS,
)
def vehicle_clusters(showroom: Showroom) -> Iterator[Any]:
    """One row per make + model (`GET VehicleCluster`), replaced every run."""
    where = f"GET {CLUSTERS_ENDPOINT}"
    payload = showroom.member.get(CLUSTERS_ENDPOINT, {"Filters.Segment": SEGMENT})
    # Compared without case: the API filters VehicleVariation so, and a cluster
    # twice would list (and count) its cars twice.
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for item in expect_list(payload, where):
        problems: list[str] = []
        row = cluster_row(
            item, showroom.extracted_at, showroom.unknown_fields, problems
        )
        key = (row["make"], row["model"])
        folded = (key[0].casefold(), key[1].casefold())
        if folded in seen:
            other = seen[folded]
            also = "" if other == key else f" (as {other[0]} {other[1]} too)"
            raise ShapeError(f"{where}: cluster {key[0]} {key[1]} appears twice{also}")
        seen[folded] = key
        _warn(f"Cluster {key[0]} {key[1]}", problems)
        showroom.clusters += 1
        showroom.counted += row["vehicle_count"]
        yield row | {"_dlt_id": row_key(*key)}
    if not seen:  # an empty table still gets a (truncating) job
        yield dlt.mark.materialize_table_schema()


@dlt.transformer(
    name=LANDING_SUMMARIES,
    primary_key="id",
    write_disposition="replace",
    columns=SUMMARY_COLUMNS,
    parallelized=True,
)
def vehicles(cluster: Row, showroom: Showroom) -> list[Row] | None:
    """The cars of one cluster (`GET VehicleVariation`) as one page, at least
    `vehicleCount`: a shorter list is asked for again (the API has answered [] for
    whole makes while still counting their cars), then the load fails naming both
    counts. A page, not a row at a time: dlt's cost is per item, and a function (not
    a generator) is one task in its pool per cluster."""
    if not cluster:  # the empty clusters table's marker, not a cluster
        return None
    params = {
        "Filters.Segment": SEGMENT,
        "Filters.Make": cluster["make"],
        "Filters.Model": cluster["model"],
        "Filters.SortBy": SORT_BY,
    }
    name = f"{cluster['make']} {cluster['model']}"
    where = f"GET {VARIATIONS_ENDPOINT} for {name}"
    count = cluster["vehicle_count"]
    for attempt in range(1, COMPLETENESS_RETRIES + 2):
        items = expect_list(
            showroom.member.get(VARIATIONS_ENDPOINT, params, subject=name), where
        )
        listed = []
        for item in items:
            problems: list[str] = []
            car = summary_row(item, cluster, showroom.unknown_fields, problems)
            listed.append((item, car, problems))
        # A car listed twice counts once; an entry without a usable id still counts
        # (a car is there, it just cannot be told apart).
        ids = {car["id"] for _, car, _ in listed if car is not None}
        accounted = len(ids) + sum(car is None for _, car, _ in listed)
        if accounted >= count:
            break
        log.info("%s listed %d of %d cars (try %d)", where, accounted, count, attempt)
    else:
        raise ShapeError(
            f"{where} listed {accounted} vehicles, but {CLUSTERS_ENDPOINT} counts "
            f"{count} in that cluster (asked {COMPLETENESS_RETRIES + 1} times)"
        )
    page = []
    for item, car, problems in listed:
        if car is None:
            showroom.count("unusable")
            shown = item.get("id") if isinstance(item, dict) else item
            log.warning("%s: skipped a car without a usable id (%.80r)", where, shown)
        elif showroom.first_listing(car, name):
            _warn(f"Vehicle {car['id']} ({where})", problems)
            page.append(
                car
                | {
                    "summary_hash": summary_hash(item, showroom.identity.context),
                    "extracted_at": showroom.extracted_at,
                    "_dlt_id": row_key(car["id"]),
                }
            )
    return page


@dlt.transformer(
    name=LANDING_DETAILS,
    primary_key="id",
    write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    columns=DETAIL_COLUMNS,
    nested_hints={"options": dlt.mark.make_nested_hints(columns=OPTION_COLUMNS)},
)
def vehicle_details(cars: list[Row], showroom: Showroom) -> Iterator[Any]:
    """The details of a cluster's new, changed or old cars, each fetched in dlt's
    thread pool (dlt.defer), merged on `id`; a car whose kept details still hold
    costs nothing. `options` becomes `vehicle_details__options` (its key is not
    declared: dlt would take a nested table with one for a root)."""
    for car in cars or ():
        if showroom.reusable(car):
            showroom.count("reused")
        else:
            yield _fetched_details(car, showroom)


@dlt.defer
def _fetched_details(car: Row, showroom: Showroom) -> Row:
    """`GET Vehicle` of one car as its `vehicle_details` row. A member's 404 (not
    leasable for them) is asked again anonymously; details with a problem are not
    kept for reuse."""
    vehicle_id = car["id"]
    params = {"Segment": SEGMENT, "VehicleId": vehicle_id}
    params.update(showroom.identity.detail_params)
    subject = f"vehicle {vehicle_id}"
    try:
        payload = showroom.member.get(DETAILS_ENDPOINT, params, subject=subject)
    except ApiError as error:
        if not (error.status == 404 and showroom.identity.logged_in):
            raise
        log.debug("Vehicle %s not leasable for the member: anonymous", vehicle_id)
        client = showroom.anonymous_client()
        payload = client.get(DETAILS_ENDPOINT, params, subject=subject)
    problems: list[str] = []
    row = detail_row(payload, vehicle_id, showroom.unknown_fields, problems)
    _warn(f"Vehicle {vehicle_id} (GET {DETAILS_ENDPOINT})", problems)
    if showroom.count("fetched") % PROGRESS_EVERY == 0:
        log.info("Fetched the details of %d cars so far", showroom.fetched)
    fetched_at = None if problems else showroom.extracted_at
    return row | {
        "summary_hash": car["summary_hash"],
        "details_fetched_at": fetched_at,
        "_dlt_id": car["_dlt_id"],
    }
