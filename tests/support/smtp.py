"""A real SMTP server for the tests: aiosmtpd on a free 127.0.0.1 port.

It keeps every message it accepted (parsed, with the envelope's recipients) and can be
told to refuse: every message at DATA (`refuse_with("550 ...")`) or chosen recipients
at RCPT (`refuse_recipient(address, "451 ...")`). `require_login(user, password)` makes
it demand AUTH (over plain SMTP: there is no certificate in the tests).
`hold_recipient(address)` makes it stall at that RCPT until `release()`, so a test can
kill the sending process at a known point; `mailbox(address)` is what a mail store
that keeps one copy per Message-ID (as Gmail does) would show.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: SMTP envelope plus the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str) -> str:
        """The decoded text/<subtype> part ("html" or "plain")."""
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None or part.get_content_subtype() != subtype:
            raise AssertionError(f"message has no text/{subtype} part")
        return part.get_content()

    @property
    def html(self) -> str:
        return self.body("html")

    @property
    def text(self) -> str:
        return self.body("plain")


class RecordingHandler:
    """aiosmtpd handler: store what arrives, or refuse on request."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMessage] = []
        self.refuse_data: str | None = None
        self.refused_recipients: dict[str, str] = {}
        self.data_attempts = 0
        self.held: set[str] = set()
        self.holding = threading.Event()  # set while a held RCPT waits
        self.released = threading.Event()
        self.drop_after_data = False  # keep the message, close without a reply

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.held:
            self.holding.set()
            # Polling, not blocking: the server's other connections go on.
            while not self.released.is_set():
                await asyncio.sleep(0.005)
        reply = self.refused_recipients.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        self.data_attempts += 1
        if self.refuse_data:
            return self.refuse_data
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=parsed,
            )
        )
        if self.drop_after_data:
            # Taken, but the client never hears so: the connection just ends.
            server.transport.close()
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """The running server, its mailbox and its switches."""

    host: str
    port: int
    handler: RecordingHandler
    controller: Controller
    logins: list[str] = field(default_factory=list)

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.messages

    def messages_to(self, address: str) -> list[ReceivedMessage]:
        return [m for m in self.messages if address in m.rcpt_tos]

    def refuse_with(self, reply: str | None) -> None:
        """Refuse every message at DATA with this reply (None accepts again)."""
        self.handler.refuse_data = reply

    def refuse_recipient(self, address: str, reply: str | None) -> None:
        """Refuse one recipient at RCPT with this reply (None accepts again)."""
        if reply is None:
            self.handler.refused_recipients.pop(address.lower(), None)
        else:
            self.handler.refused_recipients[address.lower()] = reply

    def hold_recipient(self, address: str) -> None:
        """Stall at RCPT for this address (before DATA) until `release()`."""
        self.handler.held = {address.lower()}
        self.handler.holding.clear()
        self.handler.released.clear()

    def release(self) -> None:
        """Let a held RCPT go on, and hold no one any more."""
        self.handler.held = set()
        self.handler.released.set()

    def mailbox(self, address: str) -> list[ReceivedMessage]:
        """The messages to `address`, one per Message-ID (the first copy)."""
        seen: dict[str, ReceivedMessage] = {}
        for message in self.messages_to(address):
            seen.setdefault(str(message.message["Message-ID"]), message)
        return list(seen.values())

    def require_login(self, user: str, password: str) -> None:
        """From the next connection on, demand AUTH with exactly these credentials."""

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (
                data.login.decode(),
                data.password.decode(),
            ) == (user, password)
            if ok:
                self.logins.append(user)
            return AuthResult(success=ok, handled=False)

        # Each connection builds a new aiosmtpd SMTP object from these kwargs.
        self.controller.SMTP_kwargs.update(
            authenticator=authenticate, auth_required=True, auth_require_tls=False
        )

    def clear(self) -> None:
        self.handler.messages.clear()

    def settings_overrides(self, sender: str = "notifier@example.org") -> dict:
        """Settings fields that send through this server (plain SMTP, no login)."""
        return {
            "email_from": sender,
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": "none",
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_smtp_server(handler: RecordingHandler) -> Iterator[SmtpServer]:
    """aiosmtpd with `handler` on a free local port until the block ends."""
    controller = Controller(handler, hostname=HOST, port=_free_port())
    controller.start()
    try:
        yield SmtpServer(
            host=HOST, port=controller.port, handler=handler, controller=controller
        )
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A local SMTP server for one test (starting it takes milliseconds)."""
    with running_smtp_server(RecordingHandler()) as server:
        yield server
