"""Where a daily digest's cars gone could be lost or told twice: windows written
straight into the dbt-built mart at chosen times, the real notifier and SMTP server.

Bob's digest slot T is the minute an hour ago, the previous slot P a day before it.
A window "came and went" between them opened five hours ago and closed three.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifier import store
from notifier.errors import NotifyError
from notifier.push import channel_key
from notifier.render import local_time
from notifier.stage import notify
from tests.faults.invariant import cli_env, start_cli
from tests.faults.killing import TableLocks, kill, wait_for
from tests.notifier.conftest import window

ANNA = "anna@example.nl"  # instant
BOB = "bob@example.nl"  # daily
ZONE = "Europe/Amsterdam"
NOW = datetime.now(UTC).replace(microsecond=0)
SLOT = (NOW - timedelta(hours=1)).astimezone(ZoneInfo(ZONE)).strftime("%H:%M")


def _gone(vehicle_id: str, opened_hours_ago: float, closed_hours_ago: float, **values):
    """A closed window: opened and closed that many hours before NOW."""
    return window(
        vehicle_id,
        available_since=NOW - timedelta(hours=opened_hours_ago),
        available_until=NOW - timedelta(hours=closed_hours_ago),
        is_available=False,
        **values,
    )


def _daily(**values) -> dict:
    return {"cadence": "daily", "daily_time": SLOT, "timezone": ZONE, **values}


def _told(db) -> list[tuple]:
    """(vehicle_id, available_since, recipient, message_id) of every notification."""
    with db.cursor() as cursor:
        cursor.execute(
            "select vehicle_id, available_since, recipient, message_id "
            "from notifier.notifications order by recipient, vehicle_id, "
            "available_since"
        )
        return cursor.fetchall()


def _outbox(db) -> list[tuple[str, str, bool]]:
    """(recipient, message_id, marked sent) of every outbox row."""
    with db.cursor() as cursor:
        cursor.execute(
            "select recipient, message_id, sent_at is not null from notifier.outbox "
            "order by created_at"
        )
        return cursor.fetchall()


def _id(mail) -> str:
    return str(mail.message["Message-ID"])


def test_only_the_digest_hears_of_cars_gone_and_only_of_those_since_its_last_slot(
    email_settings, smtp_server, add_windows, write_subscriptions, db
):
    add_windows(
        [
            _gone("went", 5, 3),  # came and went between P and T
            _gone("late", 2, 1 / 6),  # there at T, gone before the digest ran
            _gone("after", 0.5, 1 / 6),  # came and went after T: the next digest's
            _gone("old", 30, 28),  # gone before P: history
        ]
    )
    subscriptions = write_subscriptions(
        {"recipients": [{"email": ANNA}, {"email": BOB, **_daily()}]}
    )
    settings = email_settings(notify_subscriptions_file=subscriptions)

    assert notify(settings).emails_sent == 0  # instant: no car gone, ever
    notify(settings, cadence="daily")
    notify(settings, cadence="daily")
    notify(settings, cadence="daily", now=NOW + timedelta(days=1))
    notify(settings, cadence="daily", now=NOW + timedelta(days=1))
    assert notify(settings).emails_sent == 0

    today, tomorrow = smtp_server.mailbox(BOB)
    assert today.subject == "2 gone: Tesla Model 3"
    assert "PL-went" in today.text and "PL-late" in today.text
    assert tomorrow.subject == "1 gone: Tesla Model 3"
    assert "PL-after" in tomorrow.text
    assert smtp_server.messages_to(ANNA) == []
    assert len(smtp_server.messages) == 2
    assert _told(db) == [
        ("after", NOW - timedelta(hours=0.5), BOB, _id(tomorrow)),
        ("late", NOW - timedelta(hours=2), BOB, _id(today)),
        ("went", NOW - timedelta(hours=5), BOB, _id(today)),
    ]


def test_a_car_told_as_new_is_not_told_again_when_it_goes(
    email_settings, smtp_server, add_windows, close_window, write_subscriptions, db
):
    add_windows([window("car", available_since=NOW - timedelta(hours=5))])
    subscriptions = write_subscriptions({"recipients": [{"email": BOB, **_daily()}]})
    settings = email_settings(notify_subscriptions_file=subscriptions)
    notify(settings, cadence="daily")
    close_window("car", NOW - timedelta(minutes=5))

    notify(settings, cadence="daily", now=NOW + timedelta(days=1))

    (new,) = smtp_server.mailbox(BOB)
    assert new.subject == "1 new: Tesla Model 3"
    assert _told(db) == [("car", NOW - timedelta(hours=5), BOB, _id(new))]


def test_a_car_that_came_and_went_twice_is_one_gone_line_with_both_stays_told(
    email_settings, smtp_server, add_windows, write_subscriptions, db
):
    add_windows([_gone("car", 6, 5), _gone("car", 4, 3)])
    subscriptions = write_subscriptions({"recipients": [{"email": BOB, **_daily()}]})

    notify(email_settings(notify_subscriptions_file=subscriptions), cadence="daily")

    (digest,) = smtp_server.mailbox(BOB)
    assert digest.subject == "1 gone: Tesla Model 3"
    assert digest.text.count("- GONE ") == 1
    last_stay = local_time(NOW - timedelta(hours=3), ZONE)
    assert f"  Available until: {last_stay}" in digest.text
    assert _told(db) == [
        ("car", NOW - timedelta(hours=6), BOB, _id(digest)),
        ("car", NOW - timedelta(hours=4), BOB, _id(digest)),
    ]


def test_the_filters_at_digest_time_decide_and_a_change_of_them_loses_nothing(
    email_settings, smtp_server, add_windows, write_subscriptions, db
):
    add_windows([_gone("tesla", 5, 3), _gone("bmw", 5, 3, make="BMW", model="320i")])
    bmw_only = write_subscriptions(
        {"recipients": [{"email": BOB, **_daily(filters={"make": "^BMW$"})}]}
    )
    notify(email_settings(notify_subscriptions_file=bmw_only), cadence="daily")
    both = write_subscriptions(
        {"recipients": [{"email": BOB, **_daily(filters={"make": "BMW|Tesla"})}]}
    )
    settings = email_settings(notify_subscriptions_file=both)

    notify(settings, cadence="daily")  # later the same day: the Tesla now matches
    notify(settings, cadence="daily")

    first, second = smtp_server.mailbox(BOB)
    assert (first.subject, second.subject) == (
        "1 gone: BMW 320i",
        "1 gone: Tesla Model 3",
    )
    assert [(row[0], row[3]) for row in _told(db)] == [
        ("bmw", _id(first)),
        ("tesla", _id(second)),
    ]


def test_a_digest_refused_by_the_server_tells_its_cars_gone_on_the_retry(
    email_settings, smtp_server, add_windows, write_subscriptions, db
):
    add_windows([_gone("went", 5, 3)])
    subscriptions = write_subscriptions({"recipients": [{"email": BOB, **_daily()}]})
    settings = email_settings(notify_subscriptions_file=subscriptions)
    smtp_server.refuse_with("550 mailbox unavailable")

    with pytest.raises(NotifyError):
        notify(settings, cadence="daily")
    assert _told(db) == []  # released: nothing was delivered

    smtp_server.refuse_with(None)
    notify(settings, cadence="daily")

    (digest,) = smtp_server.mailbox(BOB)
    assert digest.subject == "1 gone: Tesla Model 3"
    assert _told(db) == [("went", NOW - timedelta(hours=5), BOB, _id(digest))]


def test_a_digest_killed_after_the_server_took_it_is_resent_never_retold(
    email_settings, smtp_server, add_windows, write_subscriptions, db, tmp_path
):
    """kill -9 of a real `athlon-flex notify --cadence daily` after the server's
    250 and before the mark (it waits on our lock on notifications): the rerun
    resends the same message (same Message-ID), nothing is told twice or lost."""
    new = window("new", available_since=NOW - timedelta(hours=2))
    add_windows([_gone("went", 5, 3), new])
    subscriptions = write_subscriptions({"recipients": [{"email": BOB, **_daily()}]})
    settings = email_settings(notify_subscriptions_file=subscriptions)
    locks = TableLocks(settings)
    try:
        smtp_server.hold_recipient(BOB)
        process, _, _ = start_cli(
            "notify",
            "--cadence",
            "daily",
            env=cli_env(settings),
            cwd=tmp_path,
            name="digest-after-250",
        )
        wait_for(smtp_server.handler.holding.is_set, process, "RCPT TO bob")
        locks.lock("notifier.notifications")  # the claim is committed by now
        smtp_server.release()
        wait_for(locks.someone_waits_for_a_lock, process, "the mark")
        kill(process)
        locks.unlock()
    finally:
        locks.close()
    (taken,) = smtp_server.messages
    assert [row[2:] for row in _told(db)] == [(BOB, _id(taken))] * 2  # claimed
    assert _outbox(db) == [(BOB, _id(taken), False)]  # the server took it, unmarked

    notify(settings, cadence="daily")  # the rerun resends it as it was
    notify(settings, cadence="daily")

    assert len(smtp_server.messages) == 2
    (digest,) = smtp_server.mailbox(BOB)
    assert digest.subject == "1 new, 1 gone: Tesla Model 3"
    assert _id(smtp_server.messages[1]) == _id(taken)  # the same message again
    assert _told(db) == [
        ("new", new["available_since"], BOB, _id(digest)),
        ("went", NOW - timedelta(hours=5), BOB, _id(digest)),
    ]
    assert _outbox(db) == [(BOB, _id(digest), True)]


def test_a_daily_push_channel_says_gone_and_until_when(
    make_settings, add_windows, push_server, write_subscriptions, db
):
    add_windows([_gone("went", 5, 3, license_plate="AB-1")])
    url = push_server.url("bob")
    subscriptions = write_subscriptions(
        {"recipients": [{"name": "Bob's phone", "apprise": [url], **_daily()}]}
    )
    settings = make_settings(notify_subscriptions_file=subscriptions)

    notify(settings, cadence="daily")
    notify(settings, cadence="daily")

    (push,) = push_server.messages
    assert push.title == "1 gone: Tesla Model 3"
    assert push.message == (
        "GONE Tesla Model 3 Long Range AWD 2024, AB-1: € 650,00/month, "
        f"available until {local_time(NOW - timedelta(hours=3), ZONE)}"
    )
    assert [(row[0], row[2]) for row in _told(db)] == [("went", channel_key(url))]


def test_a_baseline_makes_cars_gone_before_it_old_news(
    email_settings, smtp_server, add_windows, write_subscriptions, db
):
    add_windows([_gone("went", 5, 3)])
    subscriptions = write_subscriptions({"recipients": [{"email": BOB, **_daily()}]})
    settings = email_settings(notify_subscriptions_file=subscriptions)

    notify(settings, baseline=True)
    notify(settings, cadence="daily")

    assert smtp_server.messages == []
    assert _told(db) == [("went", NOW - timedelta(hours=5), BOB, None)]


def test_notify_baseline_makes_cars_gone_before_a_recipient_came_old_news(
    email_settings, smtp_server, add_windows, write_subscriptions, db
):
    """NOTIFY_BASELINE: a car that came and went before Bob registered is recorded
    without sending at his first turn, like the cars open then."""
    add_windows([_gone("went", 5, 3), window("open", available_since=NOW)])
    subscriptions = write_subscriptions({"recipients": [{"email": BOB, **_daily()}]})
    settings = email_settings(
        notify_subscriptions_file=subscriptions, notify_baseline=True
    )

    summary = notify(settings, cadence="daily")
    notify(settings, cadence="daily", now=NOW + timedelta(days=1))

    assert summary.for_recipient(BOB).baselined == 2
    assert smtp_server.messages == []
    assert [(row[0], row[3]) for row in _told(db)] == [("open", None), ("went", None)]


def test_a_gone_row_has_the_columns_of_a_row_to_notify(add_windows, db):
    add_windows([window("open"), _gone("went", 5, 3)])
    store.sync_recipients(db, [BOB])

    (pending,) = store.pending(db, [BOB])
    (gone,) = store.untold_closed_windows(db, [(BOB, NOW - timedelta(days=1), NOW)])

    assert list(gone) == list(pending)
    assert (gone["vehicle_id"], gone["alert_kind"], gone["left_at"]) == (
        "went",
        "gone",
        None,
    )
