"""What an operator meets when a setting or the data dir is wrong: one line, exit 2.

Each test runs the real `athlon-flex` in a process of its own with its own
environment, as a user does, and asserts the exit code, the one line on stderr and
that nothing else changed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from athlon_flex.database import connect, ensure_postgres
from simulation.fake_api import FakeShowroom
from tests.original.test_migrate import _old_history, source  # noqa: F401
from tests.support.original_database import OriginalDatabase

_OURS = ("POSTGRES_", "EMAIL_", "SMTP_", "GOOGLE_", "ATHLON_", "NOTIFY_", "ALERT_")


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(settings)
    return env


def _cli(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        # Accepted before, then every load failed (exit 1) deep inside httpx or
        # timedelta, or `watch` died with a traceback in Event.wait.
        ("ATHLON_HTTP_TIMEOUT_SECONDS", "inf", "Input should be a finite number"),
        ("ATHLON_HTTP_TIMEOUT_SECONDS", "1e20", "Input should be less than or equal"),
        ("ATHLON_DETAILS_REFRESH_HOURS", "inf", "Input should be a finite number"),
        ("ATHLON_DETAILS_REFRESH_HOURS", "1e20", "Input should be less than or equal"),
        ("ATHLON_WATCH_INTERVAL_SECONDS", "1e20", "Input should be less than or equal"),
        ("ATHLON_WATCH_CYCLE_SECONDS", "inf", "Input should be a finite number"),
        ("ATHLON_WATCH_MIN_GAP_SECONDS", "1e309", "Input should be a finite number"),
    ],
)
def test_an_unbounded_number_is_refused_in_one_line(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    env = _env(ATHLON_DATA_DIR=str(tmp_path / "data"), **{name: value})
    result = _cli("status", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert _one_line(result.stderr).startswith(
        f"error: Invalid configuration: {name}={value!r}: {expected}"
    )
    assert not (tmp_path / "data").exists()


def test_watch_with_a_huge_interval_stops_in_one_line_not_a_traceback(
    fake_api: FakeShowroom, embedded_data_dir: Path, tmp_path: Path
) -> None:
    env = _env(
        ATHLON_API_URL=fake_api.url,
        ATHLON_DATA_DIR=str(embedded_data_dir),
        ATHLON_WATCH_INTERVAL_SECONDS="1e20",
        ATHLON_WATCH_CYCLE_SECONDS="1e20",
    )
    result = _cli("watch", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr).startswith(
        "error: Invalid configuration: ATHLON_WATCH_INTERVAL_SECONDS='1e20': "
    )
    assert not (embedded_data_dir / "pgdata").exists()  # refused before starting


def test_a_data_dir_that_is_a_file_stops_in_one_line(tmp_path: Path) -> None:
    occupied = tmp_path / "athlon"
    occupied.write_text("not a folder\n", encoding="utf-8")
    env = _env(
        ATHLON_API_URL="http://127.0.0.1:9/api/v1", ATHLON_DATA_DIR=str(occupied)
    )
    result = _cli("load", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        f"error: ATHLON_DATA_DIR='{occupied}': cannot create the data folder "
        "(not a folder); point it at a writable folder. Nothing was changed."
    )
    assert occupied.read_text(encoding="utf-8") == "not a folder\n"


def test_a_data_dir_under_a_file_stops_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    below = tmp_path / "file" / "athlon"
    env = _env(ATHLON_API_URL="http://127.0.0.1:9/api/v1", ATHLON_DATA_DIR=str(below))
    result = _cli("run", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        f"error: ATHLON_DATA_DIR='{below}': cannot create the data folder "
        "(Not a directory); point it at a writable folder. Nothing was changed."
    )


def test_a_nul_byte_in_a_path_from_dotenv_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"ATHLON_DATA_DIR=/tmp/athlon\x00flex\n")
    result = _cli("load", cwd=tmp_path, env=_env())
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        "error: Invalid configuration: ATHLON_DATA_DIR: contains a NUL byte"
    )


def test_a_nul_byte_in_the_subscriptions_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"NOTIFY_SUBSCRIPTIONS_FILE=subs\x00.yml\n")
    result = _cli("notify", "--test", cwd=tmp_path, env=_env())
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        "error: Invalid configuration: NOTIFY_SUBSCRIPTIONS_FILE: contains a NUL byte"
    )


def test_a_dotenv_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    # An old .docker-env saved as Latin-1 (José), a password on the next line.
    (tmp_path / ".env").write_bytes(
        b"EMAIL_FROM=jos\xe9@example.nl\nSMTP_PASSWORD=hunter2\n"
    )
    result = _cli("status", cwd=tmp_path, env=_env())
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        "error: Invalid configuration: .env is not UTF-8 text (invalid continuation "
        "byte at byte 14); save it as UTF-8"
    )
    assert "hunter2" not in result.stderr


def test_a_stale_pid_file_naming_another_live_process(
    fake_api: FakeShowroom, embedded_data_dir: Path, tmp_path: Path
) -> None:
    """After a crash or a reboot postmaster.pid stays; its pid may be anyone's."""
    env = _env(ATHLON_API_URL=fake_api.url, ATHLON_DATA_DIR=str(embedded_data_dir))
    first = _cli("load", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    pid_file = embedded_data_dir / "pgdata" / "postmaster.pid"
    lines = pid_file.read_text(encoding="utf-8").splitlines(keepends=True)
    stopped = _cli("stop", cwd=tmp_path, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_file.exists()

    other = subprocess.Popen(["sleep", "300"])  # the pid's new owner
    try:
        # The server the file names started an hour ago; its pid is `sleep`'s now.
        started = f"{int(time.time()) - 3600}\n"
        stale = [f"{other.pid}\n", lines[1], started, *lines[3:]]
        pid_file.write_text("".join(stale), encoding="utf-8")

        status = _cli("status", cwd=tmp_path, env=env)
        assert status.returncode == 0, status.stderr
        assert status.stdout.splitlines()[-1] == (
            f"embedded PostgreSQL: stopped (data in {embedded_data_dir / 'pgdata'})"
        )
        again = _cli("load", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "details fetched 0, reused" in again.stdout
        assert other.poll() is None  # never signalled
        status = _cli("status", cwd=tmp_path, env=env)
        assert status.stdout.splitlines()[-1].startswith(
            "embedded PostgreSQL: running, pid "
        )
        assert f"pid {other.pid}," not in status.stdout
    finally:
        other.kill()
        other.wait()


def test_import_original_filter_into_a_missing_folder_is_one_error_line(
    tmp_path: Path,
) -> None:
    target = tmp_path / "no-such-folder" / "subscriptions.yml"
    result = _cli(
        "import-original-filter",
        '{"make": "Tesla"}',
        "--email",
        "anna@example.nl",
        "--output",
        str(target),
        cwd=tmp_path,
        env=_env(),
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "mapped make -> make",
        f"error: cannot write {target}: No such file or directory; nothing was written",
    ]
    assert not target.parent.exists()


def test_fake_api_on_a_taken_port_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(
            "fake-api", "--port", str(port), cwd=tmp_path, env=_env(), timeout=60
        )
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        f"error: The simulated showroom cannot listen on 127.0.0.1:{port} (Address "
        "already in use); pick another port or stop what is using it."
    )


def test_fake_api_with_half_a_login_is_one_error_line(tmp_path: Path) -> None:
    result = _cli(
        "fake-api", "--port", "0", "--username", "u", cwd=tmp_path, env=_env()
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        "error: Give both username and password, or neither"
    )


def test_docs_on_a_taken_port_is_one_error_line(
    embedded_data_dir: Path, tmp_path: Path
) -> None:
    """Refused before the site's generation (which takes a dbt run), not after."""
    env = _env(ATHLON_DATA_DIR=str(embedded_data_dir))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli("docs", "--port", str(port), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        f"error: Cannot serve the docs site on 127.0.0.1:{port} (Address already "
        "in use); pick another --port. Nothing was generated."
    ]
    assert result.stdout == ""
    assert not (embedded_data_dir / "dbt" / "docs").exists()


def test_watch_outlives_its_database_going_away_between_cycles(
    fake_api: FakeShowroom, embedded_data_dir: Path, tmp_path: Path
) -> None:
    """A PostgreSQL restart between two cycles is a failed poll, not the end."""
    from athlon_flex.database import embedded_status

    server_env = _env(
        ATHLON_API_URL=fake_api.url, ATHLON_DATA_DIR=str(embedded_data_dir)
    )
    assert _cli("load", cwd=tmp_path, env=server_env).returncode == 0
    socket_dir = embedded_status(embedded_data_dir).socket_dir
    assert socket_dir
    log_path = tmp_path / "watch.log"
    watch_env = _env(
        ATHLON_API_URL=fake_api.url,
        ATHLON_DATA_DIR=str(tmp_path / "watch-data"),
        POSTGRES_HOST=socket_dir,
        ATHLON_WATCH_INTERVAL_SECONDS="0.5",
    )
    with log_path.open("w", encoding="utf-8") as log:
        watch = subprocess.Popen(
            [sys.executable, "-m", "watcher.cli", "watch"],
            cwd=tmp_path,
            env=watch_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "Scheduled cycle done" not in log_path.read_text(encoding="utf-8"):
            assert watch.poll() is None, log_path.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, log_path.read_text(encoding="utf-8")
            time.sleep(0.2)
        stopped = _cli("stop", cwd=tmp_path, env=server_env)
        assert stopped.returncode == 0, stopped.stderr
        time.sleep(3)  # several polls against a server that is not there
        text = log_path.read_text(encoding="utf-8")
        assert watch.poll() is None, text[-3000:]
        assert "Watch: Could not read raw.vehicle_clusters: Cannot connect" in text
        watch.send_signal(signal.SIGTERM)
        assert watch.wait(timeout=60) == 0
        assert log_path.read_text(encoding="utf-8").splitlines()[-1] == "watch stopped"
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


def test_a_trailing_space_in_the_data_dir_is_refused_in_one_line(
    fake_api: FakeShowroom, embedded_data_dir: Path, tmp_path: Path
) -> None:
    """`ATHLON_DATA_DIR=/srv/athlon ` (a space pasted into an env file) is another
    folder: it was created, a second server failed to start in it (exit 1, a
    message naming no setting), beside the real history."""
    env = _env(ATHLON_API_URL=fake_api.url, ATHLON_DATA_DIR=str(embedded_data_dir))
    spaced = f"{embedded_data_dir} "
    refused = _cli("run", cwd=tmp_path, env={**env, "ATHLON_DATA_DIR": spaced})
    assert refused.returncode == 2, refused.stdout + refused.stderr[-2000:]
    assert _one_line(refused.stderr) == (
        f"error: Invalid configuration: ATHLON_DATA_DIR={spaced!r}: starts or ends "
        "with whitespace; remove it"
    )
    assert not Path(spaced).exists()
    assert refused.stdout == ""


def test_status_and_stop_know_the_server_the_demo_left_running(
    embedded_data_dir: Path, tmp_path: Path
) -> None:
    """README: `status` shows the embedded PostgreSQL, `stop` stops it. After
    `demo`, one ran under ATHLON_DATA_DIR/demo that `status` called stopped and
    `stop` called already stopped. The server is started here where the demo
    starts its own (simulation/demo.py; tests/pipeline/test_demo.py runs the demo)."""
    from athlon_flex.database import _start_embedded, embedded_status

    env = _env(ATHLON_DATA_DIR=str(embedded_data_dir))
    demo_dir = embedded_data_dir / "demo"
    _start_embedded(demo_dir)
    running = embedded_status(demo_dir)
    assert running.running

    status = _cli("status", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert f"the demo's {running}" in status.stdout.splitlines()

    stop = _cli("stop", cwd=tmp_path, env=env)
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.splitlines() == [
        f"the demo's embedded PostgreSQL stopped; data kept in {demo_dir}",
        f"embedded PostgreSQL already stopped ({embedded_data_dir})",
    ]
    assert not embedded_status(demo_dir).running


def test_a_subscriptions_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    subscriptions = tmp_path / "subscriptions.yml"
    subscriptions.write_bytes(
        b"recipients:\n  - email: anna@example.nl\n    name: Jos\xe9\n"
    )
    env = _env(NOTIFY_SUBSCRIPTIONS_FILE=str(subscriptions))
    result = _cli("notify", "--test", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        f"error: Subscriptions file {subscriptions} is not UTF-8 text (invalid "
        "continuation byte at byte 52); save it as UTF-8; nothing was sent or "
        "recorded."
    )


def test_import_original_filter_from_a_latin1_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "filter.json").write_bytes(b'{"make": "Citro\xebn"}')
    result = _cli(
        "import-original-filter",
        "@filter.json",
        "--email",
        "anna@example.nl",
        cwd=tmp_path,
        env=_env(),
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr) == (
        "error: filter.json is not UTF-8 text (invalid continuation byte at byte "
        "15); save it as UTF-8"
    )
    assert result.stdout == ""


def test_migrate_refuses_a_recipient_that_is_not_an_address(
    source: tuple[str, OriginalDatabase],  # noqa: F811 - the fixture imported above
    make_settings: Callable,
    tmp_path: Path,
) -> None:
    """`--recipient` was written as given into notifier.notifications: a typo
    (or `Anna@Example.nl`) became a recipient of its own, beside the one rule."""
    url, old = source
    _old_history(old, ["a1", "b1", "c1", "d1"])
    settings = make_settings()
    env = _env(
        POSTGRES_HOST=settings.postgres_host,
        POSTGRES_PORT=str(settings.postgres_port),
        POSTGRES_USER=settings.postgres_user,
        POSTGRES_DB=settings.postgres_db,
        ATHLON_DATA_DIR=str(tmp_path / "athlon"),
        ORIGINAL_DATABASE_URL=url,
    )
    bad = _cli(
        "migrate-from-original",
        "--apply",
        "--recipient",
        "anna@example.nl",
        "--recipient",
        "bob at example.nl",
        cwd=tmp_path,
        env=env,
    )
    assert bad.returncode == 2, bad.stdout + bad.stderr[-2000:]
    assert _one_line(bad.stderr) == (
        "error: --recipient: 'bob at example.nl' is not an email address (it "
        "contains a space)"
    )
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute("select to_regclass('notifier.notifications')")
        table = cursor.fetchone()[0]
        if table is not None:
            cursor.execute("select count(*) from notifier.notifications")
            assert cursor.fetchone()[0] == 0

    mixed = _cli(
        "migrate-from-original",
        "--apply",
        "--recipient",
        "Anna@Example.NL",
        cwd=tmp_path,
        env=env,
    )
    assert mixed.returncode == 0, mixed.stderr[-2000:]
    assert "notifications (for anna@example.nl): 4 read, 4 added" in mixed.stdout


def test_an_empty_pid_file_left_by_a_power_cut_does_not_block_the_server(
    fake_api: FakeShowroom, embedded_data_dir: Path, tmp_path: Path
) -> None:
    env = _env(ATHLON_API_URL=fake_api.url, ATHLON_DATA_DIR=str(embedded_data_dir))
    assert _cli("load", cwd=tmp_path, env=env).returncode == 0
    assert _cli("stop", cwd=tmp_path, env=env).returncode == 0
    pid_file = embedded_data_dir / "pgdata" / "postmaster.pid"
    pid_file.write_bytes(b"")  # what a crash between create and write leaves

    again = _cli("load", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "details fetched 0, reused" in again.stdout  # the same history
    status = _cli("status", cwd=tmp_path, env=env)
    assert status.stdout.splitlines()[-1].startswith(
        "embedded PostgreSQL: running, pid "
    )
