"""The ways issue 12 broke "every car once per interested recipient", each walked
through the real stages (simulated API over HTTP, embedded PostgreSQL, real dbt,
aiosmtpd) and each ending in the fault suite's invariant. The kill -9 of the send
path is in test_notify_killed.py."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from athlon_flex.settings import Settings
from notifier.errors import NotifyConfigurationError, NotifyError
from notifier.stage import notify
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    cli_env,
    notifications,
    query,
    windows,
)
from tests.support.smtp import SmtpServer
from watcher.cycle import run_cycle

ANNA = RECIPIENT
BOB = "bob@example.nl"
CARLA = "carla@example.nl"


def _texts(smtp_server: SmtpServer, recipient: str) -> list[str]:
    return [mail.text for mail in smtp_server.mailbox(recipient)]


def _subscriptions(tmp_path: Path, recipients: list[dict]) -> Path:
    path = tmp_path / "subscriptions.yml"
    path.write_text(yaml.safe_dump({"recipients": recipients}), encoding="utf-8")
    return path


def test_a_config_slip_never_deletes_a_recipient_or_loses_a_car(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    """Issue 12.1: SMTP_HOST unset for one run used to delete anna and baseline the
    car that arrived meanwhile."""
    catalog = showroom.catalog
    settings = cycle_settings(showroom, notify_baseline=True)
    run_cycle(settings)  # anna's first turn: what is there is old news
    assert smtp_server.messages == []
    registered = query(settings, "select * from notifier.recipients")
    # The first six leave, A arrives: only A and what follows is news for anna.
    left = [catalog.remove_vehicle(vehicle.id) for vehicle in catalog.vehicles]
    catalog.add_vehicle()

    slip = cycle_settings(showroom, notify_baseline=True, smtp_host=None)
    with pytest.raises(NotifyConfigurationError, match="Email was configured"):
        run_cycle(slip, allow_shrink=True)

    assert query(settings, "select * from notifier.recipients") == registered
    assert query(
        settings,
        "select count(*) from notifier.notifications where recipient <> %s",
        (ANNA,),
    ) == [(0,)]
    catalog.add_vehicle()  # B arrives while the setting is still missing
    run_cycle(settings)  # the setting is back

    (mail,) = smtp_server.messages
    assert mail.subject.startswith("2 new: ")
    assert_nothing_lost_or_doubled(
        settings, catalog, _texts(smtp_server, ANNA), left={v.id for v in left}
    )


def test_one_mailbox_in_several_spellings_gets_each_car_once(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 12.2: EMAIL_TO with anna twice, or in two cases, sent everything twice.
    Rows an older version stored in mixed case count for the one spelling."""
    spellings = [ANNA, "Anna@Example.NL", ANNA]
    settings = cycle_settings(showroom, email_to=spellings)
    assert settings.email_to == [ANNA]
    assert "EMAIL_TO lists anna@example.nl more than once" in caplog.text
    run_cycle(settings)
    assert [m.rcpt_tos for m in smtp_server.messages] == [(ANNA,)]

    # As an older version (or the old tool's migration) would have stored them.
    for table in ("notifications", "recipients", "outbox"):
        query_ = f"update notifier.{table} set recipient = 'Anna@Example.NL'"
        query(settings, query_ + " returning 1")
    arrived = showroom.catalog.add_vehicle()
    run_cycle(settings)

    assert len(smtp_server.messages) == 2
    assert smtp_server.messages[1].subject.startswith("1 new: ")
    assert arrived.license_plate in smtp_server.messages[1].text
    assert query(settings, "select recipient from notifier.recipients") == [(ANNA,)]
    assert_nothing_lost_or_doubled(
        settings, showroom.catalog, _texts(smtp_server, ANNA)
    )


def test_a_huge_price_and_a_refused_recipient_stop_no_one_else(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Issue 12.4: a price of 1e30 crashed notify for everyone, every run."""
    catalog = showroom.catalog
    pricey = catalog.set_price(catalog.vehicles[0].id, 1e30)
    subscriptions = _subscriptions(
        tmp_path,
        [
            {"email": ANNA},
            {"email": BOB, "filters": {"max_price_per_month": 5000}},
            {"email": CARLA},
        ],
    )
    settings = cycle_settings(showroom, notify_subscriptions_file=subscriptions)
    smtp_server.refuse_recipient(CARLA, "550 5.1.1 Mailbox unavailable")

    with pytest.raises(NotifyError) as raised:
        run_cycle(settings)

    assert f"Skipped 1 recipient(s) ({CARLA}: SMTP" in str(raised.value)
    assert [m.rcpt_tos for m in smtp_server.messages] == [(ANNA,), (BOB,)]
    anna_mail, bob_mail = smtp_server.messages
    # The loader nulls a price outside its bounds (with a warning naming the car):
    # the car is still news, priceless, and a price filter never holds for it.
    assert pricey.license_plate in anna_mail.text
    assert "1.000.000.000" not in anna_mail.text
    assert pricey.license_plate not in bob_mail.text
    smtp_server.refuse_recipient(CARLA, None)

    run_cycle(settings)

    assert [m.rcpt_tos for m in smtp_server.messages] == [(ANNA,), (BOB,), (CARLA,)]
    for recipient in (ANNA, CARLA):
        assert_nothing_lost_or_doubled(
            settings, catalog, _texts(smtp_server, recipient), recipient=recipient
        )
    wanted = {v.id for v in catalog.vehicles} - {pricey.id}
    assert {v for v, _, r in notifications(settings) if r == BOB} == wanted
    assert sum(v.license_plate in bob_mail.text for v in catalog.vehicles) == len(
        wanted
    )


def test_a_catastrophic_filter_runs_in_linear_time_and_unrunnable_ones_are_refused(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Issue 12.5: ^(a+)+$ against a 35-character value hung notify at 100% CPU."""
    catalog = showroom.catalog
    matching = catalog.add_vehicle("Aaa", "a" * 35)
    near_miss = catalog.add_vehicle("Aaa", "a" * 35 + "!")  # 2^35 steps in `re`
    subscriptions = _subscriptions(
        tmp_path, [{"email": ANNA}, {"email": BOB, "filters": {"model": "^(a+)+$"}}]
    )
    settings = cycle_settings(showroom, notify_subscriptions_file=subscriptions)

    with pytest.raises(NotifyConfigurationError) as refused:
        notify(settings, extra_filters=[{"model": "^(?=a)a+$"}])
    assert "extra_filters[0]: key 'model': regex '^(?=a)a+$' is refused" in str(
        refused.value
    )
    run_cycle(settings)

    bob_mail = smtp_server.mailbox(BOB)
    assert len(bob_mail) == 1
    assert bob_mail[0].subject.startswith("1 new: ")
    assert matching.license_plate in bob_mail[0].text
    assert near_miss.license_plate not in bob_mail[0].text
    assert_nothing_lost_or_doubled(settings, catalog, _texts(smtp_server, ANNA))


def test_a_bad_address_in_the_subscriptions_file_is_one_line_and_exit_2(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Issue 12.6: a CR/LF in an address crashed mid-send with a 248-line traceback
    and the recipients after it were never served."""
    subscriptions = _subscriptions(
        tmp_path, [{"email": f"{BOB}\r\nBcc: eve@example.nl"}, {"email": ANNA}]
    )
    settings = cycle_settings(showroom, notify_subscriptions_file=subscriptions)

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "watcher.cli", "run"],
            cwd=tmp_path,
            env=cli_env(settings),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    bad = run()

    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"error: Subscriptions file {subscriptions} is invalid: recipient #1, email: "
        "'bob@example.nl\\r\\nBcc: eve@example.nl' is not an email address (it "
        "contains LF, CR, a space); nothing was sent or recorded."
    ]
    assert bad.stdout == ""
    assert query(
        settings, "select count(*) from pg_namespace where nspname = 'raw'"
    ) == [(0,)]  # refused before the load

    _subscriptions(tmp_path, [{"email": BOB}, {"email": ANNA}])
    good = run()

    assert good.returncode == 0, good.stderr
    for recipient in (BOB, ANNA):
        assert_nothing_lost_or_doubled(
            settings,
            showroom.catalog,
            _texts(smtp_server, recipient),
            recipient=recipient,
        )


def test_a_car_missing_from_one_load_is_not_news_again(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    """Issue 12.7: a car missing from one load and back ten minutes later opened a
    second window and a second email."""
    catalog = showroom.catalog
    settings = cycle_settings(showroom, notify_grace_minutes=30)
    run_cycle(settings)
    glitch = catalog.remove_vehicle(catalog.vehicles[2].id)

    run_cycle(settings)  # the load misses it: the window stays open

    assert query(
        settings,
        "select is_available, available_until from marts.vehicle_availability "
        "where vehicle_id = %s",
        (glitch.id,),
    ) == [(True, None)]
    catalog.return_vehicle(glitch)
    run_cycle(settings)

    assert len(smtp_server.messages) == 1
    assert len(windows(settings)) == len(catalog)
    assert_nothing_lost_or_doubled(
        settings, catalog, _texts(smtp_server, ANNA), left=set()
    )


def test_a_car_back_after_the_grace_period_is_news_again(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
) -> None:
    """The other side of the boundary: gone for the grace period (here 3 seconds,
    measured between the loads' extraction times) is gone; back, it is news."""
    catalog = showroom.catalog
    grace = timedelta(seconds=3)
    settings = cycle_settings(showroom, notify_grace_minutes=grace.total_seconds() / 60)
    run_cycle(settings)
    leased = catalog.remove_vehicle(catalog.vehicles[2].id)
    run_cycle(settings)
    ((gone_at,),) = query(settings, "select max(extracted_at) from raw.vehicles")
    # The next load must start at least the grace after the load that missed it.
    while datetime.now(UTC) < gone_at + grace:
        time.sleep(0.1)
    catalog.return_vehicle(leased)

    run_cycle(settings)

    assert query(
        settings,
        "select available_until from marts.vehicle_availability "
        "where vehicle_id = %s order by available_since",
        (leased.id,),
    ) == [(gone_at,), (None,)]
    assert len(smtp_server.messages) == 2
    # News again, as a car that is back (with when it left), not as a new one.
    assert smtp_server.messages[1].subject.startswith("1 back: ")
    assert leased.license_plate in smtp_server.messages[1].text
    # Once per window: the returned car is in both emails, every other in the first.
    assert_nothing_lost_or_doubled(
        settings,
        catalog,
        _texts(smtp_server, ANNA),
        left={leased.id},
        returned={leased.id},
    )
