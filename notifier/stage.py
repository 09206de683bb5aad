"""The notify stage: tell each recipient about the windows they have not heard of.

1. Validate the whole configuration (subscriptions, extra filters) before anything.
2. Sync notifier.recipients from it, read marts.vehicles_to_notify for this cadence.
3. Per recipient: filter, log one line per vehicle, email it (or only log it: the
   console channel when no email is configured), and after a successful send record
   the windows in notifier.notifications in one transaction.
A failed send records nothing for that recipient; the others still get theirs and the
call raises NotifyError at the end, so the scheduler retries and the retry sends
exactly what is still missing.

Baseline (records without sending): `baseline=True` records every open window for
every recipient, "news from now on". With `baseline=None`, NOTIFY_BASELINE=true
applies the same per recipient to the windows that opened before the recipient was
first registered, so new subscribers start from now while everything after still goes
out. `baseline=False` sends, as the old tool did.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg2

from athlon_flex.database import DatabaseError, connect, ensure_postgres
from athlon_flex.settings import Settings
from notifier import store
from notifier.contract import CONSOLE_RECIPIENT
from notifier.errors import NotifyError
from notifier.filters import FilterSet, matches_any
from notifier.mailer import (
    Mailer,
    MailError,
    compose,
    transport_from_settings,
)
from notifier.render import euro, local_time, render_email, vehicle_label
from notifier.schedule import last_digest_slot
from notifier.subscriptions import (
    CADENCES,
    Subscription,
    configured_subscriptions,
    parse_extra_filters,
)

log = logging.getLogger(__name__)

Channel = Literal["email", "console"]


@dataclass(frozen=True)
class RecipientSummary:
    """What one recipient got in this run."""

    recipient: str
    channel: Channel
    emails_sent: int = 0
    vehicles: int = 0  # vehicles in the email (or the log, for the console)
    recorded: int = 0  # rows added to notifier.notifications, baselined ones included
    baselined: int = 0  # of which recorded without being sent
    error: str | None = None

    def __str__(self) -> str:
        if self.error:
            return f"{self.recipient}: FAILED ({self.error}), nothing recorded"
        parts = []
        if self.channel == "email":
            parts.append(f"{self.emails_sent} email{'s' * (self.emails_sent != 1)}")
        parts.append(f"{self.vehicles} vehicle{'s' * (self.vehicles != 1)}")
        parts.append(f"{self.recorded} recorded")
        if self.baselined:
            parts.append(f"{self.baselined} as baseline")
        return f"{self.recipient}: " + ", ".join(parts)


@dataclass(frozen=True)
class NotifySummary:
    """What a notify run did, per recipient."""

    cadence: str
    baseline: bool
    recipients: tuple[RecipientSummary, ...] = field(default_factory=tuple)

    @property
    def emails_sent(self) -> int:
        return sum(item.emails_sent for item in self.recipients)

    @property
    def vehicles(self) -> int:
        return sum(item.vehicles for item in self.recipients)

    @property
    def recorded(self) -> int:
        return sum(item.recorded for item in self.recipients)

    @property
    def failed(self) -> tuple[RecipientSummary, ...]:
        return tuple(item for item in self.recipients if item.error)

    def for_recipient(self, recipient: str) -> RecipientSummary:
        """The line of one recipient (KeyError if they were not in this run)."""
        for item in self.recipients:
            if item.recipient == recipient:
                return item
        raise KeyError(recipient)

    def __str__(self) -> str:
        mode = "baseline" if self.baseline else self.cadence
        head = (
            f"notify ({mode}): {self.emails_sent} emails sent, {self.vehicles} "
            f"vehicles, {self.recorded} recorded"
        )
        if not self.recipients:
            return head + " (no recipients for this cadence)"
        return head + " [" + "; ".join(str(item) for item in self.recipients) + "]"


@dataclass(frozen=True)
class _Target:
    """A recipient of this run and how they are reached."""

    recipient: str
    channel: Channel
    subscription: Subscription | None  # None for the console

    @property
    def cadence(self) -> str:
        return self.subscription.cadence if self.subscription else "instant"

    @property
    def filters(self) -> tuple[FilterSet, ...]:
        return self.subscription.filters if self.subscription else ()


@dataclass(frozen=True)
class _Run:
    """Everything a recipient's turn needs besides its own rows."""

    settings: Settings
    now: datetime
    force_baseline: bool
    auto_baseline: bool
    extra_filters: tuple[FilterSet, ...]
    registered: Mapping[str, datetime]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _one_line(text: str) -> str:
    """API text in a log line: no newlines or control characters to forge lines."""
    return _CONTROL.sub(" ", text)


def _describe_vehicle(row: Mapping[str, Any], timezone: str) -> str:
    return _one_line(
        f"{row['make']} {row['model']} {vehicle_label(row)}: "
        f"{euro(row['price_per_month_in_euro'])}/month, "
        f"net {euro(row['net_cost_per_month_in_euro'])}, "
        f"available since {local_time(row['available_since'], timezone)}, "
        f"{row['showroom_uri'] or 'no link'}"
    )


def _targets(settings: Settings) -> list[_Target]:
    """Email recipients when email is configured, else the console alone."""
    subscriptions = configured_subscriptions(settings)  # validates the file
    if settings.email_configured:
        return [_Target(s.email, "email", s) for s in subscriptions]
    if subscriptions:
        log.warning(
            "Email is not configured (EMAIL_FROM plus SMTP_HOST or "
            "GOOGLE_APP_PASSWORD): the %d subscription(s) are not used; new "
            "vehicles go to the log only",
            len(subscriptions),
        )
    return [_Target(CONSOLE_RECIPIENT, "console", None)]


def notify(
    settings: Settings,
    *,
    baseline: bool | None = None,
    cadence: str = "instant",
    extra_filters: list[dict] | None = None,
) -> NotifySummary:
    """Send (or log) what is new for this cadence's recipients, record it once."""
    if cadence not in CADENCES:
        raise NotifyError(
            f"Unknown cadence {cadence!r}; use one of {', '.join(CADENCES)}. "
            "Nothing was sent or recorded."
        )
    # Everything the user wrote is checked before the first query or email.
    targets = _targets(settings)
    extra = parse_extra_filters(extra_filters)
    force_baseline = baseline is True
    auto_baseline = baseline is None and settings.notify_baseline
    # A baseline is "everything open is old news": it covers every cadence.
    ours = [t for t in targets if force_baseline or t.cadence == cadence]
    results: list[RecipientSummary] = []

    def summary() -> NotifySummary:
        return NotifySummary(cadence, force_baseline, tuple(results))

    try:
        with connect(ensure_postgres(settings)) as conn:
            missing = store.missing_objects(conn)
            if missing:
                raise NotifyError(
                    f"Missing {', '.join(missing)}: run `athlon-flex transform` "
                    "first (dbt builds them). Nothing was sent or recorded."
                )
            store.wait_for_turn(conn)
            store.sync_recipients(conn, [t.recipient for t in targets])
            conn.commit()
            names = [t.recipient for t in ours]
            pending = store.pending(conn, names) if names else []
            rows_by_recipient: dict[str, list[dict[str, Any]]] = {}
            for row in pending:
                rows_by_recipient.setdefault(row["recipient"], []).append(row)
            run = _Run(
                settings=settings,
                now=datetime.now(UTC),
                force_baseline=force_baseline,
                auto_baseline=auto_baseline,
                extra_filters=extra,
                registered=store.registered_at(conn, names) if auto_baseline else {},
            )
            transport = transport_from_settings(settings)
            with Mailer(transport) if transport else nullcontext() as mailer:
                for target in ours:
                    rows = rows_by_recipient.get(target.recipient, [])
                    results.append(_serve(conn, target, rows, run, mailer))
    except (DatabaseError, psycopg2.Error) as error:
        done = f" Already done: {summary()}." if results else ""
        raise NotifyError(
            f"Notify failed on PostgreSQL: {str(error).strip()}. What was recorded "
            f"before stays recorded; the next run sends the rest.{done}",
            summary=summary(),
        ) from None

    result = summary()
    log.info("%s", result)
    if result.failed:
        failures = "; ".join(
            f"{item.recipient}: {item.error}" for item in result.failed
        )
        raise NotifyError(
            f"Email failed for {len(result.failed)} recipient(s) ({failures}). Nothing "
            "was recorded for them, so the next run sends it again; the others were "
            f"sent and recorded. {result}",
            summary=result,
        )
    return result


def _serve(
    conn: psycopg2.extensions.connection,
    target: _Target,
    rows: Sequence[dict[str, Any]],
    run: _Run,
    mailer: Mailer | None,
) -> RecipientSummary:
    """One recipient's turn: baseline, or filter → log → send → record."""
    recipient = target.recipient
    settings = run.settings
    if run.force_baseline:
        recorded = store.record(conn, recipient, rows)
        log.info(
            "Baseline for %s: recorded %d open window(s) as notified without sending",
            recipient,
            recorded,
        )
        return RecipientSummary(
            recipient, target.channel, recorded=recorded, baselined=recorded
        )

    baselined = 0
    if run.auto_baseline:
        start = run.registered[recipient]
        before = [row for row in rows if row["available_since"] < start]
        baselined = store.record(conn, recipient, before)
        if baselined:
            log.info(
                "Baseline for %s: %d window(s) opened before they subscribed, "
                "recorded without sending",
                recipient,
                baselined,
            )
        rows = [row for row in rows if row["available_since"] >= start]

    timezone = settings.notify_timezone
    if target.subscription is not None:
        digest_time, timezone = target.subscription.digest_time(settings)
        if target.cadence == "daily":
            slot = last_digest_slot(digest_time, timezone, run.now)
            rows = [row for row in rows if row["available_since"] < slot]

    chosen = [
        row
        for row in rows
        if matches_any(target.filters, row) and matches_any(run.extra_filters, row)
    ]
    if not chosen:
        return RecipientSummary(
            recipient, target.channel, recorded=baselined, baselined=baselined
        )
    for row in chosen:
        log.info("New for %s: %s", recipient, _describe_vehicle(row, timezone))

    if target.channel == "email":
        email = render_email(
            chosen, image_width=settings.notify_image_width, timezone=timezone
        )
        assert mailer is not None  # email_configured implies a transport
        message = compose(email, sender=mailer.transport.sender, recipient=recipient)
        try:
            mailer.send(message, recipient)
        except MailError as error:
            log.error(
                "Email to %s failed: %s. Nothing recorded for %s; the next run "
                "tries again",
                recipient,
                error,
                recipient,
            )
            return RecipientSummary(
                recipient,
                target.channel,
                vehicles=len(chosen),
                recorded=baselined,
                baselined=baselined,
                error=str(error),
            )
        log.info("Emailed %s: %s", recipient, email.subject)

    try:
        recorded = store.record(conn, recipient, chosen)
    except psycopg2.Error as error:
        if target.channel != "email":
            raise
        raise NotifyError(
            f"The email to {recipient} was sent, but recording it failed "
            f"({str(error).strip()}); {recipient} may get these {len(chosen)} "
            "vehicle(s) again on the next run."
        ) from None
    return RecipientSummary(
        recipient,
        target.channel,
        emails_sent=1 if target.channel == "email" else 0,
        vehicles=len(chosen),
        recorded=recorded + baselined,
        baselined=baselined,
    )
