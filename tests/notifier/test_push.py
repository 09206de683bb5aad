"""Push channels through Apprise, to a real local HTTP endpoint (`json://`): the
text, the bookkeeping per channel, failures and secrets."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from athlon_flex.errors import ConfigurationError
from notifier.errors import NotifyConfigurationError, NotifyError
from notifier.push import channel_key
from notifier.stage import check_configuration, notify
from tests.notifier.conftest import window

ANNA = "anna@example.nl"
SECRET = "tk_SECRET-7781"


def _dump_notifier(db) -> str:
    """Every value of every notifier table as text: where a URL must never be."""
    with db.cursor() as cursor:
        text = []
        for table in ("notifications", "recipients", "outbox", "state"):
            cursor.execute(f"select * from notifier.{table}")
            text.append(repr(cursor.fetchall()))
    return "\n".join(text)


def test_a_push_channel_gets_a_short_text_of_cars_with_prices_and_links(
    make_settings,
    add_windows,
    notifications,
    push_server,
    write_subscriptions,
    db,
    caplog,
):
    add_windows(
        [
            window("v1"),
            window(
                "v2", price_per_month_in_euro=Decimal("599.99"), license_plate="AB-1"
            ),
        ]
    )
    url = push_server.url(f"hook-{SECRET}")
    key = channel_key(url)
    subscriptions = write_subscriptions(
        {"recipients": [{"name": "Anna's phone", "apprise": [url]}]}
    )
    caplog.set_level(logging.DEBUG)

    summary = notify(make_settings(notify_subscriptions_file=subscriptions))

    (push,) = push_server.messages
    assert push.title == "2 new: Tesla Model 3"
    assert push.message == (
        "NEW Tesla Model 3 Long Range AWD 2024, AB-1: € 599,99/month "
        "https://flex.athlon.com/app/showroom/Tesla/Model%203/v2\n"
        "NEW Tesla Model 3 Long Range AWD 2024, PL-v1: € 650,00/month "
        "https://flex.athlon.com/app/showroom/Tesla/Model%203/v1"
    )
    assert key.startswith("apprise:") and len(key) == len("apprise:") + 16
    assert [(v, r) for v, _, r in notifications()] == [("v1", key), ("v2", key)]
    line = summary.for_recipient(key)
    assert (line.channel, line.pushes_sent, line.vehicles, line.recorded) == (
        "push",
        1,
        2,
        2,
    )
    assert str(line) == f"{key}: 1 push, 2 vehicles, 2 recorded"
    # The URL holds the token: not in the log, the summary or any table.
    for place in (caplog.text, str(summary), _dump_notifier(db)):
        assert SECRET not in place
    assert f"Pushed to {key} (JSON, Anna's phone)" in caplog.text

    assert notify(make_settings(notify_subscriptions_file=subscriptions)).recorded == 0
    assert len(push_server.messages) == 1


def test_email_and_each_push_channel_of_a_recipient_are_told_once_each(
    email_settings,
    smtp_server,
    add_windows,
    notifications,
    push_server,
    write_subscriptions,
):
    add_windows([window("v1")])
    phone, watch = push_server.url("phone"), push_server.url("watch")
    subscriptions = write_subscriptions(
        {"recipients": [{"email": ANNA, "apprise": [phone, watch]}]}
    )
    settings = email_settings(notify_subscriptions_file=subscriptions)

    summary = notify(settings)

    assert [m.rcpt_tos for m in smtp_server.messages] == [(ANNA,)]
    assert [len(push_server.messages_to(p)) for p in ("phone", "watch")] == [1, 1]
    assert sorted(r for _, _, r in notifications()) == sorted(
        [ANNA, channel_key(phone), channel_key(watch)]
    )
    assert (summary.emails_sent, summary.pushes_sent) == (1, 2)
    assert str(summary).startswith("notify (instant): 1 emails sent, 2 pushes sent")
    notify(settings)
    assert (len(smtp_server.messages), len(push_server.messages)) == (1, 2)


@pytest.mark.parametrize("fault", ["500", "down"])
def test_a_failed_push_records_nothing_blocks_no_one_and_goes_next_run(
    fault,
    email_settings,
    smtp_server,
    add_windows,
    notifications,
    push_server,
    write_subscriptions,
    caplog,
):
    add_windows([window("v1")])
    broken, fine = push_server.url(f"broken-{SECRET}"), push_server.url("fine")
    subscriptions = write_subscriptions(
        {
            "recipients": [
                {"name": "anna", "apprise": [broken]},
                {"email": ANNA, "apprise": [fine]},
            ]
        }
    )
    settings = email_settings(notify_subscriptions_file=subscriptions)
    if fault == "500":
        push_server.status = 500
    else:
        push_server.stop()

    with pytest.raises(NotifyError) as raised:
        notify(settings)

    message = str(raised.value)
    assert channel_key(broken) in message and channel_key(fine) in message
    assert SECRET not in message and SECRET not in caplog.text
    assert push_server.messages == []
    # Email is another channel: served.
    assert [m.rcpt_tos for m in smtp_server.messages] == [(ANNA,)]
    assert [r for _, _, r in notifications()] == [ANNA]

    if fault == "500":
        push_server.status = 200
    else:
        push_server.start()
    notify(settings)
    notify(settings)

    assert sorted(m.path for m in push_server.messages) == sorted(
        [f"/broken-{SECRET}", "/fine"]
    )
    assert sorted(r for _, _, r in notifications()) == sorted(
        [ANNA, channel_key(broken), channel_key(fine)]
    )
    assert len(smtp_server.messages) == 1


def test_past_the_push_limit_the_rest_is_counted_and_follows_next_run(
    make_settings, add_windows, notifications, push_server, write_subscriptions
):
    add_windows(
        [window(f"t{n:02}", license_plate=f"T-{n:02}") for n in range(12)]
        + [window(f"k{n}", make="Kia", model="EV6") for n in range(3)]
    )
    url = push_server.url("hook")
    subscriptions = write_subscriptions(
        {"recipients": [{"name": "anna", "apprise": url}]}
    )
    settings = make_settings(notify_subscriptions_file=subscriptions)

    notify(settings)

    (first,) = push_server.messages
    lines = first.message.split("\n")
    assert len(first.message) <= 1000
    shown = len(lines) - 1
    assert lines[-1] == f"{15 - shown} more in the next message: " + (
        f"{3 - shown} Kia EV6, 12 Tesla Model 3"
        if shown < 3
        else f"{15 - shown} Tesla Model 3"
    )
    assert first.title == f"{shown} new, {15 - shown} more: " + (
        "Kia EV6" if shown <= 3 else "Tesla Model 3, Kia EV6"
    )
    # Only what the push showed is claimed.
    assert len(notifications()) == shown

    for _ in range(5):
        notify(settings)
    told = [line for m in push_server.messages for line in m.message.split("\n")]
    cars = [line for line in told if line.startswith("NEW ")]
    assert len(cars) == len(set(cars)) == 15
    assert len(notifications()) == 15


def test_an_apprise_url_apprise_does_not_know_stops_the_run_without_showing_it(
    make_settings, write_subscriptions
):
    subscriptions = write_subscriptions(
        {
            "recipients": [
                {"email": ANNA},
                {"name": "bob", "apprise": [f"nosuchservice://{SECRET}@host"]},
            ]
        }
    )
    settings = make_settings(notify_subscriptions_file=subscriptions)

    with pytest.raises(NotifyConfigurationError) as raised:
        check_configuration(settings)

    assert isinstance(raised.value, ConfigurationError)  # the CLI exits 2
    message = str(raised.value)
    assert "\n" not in message
    assert SECRET not in message
    assert "recipient #2 (bob), apprise: URL #1: Apprise does not recognise " in (
        message
    )
    assert "scheme 'nosuchservice'" in message


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            {"apprise": ["json://127.0.0.1/x"]},
            "a recipient without `email` needs a `name`",
        ),
        ({"name": "x"}, "give an `email`, `apprise` URLs, or both"),
        (
            {"name": "x", "apprise": ["json://127.0.0.1/x", " json://127.0.0.1/x"]},
            "the same URL is listed twice",
        ),
    ],
)
def test_a_recipient_needs_a_channel_and_a_name(
    entry, error, make_settings, write_subscriptions
):
    subscriptions = write_subscriptions({"recipients": [entry]})
    with pytest.raises(NotifyConfigurationError) as raised:
        check_configuration(make_settings(notify_subscriptions_file=subscriptions))
    assert error in str(raised.value)


def test_one_push_channel_cannot_belong_to_two_recipients(
    make_settings, write_subscriptions
):
    url = f"json://127.0.0.1/{SECRET}"
    subscriptions = write_subscriptions(
        {"recipients": [{"name": "a", "apprise": url}, {"name": "b", "apprise": url}]}
    )
    with pytest.raises(NotifyConfigurationError) as raised:
        check_configuration(make_settings(notify_subscriptions_file=subscriptions))
    assert f"an Apprise URL of b ({channel_key(url)}) is also another" in str(
        raised.value
    )
    assert SECRET not in str(raised.value)


def test_a_yaml_error_on_a_line_with_a_url_does_not_quote_the_line(
    make_settings, write_subscriptions
):
    subscriptions = write_subscriptions(
        f"recipients:\n  - name: anna\n    apprise: [ntfy://{SECRET}\n"
    )
    with pytest.raises(NotifyConfigurationError) as raised:
        check_configuration(make_settings(notify_subscriptions_file=subscriptions))
    message = str(raised.value)
    assert "is not valid YAML (expected ',' or ']', but got '<stream end>' at " in (
        message
    )
    assert SECRET not in message
