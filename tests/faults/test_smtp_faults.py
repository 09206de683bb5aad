"""The mail server refuses, or is not there at all: nothing is recorded as notified,
so the next cycle with a working server sends every car exactly once."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from athlon_flex.settings import Settings
from notifier.errors import NotifyError
from notifier.stage import notify
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    notifications,
)
from tests.support.smtp import SmtpServer
from watcher.cycle import run_cycle


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A local port that refuses connections: bound by us, never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def test_smtp_refusing_then_gone_records_nothing_and_the_next_cycle_sends_once(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    dead_port: int,
) -> None:
    settings = cycle_settings(showroom)

    smtp_server.refuse_with("451 4.3.0 Mail server busy, try again later")
    with pytest.raises(NotifyError, match=r"451 4\.3\.0 Mail server busy") as refused:
        run_cycle(settings)
    assert "Nothing was recorded" in str(refused.value)
    assert smtp_server.handler.data_attempts == 1
    assert smtp_server.messages == []
    assert notifications(settings) == []
    smtp_server.refuse_with(None)

    # Nothing listens where the mail server should be.
    gone = cycle_settings(showroom, smtp_port=dead_port)
    with pytest.raises(NotifyError, match="ConnectionRefusedError"):
        notify(gone)
    assert notifications(settings) == []
    assert smtp_server.handler.data_attempts == 1

    arrived = showroom.catalog.add_vehicle()
    summary = run_cycle(settings)

    assert summary.notify.emails_sent == 1
    (mail,) = smtp_server.messages
    assert mail.subject.startswith(f"{len(showroom.catalog)} new: ")
    assert arrived.license_plate in mail.text
    texts = [message.text for message in smtp_server.messages_to(RECIPIENT)]
    assert_nothing_lost_or_doubled(settings, showroom.catalog, texts)
