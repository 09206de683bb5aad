"""`athlon-flex watch`: a cycle on each change the one request can see, none without,
at most one per minimum gap, and the periodic cycle whatever the watch requests do.

The simulated API over real HTTP, the real load (what the watch compares with is
what the loader landed) and, end to end, the real cycle and a real SMTP server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.errors import StageError
from athlon_flex.settings import Settings
from loader.pipeline import load
from simulation.fake_api import Catalog
from tests.support.smtp import SmtpServer
from watcher.cycle import CycleStopped, run_cycle
from watcher.watch import SCHEDULED, TRIGGERED, Watch

RECIPIENT = "anna@example.nl"
# Generous: the machine running the tests may be busy.
PATIENCE_SECONDS = 180


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@contextmanager
def _running(watch: Watch) -> Iterator[Watch]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            watch.run()
        except BaseException as error:  # reported to the test below
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch.stop.set()
        thread.join(PATIENCE_SECONDS)
    assert not thread.is_alive(), "the watch did not stop"
    assert failures == []


def _quiet_polls(watch: Watch, polls: int = 8) -> None:
    """Let the watch ask `polls` more times."""
    target = watch.stats.polls + polls
    _wait_for(lambda: watch.stats.polls >= target, f"{polls} more polls")


def _reasons(watch: Watch) -> list[str]:
    return [reason for reason, _ in watch.stats.cycles]


def _watch_settings(settings: Settings, api_url: str, **overrides) -> Settings:
    values = {
        "athlon_api_url": api_url,
        "athlon_watch_interval_seconds": 0.05,
        "athlon_watch_min_gap_seconds": 0,
        "athlon_watch_cycle_seconds": 3600,
        "athlon_http_max_retries": 1,
        "athlon_http_backoff_seconds": 0,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


def _loading(settings: Settings, done: list[str]) -> Callable[[str], object]:
    """A cycle of the load stage alone: it lands what the watch compares with."""

    def cycle(reason: str) -> object:
        summary = load(settings, allow_shrink=True)
        done.append(reason)
        return summary

    return cycle


def test_watch_runs_a_cycle_on_each_fingerprint_change_and_none_without(
    settings: Settings, fake_api_factory: Callable
) -> None:
    catalog = Catalog.generate(clusters=3, vehicles_per_cluster=3, seed=5)
    api = fake_api_factory(catalog=catalog)
    watched = _watch_settings(settings, api.url)
    done: list[str] = []
    watch = Watch(watched, cycle=_loading(watched, done))

    with _running(watch):
        _wait_for(lambda: done == [SCHEDULED], "the first full cycle")
        _quiet_polls(watch)
        assert _reasons(watch) == [SCHEDULED]  # nothing changed: no cycle

        arrived = catalog.add_vehicle()  # a count moves (or a cluster is new)
        _wait_for(lambda: len(done) == 2, "a cycle for the arrival")
        _quiet_polls(watch)

        catalog.remove_vehicle(arrived.id)  # a count moves back
        _wait_for(lambda: len(done) == 3, "a cycle for the departure")
        _quiet_polls(watch)

        # The cheapest car of a cluster gets cheaper still: its minimum price moves.
        first = catalog.vehicles[0]
        cluster = [
            v
            for v in catalog.vehicles
            if (v.make, v.model) == (first.make, first.model)
        ]
        cheapest = min(cluster, key=lambda v: v.calculated_price)
        catalog.set_price(cheapest.id, round(cheapest.calculated_price - 50, 2))
        _wait_for(lambda: len(done) == 4, "a cycle for the new lowest price")
        _quiet_polls(watch)

        # A car that is not its cluster's cheapest gets dearer: the one request
        # cannot see it (the periodic cycle will), so no cycle.
        priciest = max(catalog.vehicles, key=lambda v: v.calculated_price)
        catalog.set_price(priciest.id, round(priciest.calculated_price + 10, 2))
        _quiet_polls(watch, 15)

    assert _reasons(watch) == [SCHEDULED, TRIGGERED, TRIGGERED, TRIGGERED]
    assert done == _reasons(watch)
    assert watch.stats.poll_failures == 0
    assert watch.stats.cycle_failures == 0
    # One request per poll, nothing else, besides the loads' own.
    assert api.stats.requests_by_endpoint["VehicleCluster"] == watch.stats.polls + 4


def test_triggered_cycles_keep_the_minimum_gap(
    settings: Settings, fake_api_factory: Callable
) -> None:
    catalog = Catalog.generate(clusters=3, vehicles_per_cluster=2, seed=6)
    api = fake_api_factory(catalog=catalog)
    gap = 3.0
    watched = _watch_settings(settings, api.url, athlon_watch_min_gap_seconds=gap)
    done: list[str] = []
    watch = Watch(watched, cycle=_loading(watched, done))

    with _running(watch):
        _wait_for(lambda: done == [SCHEDULED], "the first full cycle")
        catalog.add_vehicle()
        _wait_for(lambda: len(done) == 2, "the first triggered cycle")
        catalog.add_vehicle()  # right after: inside the gap
        _wait_for(lambda: len(done) == 3, "the second triggered cycle")

    (_, first), (_, second) = watch.stats.cycles[1:]
    assert _reasons(watch) == [SCHEDULED, TRIGGERED, TRIGGERED]
    assert second - first >= gap


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},
        {"malformed": True},
        {"drop": True},
        {"delay_ms": 5000},  # longer than the watch's timeout: it hangs
    ],
    ids=["503", "malformed", "dropped", "hanging"],
)
def test_failing_watch_requests_never_stop_the_periodic_cycle(
    settings: Settings, fake_api_factory: Callable, fault: dict
) -> None:
    api = fake_api_factory()
    api.faults.add(endpoint="VehicleCluster", **fault)
    watched = _watch_settings(
        settings,
        api.url,
        athlon_watch_interval_seconds=0.2,
        athlon_watch_cycle_seconds=1.0,
        athlon_http_timeout_seconds=0.3,
    )
    calls: list[str] = []

    def cycle(reason: str) -> None:
        calls.append(reason)
        if len(calls) == 2:  # a cycle that fails does not stop the watch either
            raise StageError("the load failed (simulated)")

    watch = Watch(watched, cycle=cycle)
    with _running(watch):
        _wait_for(lambda: len(calls) >= 4, "four periodic cycles")
        _wait_for(lambda: watch.stats.polls >= 2, "two watch requests")

    assert set(_reasons(watch)) == {SCHEDULED}
    assert watch.stats.poll_failures == watch.stats.polls
    assert watch.stats.cycle_failures == 1


def test_a_failed_triggered_cycle_is_not_retried_for_the_same_picture(
    settings: Settings, fake_api_factory: Callable
) -> None:
    catalog = Catalog.generate(clusters=3, vehicles_per_cluster=2, seed=8)
    api = fake_api_factory(catalog=catalog)
    watched = _watch_settings(settings, api.url)
    done: list[str] = []
    load_cycle = _loading(watched, done)
    attempts: list[str] = []

    def cycle(reason: str) -> object:
        attempts.append(reason)
        if reason == TRIGGERED and len(attempts) == 2:
            raise StageError("SMTP refused (simulated): nothing landed")
        return load_cycle(reason)

    watch = Watch(watched, cycle=cycle)
    with _running(watch):
        _wait_for(lambda: done == [SCHEDULED], "the first full cycle")
        catalog.add_vehicle()
        _wait_for(lambda: len(attempts) == 2, "the failing triggered cycle")
        _quiet_polls(watch, 15)
        assert attempts == [SCHEDULED, TRIGGERED]  # not every poll again
        catalog.add_vehicle()  # a new picture: a new try, which lands both cars
        _wait_for(lambda: len(done) == 2, "the next triggered cycle")
        _quiet_polls(watch)

    assert attempts == [SCHEDULED, TRIGGERED, TRIGGERED]
    assert watch.stats.cycle_failures == 1
    # The last cycle landed both arrivals: the load matches the showroom again.
    with connect(ensure_postgres(watched)) as conn, conn.cursor() as cursor:
        cursor.execute("select count(*) from raw.vehicles")
        assert cursor.fetchone() == (8,)


def test_an_empty_answer_is_no_news(
    settings: Settings, fake_api_factory: Callable
) -> None:
    catalog = Catalog.generate(clusters=2, vehicles_per_cluster=2, seed=4)
    api = fake_api_factory(catalog=catalog)
    watched = _watch_settings(settings, api.url)
    done: list[str] = []
    watch = Watch(watched, cycle=_loading(watched, done))
    with _running(watch):
        _wait_for(lambda: done == [SCHEDULED], "the first full cycle")
        gone = catalog.clear()  # an outage that answers with an empty list
        # Ten polls that saw the empty answer (one already in flight may not have).
        failures = watch.stats.poll_failures + 10
        _wait_for(lambda: watch.stats.poll_failures >= failures, "10 empty answers")
        for vehicle in gone:
            catalog.return_vehicle(vehicle)
        _quiet_polls(watch)

    assert done == [SCHEDULED]
    assert watch.stats.poll_failures >= 10


def test_stop_ends_a_cycle_between_two_stages_with_the_load_kept(
    settings: Settings, fake_api_factory: Callable
) -> None:
    from tests.dbt.readback import query

    api = fake_api_factory()
    watched = _watch_settings(settings, api.url)

    class StopDuringLoad(threading.Event):
        """Ctrl-C pressed while the load runs: set from the second look on."""

        looks = 0

        def is_set(self) -> bool:
            self.looks += 1
            return self.looks > 1

    with pytest.raises(CycleStopped, match="before transform"):
        run_cycle(watched, stop=StopDuringLoad())

    import psycopg2

    from athlon_flex.database import ensure_postgres

    conn = psycopg2.connect(**ensure_postgres(watched).connect_kwargs())
    try:
        assert query(conn, "select count(*) from raw.vehicles") == [
            (len(api.catalog.vehicles),)
        ]
        # dbt never ran: no snapshot exists.
        assert query(
            conn, "select count(*) from pg_namespace where nspname = 'snapshots'"
        ) == [(0,)]
    finally:
        conn.close()


def test_an_arrival_reaches_the_inbox_once_through_the_watch(
    settings: Settings, fake_api_factory: Callable, smtp_server: SmtpServer
) -> None:
    catalog = Catalog.generate(clusters=2, vehicles_per_cluster=2, seed=9)
    api = fake_api_factory(catalog=catalog)
    watched = _watch_settings(
        settings,
        api.url,
        athlon_watch_interval_seconds=0.2,
        email_to=[RECIPIENT],
        **smtp_server.settings_overrides(),
    )
    watch = Watch(watched)  # the real cycle: load, dbt build, notify

    with _running(watch):
        _wait_for(lambda: len(smtp_server.messages) == 1, "the first email")
        assert smtp_server.messages[0].subject.startswith("4 new: ")
        arrived = catalog.add_vehicle()
        _wait_for(lambda: len(smtp_server.messages) == 2, "the arrival's email")
        _wait_for(lambda: len(watch.stats.cycles) == 2, "the cycle to be recorded")
        _quiet_polls(watch, 10)

    assert _reasons(watch) == [SCHEDULED, TRIGGERED]
    assert watch.stats.cycle_failures == 0
    mail = smtp_server.messages[1]
    assert mail.rcpt_tos == (RECIPIENT,)
    assert mail.subject.startswith("1 new: ")
    assert arrived.license_plate in mail.text
    assert len(smtp_server.messages) == 2  # nobody hears of any car twice
