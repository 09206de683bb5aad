"""`athlon-flex demo`: the whole pipeline offline, in about a minute.

Starts the simulated showroom and an embedded PostgreSQL of its own (under
ATHLON_DATA_DIR/demo, so the user's real history is never touched), then runs a few
cycles while the showroom changes: cars leave, arrive, return and change price. After
each cycle it prints what the notifier told: NEW cars, cars BACK again (with when
they left) and CHEAPER ones (now and was). Email is off: the console channel shows
and records everything, every price drop included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from athlon_flex.database import connect, ensure_postgres, recreate_database
from athlon_flex.settings import Settings
from notifier.phrases import BADGES, back_phrase, price_drop_phrase
from notifier.render import euro

log = logging.getLogger(__name__)

DEMO_DATABASE = "athlon_flex_demo"


def _fresh_demo_settings(settings: Settings, api_url: str) -> Settings:
    """The user's settings, pointed at the demo's own server, database and API."""
    demo = settings.model_copy(
        update={
            "athlon_api_url": api_url,
            "athlon_username": None,
            "athlon_password": None,
            "gross_yearly_income": None,
            "athlon_data_dir": settings.data_dir / "demo",
            "postgres_host": None,
            "postgres_db": DEMO_DATABASE,
            "email_to": [],
            "notify_subscriptions_file": None,
            "notify_baseline": False,
            # The demo's refreshes are seconds apart: without this, the car that
            # comes back would be inside the grace period and (rightly) no news.
            "notify_grace_minutes": 0,
        }
    )
    recreate_database(ensure_postgres(demo))
    return demo


def _news_since(settings: Settings, since: datetime) -> list[tuple]:
    """What the notifier recorded since `since`, as (badge, car, what to read).

    New and back-again cars from notifier.notifications (back: the car had an
    earlier window, and when that ended), price drops from
    notifier.price_drop_notifications with the price before and after.
    """
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(
            """
            select a.make, a.model, a.type, a.license_plate,
                   a.price_per_month_in_euro, a.available_since,
                   (select max(e.available_until)
                    from marts.vehicle_availability as e
                    where e.vehicle_id = a.vehicle_id
                        and e.available_since < a.available_since) as left_at
            from notifier.notifications as n
            join marts.vehicle_availability as a
                on a.vehicle_id = n.vehicle_id
                and a.available_since = n.available_since
            where n.notified_at >= %s
            order by a.make, a.model, a.license_plate
            """,
            (since,),
        )
        windows = cursor.fetchall()
        cursor.execute(
            """
            select c.make, c.model, c.type, c.license_plate,
                   c.price_per_month_in_euro, c.previous_price_per_month_in_euro
            from notifier.price_drop_notifications as p
            join marts.vehicle_price_changes as c
                on c.vehicle_id = p.vehicle_id and c.changed_at = p.changed_at
            where p.notified_at >= %s
            order by c.make, c.model, c.license_plate
            """,
            (since,),
        )
        drops = cursor.fetchall()
    news = []
    for make, model, type_, plate, price, available_since, left_at in windows:
        car = f"{make} {model} {type_} [{plate}]"
        if left_at is None:
            read = (
                f"{euro(price)}/month, available since {available_since:%H:%M:%S} UTC"
            )
            news.append((BADGES["new"], car, read))
        else:
            news.append((BADGES["back"], car, back_phrase(f"{left_at:%H:%M:%S} UTC")))
    for make, model, type_, plate, price, previous in drops:
        car = f"{make} {model} {type_} [{plate}]"
        news.append(
            (BADGES["price_drop"], car, price_drop_phrase(euro(price), euro(previous)))
        )
    return news


def _windows(settings: Settings) -> tuple[int, int, int]:
    """(windows, open windows, vehicles with more than one window)."""
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(
            """
            select count(*),
                   count(*) filter (where available_until is null),
                   (select count(*) from (
                        select vehicle_id from marts.vehicle_availability
                        group by vehicle_id having count(*) > 1) as returned)
            from marts.vehicle_availability
            """
        )
        return cursor.fetchone()


def run_demo(
    settings: Settings,
    *,
    cycles: int = 4,
    clusters: int = 6,
    vehicles_per_cluster: int = 3,
    echo: Callable[[str], None] = print,
) -> None:
    """Run `cycles` refreshes against a changing simulated showroom and narrate."""
    from simulation.fake_api import Catalog, FakeShowroom
    from watcher.cycle import run_cycle

    catalog = Catalog.generate(
        clusters=clusters, vehicles_per_cluster=vehicles_per_cluster, seed=2024
    )
    with FakeShowroom(catalog, host="127.0.0.1", port=0) as server:
        demo = _fresh_demo_settings(settings, server.url)
        echo(f"Simulated showroom at {server.url}")
        echo(f"Embedded PostgreSQL under {demo.data_dir} (database {DEMO_DATABASE})")
        left: list = []
        for cycle in range(1, cycles + 1):
            changes = _change_showroom(catalog, cycle, left)
            echo("")
            echo(f"== Cycle {cycle}: {changes}")
            started = datetime.now(UTC)
            run_cycle(demo)
            news = _news_since(demo, started)
            windows, open_windows, returned = _windows(demo)
            echo(
                f"   {len(catalog.vehicles)} cars in the showroom; {windows} "
                f"availability windows ({open_windows} open, {returned} cars returned)"
            )
            if not news:
                echo("   nothing new to notify")
            for badge, car, read in news:
                echo(f"   {badge:<4} {car} {read}")
    echo("")
    echo(
        "Done. The demo's history stays in its own database; browse it with "
        f"`ATHLON_DATA_DIR={demo.data_dir} POSTGRES_DB={DEMO_DATABASE} "
        "athlon-flex docs` (marts.vehicle_availability has every window)."
    )


def _change_showroom(catalog, cycle: int, left: list) -> str:
    """Move the simulated showroom one step; return what changed, in words."""
    if cycle == 1:
        return "first look at the showroom"
    if cycle == 2:
        gone = [catalog.remove_vehicle(v.id) for v in list(catalog.vehicles)[:2]]
        left.extend(gone)
        arrived = catalog.add_vehicle()
        repriced = catalog.vehicles[0]
        catalog.set_price(repriced.id, round(repriced.calculated_price * 0.9, 2))
        return (
            f"{len(gone)} cars leased, 1 arrives ({arrived.make} {arrived.model}), "
            "1 gets 10% cheaper"
        )
    if cycle == 3 and left:
        returned = left.pop(0)
        catalog.return_vehicle(returned)
        return f"a leased car comes back ({returned.make} {returned.model})"
    return "nothing changes"
