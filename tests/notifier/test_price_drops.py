"""Price drops through the real stages: the simulated showroom over HTTP, the loader,
the real dbt build, the notifier and a local SMTP server (aiosmtpd).

A recipient opts in with `price_drop_percent` and/or `price_drop_euro` (either met is
enough, their filters still apply) and hears of each drop once: "now € 489,00 (was
€ 539,00)". Each test ends in the invariant: every showroom car in exactly one
new-car message per recipient, each drop recorded and mailed once per interested
recipient, nothing for anyone else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from athlon_flex.settings import Settings
from loader.pipeline import load
from notifier.errors import NotifyConfigurationError, NotifyError
from notifier.phrases import price_drop_phrase
from notifier.render import euro
from notifier.stage import notify
from notifier.subscriptions import Subscription, load_subscriptions
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import assert_nothing_lost_or_doubled, query, quick_settings
from tests.support.smtp import SmtpServer
from transform.runner import build
from watcher.cycle import run_cycle

ANNA = "anna@example.nl"  # 5% or more
BOB = "bob@example.nl"  # 25 euro or more, only the dropped car's make
CARLA = "carla@example.nl"  # no price drops
DAVE = "dave@example.nl"  # 5% or more, but only another make

DropKey = tuple[str, datetime, str]
# subscribed(recipients) -> the test's settings with that subscriptions file
Subscribed = Callable[[list[dict[str, Any]]], Settings]


@pytest.fixture
def database_template() -> None:
    """An empty database: the loader and dbt build everything, as in production."""
    return None


@pytest.fixture
def showroom(fake_api_factory: Callable[..., FakeShowroom]) -> FakeShowroom:
    """Two makes, two cars each."""
    return fake_api_factory(clusters=2, vehicles_per_cluster=2, seed=31)


@pytest.fixture
def subscribed(
    make_settings: Callable[..., Settings],
    showroom: FakeShowroom,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> Subscribed:
    """`subscribed(recipients)`: settings of the test's showroom, SMTP server and
    database, with these recipients in the subscriptions file."""

    def settings(recipients: list[dict[str, Any]]) -> Settings:
        path = tmp_path / "subscriptions.yml"
        path.write_text(yaml.safe_dump({"recipients": recipients}), encoding="utf-8")
        return make_settings(
            **quick_settings(showroom, smtp_server, notify_subscriptions_file=path)
        )

    return settings


def _refresh(settings: Settings) -> None:
    """Load and build without notifying: history moves on, nobody is told yet."""
    load(settings)
    build(settings)


def _drops_recorded(settings: Settings) -> list[DropKey]:
    return sorted(
        query(
            settings,
            "select vehicle_id, changed_at, recipient "
            "from notifier.price_drop_notifications",
        )
    )


def _drop(settings: Settings, vehicle_id: str) -> tuple[datetime, Decimal, Decimal]:
    """(changed_at, previous, now) of the vehicle's one price change in the mart."""
    ((changed_at, previous, now),) = query(
        settings,
        "select changed_at, previous_price_per_month_in_euro, "
        "price_per_month_in_euro from marts.vehicle_price_changes "
        "where vehicle_id = %s",
        (vehicle_id,),
    )
    return changed_at, previous, now


def _new_car_texts(smtp_server: SmtpServer, recipient: str) -> list[str]:
    """The recipient's messages that announce cars (not the price-drop ones)."""
    return [
        mail.text
        for mail in smtp_server.mailbox(recipient)
        if "(was €" not in mail.text
    ]


def _assert_cars_once(
    settings: Settings, showroom: FakeShowroom, smtp_server: SmtpServer, *who: str
) -> None:
    for recipient in who:
        assert_nothing_lost_or_doubled(
            settings,
            showroom.catalog,
            _new_car_texts(smtp_server, recipient),
            recipient=recipient,
        )


def test_a_drop_reaches_each_interested_recipient_once_with_now_and_was(
    showroom: FakeShowroom,
    subscribed: Subscribed,
    smtp_server: SmtpServer,
) -> None:
    catalog = showroom.catalog
    dropped, small = catalog.vehicles[0], catalog.vehicles[1]
    other_make = next(v.make for v in catalog.vehicles if v.make != dropped.make)
    # 10% off is at least 5% and, at these prices, at least 25 euro; 1% is neither.
    assert dropped.calculated_price * 0.1 >= 25
    assert small.calculated_price * 0.01 < 25
    settings = subscribed(
        [
            {"email": ANNA, "price_drop_percent": 5},
            {
                "email": BOB,
                "price_drop_euro": 25,
                "filters": {"make": f"^{dropped.make}$"},
            },
            {"email": CARLA},
            {
                "email": DAVE,
                "price_drop_percent": 5,
                "filters": {"make": f"^{other_make}$"},
            },
        ]
    )
    run_cycle(settings)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        ANNA,
        BOB,
        CARLA,
        DAVE,
    ]
    catalog.set_price(dropped.id, round(dropped.calculated_price * 0.9, 2))
    catalog.set_price(small.id, round(small.calculated_price * 0.99, 2))

    run_cycle(settings)

    changed_at, previous, now = _drop(settings, dropped.id)
    phrase = price_drop_phrase(euro(now), euro(previous))
    assert previous == Decimal(str(dropped.calculated_price))
    for recipient in (ANNA, BOB):
        mails = smtp_server.mailbox(recipient)
        assert len(mails) == 2
        assert phrase in mails[1].text
        assert phrase in mails[1].html
        assert dropped.license_plate in mails[1].text
        assert small.license_plate not in mails[1].text
    for recipient in (CARLA, DAVE):
        assert len(smtp_server.mailbox(recipient)) == 1
    assert _drops_recorded(settings) == sorted(
        [(dropped.id, changed_at, ANNA), (dropped.id, changed_at, BOB)]
    )
    (sent,) = query(
        settings,
        "select count(*) from notifier.price_drop_notifications as p "
        "join notifier.outbox as o using (message_id) where o.sent_at is not null",
    )
    assert sent == (2,)

    run_cycle(settings)  # nothing changed: nobody hears of the drop again

    assert len(smtp_server.messages) == 6
    assert len(_drops_recorded(settings)) == 2
    _assert_cars_once(settings, showroom, smtp_server, ANNA, CARLA)


def test_a_car_new_and_cheaper_in_the_same_run_is_one_line_at_its_new_price(
    showroom: FakeShowroom,
    subscribed: Subscribed,
    smtp_server: SmtpServer,
) -> None:
    settings = subscribed([{"email": ANNA, "price_drop_percent": 5}])
    run_cycle(settings)
    arrived = showroom.catalog.add_vehicle()
    _refresh(settings)  # it came at its first price...
    showroom.catalog.set_price(arrived.id, round(arrived.calculated_price * 0.8, 2))
    _refresh(settings)  # ...and got 20% cheaper before anyone was told

    notify(settings)

    changed_at, _, now = _drop(settings, arrived.id)
    _, second = smtp_server.mailbox(ANNA)
    assert second.subject == f"1 new: {arrived.make} {arrived.model}"
    assert second.text.count(arrived.license_plate) == 1
    assert euro(now) in second.text
    assert "(was €" not in second.text
    # The drop went with the email that announced the car: never told on its own.
    assert query(
        settings,
        "select vehicle_id, changed_at, message_id "
        "from notifier.price_drop_notifications",
    ) == [(arrived.id, changed_at, str(second.message["Message-ID"]))]

    run_cycle(settings)

    assert len(smtp_server.mailbox(ANNA)) == 2
    _assert_cars_once(settings, showroom, smtp_server, ANNA)


def test_a_drop_before_the_baseline_counts_as_told(
    showroom: FakeShowroom,
    subscribed: Subscribed,
    smtp_server: SmtpServer,
) -> None:
    settings = subscribed([{"email": ANNA, "price_drop_percent": 5}])
    car = showroom.catalog.vehicles[0]
    _refresh(settings)
    showroom.catalog.set_price(car.id, round(car.calculated_price * 0.5, 2))
    _refresh(settings)

    notify(settings, baseline=True)
    notify(settings)

    assert smtp_server.messages == []
    changed_at, _, _ = _drop(settings, car.id)
    assert _drops_recorded(settings) == [(car.id, changed_at, ANNA)]
    assert query(
        settings, "select message_id from notifier.price_drop_notifications"
    ) == [(None,)]


def test_a_refused_drop_email_is_released_then_sent_once(
    showroom: FakeShowroom,
    subscribed: Subscribed,
    smtp_server: SmtpServer,
) -> None:
    settings = subscribed([{"email": ANNA, "price_drop_euro": 1}])
    car = showroom.catalog.vehicles[0]
    run_cycle(settings)
    showroom.catalog.set_price(car.id, car.calculated_price - 1)
    _refresh(settings)
    smtp_server.refuse_recipient(ANNA, "550 5.1.1 Mailbox unavailable")

    with pytest.raises(NotifyError, match="Skipped 1 recipient"):
        notify(settings)

    assert _drops_recorded(settings) == []
    assert query(
        settings, "select count(*) from notifier.outbox where sent_at is null"
    ) == [(0,)]
    smtp_server.refuse_recipient(ANNA, None)
    notify(settings)
    notify(settings)

    changed_at, previous, now = _drop(settings, car.id)
    _, cheaper = smtp_server.mailbox(ANNA)
    assert price_drop_phrase(euro(now), euro(previous)) in cheaper.text
    assert _drops_recorded(settings) == [(car.id, changed_at, ANNA)]
    _assert_cars_once(settings, showroom, smtp_server, ANNA)


def test_a_drop_undone_by_a_rise_or_of_a_car_that_left_is_no_news(
    showroom: FakeShowroom,
    subscribed: Subscribed,
    smtp_server: SmtpServer,
) -> None:
    settings = subscribed([{"email": ANNA, "price_drop_percent": 1}])
    catalog = showroom.catalog
    undone, gone, twice = catalog.vehicles[0], catalog.vehicles[1], catalog.vehicles[2]
    run_cycle(settings)
    catalog.set_price(undone.id, undone.calculated_price * 0.8)
    catalog.set_price(gone.id, gone.calculated_price * 0.8)
    catalog.set_price(twice.id, twice.calculated_price * 0.9)
    _refresh(settings)
    catalog.set_price(undone.id, undone.calculated_price)  # back up: no news
    catalog.remove_vehicle(gone.id)  # leased before anyone was told
    catalog.set_price(twice.id, twice.calculated_price * 0.8)  # cheaper again
    _refresh(settings)

    notify(settings)

    (_, cheaper) = smtp_server.mailbox(ANNA)
    latest = query(
        settings,
        "select previous_price_per_month_in_euro, price_per_month_in_euro "
        "from marts.vehicle_price_changes where vehicle_id = %s "
        "order by changed_at desc limit 1",
        (twice.id,),
    )[0]
    # Only the price now, from the one before it.
    assert price_drop_phrase(euro(latest[1]), euro(latest[0])) in cheaper.text
    assert cheaper.text.count("(was €") == 1
    assert undone.license_plate not in cheaper.text
    assert gone.license_plate not in cheaper.text
    assert [v for v, _, _ in _drops_recorded(settings)] == [twice.id]
    assert_nothing_lost_or_doubled(
        settings,
        catalog,
        _new_car_texts(smtp_server, ANNA),
        recipient=ANNA,
        left={gone.id},
    )


def test_a_drop_told_to_an_address_in_another_case_is_not_told_again(
    showroom: FakeShowroom, subscribed: Subscribed, smtp_server: SmtpServer
) -> None:
    """Addresses compare in lower case, for drops as for windows: a drop recorded
    for `Anna@Example.NL` (as written in the file, or stored so by an older
    version, even next to the lower-case row) counts for anna@example.nl."""
    car = showroom.catalog.vehicles[0]
    written = subscribed([{"email": "Anna@Example.NL", "price_drop_percent": 5}])
    run_cycle(written)
    showroom.catalog.set_price(car.id, round(car.calculated_price * 0.9, 2))
    run_cycle(written)
    changed_at, _, _ = _drop(written, car.id)
    assert _drops_recorded(written) == [(car.id, changed_at, ANNA)]
    assert len(smtp_server.mailbox(ANNA)) == 2
    # What an older version, which kept the address as written, left behind.
    for table in ("notifications", "price_drop_notifications"):
        assert query(
            written,
            f"update notifier.{table} set recipient = 'Anna@Example.NL' "
            "returning recipient",
        )
    assert query(
        written,
        "insert into notifier.price_drop_notifications "
        "(vehicle_id, changed_at, recipient) values (%s, %s, %s) returning 1",
        (car.id, changed_at, ANNA),
    ) == [(1,)]

    settings = subscribed([{"email": ANNA, "price_drop_percent": 5}])
    run_cycle(settings)
    run_cycle(written)

    assert len(smtp_server.mailbox(ANNA)) == 2
    assert _drops_recorded(settings) == [(car.id, changed_at, ANNA)]
    _assert_cars_once(settings, showroom, smtp_server, ANNA)


EXAMPLE = Path(__file__).parents[2] / "examples" / "subscriptions.yml"


def test_the_example_file_opts_anna_in_to_price_drops() -> None:
    anna, *others = load_subscriptions(EXAMPLE)
    assert (anna.email, anna.price_drop_percent, anna.price_drop_euro) == (
        "anna@example.nl",
        5,
        25,
    )
    assert anna.wants_price_drops
    assert not any(other.wants_price_drops for other in others)


@pytest.mark.parametrize(
    ("previous", "now", "worth"),
    [
        (539, 512.05, True),  # exactly 5%
        (539, 512.06, False),  # just under 5%, and 26.94 euro is under 50
        (100, 95.01, False),  # 4.99% and 4.99 euro
        (1000, 975, True),  # 2.5%, but 25 euro
        (539, 539, False),
        (539, 600, False),  # a rise
        (None, 400, False),
        (0, 0, False),
        (float("nan"), 400, False),
    ],
)
def test_either_threshold_met_is_a_drop_worth_telling(
    previous: Any, now: Any, worth: bool
) -> None:
    subscription = Subscription(
        email=ANNA, price_drop_percent=5, price_drop_euro=25 if previous != 539 else 50
    )
    assert subscription.drop_is_worth_telling(previous, now) is worth


def test_no_threshold_no_price_drops() -> None:
    subscription = Subscription(email=ANNA)
    assert not subscription.wants_price_drops
    assert not subscription.drop_is_worth_telling(1000, 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "price_drop_percent: Input should be greater than 0"),
        (100, "price_drop_percent: Input should be less than 100"),
        ("lots", "price_drop_percent: Input should be a valid number"),
    ],
)
def test_a_bad_threshold_is_one_line_naming_recipient_and_key(
    tmp_path: Path, value: Any, message: str
) -> None:
    path = tmp_path / "subscriptions.yml"
    path.write_text(
        yaml.safe_dump({"recipients": [{"email": ANNA, "price_drop_percent": value}]})
    )
    with pytest.raises(NotifyConfigurationError) as refused:
        load_subscriptions(path)
    assert f"recipient #1 ({ANNA}), {message}" in str(refused.value)
    assert "\n" not in str(refused.value)
