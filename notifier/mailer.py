"""Send a finished email over SMTP: Gmail with an app password, or any SMTP server.

yagmail opens and authenticates the connection (SSL, STARTTLS or plain; login or
not). The message itself we build with `email.message.EmailMessage` and hand to
yagmail's smtplib connection: yagmail's own `send()` rewrites contents (newlines to
`<br>`, premailer over the HTML, the plain-text part made from the HTML), so the
recipient would not get the text and HTML we rendered.
"""

from __future__ import annotations

import binascii
import bisect
import contextlib
import hashlib
import logging
import secrets
import smtplib
import ssl
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as DEFAULT_POLICY
from email.utils import formatdate
from typing import Any, Literal

from pydantic import SecretStr

from athlon_flex.settings import GMAIL_SMTP_HOST, Settings
from notifier.render import EmailRenderer, RenderedEmail, unsubscribe_address

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


@dataclass(frozen=True)
class Bodies:
    """An email's plain text and HTML as quoted-printable bodies (encoded once:
    to measure the email, then to send it)."""

    text: str
    html: str

    @classmethod
    def of(cls, email: RenderedEmail) -> Bodies:
        return cls(quoted_printable(email.text), quoted_printable(email.html))

    @property
    def size(self) -> int:
        """Bytes of both bodies as sent (CRLF line ends)."""
        return sum(len(body) + body.count("\n") for body in (self.text, self.html))


def compose(
    email: RenderedEmail,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    bodies: Bodies | None = None,
) -> EmailMessage:
    """A multipart/alternative message: our plain text first, our HTML preferred;
    `bodies` when they are encoded already.

    List-Unsubscribe (RFC 2369) is a mailto: to the sender, who keeps the
    subscriptions file; no List-Unsubscribe-Post (RFC 8058 one-click), which needs
    an https URL this tool does not serve.
    """
    bodies = bodies or Bodies.of(email)
    message = EmailMessage()
    message["Subject"] = email.subject
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    unsubscribe = unsubscribe_address(sender, recipient)
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["MIME-Version"] = "1.0"
    message.make_alternative()
    for subtype, body in (("plain", bodies.text), ("html", bodies.html)):
        part = EmailMessage(policy=message.policy)
        part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(body)
        message.attach(part)
    return message


def quoted_printable(text: str) -> str:
    """The text as a quoted-printable body (UTF-8), lines ending in LF; the
    message as sent ends them in CRLF (as_wire_bytes).

    binascii's encoder, written in C, rather than what `set_content` uses (the
    email package's own, in Python: a third of building an email, and a first run
    builds dozens). A lone CR ends a line, as it does in `set_content`.
    """
    return _encoded_lines(_with_lf(text))


def _with_lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _encoded_lines(lines: str) -> str:
    return binascii.b2a_qp(lines.encode(), istext=True).decode("ascii")


class BodyEncoder:
    """quoted_printable of a run's bodies, byte for byte, each car's card encoded
    once per run rather than with every email and size try that shows it.

    binascii encodes line by line: no rule looks past the end of a line (but the
    one for whitespace that ends it, which the line keeps to itself when it ends
    in its newline), and with every CR gone no line end changes. So a text split
    where a line ends encodes to its parts' encodings, one after the other. A
    card on lines of its own (an HTML card ends before the newline the template
    puts after it) is taken from the cache; the rest of the body (headings, the
    count of the cars left for the next email) is encoded as it comes.
    """

    def __init__(self) -> None:
        self._cards: dict[str, str] = {}  # card → quoted_printable(card)

    def card(self, card: str) -> str:
        encoded = self._cards.get(card)
        if encoded is None:
            encoded = self._cards[card] = quoted_printable(card)
        return encoded

    def card_size(self, card: str) -> int:
        """Bytes the card takes in a body as sent (CRLF line ends)."""
        encoded = self.card(card)
        return len(encoded) + encoded.count("\n")

    def bodies(self, email: RenderedEmail) -> Bodies:
        return Bodies(
            self.body(email.text, [text for _, text in email.cards]),
            self.body(email.html, [html for html, _ in email.cards]),
        )

    def body(self, text: str, cards: Iterable[str]) -> str:
        """quoted_printable(text), where `cards` appear in it in this order."""
        if "\r" in text:
            text = _with_lf(text)
        pieces = []
        done = 0  # the text before this is encoded
        for card in cards:
            if card.endswith("\n"):
                line_end = ""
            elif card[-1:] not in ("", " ", "\t"):  # its encoding, then its newline
                line_end = "\n"
            else:
                continue
            # Most cards follow the one before; the first of a make and model
            # follows its heading.
            at = done if text.startswith(card, done) else text.find(card, done)
            end = at + len(card)
            if (
                at < 0
                or (at > 0 and text[at - 1] != "\n")
                or not text.startswith(line_end, end)
            ):  # not on lines of its own
                continue
            if at > done:
                pieces.append(_encoded_lines(text[done:at]))
            pieces.append(self.card(card) + line_end)
            done = end + len(line_end)
        pieces.append(_encoded_lines(text[done:]))
        return "".join(pieces)


def as_wire_bytes(message: EmailMessage) -> bytes:
    """The message exactly as it goes over SMTP (CRLF line ends), to store and send."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


# The headers each message folds for itself; the rest of a message is the same
# for every message of a run to a recipient (MessageWriter).
OWN_HEADERS = ("Subject", "Date", "Message-ID")
WIRE_POLICY = DEFAULT_POLICY.clone(linesep="\r\n")  # as_wire_bytes's


class MessageWriter:
    """Writes a run's messages from one sender as as_wire_bytes(compose(...))
    would, byte for byte but for the MIME boundary, at a fraction of the cost.

    The email package composes and writes a recipient's first message once, with
    one-line stand-ins for the bodies: that gives the frame of all their messages
    (From, To, List-Unsubscribe, the MIME structure and its parts' headers), each
    header folded as its generator folds it. A message fills in its own Subject,
    Date and Message-ID (folded the same way), a boundary of its own (made as the
    email package makes one) and its encoded bodies with CRLF line ends: the
    generator would write the bodies line by line in Python, and the package parse
    and fold every header again for every message. The stand-ins are random, so
    no header (a car's name is the API's text) can hold one; the boundary is safe
    for the real bodies too: it is a run of "=", which a quoted-printable body
    never has ("=" is always written as "=3D" there).
    """

    def __init__(self, sender: str) -> None:
        self._sender = sender
        # recipient → their messages' frame: bytes as they are, and the names of
        # what each message fills in (OWN_HEADERS, "boundary", "text", "html")
        self._frames: dict[str, tuple[bytes | str, ...]] = {}

    def write(
        self, email: RenderedEmail, *, recipient: str, message_id: str, bodies: Bodies
    ) -> bytes:
        frame = self._frames.get(recipient)
        if frame is None:
            frame = self._frames[recipient] = self._frame(recipient)
        fills = {
            "Subject": _folded("Subject", email.subject),
            "Date": _folded("Date", formatdate(localtime=False, usegmt=True)),
            "Message-ID": _folded("Message-ID", message_id),
            "boundary": _boundary(),
            "text": bodies.text.replace("\n", "\r\n").encode("ascii"),
            "html": bodies.html.replace("\n", "\r\n").encode("ascii"),
        }
        return b"".join(
            fills[piece] if isinstance(piece, str) else piece for piece in frame
        )

    def _frame(self, recipient: str) -> tuple[bytes | str, ...]:
        token = secrets.token_hex(16)
        stand_ins = Bodies(text=f"text-{token}", html=f"html-{token}")
        message = compose(
            RenderedEmail(subject="", html="", text=""),
            sender=self._sender,
            recipient=recipient,
            message_id=f"<{token}@athlon-flex.invalid>",
            bodies=stand_ins,
        )
        wire = as_wire_bytes(message)  # picks the boundary
        headers = [
            (name, WIRE_POLICY.fold_binary(name, value))
            for name, value in message.raw_items()
        ]
        head = b"".join(folded for _, folded in headers)
        if not wire.startswith(head):  # the generator writes what we fold
            raise RuntimeError(
                f"Python {sys.version.split()[0]}'s email package wrote a message's "
                "headers otherwise than folded one by one, so notifier.mailer cannot "
                "reuse them: report this with the Python version; nothing was sent"
            )
        boundary = message.get_boundary()
        assert boundary is not None  # as_wire_bytes set it
        slots = {
            boundary.encode("ascii"): "boundary",
            stand_ins.text.encode("ascii"): "text",
            stand_ins.html.encode("ascii"): "html",
        }
        frame: list[bytes | str] = []
        for name, folded in headers:
            frame.extend([name] if name in OWN_HEADERS else _split(folded, slots))
        frame.extend(_split(wire[len(head) :], slots))
        return tuple(frame)


def _folded(name: str, value: str) -> bytes:
    """The header as the generator writes it in as_wire_bytes (folded, CRLF)."""
    return WIRE_POLICY.fold_binary(*DEFAULT_POLICY.header_store_parse(name, value))


def _boundary() -> bytes:
    """A MIME boundary as the email package makes one: 15 "=", a random number of
    19 digits, "=="."""
    return b"=" * 15 + b"%019d" % secrets.randbelow(sys.maxsize) + b"=="


def _split(data: bytes, slots: Mapping[bytes, str]) -> list[bytes | str]:
    """The data with each occurrence of a slot's bytes as the slot's name."""
    pieces: list[bytes | str] = [data]
    for marker, name in slots.items():
        split: list[bytes | str] = []
        for piece in pieces:
            if isinstance(piece, str):
                split.append(piece)
                continue
            parts = piece.split(marker)
            for index, part in enumerate(parts):
                if index:
                    split.append(name)
                split.append(part)
        pieces = split
    return [piece for piece in pieces if piece != b""]


# Gmail clips a message past about 102 KB (it shows "[Message clipped]" and hides
# the rest); the whole message, both parts and headers, stays under this.
MAX_EMAIL_BYTES = 100_000
# A run's first email tries this many cars (a first run may have a thousand):
# about what fits; what it measures sizes the rest (EmailFitter).
FIRST_TRY_CARS = 40
FIT_ATTEMPTS = 8
# What headers and MIME parts take besides the two bodies, until the first
# message of a run measures it (about 700 bytes; more with a long subject).
HEADERS_GUESS = 1_500


@dataclass(frozen=True)
class FittedEmail:
    """A message under MAX_EMAIL_BYTES and the rows it shows (only those may be
    claimed; the rest follow in the next message, in the email's order)."""

    email: RenderedEmail
    wire: bytes
    message_id: str
    shown: list[Mapping[str, Any]]
    left_out: tuple[Mapping[str, Any], ...]


class EmailFitter:
    """Fits a run's emails under `limit` bytes, building each message once.

    An email is its cars' cards plus the rest: headers, each make and model's
    heading, the count of the cars left for the next email. Each card's size as
    sent is known before any email is built (the renderer renders it once per
    run; it is encoded once here), and the rest changes little from one email to
    the next. So an email takes as many cars as fit beside the rest of the email
    before it; its draft (rendered and encoded, the headers' size taken from the
    last message) corrects that count, and only the count settled on becomes a
    message, which is measured as it will be sent: one past the limit (its
    headers grew) is drafted again with fewer cars. Keep one per run and
    renderer.
    """

    def __init__(
        self, renderer: EmailRenderer, *, sender: str, limit: int = MAX_EMAIL_BYTES
    ) -> None:
        self._renderer = renderer
        self._sender = sender
        self._limit = limit
        self._rest: int | None = None  # bytes besides the cards, last measured
        self._headers = HEADERS_GUESS  # bytes besides the bodies, last measured
        self._encoder = BodyEncoder()
        self._writer = MessageWriter(sender)
        self._left_out: tuple[Mapping[str, Any], ...] = ()  # by the last message

    def fit(self, rows: Sequence[Mapping[str, Any]], *, recipient: str) -> FittedEmail:
        """As many of the rows (in the email's order) as fit, the rest counted
        in the email. At least one car is shown."""
        if rows is self._left_out and rows:  # the rest of a batch: in order
            ordered: Sequence[Mapping[str, Any]] = rows
        else:
            ordered = self._renderer.in_email_order(rows)
        # Bytes of the first n cards as sent (each HTML card ends its own line),
        # as far as more than fit.
        totals = [0]
        for html, text in self._renderer.cards(ordered):
            size = self._encoder.card_size(html) + 2 + self._encoder.card_size(text)
            totals.append(totals[-1] + size)
            if totals[-1] > self._limit:
                break

        def most(rest: int) -> int:
            """The most cars whose cards fit beside `rest` bytes, at least one."""
            return max(1, bisect.bisect_right(totals, self._limit - rest) - 1)

        def draft(count: int) -> tuple[RenderedEmail, Bodies]:
            email = self._renderer.render(
                ordered[:count],
                left_out=ordered[count:],
                sender=self._sender,
                recipient=recipient,
            )
            return email, self._encoder.bodies(email)

        count = (
            min(len(totals) - 1, FIRST_TRY_CARS)
            if self._rest is None
            else most(self._rest)
        )
        too_many = len(ordered) + 1  # the fewest cars known not to fit
        for _ in range(FIT_ATTEMPTS):
            fits: tuple[int, RenderedEmail, Bodies] | None = None
            for _ in range(FIT_ATTEMPTS):
                email, bodies = draft(count)
                size = bodies.size + self._headers
                self._rest = size - totals[count]
                if size <= self._limit:
                    fits = (count, email, bodies)
                else:
                    too_many = count
                # More when the rest shrank, fewer when it grew.
                following = min(most(self._rest), too_many - 1)
                if following < 1 or following == count:
                    break
                if fits is not None and following <= fits[0]:
                    break
                count = following
            if fits is None:  # not even one car fits: it goes alone
                count = 1
                fits = (count, *draft(count))
            fitted = self._message(*fits, ordered=ordered, recipient=recipient)
            self._headers = len(fitted.wire) - fits[2].size
            if len(fitted.wire) <= self._limit or fits[0] == 1:
                break
            too_many = count = fits[0]  # its headers grew: fewer cars
            count -= 1
        return fitted

    def _message(
        self,
        count: int,
        email: RenderedEmail,
        bodies: Bodies,
        *,
        ordered: Sequence[Mapping[str, Any]],
        recipient: str,
    ) -> FittedEmail:
        shown = list(ordered[:count])
        message_id = message_id_for_rows(recipient, shown, sender=self._sender)
        wire = self._writer.write(
            email, recipient=recipient, message_id=message_id, bodies=bodies
        )
        self._left_out = tuple(ordered[count:])
        return FittedEmail(email, wire, message_id, shown, self._left_out)


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


class _EndedBeforeData(Exception):
    """The connection ended (or the server said 421) at MAIL FROM: nothing of the
    message was sent. `error` is what smtplib raised or would have."""

    def __init__(self, error: smtplib.SMTPException) -> None:
        super().__init__(str(error))
        self.error = error


def _reset(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: 421 ends the session (close), any other code resets it."""
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _transaction(
    smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes
) -> None:
    """`smtp.sendmail(sender, [recipient], message)`, step by step (MAIL, RCPT,
    DATA; the same commands and errors), so that a connection found ended at
    MAIL FROM, before any of the message went out, is told apart
    (_EndedBeforeData) from one that broke during or after DATA, which may have
    delivered it."""
    try:
        smtp.ehlo_or_helo_if_needed()
        options = []
        if smtp.does_esmtp and smtp.has_extn("size"):
            options.append(f"size={len(message)}")
        code, reply = smtp.mail(sender, options)
    except smtplib.SMTPServerDisconnected as error:
        raise _EndedBeforeData(error) from None
    if code != 250:
        _reset(smtp, code)
        refusal = smtplib.SMTPSenderRefused(code, reply, sender)
        if code == 421:
            raise _EndedBeforeData(refusal)
        raise refusal
    code, reply = smtp.rcpt(recipient)
    if code not in (250, 251):
        _reset(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = smtp.data(message)
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


class Mailer:
    """One SMTP connection for a run's messages, reopened after a failure."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self._client = None
        self._refusal: MailError | None = None  # of an `open` that failed
        self._used = False  # a message went over the connection open now

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

    def open(self) -> None:
        """Connect and log in now, if not yet, so the first message need not wait
        for it (the notifier opens while it builds that message). A failure is
        the next send's to raise: it does not try again."""
        self._refusal = None
        try:
            self._open()
        except MailError as refusal:
            self._refusal = refusal

    def _open(self) -> None:
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            raise refusal
        try:
            if self._client is None:
                self._client = self._connect()
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise MailError(
                f"SMTP {self.transport.describe()}: {_describe_error(error)}",
                refused=True,  # no connection, no message
            ) from None

    def send(self, message: bytes, recipient: str) -> None:
        """Deliver these bytes (as_wire_bytes) to one recipient, or raise MailError
        saying why not and whether the server certainly refused it.

        A connection kept from the message before may have ended since (the
        server hung up after its 250, or answers MAIL FROM with 421): that shows
        before any of this message is sent, so it goes over a new connection,
        once, rather than fail a recipient for the message before theirs.
        """
        reused = self._client is not None and self._used
        self._open()
        try:
            try:
                _transaction(
                    self._client.smtp, self.transport.sender, recipient, message
                )
                self._used = True
            except _EndedBeforeData as ended:
                if not reused:
                    raise ended.error from None
                log.debug(
                    "SMTP connection ended before this message (%s); connecting again",
                    _describe_error(ended.error),
                )
                self.close()
                self._open()
                try:
                    _transaction(
                        self._client.smtp, self.transport.sender, recipient, message
                    )
                    self._used = True
                except _EndedBeforeData as again:
                    raise again.error from None
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

    def close(self) -> None:
        """Say QUIT (best effort) and forget the connection."""
        client, self._client = self._client, None
        self._used = False
        if client is not None:
            client.close()
