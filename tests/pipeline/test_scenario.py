"""The whole cycle (load >> dbt build >> notify) as a user lives it, step by step.

Real simulated API over HTTP, real PostgreSQL, real dbt, real SMTP. Each step changes
the showroom, runs one cycle and asserts the exact availability windows and the exact
email that went out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.settings import Settings
from loader.pipeline import LoadError
from notifier.errors import NotifyError
from tests.support.smtp import SmtpServer
from watcher.cycle import run_cycle

RECIPIENT = "anna@example.nl"


def _windows(settings: Settings) -> set[tuple[str, datetime, datetime | None]]:
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select vehicle_id, available_since, available_until "
            "from marts.vehicle_availability"
        )
        return set(cursor.fetchall())


def _extracted_at(settings: Settings) -> datetime:
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute("select distinct extracted_at from raw.vehicles")
        (only,) = cursor.fetchall()
        return only[0]


def _scalar(settings: Settings, query: str) -> object:
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0]


def _snapshot_rows(settings: Settings) -> int:
    return _scalar(settings, "select count(*) from snapshots.snap_vehicles")


def test_leave_arrive_reprice_return_and_quiet_cycles(
    fake_api_factory: Callable, smtp_server: SmtpServer, make_settings: Callable
) -> None:
    from simulation.fake_api import Catalog

    catalog = Catalog.generate(clusters=3, vehicles_per_cluster=2, seed=11)
    api = fake_api_factory(catalog=catalog)
    settings = make_settings(
        athlon_api_url=api.url,
        email_to=[RECIPIENT],
        athlon_http_max_retries=1,
        # Cycles seconds apart: the car that returns in step 3 is meant as news.
        notify_grace_minutes=0,
        **smtp_server.settings_overrides(),
    )
    plates = {v.id: v.license_plate for v in catalog.vehicles}
    first_ids = [v.id for v in catalog.vehicles]

    # 1. First look: every car is news.
    run_cycle(settings)
    t1 = _extracted_at(settings)
    assert _windows(settings) == {(vid, t1, None) for vid in first_ids}
    (mail,) = smtp_server.messages
    assert mail.rcpt_tos == (RECIPIENT,)
    assert mail.subject.startswith("6 new: ")
    assert {p for p in plates.values() if p in mail.text} == set(plates.values())

    # 2. One car is leased, one arrives, one gets cheaper.
    leased, repriced = first_ids[0], first_ids[1]
    catalog.remove_vehicle(leased)
    arrived = catalog.add_vehicle()
    catalog.set_price(repriced, 499.0)
    run_cycle(settings)
    t2 = _extracted_at(settings)
    expected = {(vid, t1, None) for vid in first_ids[1:]}
    expected |= {(leased, t1, t2), (arrived.id, t2, None)}
    assert _windows(settings) == expected
    assert len(smtp_server.messages) == 2
    mail = smtp_server.messages[1]
    assert mail.subject.startswith("1 new: ")
    assert arrived.license_plate in mail.text
    assert plates[repriced] not in mail.text  # a new price is not a new window
    assert _scalar(
        settings,
        "select price_per_month_in_euro from marts.vehicle_availability "
        f"where vehicle_id = '{repriced}'",
    ) == pytest.approx(499.0)

    # 3. The leased car comes back: a second window, and news again.
    catalog.return_vehicle(leased)
    run_cycle(settings)
    t3 = _extracted_at(settings)
    expected |= {(leased, t3, None)}
    assert _windows(settings) == expected
    mail = smtp_server.messages[2]
    # Back, not new, with when it left (the end of its first window).
    assert mail.subject.startswith("1 back: ")
    assert plates[leased] in mail.text
    assert "back again (left " in mail.text

    # 4. Nothing changes: no snapshot rows, no windows, no email.
    snapshot_rows = _snapshot_rows(settings)
    run_cycle(settings)
    assert _snapshot_rows(settings) == snapshot_rows
    assert _windows(settings) == expected
    assert len(smtp_server.messages) == 3

    # 5. The API is down: the load fails, nothing downstream moves.
    api.faults.add(endpoint="VehicleCluster", status=503)
    with pytest.raises(LoadError, match="VehicleCluster"):
        run_cycle(settings)
    api.faults.clear()
    assert _windows(settings) == expected
    assert _snapshot_rows(settings) == snapshot_rows

    # 6. An empty showroom is refused: no window is closed.
    gone = catalog.clear()
    with pytest.raises(LoadError, match="empty"):
        run_cycle(settings)
    assert _windows(settings) == expected
    for vehicle in gone:
        catalog.return_vehicle(vehicle)

    # 7. The mail server refuses: nothing recorded; the next cycle sends it once.
    newcomer = catalog.add_vehicle()
    smtp_server.refuse_with("451 4.3.0 try again later")
    with pytest.raises(NotifyError):
        run_cycle(settings)
    assert len(smtp_server.messages) == 3
    recorded = _scalar(
        settings,
        "select count(*) from notifier.notifications "
        f"where vehicle_id = '{newcomer.id}'",
    )
    assert recorded == 0
    smtp_server.refuse_with(None)
    run_cycle(settings)
    run_cycle(settings)
    assert len(smtp_server.messages) == 4
    mail = smtp_server.messages[3]
    assert mail.subject.startswith("1 new: ")
    assert newcomer.license_plate in mail.text
    assert (
        _scalar(
            settings,
            "select count(*) from notifier.notifications "
            f"where recipient = '{RECIPIENT}'",
        )
        == 6 + 1 + 1 + 1
    )
