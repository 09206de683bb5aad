"""Stopping a real `athlon-flex notify` at a chosen point and killing it there.

The timing is driven from outside the process, never by hooks in its code: a lock
the test holds on a notifier table stops the run right before a write to it, and a
second connection sees the run wait. Used by the kill tests of the email and the
price-drop paths.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

import psycopg2

from athlon_flex.database import ensure_postgres
from athlon_flex.settings import Settings


class TableLocks:
    """Connections of the test's own: one holds table locks, one watches the
    notifier wait (pg_stat_activity is read once per transaction, so the watcher
    must not be the one inside the locking transaction)."""

    def __init__(self, settings: Settings) -> None:
        kwargs = ensure_postgres(settings).connect_kwargs()
        self.conn = psycopg2.connect(**kwargs)
        self.watch = psycopg2.connect(**kwargs)
        self.watch.autocommit = True

    def lock(self, table: str) -> None:
        """EXCLUSIVE: the notifier may still read `table`, but not write it."""
        with self.conn.cursor() as cursor:
            cursor.execute(f"lock table {table} in exclusive mode")

    def unlock(self) -> None:
        self.conn.rollback()

    def someone_waits_for_a_lock(self) -> bool:
        with self.watch.cursor() as cursor:
            cursor.execute(
                "select count(*) from pg_stat_activity where pid <> pg_backend_pid() "
                "and datname = current_database() and wait_event_type = 'Lock'"
            )
            (waiting,) = cursor.fetchone()
        return waiting > 0

    def close(self) -> None:
        self.conn.close()
        self.watch.close()


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str):
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, f"notify ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
