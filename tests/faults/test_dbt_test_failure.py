"""A dbt data test fails: the cycle stops before notify, nothing is sent or recorded,
and once the data is repaired the next cycle sends exactly what is new."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.settings import Settings
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    mentions,
    notifications,
    windows,
)
from tests.support.smtp import SmtpServer
from transform.runner import TransformError
from watcher.cycle import run_cycle

CORRUPT_SCD_ID = "fault-suite-contradicting-version"


def _add_second_current_version(settings: Settings, vehicle_id: str) -> None:
    """A contradicting history: a second current version of the car, started an
    hour before the real one (as a botched manual fix might leave it)."""
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(
            "create temporary table contradicting on commit drop as "
            "select * from snapshots.snap_vehicles "
            "where vehicle_id = %s and dbt_valid_to is null",
            (vehicle_id,),
        )
        cursor.execute(
            "update contradicting set dbt_scd_id = %s, "
            "dbt_valid_from = dbt_valid_from - interval '1 hour'",
            (CORRUPT_SCD_ID,),
        )
        cursor.execute(
            "insert into snapshots.snap_vehicles select * from contradicting"
        )
        assert cursor.rowcount == 1


def _remove_contradicting_version(settings: Settings) -> None:
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(
            "delete from snapshots.snap_vehicles where dbt_scd_id = %s",
            (CORRUPT_SCD_ID,),
        )
        assert cursor.rowcount == 1


def test_failing_data_test_stops_before_notify_and_the_repaired_cycle_sends_news(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    settings = cycle_settings(showroom)
    catalog = showroom.catalog
    run_cycle(settings)
    assert len(smtp_server.messages) == 1

    _add_second_current_version(settings, catalog.vehicles[0].id)
    arrived = catalog.add_vehicle()
    windows_before, notified_before = windows(settings), notifications(settings)

    with pytest.raises(TransformError) as failure:
        run_cycle(settings)

    message = str(failure.value)
    # The cycle's build runs the snapshot's tests as one relation_tests node.
    assert "relation_tests_snap_vehicles_ (test)" in message
    assert "at_most_one_current_row_snap_vehicles_vehicle_id on 1 row(s)" in message
    assert "downstream were skipped" in message
    assert windows(settings) == windows_before  # the mart was not rebuilt
    assert notifications(settings) == notified_before
    assert len(smtp_server.messages) == 1

    _remove_contradicting_version(settings)
    run_cycle(settings)

    texts = [mail.text for mail in smtp_server.messages_to(RECIPIENT)]
    assert len(texts) == 2
    assert smtp_server.messages[1].subject.startswith("1 new: ")
    news = {v.id for v in catalog.vehicles if mentions(texts[1:], v.license_plate)}
    assert news == {arrived.id}
    assert_nothing_lost_or_doubled(settings, catalog, texts)
