"""PostgreSQL restarts in the middle of a cycle (embedded server of the test's own),
or is not there at all.

The stages keep no connection from one to the next, so a restart between them loses
nothing. A restart inside `run_cycle` also cuts the connection that holds the
pipeline lock.
"""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg2
import pytest

import loader.pipeline
from athlon_flex.database import _start_embedded, connect, ensure_postgres
from athlon_flex.settings import Settings
from loader.pipeline import LoadSummary, load
from notifier.stage import notify
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    cli_env,
    notifications,
    quick_settings,
    start_cli,
)
from tests.support.smtp import SmtpServer
from transform.runner import build
from watcher.cycle import run_cycle


def _restart_postgres(data_dir: Path) -> None:
    """`pg_ctl restart` of the embedded server: every connection is cut."""
    from pgserver._commands import pg_ctl

    server = _start_embedded(data_dir)
    pg_ctl(
        ["-w", "-l", str(server.log), "restart"],
        pgdata=server.pgdata,
        user=server.system_user,  # "pgserver" when we run as root
        timeout=60,
    )


def _postmaster_started(settings: Settings) -> object:
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute("select pg_postmaster_start_time()")
        return cursor.fetchone()[0]


def test_postgres_restarted_between_load_and_build_loses_nothing(
    showroom: FakeShowroom, smtp_server: SmtpServer, embedded_dir: Path
) -> None:
    settings = Settings(
        _env_file=None,
        athlon_data_dir=embedded_dir,
        **quick_settings(showroom, smtp_server),
    )
    load(settings)
    started = _postmaster_started(settings)

    _restart_postgres(embedded_dir)

    assert _postmaster_started(settings) > started
    build(settings)
    summary = notify(settings)
    assert summary.emails_sent == 1
    texts = [mail.text for mail in smtp_server.messages_to(RECIPIENT)]
    assert_nothing_lost_or_doubled(settings, showroom.catalog, texts)

    recorded = notifications(settings)
    again = run_cycle(settings)

    assert again.notify.emails_sent == 0
    assert len(smtp_server.messages) == 1
    assert notifications(settings) == recorded


def test_postgres_restart_inside_run_cycle_loses_nothing_and_reports_success(
    showroom: FakeShowroom,
    smtp_server: SmtpServer,
    embedded_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        _env_file=None,
        athlon_data_dir=embedded_dir,
        **quick_settings(showroom, smtp_server),
    )
    real_load = loader.pipeline.load

    def load_then_restart(settings: Settings, **kwargs: object) -> LoadSummary:
        summary = real_load(settings, **kwargs)
        _restart_postgres(embedded_dir)
        return summary

    # The fault lands at an exact point: after the real load, before the real build.
    monkeypatch.setattr(loader.pipeline, "load", load_then_restart)
    error: Exception | None = None
    try:
        run_cycle(settings)
    except psycopg2.Error as caught:
        error = caught
    monkeypatch.undo()

    # Whatever run_cycle reported, the cycle's work is complete and exact ...
    texts = [mail.text for mail in smtp_server.messages_to(RECIPIENT)]
    assert_nothing_lost_or_doubled(settings, showroom.catalog, texts)
    assert run_cycle(settings).notify.emails_sent == 0
    assert len(smtp_server.messages) == 1
    # ... but a cycle that did all its work must not end in an error.
    assert error is None, f"run_cycle raised {type(error).__name__}: {error}"


def test_postgres_down_run_fails_with_one_clear_line(
    showroom: FakeShowroom, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))  # bound, never listening: refuses connections
        settings = Settings(
            _env_file=None,
            postgres_host="127.0.0.1",
            postgres_port=holder.getsockname()[1],
            athlon_data_dir=tmp_path / "athlon",
            **quick_settings(showroom, smtp_server),
        )
        process, stdout, stderr = start_cli(
            "run", env=cli_env(settings), cwd=tmp_path, name="run"
        )
        code = process.wait(timeout=120)

    assert code == 1
    assert stdout.read_text() == ""
    assert showroom.stats.requests_total == 0
    assert "Traceback" not in stderr.read_text()
    assert stderr.read_text().startswith("error: Cannot connect to PostgreSQL")
