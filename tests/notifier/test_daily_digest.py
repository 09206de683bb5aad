"""A daily digest tells the cars that came and went since the previous digest slot,
marked GONE with when they left; through the real stages (simulated showroom over
HTTP, loader, dbt, notifier, aiosmtpd).

Anna hears at once, Bob in his daily digest; both want the one make the test adds
(Zeekr), so the showroom's other cars are no one's news. The digest runs are given
`now` a day or two ahead: time walks forward without waiting a day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from athlon_flex.settings import Settings
from notifier.render import local_time
from notifier.stage import notify
from simulation.fake_api import FakeShowroom
from simulation.fake_api.vehicle import Vehicle
from tests.faults.invariant import query, quick_settings
from tests.notifier.html_email import parse_email_html
from tests.support.smtp import ReceivedMessage, SmtpServer
from watcher.cycle import run_cycle

ANNA = "anna@example.nl"  # instant
BOB = "bob@example.nl"  # daily
ZONE = "Europe/Amsterdam"
WANTED = {"make": "^Zeekr$"}

# (vehicle_id, available_since, recipient, message_id) of notifier.notifications
Told = tuple[str, datetime, str, str | None]


@pytest.fixture
def database_template() -> None:
    """An empty database: the loader and dbt build everything, as in production."""
    return None


@pytest.fixture
def showroom(fake_api_factory: Callable[..., FakeShowroom]) -> FakeShowroom:
    return fake_api_factory(clusters=2, vehicles_per_cluster=1, seed=53)


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    showroom: FakeShowroom,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> Settings:
    """Anna instant, Bob daily at the minute before the test began (so his first
    slot is before every car the test adds), both wanting Zeekrs only."""
    digest = (datetime.now(UTC) - timedelta(minutes=1)).astimezone(ZoneInfo(ZONE))
    recipients: list[dict[str, Any]] = [
        {"email": ANNA, "filters": WANTED},
        {
            "email": BOB,
            "cadence": "daily",
            "daily_time": digest.strftime("%H:%M"),
            "timezone": ZONE,
            "filters": WANTED,
        },
    ]
    path = tmp_path / "subscriptions.yml"
    path.write_text(yaml.safe_dump({"recipients": recipients}), encoding="utf-8")
    return make_settings(
        **quick_settings(showroom, smtp_server, notify_subscriptions_file=path)
    )


def _told(settings: Settings) -> list[Told]:
    return query(
        settings,
        "select vehicle_id, available_since, recipient, message_id "
        "from notifier.notifications order by recipient, vehicle_id, available_since",
    )


def _windows(settings: Settings, car: Vehicle) -> list[tuple[datetime, datetime]]:
    """(available_since, available_until) of the car's windows, oldest first."""
    return query(
        settings,
        "select available_since, available_until from marts.vehicle_availability "
        "where vehicle_id = %s order by available_since",
        (car.id,),
    )


def _cards(mail: ReceivedMessage) -> dict[str, str]:
    """Licence plate → the car's card in the plain text: from its `- BADGE` line to
    the next card or blank line."""
    text = mail.text.replace("\r\n", "\n")
    cards = [f"- {block.split(chr(10) * 2)[0]}" for block in text.split("\n- ")[1:]]
    return {card.split("\n", 1)[0].rsplit(", ", 1)[1]: card for card in cards}


def _id(mail: ReceivedMessage) -> str:
    return str(mail.message["Message-ID"])


def _came_and_went(
    showroom: FakeShowroom, settings: Settings
) -> tuple[Vehicle, Vehicle, Vehicle]:
    """After Bob's first digest: a wanted car and another make arrive and leave, a
    second wanted car arrives and stays. Returns (went, other, stays)."""
    catalog = showroom.catalog
    run_cycle(settings)
    assert notify(settings, cadence="daily").emails_sent == 0  # no Zeekr yet
    went = catalog.add_vehicle("Zeekr", "001")
    other = catalog.add_vehicle("Lynk", "02")
    run_cycle(settings)
    catalog.remove_vehicle(went.id)
    catalog.remove_vehicle(other.id)
    stays = catalog.add_vehicle("Zeekr", "001")
    run_cycle(settings, allow_shrink=True)
    return went, other, stays


def test_a_car_that_came_and_went_is_in_the_next_digest_once_as_gone(
    showroom: FakeShowroom, settings: Settings, smtp_server: SmtpServer
) -> None:
    went, other, stays = _came_and_went(showroom, settings)
    ((went_since, went_until),) = _windows(settings, went)
    ((stays_since, _),) = _windows(settings, stays)
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    summary = notify(settings, cadence="daily", now=tomorrow)

    (digest,) = smtp_server.mailbox(BOB)
    assert digest.subject == "1 new, 1 gone: Zeekr 001"
    until = local_time(went_until, ZONE)
    cards = _cards(digest)
    assert sorted(cards) == sorted([went.license_plate, stays.license_plate])
    gone = cards[went.license_plate]
    assert gone.startswith("- GONE ")
    assert gone.endswith(
        f"  Available since: {local_time(went_since, ZONE)}\n  Available until: {until}"
    )
    assert "Available until" not in cards[stays.license_plate]
    assert "Cars marked GONE came and went since your previous digest." in digest.text
    (cluster,), _ = parse_email_html(digest.html)
    assert [
        (car.badge, car.fields.get("Available until")) for car in cluster.vehicles
    ] == [
        ("NEW", None),
        ("GONE", until),
    ]
    assert cluster.vehicles[1].link is None  # its showroom page went with it
    assert other.license_plate not in digest.text  # not Bob's make
    line = summary.for_recipient(BOB)
    assert (line.emails_sent, line.vehicles, line.recorded) == (1, 2, 2)

    # The next runs, daily and instant, find nothing more to tell.
    assert notify(settings, cadence="daily", now=tomorrow).emails_sent == 0
    assert notify(settings).emails_sent == 0

    first, second = smtp_server.mailbox(ANNA)
    assert [first.subject, second.subject] == ["1 new: Zeekr 001", "1 new: Zeekr 001"]
    assert went.license_plate in first.text
    assert "GONE" not in first.text + second.text  # instant: never a car gone
    assert len(smtp_server.messages) == 3
    assert sorted(_told(settings)) == sorted(
        [
            (went.id, went_since, ANNA, _id(first)),
            (stays.id, stays_since, ANNA, _id(second)),
            (went.id, went_since, BOB, _id(digest)),
            (stays.id, stays_since, BOB, _id(digest)),
        ]
    )
    assert query(
        settings, "select count(*) from notifier.outbox where sent_at is null"
    ) == [(0,)]


def test_a_car_that_went_before_the_previous_slot_is_not_in_the_digest(
    showroom: FakeShowroom, settings: Settings, smtp_server: SmtpServer
) -> None:
    """Two days on, the car left before the previous slot (yesterday's): history,
    not news. The car still there is news as ever."""
    went, _, stays = _came_and_went(showroom, settings)
    ((stays_since, _),) = _windows(settings, stays)

    notify(settings, cadence="daily", now=datetime.now(UTC) + timedelta(days=2))

    (digest,) = smtp_server.mailbox(BOB)
    assert digest.subject == "1 new: Zeekr 001"
    assert sorted(_cards(digest)) == [stays.license_plate]
    assert went.license_plate not in digest.text
    assert [row for row in _told(settings) if row[2] == BOB] == [
        (stays.id, stays_since, BOB, _id(digest))
    ]


def test_a_car_that_went_and_came_back_is_one_back_line_both_stays_told(
    showroom: FakeShowroom, settings: Settings, smtp_server: SmtpServer
) -> None:
    """Between two slots a car comes, goes and comes back: the digest shows it once,
    back (with when it left), and records its first stay with the same email."""
    catalog = showroom.catalog
    run_cycle(settings)
    car = catalog.add_vehicle("Zeekr", "001")
    run_cycle(settings)
    catalog.remove_vehicle(car.id)
    run_cycle(settings, allow_shrink=True)
    catalog.return_vehicle(car.id)
    run_cycle(settings)
    (first_since, left_at), (back_since, _) = _windows(settings, car)
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    notify(settings, cadence="daily", now=tomorrow)
    notify(settings, cadence="daily", now=tomorrow)

    (digest,) = smtp_server.mailbox(BOB)
    assert digest.subject == "1 back: Zeekr 001"
    (card,) = _cards(digest).values()
    assert card.startswith("- BACK ")
    assert f"back again (left {local_time(left_at, ZONE)})" in card
    assert "GONE" not in digest.text
    assert [row for row in _told(settings) if row[2] == BOB] == [
        (car.id, first_since, BOB, _id(digest)),
        (car.id, back_since, BOB, _id(digest)),
    ]
    # Anna heard at once: new, then back; never gone.
    assert [mail.subject for mail in smtp_server.mailbox(ANNA)] == [
        "1 new: Zeekr 001",
        "1 back: Zeekr 001",
    ]
