"""The Airflow side of the watch: an event trigger that runs in the triggerer.

`ShowroomChangedTrigger` asks `GET VehicleCluster` every ATHLON_WATCH_INTERVAL_SECONDS
and yields an event whenever its fingerprint differs from the last load's
(watcher/fingerprint.py, the same comparison `athlon-flex watch` makes). The DAG's
asset `athlon_flex_showroom` has it as its `AssetWatcher`, so each event queues a
DAG run (event-driven scheduling, Airflow 3); the 10-minute timetable stays beside
it (`AssetOrTimeSchedule`). At most one event per ATHLON_WATCH_MIN_GAP_SECONDS, and
none again for the same picture until a load has landed it (a DAG run takes a while:
without this every poll until then would queue one more run).

The triggerer runs `run()` for as long as the DAG is active and never expects it
to end: a failing request is logged and the next tick tries again. The settings are
read in the triggerer (its environment), not at DAG parse time, so the trigger's
kwargs stay empty and its identity stable. Imports beyond Airflow's own happen in
`run()`: the DAG file that builds this trigger is parsed every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)


class ShowroomChangedTrigger(BaseEventTrigger):
    """Yields `{"change": ..., "clusters": n}` whenever the showroom changed."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{__name__}.{type(self).__name__}", {})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        from athlon_flex.settings import load_settings
        from watcher.fingerprint import (
            CLUSTERS_PARAMS,
            USER_AGENT,
            WatchError,
            clusters_url,
            describe_change,
            loaded_fingerprint,
            parse_response,
        )

        settings = load_settings()
        interval = settings.athlon_watch_interval_seconds
        gap = settings.athlon_watch_min_gap_seconds
        timeout = min(settings.athlon_http_timeout_seconds, max(interval, 1.0))
        acted_on = None
        last_event = -math.inf
        headers = {"User-Agent": USER_AGENT}
        async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
            while True:
                try:
                    response = await client.get(
                        clusters_url(settings), params=CLUSTERS_PARAMS
                    )
                    api = parse_response(response)
                    # psycopg2 blocks: off the triggerer's event loop.
                    loaded = await asyncio.to_thread(loaded_fingerprint, settings)
                except (httpx.HTTPError, WatchError) as error:
                    log.warning("Showroom watch: %s; trying again next tick", error)
                else:
                    now = time.monotonic()
                    if api == loaded:
                        acted_on = None
                    elif api != acted_on and now - last_event >= gap:
                        acted_on, last_event = api, now
                        change = describe_change(api, loaded)
                        log.info("Showroom changed (%s): queueing a run", change)
                        yield TriggerEvent({"change": change, "clusters": len(api)})
                await asyncio.sleep(interval)
