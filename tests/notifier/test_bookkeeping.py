"""Recorded exactly once: reruns, failures, returning cars, closed windows, baseline."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from notifier.errors import NotifyConfigurationError, NotifyError
from notifier.stage import notify
from tests.notifier.conftest import EARLIER, window

ANNA = "anna@example.nl"
BOB = "bob@example.nl"


def test_rerun_after_success_sends_nothing(
    email_settings, smtp_server, add_windows, notifications
):
    add_windows([window("v1"), window("v2")])
    settings = email_settings(email_to=[ANNA])
    notify(settings)
    recorded = notifications()

    summary = notify(settings)

    assert len(smtp_server.messages) == 1
    assert notifications() == recorded
    assert (summary.emails_sent, summary.vehicles, summary.recorded) == (0, 0, 0)


def test_refused_message_records_nothing_raises_and_the_next_run_sends_it(
    email_settings, smtp_server, add_windows, notifications
):
    add_windows([window("v1"), window("v2")])
    settings = email_settings(email_to=[ANNA])
    smtp_server.refuse_with("550 5.7.1 Message rejected for this test")

    with pytest.raises(NotifyError) as raised:
        notify(settings)

    message = str(raised.value)
    assert ANNA in message
    assert "550" in message
    assert "Nothing was recorded for them" in message
    assert smtp_server.handler.data_attempts == 1
    assert notifications() == []
    assert raised.value.summary.for_recipient(ANNA).recorded == 0

    smtp_server.refuse_with(None)
    summary = notify(settings)

    (received,) = smtp_server.messages
    assert received.subject == "2 new: Tesla Model 3"
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA), ("v2", ANNA)]
    assert summary.emails_sent == 1


def test_a_refused_recipient_does_not_stop_the_others(
    email_settings, smtp_server, add_windows, notifications
):
    add_windows([window("v1")])
    settings = email_settings(email_to=[ANNA, BOB])
    smtp_server.refuse_recipient(ANNA, "451 4.3.0 Mailbox temporarily unavailable")

    with pytest.raises(NotifyError) as raised:
        notify(settings)

    assert "anna@example.nl: SMTP" in str(raised.value)
    assert "451" in str(raised.value)
    assert [m.rcpt_tos for m in smtp_server.messages] == [(BOB,)]
    assert [(v, r) for v, _, r in notifications()] == [("v1", BOB)]
    summary = raised.value.summary
    assert summary.for_recipient(BOB).emails_sent == 1
    assert summary.for_recipient(ANNA).error is not None

    smtp_server.refuse_recipient(ANNA, None)
    notify(settings)

    assert [m.rcpt_tos for m in smtp_server.messages] == [(BOB,), (ANNA,)]
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA), ("v1", BOB)]


def test_unreachable_smtp_server_records_nothing(
    make_settings, add_windows, notifications
):
    add_windows([window("v1")])
    settings = make_settings(
        email_from="notifier@example.org",
        email_to=[ANNA],
        smtp_host="127.0.0.1",
        smtp_port=1,  # nothing listens on port 1
        smtp_security="none",
    )

    with pytest.raises(NotifyError) as raised:
        notify(settings)

    assert "127.0.0.1:1" in str(raised.value)
    assert notifications() == []


def test_vehicle_that_returns_after_being_leased_is_notified_again(
    email_settings, smtp_server, add_windows, close_window, notifications
):
    settings = email_settings(email_to=[ANNA])
    add_windows([window("v1")])
    notify(settings)
    close_window("v1", EARLIER + timedelta(minutes=10))
    returned_at = EARLIER + timedelta(minutes=30)
    add_windows([window("v1", available_since=returned_at, license_plate="RE-01-T")])

    notify(settings)

    assert [m.subject for m in smtp_server.messages] == [
        "1 new: Tesla Model 3",
        # The same car after it left: back, not new (the left_at is its close).
        "1 back: Tesla Model 3",
    ]
    assert "RE-01-T" in smtp_server.messages[1].html
    assert notifications() == [
        ("v1", EARLIER, ANNA),
        ("v1", returned_at, ANNA),
    ]


def test_window_that_closed_before_it_was_sent_is_never_sent(
    email_settings, smtp_server, add_windows, close_window, notifications
):
    add_windows([window("v1"), window("v2")])
    close_window("v2", EARLIER + timedelta(minutes=5))

    notify(email_settings(email_to=[ANNA]))

    (received,) = smtp_server.messages
    assert received.subject == "1 new: Tesla Model 3"
    assert "PL-v2" not in received.html
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA)]


def test_baseline_records_every_open_window_without_sending(
    email_settings, smtp_server, add_windows, notifications, write_subscriptions
):
    add_windows([window("v1"), window("v2")])
    subscriptions = write_subscriptions(
        {
            "recipients": [
                {"email": ANNA, "filters": {"make": "^BYD$"}},
                {"email": BOB, "cadence": "daily"},
            ]
        }
    )
    settings = email_settings(notify_subscriptions_file=subscriptions)

    summary = notify(settings, baseline=True)

    assert smtp_server.messages == []
    # Everything open, for every recipient, whatever their filters or cadence.
    assert [(v, r) for v, _, r in notifications()] == [
        ("v1", ANNA),
        ("v2", ANNA),
        ("v1", BOB),
        ("v2", BOB),
    ]
    assert (summary.emails_sent, summary.recorded) == (0, 4)
    assert summary.baseline is True

    later = datetime.now(UTC)
    add_windows([window("v3", make="BYD", model="Seal", available_since=later)])
    notify(settings)

    assert [(m.rcpt_tos, m.subject) for m in smtp_server.messages] == [
        ((ANNA,), "1 new: BYD Seal")
    ]


def test_notify_baseline_setting_skips_only_what_opened_before_a_recipient_joined(
    email_settings, smtp_server, add_windows, notifications
):
    add_windows([window("v1")])
    settings = email_settings(email_to=[ANNA], notify_baseline=True)

    first = notify(settings)

    assert smtp_server.messages == []
    assert first.for_recipient(ANNA).baselined == 1
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA)]

    add_windows([window("v2", available_since=datetime.now(UTC))])
    notify(settings)

    (received,) = smtp_server.messages
    assert received.subject == "1 new: Tesla Model 3"
    assert "PL-v2" in received.html
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA), ("v2", ANNA)]


def test_console_channel_logs_each_new_vehicle_and_records_without_email(
    settings, add_windows, notifications, caplog
):
    assert not settings.email_configured
    add_windows(
        [window("v1", license_plate="AB-123-C"), window("v2", make="BYD", model="Seal")]
    )
    caplog.set_level(logging.INFO, logger="notifier")

    summary = notify(settings)

    new_lines = [r.getMessage() for r in caplog.records if "New for" in r.getMessage()]
    assert len(new_lines) == 2
    assert new_lines[0].startswith("New for console: BYD Seal Long Range AWD 2024")
    assert "Tesla Model 3 Long Range AWD 2024, AB-123-C: € 650,00/month" in new_lines[1]
    assert [(v, r) for v, _, r in notifications()] == [
        ("v1", "console"),
        ("v2", "console"),
    ]
    line = summary.for_recipient("console")
    assert (line.channel, line.emails_sent, line.vehicles, line.recorded) == (
        "console",
        0,
        2,
        2,
    )

    caplog.clear()
    assert notify(settings).recorded == 0
    assert not [r for r in caplog.records if "New for" in r.getMessage()]


def test_recipients_are_registered_once_and_never_removed(
    email_settings, smtp_server, db, contract_objects
):
    def recipients() -> list[tuple[str, datetime]]:
        with db.cursor() as cursor:
            cursor.execute(
                "select recipient, registered_at from notifier.recipients order by 1"
            )
            return cursor.fetchall()

    notify(email_settings(email_to=[ANNA, BOB]))
    first = recipients()
    assert [name for name, _ in first] == [ANNA, BOB]

    notify(email_settings(email_to=[BOB, "carla@example.nl"]))
    after = recipients()
    # anna keeps her row and her first registration; carla is added.
    assert [name for name, _ in after] == [ANNA, BOB, "carla@example.nl"]
    assert after[:2] == first


def test_email_that_vanishes_fails_the_run_instead_of_the_console_taking_over(
    email_settings, smtp_server, add_windows, notifications
):
    add_windows([window("v1")])
    notify(email_settings(email_to=[ANNA]))
    add_windows([window("v2", available_since=datetime.now(UTC))])

    # SMTP_HOST unset by mistake: no console fallback, nothing recorded.
    with pytest.raises(NotifyConfigurationError, match="Email was configured"):
        notify(email_settings(email_to=[ANNA], smtp_host=None))
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA)]

    # Restored: anna gets the car that arrived meanwhile.
    notify(email_settings(email_to=[ANNA]))
    assert [m.subject for m in smtp_server.messages] == [
        "1 new: Tesla Model 3",
        "1 new: Tesla Model 3",
    ]
    assert "PL-v2" in smtp_server.messages[1].text

    # Switching to the console on purpose is one explicit run.
    add_windows([window("v3", available_since=datetime.now(UTC))])
    notify(email_settings(email_from=None, email_to=[]), console=True)
    assert [(v, r) for v, _, r in notifications()] == [
        ("v1", ANNA),
        ("v2", ANNA),
        ("v1", "console"),  # the console is a new recipient: everything open
        ("v2", "console"),
        ("v3", "console"),
    ]
    notify(email_settings(email_from=None, email_to=[]))  # and it stays accepted


@pytest.mark.parametrize("database_template", [None])  # an empty database
def test_missing_marts_ask_for_transform_first(email_settings, smtp_server, db):
    with pytest.raises(NotifyError, match="run `athlon-flex transform` first"):
        notify(email_settings(email_to=[ANNA]))
    assert smtp_server.messages == []


def test_a_second_run_waits_for_the_first_and_sends_nothing_twice(
    email_settings, smtp_server, add_windows, notifications, db
):
    from notifier.store import NOTIFY_LOCK_KEY

    add_windows([window("v1")])
    settings = email_settings(email_to=[ANNA])
    results: list = []
    with db.cursor() as cursor:
        cursor.execute("select pg_advisory_lock(%s)", (NOTIFY_LOCK_KEY,))
    waiting = threading.Thread(target=lambda: results.append(notify(settings)))
    waiting.start()
    waiting.join(timeout=0.5)
    # While another run holds the lock, nothing is sent.
    assert waiting.is_alive()
    assert smtp_server.messages == []

    with db.cursor() as cursor:
        cursor.execute("select pg_advisory_unlock(%s)", (NOTIFY_LOCK_KEY,))
    waiting.join(timeout=60)

    assert not waiting.is_alive()
    assert results[0].emails_sent == 1
    assert len(smtp_server.messages) == 1
    assert notify(settings).emails_sent == 0
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA)]


def test_a_recipient_whose_email_cannot_be_rendered_is_skipped_and_named(
    email_settings, smtp_server, add_windows, notifications, monkeypatch
):
    import notifier.stage

    add_windows([window("v1"), window("v2", make="BYD", model="Seal")])
    settings = email_settings(email_to=[ANNA, BOB])
    real_render = notifier.stage.EmailRenderer.render
    calls: list[int] = []

    def render_failing_first(self, rows, **kwargs):
        calls.append(len(rows))
        if len(calls) == 1:  # anna's turn comes first
            raise ValueError("a template bug")
        return real_render(self, rows, **kwargs)

    monkeypatch.setattr(notifier.stage.EmailRenderer, "render", render_failing_first)
    with pytest.raises(NotifyError) as raised:
        notify(settings)

    assert f"Skipped 1 recipient(s) ({ANNA}: ValueError: a template bug)" in str(
        raised.value
    )
    assert [m.rcpt_tos for m in smtp_server.messages] == [(BOB,)]
    assert [(v, r) for v, _, r in notifications()] == [("v1", BOB), ("v2", BOB)]

    notify(settings)  # the next run (the bug fixed) serves anna
    assert [m.rcpt_tos for m in smtp_server.messages] == [(BOB,), (ANNA,)]


def test_rows_inserted_with_only_the_original_columns_count_as_sent(
    email_settings, smtp_server, add_windows, notifications, db
):
    """What the old tool's migration writes: (window, recipient, notified_at)."""
    add_windows([window("v1"), window("v2")])
    with db.cursor() as cursor:
        cursor.execute(
            "insert into notifier.notifications "
            "(vehicle_id, available_since, recipient, notified_at) "
            "values (%s, %s, %s, now())",
            ("v1", EARLIER, ANNA),
        )

    notify(email_settings(email_to=[ANNA]))

    (received,) = smtp_server.messages
    assert received.subject == "1 new: Tesla Model 3"
    assert "PL-v2" in received.text and "PL-v1" not in received.text
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA), ("v2", ANNA)]


def test_an_email_the_server_may_have_taken_is_resent_unchanged(
    email_settings, smtp_server, add_windows, notifications, db
):
    """The connection breaks after the server took the message, before its reply:
    the email stays in the outbox and the next run sends the same bytes (same
    Message-ID) before anything new."""
    add_windows([window("v1")])
    settings = email_settings(email_to=[ANNA])
    smtp_server.handler.drop_after_data = True
    with pytest.raises(NotifyError, match=f"Skipped 1 recipient.s. .{ANNA}: SMTP"):
        notify(settings)
    (taken,) = smtp_server.messages
    with db.cursor() as cursor:
        cursor.execute("select recipient, sent_at from notifier.outbox")
        assert cursor.fetchall() == [(ANNA, None)]
    smtp_server.handler.drop_after_data = False
    add_windows([window("v2", available_since=datetime.now(UTC))])

    # A refused resend keeps the email (the first attempt may have arrived) and
    # holds back anna's new email: only that same message may carry v1.
    smtp_server.refuse_with("451 4.3.0 try again later")
    with pytest.raises(NotifyError, match="451"):
        notify(settings)
    assert len(smtp_server.messages) == 1
    with db.cursor() as cursor:
        cursor.execute("select recipient, sent_at from notifier.outbox")
        assert cursor.fetchall() == [(ANNA, None)]
    smtp_server.refuse_with(None)

    notify(settings)

    again, new = smtp_server.messages[1:]
    assert again.message.as_bytes() == taken.message.as_bytes()
    assert "PL-v2" in new.text and "PL-v1" not in new.text
    assert len(smtp_server.mailbox(ANNA)) == 2
    assert [(v, r) for v, _, r in notifications()] == [("v1", ANNA), ("v2", ANNA)]
    with db.cursor() as cursor:
        cursor.execute("select count(*) from notifier.outbox where sent_at is null")
        assert cursor.fetchone() == (0,)


def test_rows_stored_in_both_spellings_fold_into_one(
    email_settings, smtp_server, add_windows, notifications, db
):
    """An older version kept `Anna@Example.NL` and `anna@example.nl` apart."""
    add_windows([window("v1"), window("v2"), window("v3")])
    early = EARLIER - timedelta(days=1)
    with db.cursor() as cursor:
        cursor.execute(
            "insert into notifier.recipients (recipient, registered_at) values "
            "('Anna@Example.NL', %s), (%s, now())",
            (early, ANNA),
        )
        cursor.execute(
            "insert into notifier.notifications (vehicle_id, available_since, "
            "recipient) values ('v1', %s, 'Anna@Example.NL'), ('v1', %s, %s), "
            "('v2', %s, 'ANNA@example.nl')",
            (EARLIER, EARLIER, ANNA, EARLIER),
        )

    notify(email_settings(email_to=[ANNA]))

    (received,) = smtp_server.messages
    assert received.subject == "1 new: Tesla Model 3"
    assert "PL-v3" in received.text
    assert [(v, r) for v, _, r in notifications()] == [
        ("v1", ANNA),
        ("v2", ANNA),
        ("v3", ANNA),
    ]
    with db.cursor() as cursor:
        cursor.execute("select recipient, registered_at from notifier.recipients")
        assert cursor.fetchall() == [(ANNA, early)]  # the earliest registration
