"""`kill -9` of a real `athlon-flex notify` at every point of the send path, then a
rerun: each car reaches each recipient's mailbox exactly once.

The timing is driven from outside the process, never by hooks in its code: a lock the
test holds on a notifier table stops it right before a write, and the SMTP server
stalls at RCPT (before DATA) until the test has killed it. The mailbox de-duplicates
by Message-ID, as Gmail does: a resend of an email the server already took is the
same message, not a second one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from athlon_flex.settings import Settings
from loader.pipeline import load
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

ANNA = "anna@example.nl"
BOB = "bob@example.nl"


def _outbox(settings: Settings) -> list[tuple[str, bool]]:
    """(recipient, is marked sent) of every outbox row, by recipient."""
    return query(
        settings,
        "select recipient, sent_at is not null from notifier.outbox "
        "order by recipient, created_at",
    )


def test_kill_at_every_point_of_the_send_path_loses_and_doubles_nothing(
    fake_api_factory: Callable[..., FakeShowroom],
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    table_locks: Callable[[Settings], TableLocks],
    tmp_path: Path,
) -> None:
    api = fake_api_factory(clusters=3, vehicles_per_cluster=2, seed=11)
    settings = cycle_settings(api, email_to=[ANNA, BOB])
    env = cli_env(settings)
    watcher = table_locks(settings)
    catalog = api.catalog
    sent_before = 0

    def new_car_loaded() -> None:
        catalog.add_vehicle()
        load(settings)
        build(settings)

    def start(name: str) -> subprocess.Popen:
        process, _, _ = start_cli("notify", env=env, cwd=tmp_path, name=name)
        return process

    # 1. Killed before the intent is written: the outbox insert waits on our lock.
    new_car_loaded()
    watcher.lock("notifier.outbox")
    process = start("before-intent")
    wait_for(watcher.someone_waits_for_a_lock, process, "the outbox write")
    kill(process)
    watcher.unlock()
    assert smtp_server.messages == []
    notify(settings)  # the rerun
    assert _outbox(settings) == [(ANNA, True), (BOB, True)]
    sent_before = len(smtp_server.messages)
    assert sent_before == 2

    # 2. Killed after the intent, before DATA: the server stalls at RCPT.
    new_car_loaded()
    smtp_server.hold_recipient(ANNA)
    process = start("before-data")
    wait_for(smtp_server.handler.holding.is_set, process, "RCPT TO anna")
    kill(process)
    smtp_server.release()
    assert _outbox(settings) == [(ANNA, True), (ANNA, False), (BOB, True)]
    assert len(smtp_server.messages) == sent_before  # nothing reached DATA
    notify(settings)  # resends anna's written email as it was; bob's is new
    assert len(smtp_server.messages) == sent_before + 2
    sent_before = len(smtp_server.messages)

    # 3. Killed after the server's 250, before the mark: it waits on our lock on
    # notifications (the first table of the mark's one statement).
    # 4. Killed inside the mark's transaction, before its commit: the mark's
    # statement, holding notifications, waits on our lock on the outbox.
    for table in ("notifier.notifications", "notifier.outbox"):
        new_car_loaded()
        smtp_server.hold_recipient(ANNA)
        process = start(f"after-250-{table}")
        wait_for(smtp_server.handler.holding.is_set, process, "RCPT TO anna")
        watcher.lock(table)  # the intent is committed: the process is at RCPT
        smtp_server.release()
        wait_for(watcher.someone_waits_for_a_lock, process, f"a write to {table}")
        kill(process)
        watcher.unlock()
        # The server took anna's email; nothing says so in the database.
        assert len(smtp_server.messages) == sent_before + 1
        assert (ANNA, False) in _outbox(settings)
        notify(settings)  # resends it with the same Message-ID, and serves bob
        assert len(smtp_server.messages) == sent_before + 3
        sent_before = len(smtp_server.messages)

    # 5. Killed after anna's mark was committed, while bob's send stalls.
    new_car_loaded()
    smtp_server.hold_recipient(BOB)
    process = start("after-commit")
    wait_for(smtp_server.handler.holding.is_set, process, "RCPT TO bob")
    kill(process)
    smtp_server.release()
    assert len(smtp_server.messages) == sent_before + 1
    notify(settings)
    assert len(smtp_server.messages) == sent_before + 2

    assert query(
        settings, "select count(*) from notifier.outbox where sent_at is null"
    ) == [(0,)]
    for recipient in (ANNA, BOB):
        mailbox = smtp_server.mailbox(recipient)
        # One email per round and recipient in the mailbox, whatever was resent.
        assert len(mailbox) == 5, recipient
        assert_nothing_lost_or_doubled(
            settings, catalog, [mail.text for mail in mailbox], recipient=recipient
        )
