"""The notify stage: tell each recipient about the windows they have not heard of.

1. Validate the whole configuration (subscriptions, extra filters) before anything.
   Email that an earlier run used and this one lacks stops the run (exit 2): the
   console does not silently stand in for it.
2. Register new recipients (never remove one), read marts.vehicles_to_notify.
3. Per recipient, each on its own (one's failure never stops the next):
   a. resend any email of theirs written to the outbox but never marked sent, as
      it was, with its Message-ID;
   b. on their first turn only, decide their baseline (NOTIFY_BASELINE);
   c. filter, render, and send through the outbox: write the email and claim its
      windows (one transaction), send, mark it sent (one transaction). A crash
      anywhere in between leaves either nothing (sent fresh next run) or an
      unmarked email (resent next run with the same Message-ID, which mail stores
      keep once). A server that refuses outright releases the windows again.
   The console channel logs and records in one step.
A recipient who failed is named in the NotifyError raised at the end, so the
scheduler retries and the retry sends exactly what is still missing.

Baseline (records without sending): `baseline=True` records every open window for
every recipient, "news from now on". With `baseline=None`, NOTIFY_BASELINE=true
records, once per recipient at their first turn, the windows that opened before
they were first registered. `baseline=False` sends, as the old tool did.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import make_msgid
from html import escape
from typing import Any

import psycopg2

from athlon_flex.database import DatabaseError, connect, ensure_postgres
from athlon_flex.settings import Settings
from notifier import store
from notifier.contract import CONSOLE_RECIPIENT
from notifier.errors import NotifyConfigurationError, NotifyError
from notifier.filters import FilterSet, matches_any
from notifier.gone import gone_bounds, gone_lines
from notifier.mailer import (
    MAX_EMAIL_BYTES,
    EmailFitter,
    FittedEmail,
    Mailer,
    MailError,
    as_wire_bytes,
    compose,
    message_id_for_rows,
    transport_from_settings,
)
from notifier.phrases import BADGES, alert_kind
from notifier.push import PushChannel, PushError, decode_message, encode_message
from notifier.render import (
    EmailRenderer,
    RenderedEmail,
    euro,
    kind_counts,
    local_time,
    render_push,
    vehicle_label,
)
from notifier.schedule import last_digest_slot
from notifier.subscriptions import (
    CADENCES,
    Subscription,
    configured_subscriptions,
    parse_extra_filters,
)
from notifier.summary import Channel, NotifySummary, RecipientSummary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Target:
    """A recipient of this run and how they are reached."""

    recipient: str
    channel: Channel
    subscription: Subscription | None  # None for the console
    push: PushChannel | None = None  # for channel "push" (recipient = its key)

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
    # recipient → (first registered, baseline decided at or None)
    starts: Mapping[str, tuple[datetime, datetime | None]]
    # (make, model) → median hours its cars stay (marts.vehicle_lease_speed)
    lease_speeds: Mapping[tuple[str, str], float] = field(default_factory=dict)
    # time zone → the run's email fitter: each car's card is rendered once per
    # run, whichever recipients and emails show it
    fitters: dict[str, EmailFitter] = field(default_factory=dict)

    def fitter(self, timezone: str, sender: str) -> EmailFitter:
        found = self.fitters.get(timezone)
        if found is None:
            renderer = EmailRenderer(
                image_width=self.settings.notify_image_width, timezone=timezone
            )
            found = self.fitters[timezone] = EmailFitter(renderer, sender=sender)
        return found


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _one_line(text: str) -> str:
    """API text in a log line: no newlines or control characters to forge lines."""
    return _CONTROL.sub(" ", text)


def _describe_vehicle(row: Mapping[str, Any], timezone: str) -> str:
    until = row.get("available_until")
    return _one_line(
        f"{row['make']} {row['model']} {vehicle_label(row)}: "
        f"{euro(row['price_per_month_in_euro'])}/month, "
        f"net {euro(row['net_cost_per_month_in_euro'])}, "
        f"available since {local_time(row['available_since'], timezone)}, "
        + (f"until {local_time(until, timezone)}, " if until else "")
        + f"{row['showroom_uri'] or 'no link'}"
    )


# notifier.state key: set once a run has sent through email.
EMAIL_CHANNEL_KEY = "email_channel_since"


def _targets(settings: Settings) -> list[_Target]:
    """Email recipients when email is configured, each push channel; the console
    alone when there is neither."""
    subscriptions = configured_subscriptions(settings)  # validates the file
    targets = _push_targets(subscriptions)
    if settings.email_configured:
        return [
            _Target(s.email, "email", s) for s in subscriptions if s.email
        ] + targets
    by_email = [s for s in subscriptions if s.email]
    if by_email:
        log.warning(
            "Email is not configured (EMAIL_FROM plus SMTP_HOST or "
            "GOOGLE_APP_PASSWORD): the %d email subscription(s) are not used%s",
            len(by_email),
            "" if targets else "; new vehicles go to the log only",
        )
    return targets or [_Target(CONSOLE_RECIPIENT, "console", None)]


def _push_targets(subscriptions: Sequence[Subscription]) -> list[_Target]:
    """Each Apprise URL of each recipient: a recipient key of its own, with its
    owner's cadence and filters."""
    return [
        _Target(channel.key, "push", subscription, channel)
        for subscription in subscriptions
        for channel in subscription.push_channels()
    ]


def check_configuration(
    settings: Settings, extra_filters: list[dict] | None = None
) -> None:
    """Validate what the user wrote (subscriptions file, extra filters), touching
    nothing; raise NotifyConfigurationError in one line naming recipient and key."""
    configured_subscriptions(settings)
    parse_extra_filters(extra_filters)


def notify(
    settings: Settings,
    *,
    baseline: bool | None = None,
    cadence: str = "instant",
    extra_filters: list[dict] | None = None,
    console: bool = False,
    now: datetime | None = None,
) -> NotifySummary:
    """Send (or log) what is new for this cadence's recipients, record it once.

    `console=True` accepts the console channel although email was configured
    before (someone stopped emailing on purpose) and forgets that it was. `now`
    is the moment the daily digests are due at (default: the clock); scenario
    tests walk it forward a day instead of waiting for one.
    """
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
            _check_channel(conn, settings, console=console)
            store.fold_address_case(conn)
            store.sync_recipients(conn, [t.recipient for t in targets])
            conn.commit()
            names = [t.recipient for t in ours]
            run = _Run(
                settings=settings,
                now=now or datetime.now(UTC),
                force_baseline=force_baseline,
                auto_baseline=auto_baseline,
                extra_filters=extra,
                starts=store.recipient_starts(conn, names),
                lease_speeds=store.lease_speeds(conn),
            )
            transport = transport_from_settings(settings)
            with Mailer(transport) if transport else nullcontext() as mailer:
                # Earlier emails first: a recipient whose resend fails gets nothing
                # new this run (the same server would refuse it too).
                blocked = {
                    target.recipient: error
                    for target in ours
                    if target.channel == "email"
                    and (error := _resend_safely(conn, target.recipient, mailer))
                }
                blocked.update(_resend_pushes(conn, ours))
                pending = store.pending(conn, names) if names else []
                rows_by_recipient: dict[str, list[dict[str, Any]]] = {}
                for row in pending:
                    rows_by_recipient.setdefault(row["recipient"], []).append(row)
                drops_by_recipient: dict[str, list[dict[str, Any]]] = {}
                for drop in store.pending_price_drops(conn, names) if names else []:
                    drops_by_recipient.setdefault(drop["recipient"], []).append(drop)
                gone_by_recipient: dict[str, list[dict[str, Any]]] = {}
                for row in store.untold_closed_windows(conn, _gone_bounds(ours, run)):
                    gone_by_recipient.setdefault(row["recipient"], []).append(row)
                for target in ours:
                    if target.recipient in blocked:
                        results.append(
                            RecipientSummary(
                                target.recipient,
                                target.channel,
                                error=blocked[target.recipient],
                            )
                        )
                        continue
                    rows = rows_by_recipient.get(target.recipient, [])
                    drops = drops_by_recipient.get(target.recipient, [])
                    gone = gone_by_recipient.get(target.recipient, [])
                    results.append(
                        _serve_safely(conn, target, rows, run, mailer, drops, gone)
                    )
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
            f"Skipped {len(result.failed)} recipient(s) ({failures}). Nothing "
            "was recorded for them as sent but the emails before the failure, so the "
            "next run sends the rest (an email the server may have taken goes again "
            f"with the same Message-ID); the others were served. {result}",
            summary=result,
        )
    return result


def _gone_bounds(
    targets: Sequence[_Target], run: _Run
) -> list[tuple[str, datetime, datetime]]:
    """(recipient, closed after, opened before) of each daily target's cars gone
    (notifier/gone.py); instant recipients hear of no car gone."""
    return [
        (
            target.recipient,
            *gone_bounds(
                target.subscription, run.settings, run.now, baseline=run.force_baseline
            ),
        )
        for target in targets
        if target.subscription is not None and target.cadence == "daily"
    ]


def _split_before(
    items: Sequence[dict[str, Any]], key: str, cut: datetime | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items whose `key` is before `cut`, the rest); no cut: ([], all of them)."""
    if cut is None:
        return [], list(items)
    return [i for i in items if i[key] < cut], [i for i in items if i[key] >= cut]


def _check_channel(
    conn: psycopg2.extensions.connection, settings: Settings, *, console: bool
) -> None:
    """Remember that email is in use; refuse to fall back to the console after it.

    Without this, one run with SMTP_HOST unset would log (and record as notified)
    every new car instead of emailing it: lost for good for every recipient.
    """
    since = store.get_state(conn, EMAIL_CHANNEL_KEY)
    if settings.email_configured:
        if since is None:
            store.set_state(conn, EMAIL_CHANNEL_KEY, datetime.now(UTC).isoformat())
            conn.commit()
        return
    if since is None:
        return
    if console:
        log.warning("Email was configured since %s; switching to the console", since)
        store.set_state(conn, EMAIL_CHANNEL_KEY, None)
        conn.commit()
        return
    conn.rollback()
    raise NotifyConfigurationError(
        f"Email was configured (in use since {since}) but is not now: it needs "
        "EMAIL_FROM, SMTP_HOST or GOOGLE_APP_PASSWORD, and EMAIL_TO or "
        "NOTIFY_SUBSCRIPTIONS_FILE. Nothing was sent or recorded. Restore the email "
        "settings, or run `athlon-flex notify --console` once to stop emailing on "
        "purpose."
    )


def _resend_unsent(
    conn: psycopg2.extensions.connection, recipient: str, mailer: Mailer | None
) -> str | None:
    """Send again, unchanged, each email of this recipient written to the outbox and
    never marked sent (a crash or a broken connection came between); the error text
    when one fails, else None."""
    for message_id, message, windows in store.unsent(conn, recipient):
        if mailer is None:  # email configured implies a transport; be explicit
            return "an earlier email waits to be resent, but email is not configured"
        log.info(
            "Resending %s to %s (%d car(s)): an earlier run wrote it and may "
            "not have sent it",
            message_id,
            recipient,
            windows,
        )
        try:
            mailer.send(message, recipient)
        except MailError as error:
            # Kept even when refused: an earlier attempt may have been delivered,
            # and only this very message (same Message-ID) may carry its windows.
            log.error(
                "Resending to %s failed: %s. It stays in the outbox for the next run",
                recipient,
                error,
            )
            return str(error)
        store.mark_sent(conn, message_id)
    return None


def _resend_safely(
    conn: psycopg2.extensions.connection, recipient: str, mailer: Mailer | None
) -> str | None:
    """_resend_unsent, with any failure but the database's kept to this recipient."""
    try:
        return _resend_unsent(conn, recipient, mailer)
    except (DatabaseError, psycopg2.Error):
        raise
    except Exception as error:  # the others must still be served
        conn.rollback()
        log.error(
            "Resending to %s failed: %s: %s", recipient, type(error).__name__, error
        )
        return _one_line(f"{type(error).__name__}: {error}")


def _serve_safely(
    conn: psycopg2.extensions.connection,
    target: _Target,
    rows: Sequence[dict[str, Any]],
    run: _Run,
    mailer: Mailer | None,
    drops: Sequence[dict[str, Any]] = (),
    gone: Sequence[dict[str, Any]] = (),
) -> RecipientSummary:
    """_serve, with any failure but the database's kept to this recipient."""
    try:
        return _serve(conn, target, rows, run, mailer, drops, gone)
    except (DatabaseError, psycopg2.Error, NotifyError):
        raise
    except Exception as error:  # one recipient's bad row or bug must not stop the rest
        conn.rollback()
        log.error("Skipped %s: %s: %s", target.recipient, type(error).__name__, error)
        log.debug("Traceback of the failure for %s", target.recipient, exc_info=True)
        return RecipientSummary(
            target.recipient,
            target.channel,
            vehicles=len(rows),
            error=_one_line(f"{type(error).__name__}: {error}"),
        )


def _serve(
    conn: psycopg2.extensions.connection,
    target: _Target,
    rows: Sequence[dict[str, Any]],
    run: _Run,
    mailer: Mailer | None,
    drops: Sequence[dict[str, Any]] = (),
    gone: Sequence[dict[str, Any]] = (),
) -> RecipientSummary:
    """One recipient's turn: baseline, or filter → log → send → record.

    `rows` are their windows not yet told (vehicles_to_notify), `drops` their price
    drops not yet told (store.pending_price_drops); see _price_drops for which
    drops are a line of their own. `gone` are a daily recipient's closed windows
    not yet told (store.untold_closed_windows, see _gone_bounds).
    """
    recipient = target.recipient
    settings = run.settings
    if run.force_baseline:
        # Everything open is old news, its drops included, and so is a car that
        # came and went before it.
        recorded = store.decide_baseline(conn, recipient, [*rows, *gone], drops)
        log.info(
            "Baseline for %s: recorded %d open window(s) as notified without sending",
            recipient,
            recorded,
        )
        return RecipientSummary(
            recipient, target.channel, recorded=recorded, baselined=recorded
        )

    baselined = 0
    registered, decided = run.starts[recipient]
    if decided is None:
        # Their first turn: the one moment NOTIFY_BASELINE applies to them.
        cut = registered if run.auto_baseline else None
        old_rows, rows = _split_before(rows, "available_since", cut)
        old_gone, gone = _split_before(gone, "available_since", cut)
        old_drops, drops = _split_before(drops, "changed_at", cut)
        baselined = store.decide_baseline(
            conn, recipient, [*old_rows, *old_gone], old_drops
        )
        if baselined:
            log.info(
                "Baseline for %s: %d window(s) opened before they subscribed, "
                "recorded without sending",
                recipient,
                baselined,
            )

    timezone = settings.notify_timezone
    # Windows still untold (after the baseline): a drop of one of those cars is
    # no line of its own, the car is announced as new at its new price.
    untold = {(row["vehicle_id"], row["available_since"]) for row in rows}
    if target.subscription is not None:
        digest_time, timezone = target.subscription.digest_time(settings)
        if target.cadence == "daily":
            slot = last_digest_slot(digest_time, timezone, run.now)
            rows = [row for row in rows if row["available_since"] < slot]
            drops = [drop for drop in drops if drop["changed_at"] < slot]

    def wanted(row: Mapping[str, Any]) -> bool:
        return matches_any(target.filters, row) and matches_any(run.extra_filters, row)

    chosen = [row for row in rows if wanted(row)]
    folded, cheaper = _price_drops(target, drops, untold, chosen, run)
    gone_cars, earlier_stays = gone_lines(chosen, [row for row in gone if wanted(row)])
    if not chosen and not cheaper and not gone_cars:
        return RecipientSummary(
            recipient, target.channel, recorded=baselined, baselined=baselined
        )
    lines = _with_lease_speed([*chosen, *gone_cars, *cheaper], run.lease_speeds)
    told_drops = [*folded, *cheaper]
    folded = [*folded, *earlier_stays]

    if target.channel == "push":
        return _push(conn, target, lines, folded, timezone, baselined)

    if target.channel == "console":
        _log_cars(logging.INFO, recipient, lines, timezone)  # the channel itself
        windows = [*chosen, *gone_cars, *earlier_stays]
        recorded = store.record(conn, recipient, windows, told_drops)
        return RecipientSummary(
            recipient,
            target.channel,
            vehicles=len(lines),
            recorded=recorded + baselined,
            baselined=baselined,
        )

    assert mailer is not None  # email_configured implies a transport
    return _email(conn, target, lines, folded, run, mailer, timezone, baselined)


@dataclass(frozen=True)
class _Claimed:
    """An email written to the outbox with the windows and drops it claims."""

    fitted: FittedEmail
    claims: int


def _email(
    conn: psycopg2.extensions.connection,
    target: _Target,
    lines: Sequence[dict[str, Any]],
    folded: Sequence[dict[str, Any]],
    run: _Run,
    mailer: Mailer,
    timezone: str,
    baselined: int,
) -> RecipientSummary:
    """Claim, send, mark the emails of one recipient's lines.

    A batch past one email's size goes as several emails in this run, each under
    MAX_EMAIL_BYTES and each through the outbox on its own: each claims only the
    cars it shows, so a failure between two leaves the rest pending. They go one
    after another over one SMTP connection, on a thread of its own: while the
    server takes one, this thread builds and claims the next and marks the one
    before, so a big batch costs about the server's time, not that plus ours.
    Each email keeps its own order (claimed, sent, marked); the next is sent only
    once the server took the one before, and one that was claimed but not yet
    tried when the one before failed is released. A mark that fails leaves its
    email and the next (sent meanwhile) unmarked: the next run resends both with
    their Message-IDs, as after a crash there.
    """
    recipient = target.recipient
    fitter = run.fitter(timezone, mailer.transport.sender)

    def claim(rows: Sequence[dict[str, Any]]) -> _Claimed:
        fitted = _fit_email(fitter, rows, recipient)
        windows, drops = _carried(fitted.shown, folded)
        claims = store.write_intent(
            conn, recipient, fitted.message_id, fitted.wire, windows, drops
        )
        return _Claimed(fitted, claims)

    emails = claimed = shown = 0
    failure: str | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp") as smtp:
        smtp.submit(mailer.open)  # while the first email is built and claimed
        current: _Claimed | None = claim(lines)
        sending = smtp.submit(mailer.send, current.fitted.wire, recipient)
        while current is not None:
            fitted = current.fitted
            remaining = fitted.left_out  # in the email's order already
            following: _Claimed | None = None
            broken: Exception | None = None
            try:  # while the server takes this one
                following = claim(remaining) if remaining else None
            except Exception as error:  # raised once this one is sent and marked
                conn.rollback()
                broken = error
            try:
                sending.result()
            except MailError as error:
                if error.refused:
                    store.drop_intent(conn, fitted.message_id)
                    what = (
                        f"Nothing more recorded for {recipient}; the next run "
                        "tries again"
                    )
                else:
                    what = (
                        f"The next run resends it to {recipient} with the same "
                        "Message-ID"
                    )
                if following is not None:  # never tried: nothing was delivered
                    store.drop_intent(conn, following.fitted.message_id)
                log.error("Email to %s failed: %s. %s", recipient, error, what)
                failure = str(error)
                break
            if following is not None:  # the server took this one: the next goes
                sending = smtp.submit(mailer.send, following.fitted.wire, recipient)
            store.mark_sent(conn, fitted.message_id)  # while the server takes it
            log.info(
                "Emailed %s %s: %s (%s)",
                recipient,
                _carrying(fitted.shown),
                fitted.email.subject,
                fitted.message_id,
            )
            _log_cars(logging.DEBUG, recipient, fitted.shown, timezone)
            emails += 1
            claimed += current.claims
            shown += len(fitted.shown)
            if broken is not None:
                raise broken
            current = following
    return RecipientSummary(
        recipient,
        target.channel,
        emails_sent=emails,
        vehicles=shown,
        recorded=claimed + baselined,
        baselined=baselined,
        error=failure,
    )


def _carrying(rows: Sequence[Mapping[str, Any]]) -> str:
    """`45 car(s) (44 new, 1 cheaper)`: what one message carries, for its log line."""
    return f"{len(rows)} car(s) ({', '.join(kind_counts(rows))})"


def _log_cars(
    level: int, recipient: str, rows: Sequence[Mapping[str, Any]], timezone: str
) -> None:
    """A line per car told: the console channel's whole message (INFO); under a
    message sent, the detail of what it carried (DEBUG, `-v`)."""
    if not log.isEnabledFor(level):
        return
    for row in rows:
        log.log(
            level,
            "%s for %s: %s",
            BADGES[alert_kind(row)].capitalize(),
            recipient,
            _describe_vehicle(row, timezone),
        )


def _price_drops(
    target: _Target,
    drops: Sequence[dict[str, Any]],
    untold: set[tuple[str, datetime]],
    chosen: Sequence[dict[str, Any]],
    run: _Run,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """This recipient's pending price drops as (folded, cheaper).

    `folded`: drops of cars this very message announces as new or back (already
    at the new price): recorded with it, never a line of their own, so a car that
    came and got cheaper between two runs is one line. A drop of a car still
    untold but not in this message (filtered out, or after the digest's slot)
    waits with its car. `cheaper`: drops of cars the recipient already knows of
    that meet their threshold (`price_drop_percent` / `price_drop_euro`) and
    their filters; the console, which has no thresholds, logs every drop. The
    rest stays pending: a lowered threshold or a change of filters may want them.
    """
    announced = {(row["vehicle_id"], row["available_since"]) for row in chosen}
    folded: list[dict[str, Any]] = []
    cheaper: list[dict[str, Any]] = []
    subscription = target.subscription
    for drop in drops:
        window = (drop["vehicle_id"], drop["available_since"])
        if window in untold:
            if window in announced:
                folded.append(drop)
            continue
        if subscription is None:
            wanted = True
        else:
            wanted = subscription.drop_is_worth_telling(
                drop["previous_price_per_month_in_euro"],
                drop["price_per_month_in_euro"],
            )
        if (
            wanted
            and matches_any(target.filters, drop)
            and matches_any(run.extra_filters, drop)
        ):
            cheaper.append(drop)
    return folded, cheaper


def _with_lease_speed(
    rows: Sequence[dict[str, Any]], speeds: Mapping[tuple[str, str], float]
) -> list[dict[str, Any]]:
    """Each row with `lease_speed_median_hours` of its make and model (or None)."""
    return [
        {**row, "lease_speed_median_hours": speeds.get((row["make"], row["model"]))}
        for row in rows
    ]


def _carried(
    shown: Sequence[Mapping[str, Any]], folded: Sequence[dict[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(windows, price drops) a message showing these lines carries: each car it
    announces as new, back or gone, each drop line, each drop folded into a car it
    announces, and each earlier stay (a closed window, gone.gone_lines) of a car it
    shows. A line left out for the next message claims nothing."""
    windows = [row for row in shown if alert_kind(row) != "price_drop"]
    announced = {(row["vehicle_id"], row["available_since"]) for row in windows}
    vehicles = {row["vehicle_id"] for row in windows}
    drops = [row for row in shown if alert_kind(row) == "price_drop"]
    for row in folded:
        if alert_kind(row) == "price_drop":
            if (row["vehicle_id"], row["available_since"]) in announced:
                drops.append(row)
        elif row["vehicle_id"] in vehicles:
            windows.append(row)
    return windows, drops


def _fit_email(
    fitter: EmailFitter, rows: Sequence[dict[str, Any]], recipient: str
) -> FittedEmail:
    """The email of as many rows as fit under MAX_EMAIL_BYTES (mailer.EmailFitter)."""
    fitted = fitter.fit(rows, recipient=recipient)
    if fitted.left_out:
        log.debug(
            "Email to %s shows %d of %d car(s) to stay under %d bytes; the other "
            "%d go in the next email",
            recipient,
            len(fitted.shown),
            len(rows),
            MAX_EMAIL_BYTES,
            len(fitted.left_out),
        )
    return fitted


# Push channels (notifier/push.py): the email's exactly-once path with a short text
# instead of an email. The outbox keeps the text (push.encode_message) under a
# message id derived from the channel key and the windows; a crash after the claim
# leaves an unmarked row that the next run sends again as it was. A push service
# keeps no Message-ID, so that crash (between the service's acceptance and the
# mark) can show one push twice; it never loses one. A push the service does not
# accept on its first attempt releases its windows for the next run.
PUSH_SENDER = "push@athlon-flex.invalid"


def _push(
    conn: psycopg2.extensions.connection,
    target: _Target,
    rows: Sequence[dict[str, Any]],
    folded: Sequence[dict[str, Any]],
    timezone: str,
    baselined: int,
) -> RecipientSummary:
    """Claim, send, mark one push to one channel; the rows that do not fit in the
    text are not claimed (they go in the next run's push)."""
    channel = target.push
    assert channel is not None
    title, body, shown = render_push(rows, timezone=timezone)
    message_id = message_id_for_rows(target.recipient, shown, sender=PUSH_SENDER)
    windows, drops = _carried(shown, folded)
    claimed = store.write_intent(
        conn, target.recipient, message_id, encode_message(title, body), windows, drops
    )
    try:
        channel.send(title, body)
    except PushError as error:
        store.drop_intent(conn, message_id)
        log.error(
            "Push to %s failed: %s. Nothing recorded for it; the next run tries again",
            channel.describe(),
            error,
        )
        return RecipientSummary(
            target.recipient,
            "push",
            vehicles=len(shown),
            recorded=baselined,
            baselined=baselined,
            error=str(error),
        )
    store.mark_sent(conn, message_id)
    log.info(
        "Pushed to %s %s: %s (%s)",
        channel.describe(),
        _carrying(shown),
        title,
        message_id,
    )
    _log_cars(logging.DEBUG, target.recipient, shown, timezone)
    return RecipientSummary(
        target.recipient,
        "push",
        pushes_sent=1,
        vehicles=len(shown),
        recorded=claimed + baselined,
        baselined=baselined,
    )


def _resend_pushes(
    conn: psycopg2.extensions.connection, targets: Sequence[_Target]
) -> dict[str, str]:
    """Send again each push written to the outbox and never marked sent; channel
    key → error for the channels whose resend failed (they get nothing new this
    run; the push stays in the outbox)."""
    blocked: dict[str, str] = {}
    for target in targets:
        if target.channel != "push" or target.push is None:
            continue
        for message_id, message, windows in store.unsent(conn, target.recipient):
            log.info(
                "Pushing %s to %s again (%d window(s)): an earlier run wrote it and "
                "may not have sent it",
                message_id,
                target.push.describe(),
                windows,
            )
            try:
                target.push.send(*decode_message(message))
            except (DatabaseError, psycopg2.Error):
                raise
            except Exception as error:  # PushError, or a bug: keep it to this channel
                reason = (
                    str(error)
                    if isinstance(error, PushError)
                    else _one_line(f"{type(error).__name__}: {error}")
                )
                log.error("Push again failed: %s. It stays in the outbox", reason)
                blocked[target.recipient] = reason
                break
            store.mark_sent(conn, message_id)
    return blocked


@dataclass(frozen=True)
class ChannelCheck:
    """How one channel took `athlon-flex notify --test`'s message."""

    channel: str  # an address, a push channel's description, or "console"
    kind: Channel
    error: str | None = None

    def __str__(self) -> str:
        state = "ok    " if self.error is None else "FAILED"
        reason = f": {self.error}" if self.error else ""
        return f"{state} {self.kind:<7} {self.channel}{reason}"


TEST_SUBJECT = "Athlon Flex: test message"


def send_test_messages(settings: Settings) -> list[ChannelCheck]:
    """A test message to every configured channel (each email recipient, each push
    channel, or the console); one check each. Touches no database, records
    nothing: the windows a later run sends are the same as without the test."""
    checks: list[ChannelCheck] = []
    targets = _targets(settings)
    transport = transport_from_settings(settings)
    with Mailer(transport) if transport else nullcontext() as mailer:
        for target in targets:
            checks.append(_test_one(target, mailer))
    return checks


def _test_one(target: _Target, mailer: Mailer | None) -> ChannelCheck:
    when = datetime.now(UTC).isoformat(timespec="seconds")
    body = (
        f"This is a test message of athlon-flex-notifier, sent {when}: this "
        "channel works. Nothing was recorded; cars that match your filters come "
        "in their own messages."
    )
    if target.channel == "console":
        log.info("Test message to the console (log): %s", body)
        return ChannelCheck(CONSOLE_RECIPIENT, "console")
    if target.channel == "push":
        assert target.push is not None
        try:
            target.push.send(TEST_SUBJECT, body)
        except PushError as error:
            return ChannelCheck(target.push.describe(), "push", str(error))
        return ChannelCheck(target.push.describe(), "push")
    assert mailer is not None  # email targets exist only with a transport
    sender = mailer.transport.sender
    html = f"<!DOCTYPE html><html><body><p>{escape(body)}</p></body></html>"
    message = compose(
        RenderedEmail(TEST_SUBJECT, html, body),
        sender=sender,
        recipient=target.recipient,
        message_id=make_msgid(domain=sender.rpartition("@")[2] or None),
    )
    try:
        mailer.send(as_wire_bytes(message), target.recipient)
    except MailError as error:
        return ChannelCheck(target.recipient, "email", str(error))
    return ChannelCheck(target.recipient, "email")
