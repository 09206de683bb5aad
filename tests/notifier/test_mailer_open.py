"""Mailer.open: the connection a run's first email uses is opened while that
email is built; a server that cannot be reached is tried once for it."""

from __future__ import annotations

import pytest

from notifier.mailer import Mailer, MailError, SmtpTransport
from tests.support.smtp import SmtpServer

SENDER = "notifier@example.org"
ANNA = "anna@example.nl"
MESSAGE = b"Subject: test\r\n\r\nhello\r\n"


def _transport(host: str, port: int) -> SmtpTransport:
    return SmtpTransport(
        host=host, port=port, security="none", sender=SENDER, user=SENDER, password=None
    )


def _counting_connects(mailer: Mailer, monkeypatch) -> list[int]:
    connects: list[int] = []
    connect = mailer._connect

    def counted():
        connects.append(1)
        return connect()

    monkeypatch.setattr(mailer, "_connect", counted)
    return connects


def test_a_send_after_open_uses_the_connection_opened(
    smtp_server: SmtpServer, monkeypatch
) -> None:
    with Mailer(_transport(smtp_server.host, smtp_server.port)) as mailer:
        connects = _counting_connects(mailer, monkeypatch)
        mailer.open()
        assert connects == [1]
        mailer.send(MESSAGE, ANNA)
        mailer.open()  # open already: nothing to do
        mailer.send(MESSAGE, ANNA)
    assert connects == [1]
    assert [message.rcpt_tos for message in smtp_server.messages] == [(ANNA,)] * 2


def test_an_open_that_failed_is_the_next_sends_refusal_without_trying_again(
    monkeypatch,
) -> None:
    with Mailer(_transport("127.0.0.1", 1)) as mailer:  # nothing listens on 1
        connects = _counting_connects(mailer, monkeypatch)
        mailer.open()  # raises nothing: the send that needs it does
        with pytest.raises(MailError, match=r"127\.0\.0\.1:1") as refused:
            mailer.send(MESSAGE, ANNA)
        assert refused.value.refused
        assert connects == [1]

        with pytest.raises(MailError, match=r"127\.0\.0\.1:1"):
            mailer.send(MESSAGE, ANNA)  # a later send tries again
        assert connects == [1, 1]

        mailer.open()
        mailer.open()  # a second open tries again too, not the first's failure
        assert connects == [1, 1, 1, 1]
