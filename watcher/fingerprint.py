"""Whether the showroom changed, from one request: `GET VehicleCluster`.

Every cluster (make + model) comes with its car count, its lowest monthly price and
its first (cheapest) vehicle's id. Any car arriving or leaving moves the count of its
cluster, or adds or drops a cluster; a car that becomes a cluster's cheapest moves
its price and first vehicle. What one request cannot see: a car leaving while
another arrives in the same cluster, neither the cheapest (the periodic full cycle
catches that).

The fingerprint of the API's answer is compared with the same columns of the last
load (`raw.vehicle_clusters`). This module asks the endpoint itself (a plain httpx
GET), so the watch depends on the loader's table, not on its internals. Shared by
`athlon-flex watch` (watcher/watch.py) and the Airflow trigger (watcher/trigger.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import psycopg2

from athlon_flex.database import DatabaseError, connect, ensure_postgres
from athlon_flex.errors import StageError
from athlon_flex.settings import Settings

CLUSTERS_ENDPOINT = "VehicleCluster"
# The loader asks for cars only; so does the watch, or vans would count as news.
CLUSTERS_PARAMS = {"Filters.Segment": "Cars"}
USER_AGENT = (
    "athlon-flex-notifier watch (+https://github.com/AuckeBos/athlon-flex-notifier)"
)

# (make, model, vehicle count, lowest monthly price to the cent, first vehicle id)
Cluster = tuple[str, str, int, str, str]
Fingerprint = frozenset[Cluster]


class WatchError(StageError):
    """The watch request failed or its answer was not a list of clusters."""


def _price(value: Any) -> str:
    """To the cent, so 1010.000000 (the API's text) equals 1010.0 (raw's double)."""
    try:
        return str(Decimal(str(value)).quantize(Decimal("0.01")))
    except InvalidOperation:
        return str(value)


def fingerprint_of(clusters: Iterable[Mapping[str, Any]]) -> Fingerprint:
    """The fingerprint of `GET VehicleCluster`'s JSON; WatchError if malformed."""
    marks: set[Cluster] = set()
    for item in clusters:
        try:
            marks.add(
                (
                    str(item["make"]),
                    str(item["model"]),
                    int(item["vehicleCount"]),
                    _price(item["minPriceInEuroPerMonth"]),
                    str(item["firstVehicleId"]),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise WatchError(
                f"GET {CLUSTERS_ENDPOINT} returned a cluster without {error}"
            ) from None
    return frozenset(marks)


def clusters_url(settings: Settings) -> str:
    return f"{settings.athlon_api_url.rstrip('/')}/{CLUSTERS_ENDPOINT}"


def parse_response(response: httpx.Response) -> Fingerprint:
    """The fingerprint of one answer; WatchError on a bad status or body."""
    if response.status_code != 200:
        raise WatchError(
            f"GET {CLUSTERS_ENDPOINT} returned HTTP {response.status_code}"
        )
    try:
        payload = response.json()
    except ValueError:
        raise WatchError(f"GET {CLUSTERS_ENDPOINT} returned no JSON") from None
    if not isinstance(payload, list):
        raise WatchError(f"GET {CLUSTERS_ENDPOINT} returned no list")
    if not payload:
        # The load refuses an empty showroom (fail closed), so a cycle would only
        # fail: an outage's empty answer is no news.
        raise WatchError(f"GET {CLUSTERS_ENDPOINT} returned no clusters")
    return fingerprint_of(payload)


def fetch_fingerprint(client: httpx.Client, settings: Settings) -> Fingerprint:
    """Ask the API once (no retries: the next tick is the retry)."""
    try:
        response = client.get(clusters_url(settings), params=CLUSTERS_PARAMS)
    except httpx.HTTPError as error:
        raise WatchError(
            f"GET {CLUSTERS_ENDPOINT} failed: {type(error).__name__}: {error}"
        ) from None
    return parse_response(response)


def loaded_fingerprint(settings: Settings) -> Fingerprint | None:
    """The fingerprint of the last load; None before the first one."""
    try:
        with (
            connect(ensure_postgres(settings)) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute("select to_regclass('raw.vehicle_clusters') is not null")
            if not cursor.fetchone()[0]:
                return None
            cursor.execute(
                "select make, model, vehicle_count, min_price_in_euro_per_month,"
                " first_vehicle_id from raw.vehicle_clusters"
            )
            rows = cursor.fetchall()
    except (psycopg2.Error, DatabaseError) as error:
        # DatabaseError: the server cannot be reached or started (a PostgreSQL
        # restart). A poll failure like any other: the watch outlives it.
        raise WatchError(
            f"Could not read raw.vehicle_clusters: {str(error).strip()}"
        ) from None
    return frozenset(
        (str(make), str(model), int(count), _price(price), str(first))
        for make, model, count, price, first in rows
    )


def describe_change(api: Fingerprint, loaded: Fingerprint | None) -> str:
    """`3 clusters changed, 1 new, 0 gone` for the log."""
    if loaded is None:
        return "nothing loaded yet"
    api_keys = {(c[0], c[1]) for c in api}
    loaded_keys = {(c[0], c[1]) for c in loaded}
    new = len(api_keys - loaded_keys)
    gone = len(loaded_keys - api_keys)
    changed = len({(c[0], c[1]) for c in api - loaded} & loaded_keys)
    return f"{changed} clusters changed, {new} new, {gone} gone"
