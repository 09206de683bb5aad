"""Several people, different wishes: filters, cadences, and bad configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from notifier.errors import NotifyError
from notifier.stage import notify
from notifier.subscriptions import load_subscriptions
from tests.notifier.conftest import window
from tests.notifier.html_email import parse_email_html

ANNA = "anna@example.nl"
BOB = "bob@example.nl"
EXAMPLE = Path(__file__).parents[2] / "examples" / "subscriptions.yml"


def _plates(received) -> list[str]:
    clusters, _ = parse_email_html(received.html)
    return [row[0].rsplit(", ", 1)[1] for cluster in clusters for row in cluster.rows]


@pytest.fixture
def showroom(add_windows) -> None:
    add_windows(
        [
            window("t1", license_plate="T-1", net_cost_per_month_in_euro=Decimal(380)),
            window("t2", license_plate="T-2", net_cost_per_month_in_euro=Decimal(520)),
            window(
                "b1",
                make="BMW",
                model="320i",
                fuel_type="Benzine",
                is_electric=False,
                range_in_km=700,
                color="Blauw",
                license_plate="B-1",
                net_cost_per_month_in_euro=Decimal(300),
            ),
            window(
                "k1",
                make="Kia",
                model="EV6",
                range_in_km=380,
                license_plate="K-1",
                net_cost_per_month_in_euro=None,
            ),
        ]
    )


def test_recipients_with_different_filters_get_different_emails(
    email_settings, smtp_server, showroom, notifications, write_subscriptions
):
    subscriptions = write_subscriptions(
        {
            "recipients": [
                {
                    "email": ANNA,
                    "filters": {
                        "fuel_type": "elektrisch",  # regexes ignore case
                        "max_net_cost_per_month": 450,
                    },
                },
                {
                    "email": BOB,
                    # Any of these sets: a blue car, or an electric one with range.
                    "filters": [
                        {"color": "^blauw$"},
                        {"is_electric": True, "min_range_km": 400},
                    ],
                },
            ]
        }
    )
    settings = email_settings(notify_subscriptions_file=subscriptions)

    notify(settings)

    (to_anna,) = smtp_server.messages_to(ANNA)
    (to_bob,) = smtp_server.messages_to(BOB)
    # k1 has no known net cost, so a net-cost bound cannot pass it.
    assert _plates(to_anna) == ["T-1"]
    assert to_anna.subject == "1 new: Tesla Model 3"
    assert _plates(to_bob) == ["B-1", "T-1", "T-2"]
    assert to_bob.subject == "3 new: Tesla Model 3, BMW 320i"
    assert sorted((v, r) for v, _, r in notifications()) == [
        ("b1", BOB),
        ("t1", ANNA),
        ("t1", BOB),
        ("t2", BOB),
    ]


def test_extra_filters_narrow_the_run_and_the_rest_follows_later(
    email_settings, smtp_server, showroom, notifications
):
    settings = email_settings(email_to=[ANNA])

    notify(settings, extra_filters=[{"make": "^kia$"}, {"license_plate": "^B-"}])

    (first,) = smtp_server.messages
    assert _plates(first) == ["B-1", "K-1"]
    assert sorted(v for v, _, _ in notifications()) == ["b1", "k1"]

    notify(settings)

    assert _plates(smtp_server.messages[1]) == ["T-1", "T-2"]


def test_daily_recipients_are_skipped_by_the_instant_run(
    email_settings, smtp_server, showroom, notifications, write_subscriptions
):
    subscriptions = write_subscriptions(
        {"recipients": [{"email": ANNA}, {"email": BOB, "cadence": "daily"}]}
    )

    summary = notify(email_settings(notify_subscriptions_file=subscriptions))

    assert [m.rcpt_tos for m in smtp_server.messages] == [(ANNA,)]
    assert {r for _, _, r in notifications()} == {ANNA}
    assert [item.recipient for item in summary.recipients] == [ANNA]


def test_daily_run_sends_what_opened_before_the_digest_time_and_only_once(
    email_settings, smtp_server, add_windows, notifications, write_subscriptions
):
    zone = ZoneInfo("Europe/Amsterdam")
    now = datetime.now(UTC)
    digest = (now - timedelta(hours=1)).astimezone(zone).replace(second=0)
    add_windows(
        [
            window("old", available_since=now - timedelta(hours=2)),
            window("fresh", available_since=now - timedelta(minutes=10)),
        ]
    )
    subscriptions = write_subscriptions(
        {
            "recipients": [
                {"email": ANNA},
                {
                    "email": BOB,
                    "cadence": "daily",
                    "daily_time": digest.strftime("%H:%M"),
                    "timezone": "Europe/Amsterdam",
                },
            ]
        }
    )
    settings = email_settings(notify_subscriptions_file=subscriptions)

    summary = notify(settings, cadence="daily")

    assert [m.rcpt_tos for m in smtp_server.messages] == [(BOB,)]
    assert _plates(smtp_server.messages[0]) == ["PL-old"]
    assert [(v, r) for v, _, r in notifications()] == [("old", BOB)]
    assert [item.recipient for item in summary.recipients] == [BOB]

    # The next cycle's daily run: the fresh car waits for tomorrow's digest.
    assert notify(settings, cadence="daily").emails_sent == 0
    assert len(smtp_server.messages) == 1


def test_a_daily_digest_carries_the_drops_before_its_slot_each_told_once(
    email_settings,
    smtp_server,
    add_windows,
    add_price_drop,
    notifications,
    write_subscriptions,
    db,
):
    """Anna hears at once, Bob in his digest: each drop once to each, the digest
    taking the drops before its slot and leaving a later one for tomorrow's."""
    zone = ZoneInfo("Europe/Amsterdam")
    now = datetime.now(UTC)
    slot = (now - timedelta(hours=1)).astimezone(zone).replace(second=0)
    opened = now - timedelta(hours=3)
    known = window("known", available_since=opened, price_per_month_in_euro=600)
    late = window("late", available_since=opened, price_per_month_in_euro=500)
    fresh = window(
        "fresh", available_since=now - timedelta(hours=2), price_per_month_in_euro=400
    )
    add_windows([known, late, fresh])
    # Both were told of `known` and `late` before they got cheaper; `fresh` is
    # news to both, and got cheaper before anyone was told.
    with db.cursor() as cursor:
        for recipient in (ANNA, BOB):
            for row in (known, late):
                cursor.execute(
                    "insert into notifier.notifications "
                    "(vehicle_id, available_since, recipient) values (%s, %s, %s)",
                    (row["vehicle_id"], opened, recipient),
                )
    add_price_drop(known, previous=Decimal(700), changed_at=now - timedelta(hours=2))
    add_price_drop(late, previous=Decimal(600), changed_at=now - timedelta(minutes=5))
    add_price_drop(fresh, previous=Decimal(450), changed_at=now - timedelta(hours=2))
    subscriptions = write_subscriptions(
        {
            "recipients": [
                {"email": ANNA, "price_drop_percent": 5},
                {
                    "email": BOB,
                    "price_drop_percent": 5,
                    "cadence": "daily",
                    "daily_time": slot.strftime("%H:%M"),
                    "timezone": "Europe/Amsterdam",
                },
            ]
        }
    )
    settings = email_settings(notify_subscriptions_file=subscriptions)

    for _ in range(2):  # the second round finds nothing left to tell
        notify(settings, cadence="instant")
        notify(settings, cadence="daily")

    (instant,) = smtp_server.mailbox(ANNA)
    (digest,) = smtp_server.mailbox(BOB)
    assert instant.subject == "1 new, 2 cheaper: Tesla Model 3"
    assert digest.subject == "1 new, 1 cheaper: Tesla Model 3"
    assert _plates(digest) == ["PL-fresh", "PL-known"]
    assert "now € 600,00 (was € 700,00)" in digest.text
    assert "was € 450,00" not in digest.text  # fresh is new, at its new price
    assert "PL-late" not in digest.text
    with db.cursor() as cursor:
        cursor.execute(
            "select vehicle_id, recipient, message_id "
            "from notifier.price_drop_notifications order by recipient, vehicle_id"
        )
        told = cursor.fetchall()
    ids = {ANNA: instant.message["Message-ID"], BOB: digest.message["Message-ID"]}
    assert told == [
        ("fresh", ANNA, ids[ANNA]),
        ("known", ANNA, ids[ANNA]),
        ("late", ANNA, ids[ANNA]),
        ("fresh", BOB, ids[BOB]),
        ("known", BOB, ids[BOB]),
    ]
    assert sorted((v, r) for v, _, r in notifications()) == sorted(
        [(v, r) for v in ("fresh", "known", "late") for r in (ANNA, BOB)]
    )


def _entry(**values) -> dict:
    return {"recipients": [{"email": ANNA}, {"email": BOB, **values}]}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            _entry(filters={"colour": "blue"}),
            "recipient #2 (bob@example.nl)",
            id="unknown-attribute",
        ),
        pytest.param(
            _entry(filters={"make": "(Tesla"}),
            "key 'make': regex '(Tesla' is refused",
            id="bad-regex",
        ),
        pytest.param(
            _entry(filters={"max_net_cost_per_month": "cheap"}),
            "recipient #2 (bob@example.nl), filters.0.max_net_cost_per_month",
            id="wrong-type-bound",
        ),
        pytest.param(
            _entry(filters={"model": ["3", "Y"]}),
            "key 'model': expected a regex (text), got list",
            id="wrong-type-regex",
        ),
        pytest.param(
            _entry(cadence="weekly"),
            "recipient #2 (bob@example.nl), cadence",
            id="unknown-cadence",
        ),
        pytest.param(
            "recipients:\n  - email: bob@example.nl\n    cadence: daily\n"
            "    daily_time: 7:30\n",
            'write the time as quoted text, e.g. "07:30"',
            id="unquoted-time",
        ),
        pytest.param(
            _entry(email="not-an-address"),
            "'not-an-address' is not an email address",
            id="bad-address",
        ),
        pytest.param(
            {"recipients": [{"email": ANNA}, {"email": "Anna@Example.nl"}]},
            "'anna@example.nl' is listed twice (addresses ignore case)",
            id="duplicate",
        ),
        pytest.param(
            _entry(email="bob@example.nl\r\nBcc: eve@example.nl"),
            "recipient #2, email: 'bob@example.nl\\r\\nBcc: eve@example.nl' is not "
            "an email address (it contains LF, CR, a space)",
            id="crlf-in-address",
        ),
        pytest.param(
            _entry(filters={"type": "(?<=Long )Range"}),
            "recipient #2 (bob@example.nl), filters.0: key 'type': regex "
            "'(?<=Long )Range' is refused (invalid perl operator: (?<=)",
            id="lookbehind",
        ),
        pytest.param(_entry(wishes={}), "wishes", id="unknown-key"),
        pytest.param("recipients: [", "not valid YAML", id="not-yaml"),
    ],
)
def test_invalid_subscriptions_file_fails_before_any_email_is_sent(
    email_settings,
    smtp_server,
    showroom,
    notifications,
    write_subscriptions,
    db,
    content,
    expected,
):
    path = write_subscriptions(content)
    settings = email_settings(notify_subscriptions_file=path)

    with pytest.raises(NotifyError) as raised:
        notify(settings)

    message = str(raised.value)
    assert str(path) in message
    assert expected in message
    assert "nothing was sent or recorded" in message
    assert smtp_server.messages == []
    assert notifications() == []
    with db.cursor() as cursor:
        cursor.execute("select count(*) from notifier.recipients")
        assert cursor.fetchone() == (0,)


def test_unknown_attribute_error_names_the_key(write_subscriptions):
    path = write_subscriptions(_entry(filters={"colour": "blue"}))
    with pytest.raises(NotifyError, match="key 'colour': unknown attribute"):
        load_subscriptions(path)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([{"colour": "x"}], "extra_filters[0]: key 'colour': unknown attribute"),
        ([{}, {"make": "[a-"}], "extra_filters[1]: key 'make': regex '[a-' is refused"),
        # RE2 cannot run a backreference in linear time: refused, not attempted.
        (
            [{"model": "^(a)\\1$"}],
            "extra_filters[0]: key 'model': regex '^(a)\\\\1$' is refused",
        ),
        ([{"min_range_km": "far"}], "extra_filters[0].min_range_km"),
    ],
)
def test_invalid_extra_filters_fail_before_any_email_is_sent(
    email_settings, smtp_server, showroom, notifications, extra, expected
):
    with pytest.raises(NotifyError) as raised:
        notify(email_settings(email_to=[ANNA]), extra_filters=extra)

    assert expected in str(raised.value)
    assert smtp_server.messages == []
    assert notifications() == []


def test_missing_subscriptions_file_is_an_error(
    email_settings, smtp_server, showroom, tmp_path
):
    missing = tmp_path / "nope.yml"
    with pytest.raises(NotifyError, match="Cannot read subscriptions file"):
        notify(email_settings(notify_subscriptions_file=missing))
    assert smtp_server.messages == []


def test_example_subscriptions_file_is_valid():
    subscriptions = load_subscriptions(EXAMPLE)
    assert [s.cadence for s in subscriptions] == [
        "instant",
        "daily",
        "instant",
        "instant",
    ]
    assert [s.email for s in subscriptions] == [
        "anna@example.nl",
        "bob@example.nl",
        "carla@example.nl",
        None,
    ]
    (dave,) = [s for s in subscriptions if s.apprise]
    assert (dave.name, [c.service for c in dave.push_channels()]) == (
        "dave's phone",
        ["ntfy"],
    )
