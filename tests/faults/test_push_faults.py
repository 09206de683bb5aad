"""Push channels under faults: the endpoint answers 500, is down, or the notifier is
killed while a push is on its way. Each car reaches the email and the push
channel exactly once each, and nothing is recorded for a push not delivered."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from athlon_flex.settings import Settings
from loader.pipeline import load
from notifier.errors import NotifyError
from notifier.push import channel_key
from notifier.stage import notify
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    cli_env,
    notifications,
    query,
    start_cli,
)
from tests.notifier.push_server import PushServer
from tests.support.smtp import SmtpServer
from transform.runner import build
from watcher.cycle import run_cycle


@pytest.fixture
def phone(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    push_server: PushServer,
    tmp_path: Path,
) -> tuple[str, Settings]:
    """(channel key, settings) of RECIPIENT with email and one push channel, the
    test's push server's `phone`."""
    url = push_server.url("phone")
    path = tmp_path / "subscriptions.yml"
    path.write_text(
        f"recipients:\n  - email: {RECIPIENT}\n    apprise:\n      - {url}\n",
        encoding="utf-8",
    )
    return channel_key(url), cycle_settings(showroom, notify_subscriptions_file=path)


def _push_texts(server: PushServer) -> list[str]:
    return [f"{push.title}\n{push.message}" for push in server.messages]


def _settle(settings: Settings) -> None:
    """Runs until nothing is left to tell (a push shows about seven cars)."""
    for _ in range(4):
        notify(settings)


def test_push_endpoint_failing_then_down_then_back_tells_each_car_once(
    showroom: FakeShowroom,
    phone: tuple[str, Settings],
    smtp_server: SmtpServer,
    push_server: PushServer,
) -> None:
    key, settings = phone

    push_server.status = 500
    with pytest.raises(NotifyError, match=key):
        run_cycle(settings)
    assert push_server.attempts == 1 and push_server.messages == []
    assert {r for _, _, r in notifications(settings)} == {RECIPIENT}

    push_server.stop()
    showroom.catalog.add_vehicle()
    with pytest.raises(NotifyError, match=key):
        run_cycle(settings)
    assert [r for _, _, r in notifications(settings) if r == key] == []

    push_server.status = 200
    push_server.start()
    run_cycle(settings)
    _settle(settings)

    assert query(
        settings, "select count(*) from notifier.outbox where sent_at is null"
    ) == [(0,)]
    emails = [mail.text for mail in smtp_server.messages_to(RECIPIENT)]
    assert len(emails) == 2
    assert_nothing_lost_or_doubled(settings, showroom.catalog, emails)
    assert_nothing_lost_or_doubled(
        settings, showroom.catalog, _push_texts(push_server), recipient=key
    )


def test_notify_killed_while_a_push_is_on_its_way_sends_it_once_next_run(
    showroom: FakeShowroom,
    phone: tuple[str, Settings],
    smtp_server: SmtpServer,
    push_server: PushServer,
    tmp_path: Path,
) -> None:
    key, settings = phone
    run_cycle(settings)
    _settle(settings)
    pushed = len(push_server.messages)

    arrived = showroom.catalog.add_vehicle()
    load(settings)
    build(settings)
    push_server.hold()
    process, _, stderr = start_cli(
        "notify", env=cli_env(settings), cwd=tmp_path, name="held"
    )
    deadline = time.monotonic() + 180
    while not push_server.holding.is_set():
        assert process.poll() is None, stderr.read_text()
        assert time.monotonic() < deadline, "the push never arrived"
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    push_server.release(accept=False)

    # Claimed with its outbox row, not marked: the next run sends that very text.
    assert query(
        settings,
        "select recipient, sent_at is null from notifier.outbox where sent_at is null",
    ) == [(key, True)]
    assert len(push_server.messages) == pushed
    notify(settings)

    (again,) = push_server.messages[pushed:]
    assert arrived.license_plate in again.message
    assert query(
        settings, "select count(*) from notifier.outbox where sent_at is null"
    ) == [(0,)]
    assert_nothing_lost_or_doubled(
        settings, showroom.catalog, _push_texts(push_server), recipient=key
    )
    assert_nothing_lost_or_doubled(
        settings,
        showroom.catalog,
        [mail.text for mail in smtp_server.messages_to(RECIPIENT)],
    )
