"""`athlon-flex watch`: one long-lived process that runs a cycle when the showroom
changes, and every ATHLON_WATCH_CYCLE_SECONDS whatever it saw.

Every ATHLON_WATCH_INTERVAL_SECONDS it asks `GET VehicleCluster` once and compares
its fingerprint with the last load's (watcher/fingerprint.py). On a difference it
runs a cycle at once, but at most one triggered cycle per
ATHLON_WATCH_MIN_GAP_SECONDS (a difference seen inside the gap is looked at again
when the gap ends). The periodic full cycle is the safety net for what the
fingerprint cannot see. A failing watch request (an error, a timeout, a bad answer)
is logged and counted and changes nothing else: the periodic cycle runs on time.

The process imports dbt and dlt once and parses the dbt project once; it holds the
pipeline lock only while a cycle runs (run_cycle), so `athlon-flex run` or the DAG
can still run in between. `stop` (the CLI sets it on Ctrl-C or SIGTERM) ends the
loop at once when idle, or after the running cycle's current stage.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from athlon_flex.errors import StageError
from athlon_flex.settings import Settings
from watcher.cycle import CycleStopped, run_cycle
from watcher.fingerprint import (
    USER_AGENT,
    Fingerprint,
    WatchError,
    describe_change,
    fetch_fingerprint,
    loaded_fingerprint,
)

log = logging.getLogger(__name__)

SCHEDULED = "scheduled"
TRIGGERED = "triggered"


@dataclass
class WatchStats:
    """What the watch did, for the log, the tests and the benchmark."""

    polls: int = 0
    poll_failures: int = 0
    cycles: list[tuple[str, float]] = field(default_factory=list)  # reason, start
    cycle_failures: int = 0


class Watch:
    """The loop; `run()` returns when `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        cycle: Callable[[str], object] | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self._cycle = cycle or (lambda _reason: run_cycle(settings, stop=self.stop))
        self._clock = clock
        self.stats = WatchStats()
        # The API's fingerprint the last triggered cycle was run for. If the load
        # still differs from it afterwards (the cycle failed, or the fingerprint
        # sees something differently from the load), triggering again would run a
        # cycle every minute for nothing (a full load each: no politeness in an
        # outage); the periodic cycle covers it instead.
        self._acted_on: Fingerprint | None = None
        self._last_triggered = -math.inf

    def run(self) -> None:
        s = self.settings
        interval = s.athlon_watch_interval_seconds
        # A watch request that hangs must not hold up the periodic cycle for long.
        timeout = min(s.athlon_http_timeout_seconds, max(interval, 1.0))
        log.info(
            "Watching %s every %g s (a cycle on change, at most one per %g s; a full "
            "cycle every %g s)",
            s.athlon_api_url,
            interval,
            s.athlon_watch_min_gap_seconds,
            s.athlon_watch_cycle_seconds,
        )
        headers = {"User-Agent": USER_AGENT}
        with httpx.Client(timeout=timeout, headers=headers) as client:
            next_cycle = self._clock()  # the first full cycle at once
            next_poll = next_cycle
            while not self.stop.is_set():
                now = self._clock()
                if now >= next_cycle:
                    self._run(SCHEDULED, None)
                    next_cycle = self._clock() + s.athlon_watch_cycle_seconds
                    next_poll = self._clock() + interval
                elif now >= next_poll:
                    next_poll = now + interval
                    seen = self._poll(client)
                    if seen is not None:
                        ready_at = self._last_triggered + s.athlon_watch_min_gap_seconds
                        if now >= ready_at:
                            self._run(TRIGGERED, seen)
                            next_cycle = self._clock() + s.athlon_watch_cycle_seconds
                            next_poll = self._clock() + interval
                        else:
                            # Look again the moment the gap ends (it may have settled).
                            next_poll = min(next_poll, ready_at)
                            log.info(
                                "Minimum gap: the cycle waits %.0f s", ready_at - now
                            )
                wait = min(next_cycle, next_poll) - self._clock()
                if wait > 0:
                    self.stop.wait(wait)
        log.info(
            "Watch stopped: %d polls (%d failed), %d cycles (%d failed)",
            self.stats.polls,
            self.stats.poll_failures,
            len(self.stats.cycles),
            self.stats.cycle_failures,
        )

    def _poll(self, client: httpx.Client) -> Fingerprint | None:
        """The API's fingerprint when it differs from the last load's, else None."""
        self.stats.polls += 1
        try:
            api = fetch_fingerprint(client, self.settings)
            loaded = loaded_fingerprint(self.settings)
        except WatchError as error:
            self.stats.poll_failures += 1
            log.warning("Watch: %s; the periodic cycle still runs.", error)
            return None
        if api == loaded:
            self._acted_on = None
            return None
        if api == self._acted_on:
            return None
        log.info("Showroom changed (%s)", describe_change(api, loaded))
        return api

    def _run(self, reason: str, seen: Fingerprint | None) -> None:
        started = self._clock()
        self.stats.cycles.append((reason, started))
        if reason == TRIGGERED:
            self._last_triggered = started
            self._acted_on = seen
        try:
            summary = self._cycle(reason)
        except CycleStopped:
            log.info("Stopped between two stages, as asked.")
            return
        except StageError as error:
            self.stats.cycle_failures += 1
            log.error("%s cycle failed: %s", reason.capitalize(), error)
            return
        except Exception:  # a long-lived process outlives one broken cycle
            self.stats.cycle_failures += 1
            log.exception("%s cycle failed unexpectedly", reason.capitalize())
            return
        notified = getattr(summary, "notify", None)
        log.info(
            "%s cycle done in %.1f s%s",
            reason.capitalize(),
            self._clock() - started,
            f"; notify: {notified}" if notified is not None else "",
        )
