"""`kill -9` of a real `athlon-flex notify` at every point of a price-drop email's
path, then a rerun: each drop reaches the recipient's mailbox exactly once, and is
recorded once, per vehicle, price version and recipient.

Driven from outside the process as in test_notify_killed.py: a lock the test holds on
a notifier table stops the run right before a write, and the SMTP server stalls at
RCPT until the test has killed it. The mailbox keeps one message per Message-ID.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml

from athlon_flex.settings import Settings
from loader.pipeline import load
from notifier.phrases import price_drop_phrase
from notifier.render import euro
from notifier.stage import notify
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    assert_nothing_lost_or_doubled,
    cli_env,
    query,
    start_cli,
)
from tests.faults.killing import TableLocks, kill, wait_for
from tests.support.smtp import SmtpServer
from transform.runner import build
from watcher.cycle import run_cycle

ANNA = "anna@example.nl"  # hears of drops of 5% or more
BOB = "bob@example.nl"  # no price drops


def test_kill_at_every_point_of_a_price_drop_email_loses_and_doubles_nothing(
    fake_api_factory: Callable[..., FakeShowroom],
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    table_locks: Callable[[Settings], TableLocks],
    tmp_path: Path,
) -> None:
    api = fake_api_factory(clusters=3, vehicles_per_cluster=2, seed=11)
    subscriptions = tmp_path / "subscriptions.yml"
    subscriptions.write_text(
        yaml.safe_dump(
            {"recipients": [{"email": ANNA, "price_drop_percent": 5}, {"email": BOB}]}
        ),
        encoding="utf-8",
    )
    settings = cycle_settings(api, notify_subscriptions_file=subscriptions)
    env = cli_env(settings)
    watcher = table_locks(settings)
    catalog = api.catalog
    run_cycle(settings)  # both hear of every car
    cars = iter(list(catalog.vehicles))

    def drop_loaded() -> None:
        car = next(cars)
        catalog.set_price(car.id, round(car.calculated_price * 0.9, 2))
        load(settings)
        build(settings)

    def start(name: str) -> subprocess.Popen:
        process, _, _ = start_cli("notify", env=env, cwd=tmp_path, name=name)
        return process

    def anna_count() -> int:
        return len(smtp_server.messages_to(ANNA))

    # 1. Killed before the intent commits: its drop insert waits on our lock.
    drop_loaded()
    watcher.lock("notifier.price_drop_notifications")
    process = start("before-intent")
    wait_for(watcher.someone_waits_for_a_lock, process, "the price drop claim")
    kill(process)
    watcher.unlock()
    assert anna_count() == 1
    assert query(settings, "select count(*) from notifier.outbox") == [(2,)]
    notify(settings)  # the rerun sends it afresh
    assert anna_count() == 2

    # 2. Killed after the intent, before DATA: the server stalls at RCPT.
    drop_loaded()
    smtp_server.hold_recipient(ANNA)
    process = start("before-data")
    wait_for(smtp_server.handler.holding.is_set, process, "RCPT TO anna")
    kill(process)
    smtp_server.release()
    assert anna_count() == 2
    notify(settings)  # resends the written email as it was
    assert anna_count() == 3

    # 3. Killed after the server's 250, before the mark's write to either table.
    for table in ("notifier.notifications", "notifier.price_drop_notifications"):
        drop_loaded()
        smtp_server.hold_recipient(ANNA)
        process = start(f"after-250-{table}")
        wait_for(smtp_server.handler.holding.is_set, process, "RCPT TO anna")
        watcher.lock(table)
        smtp_server.release()
        wait_for(watcher.someone_waits_for_a_lock, process, f"a write to {table}")
        kill(process)
        watcher.unlock()
        before = anna_count()
        assert query(
            settings,
            "select count(*) from notifier.outbox where sent_at is null",
        ) == [(1,)]
        notify(settings)  # the same bytes again, same Message-ID
        assert anna_count() == before + 1

    notify(settings)  # nothing left
    assert query(
        settings, "select count(*) from notifier.outbox where sent_at is null"
    ) == [(0,)]
    drops = query(
        settings,
        "select c.vehicle_id, c.previous_price_per_month_in_euro, "
        "c.price_per_month_in_euro, p.recipient, p.message_id is not null "
        "from notifier.price_drop_notifications as p "
        "join marts.vehicle_price_changes as c using (vehicle_id, changed_at) "
        "order by c.vehicle_id",
    )
    assert len(drops) == 4
    assert {(recipient, has_id) for *_, recipient, has_id in drops} == {(ANNA, True)}
    mailbox = smtp_server.mailbox(ANNA)
    assert len(mailbox) == 5  # the first email and one per drop
    phrases = Counter(
        phrase
        for _, previous, now, _, _ in drops
        for mail in mailbox
        if (phrase := price_drop_phrase(euro(now), euro(previous))) in mail.text
    )
    assert sorted(phrases.values()) == [1, 1, 1, 1]
    assert len(smtp_server.mailbox(BOB)) == 1
    for recipient in (ANNA, BOB):
        texts = [
            mail.text
            for mail in smtp_server.mailbox(recipient)
            if "(was €" not in mail.text
        ]
        assert_nothing_lost_or_doubled(settings, catalog, texts, recipient=recipient)
