"""Send a finished email over SMTP: Gmail with an app password, or any SMTP server.

yagmail opens and authenticates the connection (SSL, STARTTLS or plain; login or
not). The message itself we build with `email.message.EmailMessage` and hand to
yagmail's smtplib connection: yagmail's own `send()` rewrites contents (newlines to
`<br>`, premailer over the HTML, the plain-text part made from the HTML), so the
recipient would not get the text and HTML we rendered.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from pydantic import SecretStr

from athlon_flex.settings import GMAIL_SMTP_HOST, Settings
from notifier.render import RenderedEmail

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
SMTP_TIMEOUT_SECONDS = 30


class MailError(Exception):
    """One message could not be sent; the text is safe to log (no secrets)."""


@dataclass(frozen=True)
class SmtpTransport:
    """Where and how to send. `password` None means no login."""

    host: str
    port: int
    security: Literal["ssl", "starttls", "none"]
    sender: str
    user: str
    password: SecretStr | None

    def describe(self) -> str:
        """For logs and errors: never the password."""
        login = f" as {self.user}" if self.password else " without login"
        return f"{self.host}:{self.port} ({self.security}{login})"


def transport_from_settings(settings: Settings) -> SmtpTransport | None:
    """SMTP_HOST wins; else Gmail with EMAIL_FROM and GOOGLE_APP_PASSWORD; else None."""
    if not settings.email_from:
        return None
    if settings.smtp_host:
        security = settings.smtp_security
        return SmtpTransport(
            host=settings.smtp_host,
            port=settings.smtp_port or DEFAULT_PORTS[security],
            security=security,
            sender=settings.email_from,
            user=settings.smtp_user or settings.email_from,
            password=settings.smtp_password,
        )
    if settings.google_app_password:
        security = settings.smtp_security  # Gmail speaks ssl (465) and starttls (587)
        return SmtpTransport(
            host=GMAIL_SMTP_HOST,
            port=settings.smtp_port or DEFAULT_PORTS[security],
            security=security,
            sender=settings.email_from,
            user=settings.email_from,
            password=settings.google_app_password,
        )
    return None


def compose(email: RenderedEmail, *, sender: str, recipient: str) -> EmailMessage:
    """A multipart/alternative message: our plain text first, our HTML preferred."""
    message = EmailMessage()
    message["Subject"] = email.subject
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _describe_error(error: Exception) -> str:
    """SMTP's reply code and text, or the network error; never credentials."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = [
            f"{code} {_text(reply)}" for code, reply in error.recipients.values()
        ]
        return "recipient refused: " + "; ".join(replies)
    if isinstance(error, smtplib.SMTPResponseException):
        return f"server replied {error.smtp_code} {_text(error.smtp_error)}"
    return f"{type(error).__name__}: {error}"


class Mailer:
    """One SMTP connection for a run's messages, reopened after a failure."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self._client = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connect(self):  # yagmail ships no type for its client
        import yagmail  # imported late: premailer/lxml are heavy

        transport = self.transport
        password = transport.password.get_secret_value() if transport.password else None
        # smtplib verifies certificates only with a default context passed in.
        context = ssl.create_default_context()
        extra: dict[str, object] = {"timeout": SMTP_TIMEOUT_SECONDS}
        if transport.security == "ssl":
            extra["context"] = context
        client = yagmail.SMTP(
            # A one-item dict keeps yagmail from appending @gmail.com to a user name
            # without "@" (SMTP servers often use plain user names or API keys).
            user={transport.user: transport.user},
            password=password,
            host=transport.host,
            port=transport.port,
            smtp_ssl=transport.security == "ssl",
            smtp_starttls=(
                {"context": context} if transport.security == "starttls" else False
            ),
            smtp_skip_login=password is None,
            soft_email_validation=False,
            **extra,
        )
        client.set_logging(None)  # we log ourselves, without yagmail's handler
        client.login()
        log.debug("Connected to SMTP %s", transport.describe())
        return client

    def send(self, message: EmailMessage, recipient: str) -> None:
        """Deliver to one recipient or raise MailError saying why not."""
        try:
            if self._client is None:
                self._client = self._connect()
            refused = self._client.smtp.send_message(
                message, from_addr=self.transport.sender, to_addrs=[recipient]
            )
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise MailError(
                f"SMTP {self.transport.describe()}: {_describe_error(error)}"
            ) from None
        if refused:
            raise MailError(f"SMTP {self.transport.describe()}: refused {refused}")

    def close(self) -> None:
        """Say QUIT (best effort) and forget the connection."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
