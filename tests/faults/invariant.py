"""What every fault test ends on: no notification lost or sent twice, no window
wrongly closed; plus what the fault tests share (settings, readers, the CLI).

`assert_nothing_lost_or_doubled` is the one invariant. It reads the real tables and
the real mailbox after the last successful cycle and checks, for one recipient:
(a) every vehicle in the simulated showroom has exactly one open window in
    marts.vehicle_availability, and exactly one notifications row for that window;
(b) no vehicle that never left the showroom has a closed window (and none that is
    out now still has an open one);
(c) each showroom vehicle's licence plate is in exactly one of the messages sent;
(d) notifier.notifications holds no row twice, and no row for a window that does
    not exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.settings import Settings
from simulation.fake_api import Catalog, FakeShowroom
from tests.support.smtp import SmtpServer

RECIPIENT = "anna@example.nl"

Window = tuple[str, datetime, datetime | None]


def quick_settings(
    api: FakeShowroom, smtp_server: SmtpServer, **overrides: Any
) -> dict[str, Any]:
    """Settings fields for a cycle against `api` mailing RECIPIENT via `smtp_server`.

    Few, fast retries: a fault that outlasts them fails the load within a second.
    No grace period: cycles here are seconds apart, and a car a test takes out is
    meant to be out (test_exactly_once.py tests the grace period itself).
    """
    return {
        "athlon_api_url": api.url,
        "notify_grace_minutes": 0,
        "athlon_http_max_retries": 2,
        "athlon_http_backoff_seconds": 0.01,
        "athlon_http_timeout_seconds": 10,
        "email_to": [RECIPIENT],
        **smtp_server.settings_overrides(),
        **overrides,
    }


def query(settings: Settings, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """All rows of one query on the settings' database."""
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def raw_contents(settings: Settings) -> dict[str, list[tuple]]:
    """Every row of every table in schema `raw` (dlt's own included), sorted.

    Two equal results mean the loader changed nothing at all, bookkeeping included.
    """
    tables = query(
        settings,
        "select table_name from information_schema.tables "
        "where table_schema = 'raw' order by table_name",
    )
    return {
        name: sorted(query(settings, f'select * from raw."{name}"'), key=repr)
        for (name,) in tables
    }


def windows(settings: Settings) -> set[Window]:
    """(vehicle_id, available_since, available_until) of every availability window."""
    return set(
        query(
            settings,
            "select vehicle_id, available_since, available_until "
            "from marts.vehicle_availability",
        )
    )


def notifications(settings: Settings) -> list[tuple[str, datetime, str]]:
    """Every (vehicle_id, available_since, recipient) recorded, sorted."""
    return sorted(
        query(
            settings,
            "select vehicle_id, available_since, recipient from notifier.notifications",
        )
    )


def mentions(texts: Sequence[str], plate: str) -> int:
    """How many of the messages name this licence plate (as a whole plate)."""
    pattern = re.compile(rf"(?<![\w-]){re.escape(plate)}(?![\w-])")
    return sum(1 for text in texts if pattern.search(text))


def assert_nothing_lost_or_doubled(
    settings: Settings,
    catalog: Catalog,
    texts: Sequence[str],
    *,
    recipient: str = RECIPIENT,
    left: Collection[str] | None = None,
    returned: Collection[str] = (),
) -> None:
    """The invariant (a)-(d) of the module docstring, after the last good cycle.

    `texts` are the messages the recipient received over the whole test (the plain
    text of each email, or the console's log lines). `left` are the ids of vehicles
    that were out of the showroom at some point; by default those out now.
    `returned` are showroom vehicles that came back after a window closed: their
    plate is in one message per window recorded for the recipient, not one.
    """
    if left is None:
        left = {vehicle.id for vehicle in catalog.removed_vehicles}
    current = {vehicle.id: vehicle for vehicle in catalog.vehicles}
    all_windows = windows(settings)
    open_since: dict[str, list[datetime]] = {}
    for vehicle_id, since, until in all_windows:
        if until is None:
            open_since.setdefault(vehicle_id, []).append(since)

    # (a) one open window per showroom vehicle, notified exactly once.
    problems = {
        vehicle_id: open_since.get(vehicle_id, [])
        for vehicle_id in current
        if len(open_since.get(vehicle_id, [])) != 1
    }
    assert problems == {}, (
        f"showroom vehicles without exactly one open window: {problems}"
    )
    stray = set(open_since) - set(current)
    assert stray == set(), f"open windows of vehicles not in the showroom: {stray}"
    recorded = Counter(
        (vehicle_id, since)
        for vehicle_id, since, who in notifications(settings)
        if who == recipient
    )
    counts = {
        vehicle_id: recorded[(vehicle_id, open_since[vehicle_id][0])]
        for vehicle_id in current
    }
    assert counts == dict.fromkeys(current, 1), (
        f"notifications per open window: {counts}"
    )

    # (b) only a vehicle that left can have a closed window.
    closed = {vehicle_id for vehicle_id, _, until in all_windows if until is not None}
    assert closed <= set(left), f"closed windows of vehicles that never left: {closed}"

    # (c) each plate in exactly one message.
    per_window = Counter(
        vehicle_id
        for vehicle_id, _, who in notifications(settings)
        if who == recipient and vehicle_id in returned
    )
    per_plate = {
        vehicle.license_plate: mentions(texts, vehicle.license_plate)
        for vehicle in current.values()
    }
    expected = {
        vehicle.license_plate: per_window[vehicle_id] if vehicle_id in returned else 1
        for vehicle_id, vehicle in current.items()
    }
    assert per_plate == expected, f"messages per plate: {per_plate}"

    # (d) no duplicate and no orphan notification.
    rows = notifications(settings)
    duplicates = [row for row, count in Counter(rows).items() if count > 1]
    assert duplicates == [], f"duplicate notifications: {duplicates}"
    known = {(vehicle_id, since) for vehicle_id, since, _ in all_windows}
    orphans = [row for row in rows if (row[0], row[1]) not in known]
    assert orphans == [], f"notifications of windows that do not exist: {orphans}"


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that gives `athlon-flex` in a subprocess exactly `settings`.

    The parent's own project variables are dropped; every field that differs from
    its default is passed as its variable (field name upper-cased).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTGRES_", "EMAIL_", "SMTP_", "GOOGLE_", "ATHLON_"))
    }
    for name, value in settings.model_dump(exclude_defaults=True).items():
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = str(value)
    env.update(extra)
    return env


def start_cli(
    *args: str, env: dict[str, str], cwd: Path, name: str
) -> tuple[subprocess.Popen, Path, Path]:
    """Start `python -m watcher.cli ARGS` in its own session; output to files.

    Returns the process and the paths of its stdout and stderr. Its own session lets a
    test kill it and anything it started with one `os.killpg` on its id.
    """
    stdout, stderr = cwd / f"{name}.out", cwd / f"{name}.err"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "watcher.cli", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return process, stdout, stderr
