"""A car back in the showroom is shown as back, with when it left, and each car with
how fast cars like it go; through the real stages (simulated showroom over HTTP,
loader, dbt, notifier, aiosmtpd), ending in the invariant."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from athlon_flex.settings import Settings
from notifier.phrases import back_phrase, lease_speed_phrase
from notifier.render import local_time
from simulation.demo import run_demo
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    query,
    quick_settings,
)
from tests.support.smtp import SmtpServer
from watcher.cycle import run_cycle


@pytest.fixture
def database_template() -> None:
    """An empty database: the loader and dbt build everything, as in production."""
    return None


@pytest.fixture
def showroom(fake_api_factory: Callable[..., FakeShowroom]) -> FakeShowroom:
    return fake_api_factory(clusters=2, vehicles_per_cluster=2, seed=41)


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    showroom: FakeShowroom,
    smtp_server: SmtpServer,
) -> Settings:
    return make_settings(**quick_settings(showroom, smtp_server))


def _texts(smtp_server: SmtpServer) -> list[str]:
    return [mail.text for mail in smtp_server.mailbox(RECIPIENT)]


def test_a_car_that_returns_is_back_with_when_it_left_not_new(
    showroom: FakeShowroom, settings: Settings, smtp_server: SmtpServer
) -> None:
    catalog = showroom.catalog
    car = catalog.vehicles[0]
    run_cycle(settings)
    catalog.remove_vehicle(car.id)
    run_cycle(settings, allow_shrink=True)
    catalog.return_vehicle(car.id)

    run_cycle(settings)

    ((left_at,),) = query(
        settings,
        "select available_until from marts.vehicle_availability "
        "where vehicle_id = %s and available_until is not null",
        (car.id,),
    )
    phrase = back_phrase(local_time(left_at, settings.notify_timezone))
    first, back = smtp_server.mailbox(RECIPIENT)
    assert phrase not in first.text
    assert car.license_plate in back.text
    assert phrase in back.text
    assert phrase in back.html
    assert query(settings, "select count(*) from marts.vehicles_to_notify") == [(0,)]

    run_cycle(settings)

    assert len(smtp_server.mailbox(RECIPIENT)) == 2
    assert_nothing_lost_or_doubled(
        settings,
        catalog,
        _texts(smtp_server),
        left={car.id},
        returned={car.id},
    )


def test_each_car_says_how_fast_cars_like_it_are_leased(
    showroom: FakeShowroom, settings: Settings, smtp_server: SmtpServer
) -> None:
    catalog = showroom.catalog
    make, model = catalog.vehicles[0].make, catalog.vehicles[0].model
    other = next(v for v in catalog.vehicles if (v.make, v.model) != (make, model))
    quick = [catalog.add_vehicle(make, model) for _ in range(3)]
    run_cycle(settings)
    for car in quick:
        catalog.remove_vehicle(car.id)
    run_cycle(settings)
    same = catalog.add_vehicle(make, model)
    unknown = catalog.add_vehicle(other.make, other.model)

    run_cycle(settings)

    ((leased_count, median),) = query(
        settings,
        "select leased_count, median_hours_available from marts.vehicle_lease_speed "
        "where make = %s and model = %s",
        (make, model),
    )
    assert leased_count == 3
    # Seconds in the showroom: "within 1 h", the shortest the phrase says.
    phrase = lease_speed_phrase(median)
    assert phrase == "cars like this are usually leased within 1 h"
    mail = smtp_server.mailbox(RECIPIENT)[-1]
    (line_of_same,) = [
        block for block in mail.text.split("\n- ") if same.license_plate in block
    ]
    (line_of_unknown,) = [
        block for block in mail.text.split("\n- ") if unknown.license_plate in block
    ]
    assert phrase in line_of_same
    # Fewer than three cars of that model left: no figure rather than a guess.
    assert "usually leased" not in line_of_unknown
    assert_nothing_lost_or_doubled(
        settings, catalog, _texts(smtp_server), left={car.id for car in quick}
    )


def test_the_demo_shows_a_price_drop_and_a_car_back_again(
    embedded_data_dir: Path,
) -> None:
    lines: list[str] = []
    run_demo(
        Settings(_env_file=None, athlon_data_dir=embedded_data_dir),
        cycles=3,
        clusters=2,
        vehicles_per_cluster=2,
        echo=lines.append,
    )

    second = next(i for i, line in enumerate(lines) if line.startswith("== Cycle 2:"))
    third = next(i for i, line in enumerate(lines) if line.startswith("== Cycle 3:"))
    cheaper = [line for line in lines[second:third] if "CHEAPER" in line]
    back = [line for line in lines[third:] if "BACK" in line]
    assert len(cheaper) == 1
    # 10% off, both prices as every channel writes them.
    assert re.fullmatch(
        r"   CHEAPER .+ \[[A-Z0-9-]+\] now € ([\d.]+,\d\d) \(was € ([\d.]+,\d\d)\)",
        cheaper[0],
    )
    assert len(back) == 1
    assert re.fullmatch(
        r"   BACK .+ \[[A-Z0-9-]+\] back again \(left \d\d:\d\d:\d\d UTC\)", back[0]
    )
    assert not [line for line in lines[third:] if line.startswith("   NEW ")]
