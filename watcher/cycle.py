"""One full cycle: load, then transform, then notify; the same stages the DAG chains.

Two cycles must never write at once (two cron jobs, a user's manual run next to the
scheduler): a cycle holds a PostgreSQL advisory lock for its whole length. A second
cycle that finds the lock taken refuses at once, having changed nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions

from athlon_flex.database import PostgresAddress, ensure_postgres, open_connection
from athlon_flex.errors import StageError
from athlon_flex.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Arbitrary but fixed: the key every athlon-flex process agrees on ("ATHLON" in hex).
PIPELINE_LOCK_KEY = 0x415448_4C4F4E


class PipelineBusyError(StageError):
    """Another cycle holds the pipeline lock."""


class CycleStopped(StageError):
    """Asked to stop (Ctrl-C in `athlon-flex watch`): stopped between two stages."""


@contextmanager
def pipeline_lock(connection: PostgresAddress) -> Iterator[None]:
    """Hold the pipeline's advisory lock, or raise PipelineBusyError immediately.

    The lock lives on its own connection, so it is released even if the process is
    killed: PostgreSQL drops session locks when the connection goes away.
    """
    conn = open_connection(connection)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("select pg_try_advisory_lock(%s)", (PIPELINE_LOCK_KEY,))
            (acquired,) = cursor.fetchone()
            if not acquired:
                cursor.execute(
                    "select pid, backend_start from pg_stat_activity "
                    "join pg_locks using (pid) where locktype = 'advisory' "
                    "and objid = %s",
                    (PIPELINE_LOCK_KEY & 0xFFFFFFFF,),
                )
                holder = cursor.fetchone()
                who = f" (PostgreSQL backend pid {holder[0]})" if holder else ""
                raise PipelineBusyError(
                    f"Another athlon-flex cycle is running{who}; this one did "
                    "nothing. Try again when it has finished."
                )
        yield
    finally:
        _release(conn)


def _release(conn: psycopg2.extensions.connection) -> None:
    """Unlock and close; a connection lost meanwhile (server restart) took the lock."""
    try:
        with conn.cursor() as cursor:
            cursor.execute("select pg_advisory_unlock(%s)", (PIPELINE_LOCK_KEY,))
    except psycopg2.Error:
        log.warning(
            "The connection holding the pipeline lock was lost (PostgreSQL "
            "restarted?); the lock went with it."
        )
    finally:
        conn.close()


def run_locked(settings: Settings, stage: Callable[[], T]) -> T:
    """Run one stage (or a whole cycle) under the pipeline lock.

    The one wrapper the CLI's single-stage commands, `run_cycle` and the DAG's tasks
    share: a stage never writes next to a running cycle, and a caller that finds the
    lock taken fails at once (the DAG's task is then retried after its backoff).
    """
    with pipeline_lock(ensure_postgres(settings)):
        return stage()


@dataclass
class CycleSummary:
    """What each stage of one cycle reported."""

    load: Any
    transform: Any
    notify: Any


def run_cycle(
    settings: Settings,
    *,
    allow_shrink: bool = False,
    baseline: bool | None = None,
    stop: threading.Event | None = None,
) -> CycleSummary:
    """Load, transform, notify; the first failure (a StageError) stops the cycle.

    `stop`, once set, ends the cycle before its next stage (CycleStopped): a stage
    is never cut in half, and each leaves the database as the next cycle expects
    (a load not yet built is built then; windows not yet notified are notified then).
    """
    # Imported here so `athlon-flex --help` and the DAG's parse stay light.
    from loader.pipeline import load
    from notifier.stage import notify
    from transform.runner import build

    def check(next_stage: str) -> None:
        if stop is not None and stop.is_set():
            raise CycleStopped(
                f"Stopped on request before {next_stage}; the next cycle picks up "
                "where this one left off."
            )

    def cycle() -> CycleSummary:
        check("load")
        log.info("Cycle: load")
        load_summary = load(settings, allow_shrink=allow_shrink)
        check("transform")
        log.info("Cycle: transform (dbt build)")
        build_summary = build(settings)
        check("notify")
        log.info("Cycle: notify")
        notify_summary = notify(settings, baseline=baseline)
        return CycleSummary(
            load=load_summary, transform=build_summary, notify=notify_summary
        )

    return run_locked(settings, cycle)
