"""Faults of whole processes, with `athlon-flex` run as a user runs it: a load killed
with SIGKILL, and two cycles started at the same moment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest

from athlon_flex.database import ensure_postgres
from athlon_flex.settings import Settings
from loader.pipeline import _workdir, load
from notifier.stage import notify
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    cli_env,
    query,
    quick_settings,
    raw_contents,
    start_cli,
)
from tests.support.smtp import SmtpServer
from watcher.cycle import run_cycle

DATA_TABLES = ("vehicle_clusters", "vehicles", "vehicles__options")


def _wait_for(
    condition: Callable[[], bool], process: subprocess.Popen, what: str
) -> None:
    """Poll until `condition` holds; fail if the process ends or 60 s pass first."""
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _kill(process: subprocess.Popen) -> int:
    """SIGKILL the process (and anything it started: its own session), reap it."""
    with contextlib.suppress(ProcessLookupError):  # it finished first
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout=30)


class _StagingWatch:
    """Sees another session run a statement on dlt's landing dataset `raw_landing`."""

    def __init__(self, settings: Settings) -> None:
        self._conn = psycopg2.connect(**ensure_postgres(settings).connect_kwargs())
        self._conn.autocommit = True

    def busy(self) -> bool:
        with self._conn.cursor() as cursor:
            cursor.execute(
                "select count(*) from pg_stat_activity where pid <> pg_backend_pid() "
                "and datname = current_database() and state = 'active' "
                "and query ilike '%raw_landing%'"
            )
            return cursor.fetchone()[0] > 0

    def close(self) -> None:
        self._conn.close()


def test_load_killed_mid_run_leaves_raw_unchanged_and_the_next_cycle_is_exact(
    fake_api_factory: Callable[..., FakeShowroom],
    make_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:

    api = fake_api_factory(clusters=20, vehicles_per_cluster=10, seed=5)
    # Details refetched every run: the killed load has ~200 slow requests to make.
    settings = make_settings(
        **quick_settings(api, smtp_server, athlon_details_refresh_hours=0)
    )
    catalog = api.catalog
    load(settings)
    before = raw_contents(settings)
    leased = catalog.remove_vehicle(catalog.vehicles[3].id)
    catalog.add_vehicle()  # a load that finished would change raw
    env = cli_env(settings)

    # Killed while fetching details.
    api.latency_ms = 100
    api.stats.reset()
    process, _, stderr = start_cli("load", env=env, cwd=tmp_path, name="fetching")
    try:
        _wait_for(
            lambda: api.stats.requests_by_endpoint["Vehicle"] >= 20,
            process,
            "20 detail requests",
        )
    finally:
        code = _kill(process)
    assert code == -signal.SIGKILL, stderr.read_text()
    assert api.stats.requests_by_endpoint["Vehicle"] < len(catalog)
    assert raw_contents(settings) == before

    # Killed once every detail is fetched, as soon as dlt works on its landing
    # tables: raw is the old snapshot or the whole new one, never a mix.
    api.latency_ms = 0
    api.stats.reset()
    staging = _StagingWatch(settings)
    process, _, stderr = start_cli("load", env=env, cwd=tmp_path, name="writing")
    try:
        _wait_for(
            lambda: api.stats.requests_by_endpoint["Vehicle"] >= len(catalog),
            process,
            "every detail request",
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and not staging.busy():
            assert time.monotonic() < deadline, "the load neither wrote nor ended"
    finally:
        code = _kill(process)
        staging.close()
    after = raw_contents(settings)
    old = {table: before[table] for table in DATA_TABLES}
    landed = {table: after[table] for table in DATA_TABLES}
    if landed != old:  # the kill came after dlt's commit: the whole new snapshot
        assert query(
            settings, "select id, count(*) over () from raw.vehicles order by id"
        ) == [
            (vehicle_id, len(catalog))
            for vehicle_id in sorted(v.id for v in catalog.vehicles)
        ]
        assert query(
            settings, "select count(distinct extracted_at) from raw.vehicles"
        ) == [(1,)]

    run_cycle(settings)
    # 200 cars do not fit one email under 100 KB: the next runs carry the rest.
    while len(smtp_server.messages) < 10 and notify(settings).emails_sent:
        pass

    mails = smtp_server.messages_to(RECIPIENT)
    assert all(len(mail.message.as_bytes()) <= 100_000 for mail in mails)
    texts = [mail.text for mail in mails]
    assert_nothing_lost_or_doubled(settings, catalog, texts, left={leased.id})


def test_two_runs_at_once_one_refuses_and_changes_nothing(
    fake_api_factory: Callable[..., FakeShowroom],
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    api = fake_api_factory(clusters=3, vehicles_per_cluster=2, seed=11, latency_ms=100)
    settings = cycle_settings(api)
    env = cli_env(settings)

    runs = [
        start_cli("run", env=env, cwd=tmp_path, name=name)
        for name in ("first", "second")
    ]
    try:
        codes = [process.wait(timeout=300) for process, _, _ in runs]
    finally:
        for process, _, _ in runs:
            if process.poll() is None:
                _kill(process)

    assert sorted(codes) == [0, 1], [err.read_text() for _, _, err in runs]
    _, winner_out, _ = runs[codes.index(0)]
    _, loser_out, loser_err = runs[codes.index(1)]
    assert "Another athlon-flex cycle is running" in loser_err.read_text()
    assert loser_out.read_text() == ""
    assert "notify: notify (instant): 1 emails sent, 6 vehicles" in (
        winner_out.read_text()
    )
    # One load, one snapshot version per car, one email: the loser did nothing.
    assert query(settings, "select count(*) from raw_landing._dlt_loads") == [(1,)]
    assert query(settings, "select count(*) from snapshots.snap_vehicles") == [(6,)]
    texts = [mail.text for mail in smtp_server.messages_to(RECIPIENT)]
    assert len(texts) == 1
    assert_nothing_lost_or_doubled(settings, api.catalog, texts)


def test_a_killed_loads_temporary_files_are_removed_by_the_next_load(
    fake_api_factory: Callable[..., FakeShowroom],
    make_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = fake_api_factory(clusters=10, vehicles_per_cluster=10, seed=5)
    settings = make_settings(**quick_settings(api, smtp_server))
    load(settings)
    before = raw_contents(settings)
    api.catalog.add_vehicle()
    temp = tmp_path / "tmp"
    temp.mkdir()
    api.latency_ms = 100
    api.stats.reset()

    env = cli_env(settings, TMPDIR=str(temp), ATHLON_DETAILS_REFRESH_HOURS="0")
    process, _, stderr = start_cli("load", env=env, cwd=tmp_path, name="killed")
    try:
        _wait_for(
            lambda: api.stats.requests_by_endpoint["Vehicle"] >= 10,
            process,
            "10 detail requests",
        )
    finally:
        code = _kill(process)
    assert code == -signal.SIGKILL, stderr.read_text()
    (left,) = list(temp.iterdir())
    assert left.name.startswith("athlon-load-")
    assert (left / "athlon_showroom").is_dir()  # dlt's pipeline directory
    assert raw_contents(settings) == before

    api.latency_ms = 0
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    summary = load(settings)

    assert list(temp.iterdir()) == []
    assert summary.rows["vehicles"] == len(api.catalog) == 101


def test_a_live_loads_temporary_files_survive_another_loads_sweep(
    fake_api_factory: Callable[..., FakeShowroom],
    make_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = fake_api_factory(clusters=5, vehicles_per_cluster=10, seed=6)
    settings = make_settings(**quick_settings(api, smtp_server))
    temp = tmp_path / "tmp"
    temp.mkdir()
    api.latency_ms = 100
    env = cli_env(settings, TMPDIR=str(temp))
    process, _, stderr = start_cli("load", env=env, cwd=tmp_path, name="live")
    try:
        _wait_for(
            lambda: api.stats.requests_by_endpoint["Vehicle"] >= 5,
            process,
            "5 detail requests",
        )
        (live,) = list(temp.iterdir())
        assert live.name.startswith("athlon-load-")
        # Another load starting now sweeps the temp folder for killed loads' files.
        monkeypatch.setattr(tempfile, "tempdir", str(temp))
        with _workdir() as other:
            assert other != live
            assert live.is_dir()
        assert process.wait(timeout=300) == 0, stderr.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    assert list(temp.iterdir()) == []
    assert query(settings, "select count(*) from raw.vehicles") == [(len(api.catalog),)]
