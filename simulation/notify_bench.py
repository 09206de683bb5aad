"""How long the notify stage takes with many windows, recipients and price drops.

    uv run --all-extras python -m simulation.notify_bench \
        [--windows 500] [--recipients 3] [--drops 50] [--repeat 3]

Real parts only: the simulated showroom (over HTTP, no latency), the loader and the
dbt build fill a database of its own (POSTGRES_DB athlon_flex_notify_bench on the
configured or embedded server, recreated each round); a local SMTP server (aiosmtpd,
a development dependency) takes the emails. Each recipient opts in to price drops
of 5% or more. Per round, three notify runs are timed, in this process, from the
call to its return (imports and the builds before it are not counted):

- first: every window is new to every recipient (windows x recipients lines), and
  `drops` of the cars already got 10% cheaper before anyone was told (recorded with
  the new-car email, never a line of their own);
- drops: those cars get 10% cheaper again (drops x recipients lines);
- steady: nothing changed (nothing to send; what each cycle costs).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from athlon_flex.database import ensure_postgres, recreate_database
from athlon_flex.settings import Settings

BENCH_DATABASE = "athlon_flex_notify_bench"
KINDS = ("first", "drops", "steady")


@contextmanager
def _smtp_sink() -> Iterator[int]:
    """aiosmtpd's Sink handler in a process of its own (it takes every message and
    keeps none): the server's work does not share this process's interpreter, so the
    figure is the notifier's. Yields its port."""
    port = _free_port()
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    server = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [*command, "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("notify bench: the local SMTP server did not start")
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    """A port nobody listens on (aiosmtpd's controller cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _round(
    settings: Settings,
    *,
    windows: int,
    recipients: int,
    drops: int,
    seed: int,
    smtp_port: int,
    subscriptions: Path,
) -> dict[str, tuple[float, str]]:
    """One round on a fresh database: kind → (notify seconds, its summary)."""
    from loader.pipeline import load
    from notifier.stage import notify
    from simulation.fake_api import Catalog, FakeShowroom
    from transform.runner import build

    vehicles_per_cluster = 10
    catalog = Catalog.generate(
        clusters=max(1, windows // vehicles_per_cluster),
        vehicles_per_cluster=vehicles_per_cluster,
        seed=seed,
    )
    figures: dict[str, tuple[float, str]] = {}
    with FakeShowroom(catalog, host="127.0.0.1", port=0) as api:
        bench = settings.model_copy(
            update={
                "athlon_api_url": api.url,
                "athlon_username": None,
                "athlon_password": None,
                "postgres_db": BENCH_DATABASE,
                "email_from": "bench@example.org",
                "email_to": [],
                "google_app_password": None,
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "smtp_security": "none",
                "smtp_user": None,
                "smtp_password": None,
                "notify_subscriptions_file": subscriptions,
                "notify_baseline": False,
                "notify_grace_minutes": 0,
            }
        )
        recreate_database(ensure_postgres(bench))

        def refresh() -> None:
            load(bench)
            build(bench)

        def timed(kind: str) -> None:
            started = time.perf_counter()
            summary = notify(bench)
            figures[kind] = (time.perf_counter() - started, str(summary))

        cheaper = list(catalog.vehicles)[:drops]
        refresh()
        for vehicle in cheaper:
            catalog.set_price(vehicle.id, round(vehicle.calculated_price * 0.9, 2))
        refresh()
        timed("first")
        for vehicle in cheaper:
            now = catalog.vehicle(vehicle.id).calculated_price
            catalog.set_price(vehicle.id, round(now * 0.9, 2))
        refresh()
        timed("drops")
        timed("steady")
    return figures


def run_notify_bench(
    settings: Settings,
    *,
    windows: int = 500,
    recipients: int = 3,
    drops: int = 50,
    repeat: int = 3,
    echo: Callable[[str], None] = print,
) -> dict[str, list[float]]:
    """Run `repeat` rounds; echo each figure and the medians; return the seconds."""
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with (
        _smtp_sink() as port,
        tempfile.TemporaryDirectory(prefix="athlon-notify-bench-") as folder,
    ):
        subscriptions = Path(folder) / "subscriptions.yml"
        everyone = [
            {"email": f"r{n}@example.org", "price_drop_percent": 5}
            for n in range(1, recipients + 1)
        ]
        subscriptions.write_text(
            yaml.safe_dump({"recipients": everyone}), encoding="utf-8"
        )
        for round_ in range(1, repeat + 1):
            figures = _round(
                settings,
                windows=windows,
                recipients=recipients,
                drops=drops,
                seed=round_,
                smtp_port=port,
                subscriptions=subscriptions,
            )
            for kind in KINDS:
                took, summary = figures[kind]
                seconds[kind].append(took)
                echo(f"round {round_} notify {kind}: {took:.3f} s ({summary})")
    echo(f"{windows} windows x {recipients} recipients, {drops} price drops")
    for kind in KINDS:
        echo(f"median notify {kind}: {statistics.median(seconds[kind]):.3f} s")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=500)
    parser.add_argument("--recipients", type=int, default=3)
    parser.add_argument("--drops", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # dbt's warnings about numeric precision are the build's, not this figure's.
    logging.getLogger("transform.runner.dbt").setLevel(logging.ERROR)
    run_notify_bench(
        Settings(),
        windows=args.windows,
        recipients=args.recipients,
        drops=args.drops,
        repeat=args.repeat,
    )


if __name__ == "__main__":
    main()
