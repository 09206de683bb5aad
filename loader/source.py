"""The dlt source of the Athlon Flex showroom, landed in dataset `raw_landing`.

Three resources:
- `vehicle_clusters` (replace): one row per make + model;
- `vehicles` (replace): the run's list of cars, one summary row each;
- `vehicle_details` (merge on `id`): details, pricing and the `options` child of the
  cars whose details were fetched this run; the others keep the row of the run that
  fetched them, which is how a steady run reuses details without asking again.
`loader.publish` then builds `raw` from these in one transaction. Column hints come
from `loader.shapes`; the schema contract is explained in `loader/__init__.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import dlt
from dlt.sources import DltResource

from loader.settings import (
    CLUSTERS_TABLE,
    LANDING_DETAILS,
    LANDING_SUMMARIES,
    SOURCE_NAME,
)
from loader.shapes import (
    CLUSTER_COLUMNS,
    CLUSTER_KEY,
    DETAIL_COLUMNS,
    OPTION_COLUMNS,
    SUMMARY_COLUMNS,
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


def row_key(*parts: str) -> str:
    """A stable `_dlt_id` from the natural key (dlt would draw a random one).

    Stable ids make two runs over an unchanged showroom differ only in `extracted_at`
    and `_dlt_load_id`; a car's summary and details rows share one, so the options'
    `_dlt_parent_id` points at the car's row in `raw.vehicles`.
    """
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dlt.source(name=SOURCE_NAME, max_table_nesting=1, schema_contract=SCHEMA_CONTRACT)
def athlon_showroom(
    clusters: list[Row], summaries: list[Row], detail_pages: Iterable[list[Row]]
) -> Sequence[DltResource]:
    """The showroom at one moment: clusters, cars, and the details fetched now."""
    return (
        vehicle_clusters(clusters),
        vehicles(summaries),
        vehicle_details(detail_pages),
    )


def _pages(rows: Iterable[list[Row]], *key: str) -> Iterator[Any]:
    """Pages of rows with their stable `_dlt_id`; an empty table still gets a job."""
    empty = True
    for page in rows:
        for row in page:
            row["_dlt_id"] = row_key(*(row[part] for part in key))
        if page:
            empty = False
            yield page  # one list is one item for dlt: far cheaper than row by row
    if empty:
        yield dlt.mark.materialize_table_schema()


@dlt.resource(
    name=CLUSTERS_TABLE,
    primary_key=list(CLUSTER_KEY),
    write_disposition="replace",
    columns=CLUSTER_COLUMNS,
)
def vehicle_clusters(rows: list[Row]) -> Iterator[Any]:
    """One row per make + model (`GET VehicleCluster`), replaced every run."""
    yield from _pages([rows], *CLUSTER_KEY)


@dlt.resource(
    name=LANDING_SUMMARIES,
    primary_key="id",
    write_disposition="replace",
    columns=SUMMARY_COLUMNS,
)
def vehicles(rows: list[Row]) -> Iterator[Any]:
    """One row per car in the showroom now (`GET VehicleVariation`), replaced."""
    yield from _pages([rows], "id")


@dlt.resource(
    name=LANDING_DETAILS,
    primary_key="id",
    write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    columns=DETAIL_COLUMNS,
    nested_hints={"options": dlt.mark.make_nested_hints(columns=OPTION_COLUMNS)},
)
def vehicle_details(pages: Iterable[list[Row]]) -> Iterator[Any]:
    """Details of the cars fetched this run (`GET Vehicle`), merged on `id`.

    The `options` list becomes the child table `vehicle_details__options`, replaced
    with its parent. Its key (`vehicle_id`, `id`) is kept by `shapes`, not declared:
    dlt treats a nested table with a primary key as a root table.
    """
    yield from _pages(pages, "id")
