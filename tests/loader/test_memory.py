"""The load's memory does not grow with the showroom (dlt streams it through files).

Measured with tracemalloc: every Python allocation the load makes, in every thread,
counted exactly, so unlike RSS or time it does not depend on the machine's load. A
showroom four times larger may cost a little more (the cars' ids and the reuse index
stay in memory), but nowhere near four times: a loader that held every row (~55 KiB
per vehicle with its options) grew with the showroom. RSS figures at 1,000 to 10,000
vehicles are in docs/benchmarks.md; dlt's buffers and files are set in
`loader.pipeline._dlt_config`.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

from athlon_flex.settings import Settings
from loader.pipeline import LoadSummary, load
from simulation.fake_api import FakeShowroom

SMALL, LARGE = 200, 800  # vehicles: 20 and 80 clusters of 10
# A peak may grow by at most this factor when the showroom grows by LARGE / SMALL.
MAX_GROWTH = 1.5


def _peak_mib(settings: Settings) -> tuple[LoadSummary, float]:
    tracemalloc.start()
    try:
        summary = load(settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return summary, peak / 2**20


def _first_and_steady_peaks(
    api: FakeShowroom, settings: Settings, db: Any
) -> tuple[float, float]:
    with db.cursor() as cursor:
        cursor.execute(
            "drop schema if exists raw, raw_landing, raw_landing_staging cascade"
        )
    first, first_peak = _peak_mib(settings)
    steady, steady_peak = _peak_mib(settings)
    vehicles = len(api.catalog.vehicles)
    assert (first.details_fetched, first.details_reused) == (vehicles, 0)
    assert (steady.details_fetched, steady.details_reused) == (0, vehicles)
    return first_peak, steady_peak


def test_peak_memory_of_a_load_hardly_grows_with_the_showroom(
    fake_api_factory: Callable[..., FakeShowroom],
    loader_settings: Callable[..., Settings],
    db: Any,
) -> None:
    peaks = {}
    for vehicles in (SMALL, LARGE):
        api = fake_api_factory(clusters=vehicles // 10, vehicles_per_cluster=10)
        peaks[vehicles] = _first_and_steady_peaks(api, loader_settings(api), db)
    print(f"tracemalloc peak MiB (first, steady) by vehicles: {peaks}")

    for kind, small, large in zip(
        ("first", "steady"), peaks[SMALL], peaks[LARGE], strict=True
    ):
        assert large < MAX_GROWTH * small, (kind, peaks)
