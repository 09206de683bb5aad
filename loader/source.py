"""The dlt source of the Athlon Flex showroom: three tables in dataset `raw`.

The resources yield rows that `loader.showroom` already fetched and validated: the
clusters from memory, the vehicles page by page from the run's spool files, so dlt
never starts before the whole showroom is known to be good (see `loader.pipeline`)
and never holds more than a page of vehicles. Column hints come from `loader.shapes`;
the schema contract is explained in `loader/__init__.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import dlt
from dlt.sources import DltResource

from loader.settings import CLUSTERS_TABLE, SOURCE_NAME, VEHICLES_TABLE
from loader.shapes import (
    CLUSTER_COLUMNS,
    CLUSTER_KEY,
    OPTION_COLUMNS,
    VEHICLE_COLUMNS,
    VEHICLE_KEY,
    Row,
)

# New API fields never reach dlt (shapes maps known keys only); these modes make any
# column or type that is not declared a hard error in extract/normalize instead of a
# silent new column or a `__v_text` variant column. Both steps run before the load.
SCHEMA_CONTRACT: dict[str, Any] = {
    "tables": "evolve",
    "columns": "freeze",
    "data_type": "freeze",
}


def _row_key(*parts: str) -> str:
    """A stable `_dlt_id` from the natural key (dlt would draw a random one).

    Stable ids make two runs over an unchanged showroom differ only in `extracted_at`
    and `_dlt_load_id`; the options' `_dlt_id`/`_dlt_parent_id` follow from it.
    """
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dlt.source(name=SOURCE_NAME, max_table_nesting=1, schema_contract=SCHEMA_CONTRACT)
def athlon_showroom(
    clusters: list[Row], vehicle_pages: Iterable[list[Row]]
) -> Sequence[DltResource]:
    """The showroom at one moment: its clusters and its vehicles with their options.

    Args:
        clusters: rows of `GET VehicleCluster` (see `shapes.cluster_row`).
        vehicle_pages: pages of rows of `GET VehicleVariation` merged with
            `GET Vehicle`, each with an `options` list (see `shapes.vehicle_row`);
            read once, lazily, during dlt's extract.
    """
    return (vehicle_clusters(clusters), vehicles_resource(vehicle_pages))


@dlt.resource(
    name=CLUSTERS_TABLE,
    primary_key=list(CLUSTER_KEY),
    write_disposition="replace",
    columns=CLUSTER_COLUMNS,
)
def vehicle_clusters(rows: list[Row]) -> Iterator[Any]:
    """`raw.vehicle_clusters`: one row per make + model (`GET VehicleCluster`).

    Replaced as a whole every run; `uri` is the cluster's showroom page.
    """
    for row in rows:
        row["_dlt_id"] = _row_key(row["make"], row["model"])
    # One list is one page for dlt: far cheaper than yielding row by row. An empty
    # table still gets a (truncating) job through the materialize marker.
    yield rows if rows else dlt.mark.materialize_table_schema()


@dlt.resource(
    name=VEHICLES_TABLE,
    primary_key=list(VEHICLE_KEY),
    write_disposition="replace",
    columns=VEHICLE_COLUMNS,
    nested_hints={"options": dlt.mark.make_nested_hints(columns=OPTION_COLUMNS)},
)
def vehicles_resource(pages: Iterable[list[Row]]) -> Iterator[Any]:
    """`raw.vehicles` (one row per vehicle) and its child `raw.vehicles__options`.

    Summary (`GET VehicleVariation`) and details (`GET Vehicle`) of each vehicle in
    one row, nested objects flattened as `details__*` / `pricing__*`; the `options`
    list becomes the child table (one row per option, carrying `vehicle_id`). The
    child's key (`vehicle_id`, `id`) is validated by the loader, not declared to dlt:
    dlt treats a nested table with a primary key as a root table and would drop its
    `_dlt_parent_id` link.
    """
    empty = True
    for page in pages:
        for row in page:
            row["_dlt_id"] = _row_key(row["id"])
        if page:
            empty = False
            yield page
    if empty:
        yield dlt.mark.materialize_table_schema()
