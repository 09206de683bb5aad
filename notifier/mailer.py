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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal

from pydantic import SecretStr

from athlon_flex.settings import GMAIL_SMTP_HOST, Settings
from notifier.render import RenderedEmail, rows_in_email_order, unsubscribe_address

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


def message_id_for_rows(
    recipient: str, rows: Sequence[Mapping[str, Any]], *, sender: str
) -> str:
    """message_id_for the rows' windows; a row that is not news of a new car adds
    its kind and price, so a price drop of a car told before (same window) is a
    message of its own, not the earlier one to a mail store."""
    windows = []
    for row in rows:
        vehicle = str(row["vehicle_id"])
        kind = row.get("alert_kind") or "new"
        if kind != "new":
            # The price version too: a car may drop to the same price twice.
            vehicle += (
                f"|{kind}|{row.get('price_per_month_in_euro')}|{row.get('changed_at')}"
            )
        windows.append((vehicle, row["available_since"]))
    return message_id_for(recipient, windows, sender=sender)


def compose(
    email: RenderedEmail, *, sender: str, recipient: str, message_id: str
) -> EmailMessage:
    """A multipart/alternative message: our plain text first, our HTML preferred.

    List-Unsubscribe (RFC 2369) is a mailto: to the sender, who keeps the
    subscriptions file; no List-Unsubscribe-Post (RFC 8058 one-click), which needs
    an https URL this tool does not serve.
    """
    message = EmailMessage()
    message["Subject"] = email.subject
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    unsubscribe = unsubscribe_address(sender, recipient)
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def as_wire_bytes(message: EmailMessage) -> bytes:
    """The message exactly as it goes over SMTP (CRLF line ends), to store and send."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


# Gmail clips a message past about 102 KB (it shows "[Message clipped]" and hides
# the rest); the whole message, both parts and headers, stays under this.
MAX_EMAIL_BYTES = 100_000
# The first try renders at most this many cars (a first run may have a thousand):
# about what fits, so one or two tries usually settle it (encoding a message is
# the slow part).
FIRST_TRY_CARS = 40
FIT_ATTEMPTS = 8


@dataclass(frozen=True)
class FittedEmail:
    """A message under MAX_EMAIL_BYTES and the rows it shows (only those may be
    claimed; the rest follow in the next message)."""

    email: RenderedEmail
    wire: bytes
    message_id: str
    shown: list[Mapping[str, Any]]
    left_out: list[Mapping[str, Any]]


def fit_email(
    rows: Sequence[Mapping[str, Any]],
    render: Callable[
        [Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], RenderedEmail
    ],
    *,
    sender: str,
    recipient: str,
    limit: int = MAX_EMAIL_BYTES,
) -> FittedEmail:
    """As many of the rows (in the email's order) as fit in `limit` bytes, the
    rest counted by `render(shown, left_out)`. At least one car is shown."""
    ordered = rows_in_email_order(rows)

    def build(count: int) -> FittedEmail:
        shown, left_out = ordered[:count], ordered[count:]
        email = render(shown, left_out)
        message_id = message_id_for_rows(recipient, shown, sender=sender)
        wire = as_wire_bytes(
            compose(email, sender=sender, recipient=recipient, message_id=message_id)
        )
        return FittedEmail(email, wire, message_id, shown, left_out)

    count = min(len(ordered), FIRST_TRY_CARS)
    best: FittedEmail | None = None
    tried: set[int] = set()
    for _ in range(FIT_ATTEMPTS):
        tried.add(count)
        fitted = build(count)
        size = len(fitted.wire)
        if size <= limit and (best is None or count > len(best.shown)):
            best = fitted
        # Scale by bytes per car, aiming a little under the limit.
        guess = max(1, min(len(ordered), int(count * limit * 0.97 / size)))
        if size <= limit:
            if count == len(ordered) or guess <= count:
                break
            count = guess
        else:
            count = max(1, min(count - 1, guess))
        if count in tried:
            break
    return best if best is not None else build(1)


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
