"""Send a finished email over SMTP: Gmail with an app password, or any SMTP server.

yagmail opens and authenticates the connection (SSL, STARTTLS or plain; login or
not). The message itself we build with `email.message.EmailMessage` and hand to
yagmail's smtplib connection: yagmail's own `send()` rewrites contents (newlines to
`<br>`, premailer over the HTML, the plain-text part made from the HTML), so the
recipient would not get the text and HTML we rendered.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

from pydantic import SecretStr

from athlon_flex.settings import GMAIL_SMTP_HOST, Settings
from notifier.render import RenderedEmail

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
SMTP_TIMEOUT_SECONDS = 30


class MailError(Exception):
    """One message could not be sent; the text is safe to log (no secrets).

    `refused` is True when the server certainly did not take the message (it
    replied with an error code, or no connection was made); False when it may have
    (the connection broke during or after DATA), so it must be resent as it is.
    """

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


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


def message_id_for(
    recipient: str, windows: Iterable[tuple[str, datetime]], *, sender: str
) -> str:
    """The Message-ID of the email carrying these windows to this recipient.

    Derived from nothing else, so the same batch always has the same id: a resend
    after a crash is the same message to a mail store (Gmail keeps one copy).
    """
    digest = hashlib.sha256(recipient.encode())
    for vehicle_id, since in sorted(
        (str(vehicle_id), since.astimezone(UTC).isoformat())
        for vehicle_id, since in windows
    ):
        digest.update(f"\n{vehicle_id}|{since}".encode())
    domain = sender.rpartition("@")[2] or "athlon-flex.invalid"
    return f"<{digest.hexdigest()[:40]}.athlon-flex@{domain}>"


def compose(
    email: RenderedEmail, *, sender: str, recipient: str, message_id: str
) -> EmailMessage:
    """A multipart/alternative message: our plain text first, our HTML preferred."""
    message = EmailMessage()
    message["Subject"] = email.subject
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def as_wire_bytes(message: EmailMessage) -> bytes:
    """The message exactly as it goes over SMTP (CRLF line ends), to store and send."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


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

    def send(self, message: bytes, recipient: str) -> None:
        """Deliver these bytes (as_wire_bytes) to one recipient, or raise MailError
        saying why not and whether the server certainly refused it."""
        try:
            if self._client is None:
                self._client = self._connect()
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise MailError(
                f"SMTP {self.transport.describe()}: {_describe_error(error)}",
                refused=True,  # no connection, no message
            ) from None
        try:
            refused = self._client.smtp.sendmail(
                self.transport.sender, [recipient], message
            )
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            # A reply code is a refusal (4xx/5xx: the server did not take it); a
            # broken connection may have come after the server took it.
            certain = isinstance(
                error, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused
            )
            raise MailError(
                f"SMTP {self.transport.describe()}: {_describe_error(error)}",
                refused=certain,
            ) from None
        if refused:
            raise MailError(
                f"SMTP {self.transport.describe()}: refused {refused}", refused=True
            )

    def close(self) -> None:
        """Say QUIT (best effort) and forget the connection."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
