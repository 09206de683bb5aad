"""What arrives in the inbox: recipients, subject, clusters, vehicles, escaping."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from notifier.stage import notify
from tests.notifier.conftest import EARLIER, many_windows, window
from tests.notifier.html_email import parse_email, parse_email_html

SENDER = "notifier@example.org"
# The test server has no certificate, so AUTH runs over plain SMTP there.
NO_TLS_IN_TESTS = pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS"
)


def _cars_in(mail) -> int:
    return sum(len(cluster.vehicles) for cluster in parse_email(mail.html).clusters)


def _local(moment) -> str:
    return moment.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%d-%m-%Y %H:%M")


def test_email_groups_new_vehicles_by_cluster_with_their_key_numbers(
    email_settings, smtp_server, add_windows, notifications
):
    add_windows(
        [
            window("v1"),
            window(
                "v2",
                price_per_month_in_euro=Decimal("599.99"),
                fiscal_value_in_euro=Decimal("1010"),
                license_plate="AB-123-C",
            ),
            window(
                "v3",
                make="BYD",
                model="Seal",
                type="Design",
                model_year=2023,
                license_plate="X-999-Y",
                contribution_in_euro=None,
                net_cost_per_month_in_euro=Decimal("1234567.891"),
            ),
        ]
    )
    settings = email_settings(email_to=["anna@example.nl"])

    summary = notify(settings)

    assert [m.rcpt_tos for m in smtp_server.messages] == [("anna@example.nl",)]
    received = smtp_server.messages[0]
    assert received.mail_from == SENDER
    assert received.message["From"] == SENDER
    assert received.message["To"] == "anna@example.nl"
    assert received.subject == "3 new: Tesla Model 3, BYD Seal"
    # Folded onto its own line (it is long): the same header value.
    assert received.message["List-Unsubscribe"].strip() == (
        f"<mailto:{SENDER}?subject=unsubscribe%20anna%40example.nl>"
    )
    assert received.message["List-Unsubscribe-Post"] is None  # no https endpoint
    parsed = parse_email(received.html)
    clusters = parsed.clusters
    assert parsed.scripts == 0
    assert parsed.intro == "For you in the Athlon Flex showroom: 3 new."
    assert [c.name for c in clusters] == ["BYD Seal", "Tesla Model 3"]
    byd, tesla = clusters
    assert byd.image == "https://img.example.com/v3?w=300"
    assert byd.link == "https://flex.athlon.com/app/showroom/BYD/Seal"
    since = _local(EARLIER)
    # Every field some car has; "Available until" is unknown for all: hidden.
    assert [(v.badge, v.label, v.fields, v.notes) for v in byd.vehicles] == [
        (
            "NEW",
            "Design 2023, X-999-Y",
            {
                "Monthly price": "€ 650,00",
                "Colour": "Zwart",
                "Fuel": "Elektrisch",
                "Range": "500 km",
                "Mileage": "12.000 km",
                "Fiscal value": "€ 45.000,00",
                "Contribution": "-",
                "Net cost": "€ 1.234.567,89",
                "Available since": since,
            },
            [],
        )
    ]
    assert byd.vehicle_links == ["https://flex.athlon.com/app/showroom/BYD/Seal/v3"]
    # Cheapest first within a cluster.
    assert tesla.rows == [
        [
            "NEW Long Range AWD 2024, AB-123-C",
            "€ 599,99",
            "Zwart",
            "Elektrisch",
            "500 km",
            "12.000 km",
            "€ 1.010,00",
            "€ 100,00",
            "€ 420,50",
            since,
        ],
        [
            "NEW Long Range AWD 2024, PL-v1",
            "€ 650,00",
            "Zwart",
            "Elektrisch",
            "500 km",
            "12.000 km",
            "€ 45.000,00",
            "€ 100,00",
            "€ 420,50",
            since,
        ],
    ]
    assert parsed.footer_links == [
        f"mailto:{SENDER}?subject=unsubscribe%20anna%40example.nl"
    ]
    assert "To stop these emails or change which cars you hear about" in (parsed.footer)
    assert tesla.vehicle_links == [
        "https://flex.athlon.com/app/showroom/Tesla/Model%203/v2",
        "https://flex.athlon.com/app/showroom/Tesla/Model%203/v1",
    ]
    text = received.text.replace("\r\n", "\n")
    assert "BYD Seal" in text
    assert (
        "- NEW Long Range AWD 2024, AB-123-C\n"
        "  Monthly price: € 599,99\n"
        "  Colour: Zwart\n"
        "  Fuel: Elektrisch\n"
        "  Range: 500 km\n"
        "  Mileage: 12.000 km\n"
        "  Fiscal value: € 1.010,00\n"
        "  Contribution: € 100,00\n"
        "  Net cost: € 420,50\n"
        f"  Available since: {since}\n"
        "  https://flex.athlon.com/app/showroom/Tesla/Model%203/v2\n"
    ) in text
    assert "Available until" not in text
    assert f'write to {SENDER} (subject "unsubscribe anna@example.nl")' in text
    assert "<" not in text  # the plain part is text, not markup
    assert [(v, r) for v, _, r in notifications()] == [
        ("v1", "anna@example.nl"),
        ("v2", "anna@example.nl"),
        ("v3", "anna@example.nl"),
    ]
    line = summary.for_recipient("anna@example.nl")
    assert (line.emails_sent, line.vehicles, line.recorded) == (1, 3, 3)


def test_subject_is_singular_for_one_vehicle_and_image_width_is_configurable(
    email_settings, smtp_server, add_windows
):
    add_windows([window("v1")])
    notify(email_settings(email_to=["anna@example.nl"], notify_image_width=640))

    (received,) = smtp_server.messages
    assert received.subject == "1 new: Tesla Model 3"
    (cluster,), _ = parse_email_html(received.html)
    assert cluster.image == "https://img.example.com/v1?w=640"


def test_each_email_to_address_gets_its_own_email_and_record(
    email_settings, smtp_server, add_windows, notifications
):
    add_windows([window("v1"), window("v2")])
    settings = email_settings(email_to=["anna@example.nl", "bob@example.nl"])

    summary = notify(settings)

    assert sorted(m.rcpt_tos for m in smtp_server.messages) == [
        ("anna@example.nl",),
        ("bob@example.nl",),
    ]
    assert all(m.subject == "2 new: Tesla Model 3" for m in smtp_server.messages)
    assert [(v, r) for v, _, r in notifications()] == [
        ("v1", "anna@example.nl"),
        ("v2", "anna@example.nl"),
        ("v1", "bob@example.nl"),
        ("v2", "bob@example.nl"),
    ]
    assert (summary.emails_sent, summary.vehicles, summary.recorded) == (2, 4, 4)


def test_untrusted_api_text_arrives_escaped_and_bad_links_are_dropped(
    email_settings, smtp_server, add_windows
):
    add_windows(
        [
            window(
                "v1",
                model="<script>alert('x')</script>",
                type='Sport" onmouseover="steal()',
                showroom_uri="javascript:alert(1)",
                cluster_showroom_uri="https://flex.athlon.com/a?b=1&c=<2>",
            )
        ]
    )
    notify(email_settings(email_to=["anna@example.nl"]))

    (received,) = smtp_server.messages
    html = received.html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert 'onmouseover="steal()' not in html
    assert "javascript:" not in html
    (cluster,), scripts = parse_email_html(html)
    assert scripts == 0
    assert cluster.name == "Tesla <script>alert('x')</script>"
    assert cluster.link == "https://flex.athlon.com/a?b=1&c=%3C2%3E"
    assert cluster.vehicle_links == []  # the javascript: link is not rendered
    assert cluster.rows[0][0] == 'NEW Sport" onmouseover="steal() 2024, PL-v1'


@NO_TLS_IN_TESTS
def test_smtp_login_works_and_no_secret_reaches_the_log(
    email_settings, smtp_server, add_windows, caplog
):
    add_windows([window("v1")])
    secret = "app-pass-NEVER-LOG-1234"
    settings = email_settings(
        email_to=["anna@example.nl"], smtp_user="mailer", smtp_password=secret
    )
    smtp_server.require_login("mailer", secret)
    caplog.set_level(logging.DEBUG)

    summary = notify(settings)

    assert summary.emails_sent == 1
    assert smtp_server.logins == ["mailer"]
    assert secret not in caplog.text
    assert secret not in str(summary)


@NO_TLS_IN_TESTS
def test_wrong_smtp_password_fails_without_logging_it(
    email_settings, smtp_server, add_windows, notifications, caplog
):
    from notifier.errors import NotifyError

    add_windows([window("v1")])
    wrong = "wrong-secret-5678"
    settings = email_settings(
        email_to=["anna@example.nl"], smtp_user="mailer", smtp_password=wrong
    )
    smtp_server.require_login("mailer", "the-right-one")
    caplog.set_level(logging.DEBUG)

    with pytest.raises(NotifyError) as raised:
        notify(settings)

    assert "anna@example.nl" in str(raised.value)
    assert "535" in str(raised.value)
    assert wrong not in caplog.text
    assert wrong not in str(raised.value)
    assert smtp_server.messages == []
    assert notifications() == []


def test_a_field_no_car_has_is_left_out_of_the_email(
    email_settings, smtp_server, add_windows
):
    # Not logged in: no contribution or net cost for any car.
    add_windows(
        [
            window("v1", contribution_in_euro=None, net_cost_per_month_in_euro=None),
            window("v2", contribution_in_euro=None, net_cost_per_month_in_euro=None),
        ]
    )
    notify(email_settings(email_to=["anna@example.nl"]))

    (received,) = smtp_server.messages
    (cluster,), _ = parse_email_html(received.html)
    assert [list(v.fields) for v in cluster.vehicles] == [
        [
            "Monthly price",
            "Colour",
            "Fuel",
            "Range",
            "Mileage",
            "Fiscal value",
            "Available since",
        ]
    ] * 2
    for hidden in ("Contribution", "Net cost", "Available until"):
        assert hidden not in received.html
        assert hidden not in received.text


def test_each_alert_kind_shows_its_badge_and_words():
    from notifier.render import render_email

    left = datetime(2026, 11, 28, 13, 10, tzinfo=UTC)
    rows = [
        {**window("n1", license_plate="N-1"), "lease_speed_median_hours": 2.2},
        {
            **window("p1", license_plate="P-1", price_per_month_in_euro=489),
            "alert_kind": "price_drop",
            "previous_price_per_month_in_euro": Decimal("539"),
            "lease_speed_median_hours": None,
        },
        {**window("b1", license_plate="B-1"), "alert_kind": "back", "left_at": left},
    ]
    email = render_email(rows, image_width=300, timezone="Europe/Amsterdam")

    assert email.subject == "1 new, 1 back, 1 cheaper: Tesla Model 3"
    parsed = parse_email(email.html)
    assert (
        parsed.intro == "For you in the Athlon Flex showroom: 1 new, 1 back, 1 cheaper."
    )
    (cluster,) = parsed.clusters
    shown = {
        v.label.rsplit(", ", 1)[1]: (v.badge, v.fields["Monthly price"], v.notes)
        for v in cluster.vehicles
    }
    assert shown == {
        "N-1": ("NEW", "€ 650,00", ["cars like this are usually leased within 3 h"]),
        "P-1": ("CHEAPER", "now € 489,00 (was € 539,00)", []),
        "B-1": ("BACK", "€ 650,00", ["back again (left 28-11-2026 14:10)"]),
    }
    text = email.text.replace("\r\n", "\n")
    assert (
        "- CHEAPER Long Range AWD 2024, P-1\n  Monthly price: now € 489,00 (was "
        in text
    )
    assert "  back again (left 28-11-2026 14:10)\n" in text
    assert "  cars like this are usually leased within 3 h\n" in text


def test_a_big_batch_goes_as_emails_under_100_kb_each_all_in_one_run(
    email_settings, smtp_server, add_windows, notifications
):
    from tests.faults.invariant import mentions

    makes = [("Tesla", "Model 3"), ("Kia", "EV6"), ("BYD", "Seal")]
    cars = many_windows(240, makes)
    add_windows(cars)
    settings = email_settings(email_to=["anna@example.nl"])

    summary = notify(settings)

    first = smtp_server.messages[0]
    size = len(first.message.as_bytes())
    assert 50_000 < size <= 100_000
    parsed = parse_email(first.html)
    shown = sum(len(c.vehicles) for c in parsed.clusters)
    assert 0 < shown < 240
    rest = 240 - shown
    assert first.subject.startswith(f"{shown} new, {rest} more: ")
    assert parsed.intro == (
        f"For you in the Athlon Flex showroom: {shown} new ({rest} more in the "
        "next email)."
    )
    left = {
        (make, model): sum(
            1
            for n, car in enumerate(cars)
            if makes[n % 3] == (make, model)
            and not mentions([first.text], car["license_plate"])
        )
        for make, model in makes
    }
    assert parsed.left_out == [
        f"{left[(make, model)]} {make} {model}: in the showroom"
        for make, model in sorted(makes)
        if left[(make, model)]
    ]

    # The rest followed in the same run, each email claiming what it shows.
    emails = len(smtp_server.messages)
    assert emails > 1
    assert summary.recipients[0].emails_sent == emails
    assert summary.recipients[0].vehicles == 240
    shown_per_email = [
        sum(len(c.vehicles) for c in parse_email(mail.html).clusters)
        for mail in smtp_server.messages
    ]
    assert sum(shown_per_email) == 240
    assert len({mail.message["Message-ID"] for mail in smtp_server.messages}) == emails
    texts = [mail.text for mail in smtp_server.messages]
    assert all(len(mail.message.as_bytes()) <= 100_000 for mail in smtp_server.messages)
    assert {
        car["license_plate"]: mentions(texts, car["license_plate"]) for car in cars
    } == {car["license_plate"]: 1 for car in cars}
    assert len(notifications()) == 240


def test_the_log_has_a_line_per_email_naming_what_it_carried_not_each_candidate(
    email_settings, smtp_server, add_windows, notifications, caplog
):
    """Cars that wait for a later email, or for the next run after a refusal,
    are not logged as told; each email sent is one line with its count."""
    from notifier.errors import NotifyError

    anna = "anna@example.nl"
    add_windows([window(f"v{n:03}", license_plate=f"P-{n:03}") for n in range(150)])
    handler = smtp_server.handler
    accept = handler.handle_DATA

    async def refuse_the_third(server, session, envelope):
        if handler.data_attempts == 2:
            handler.data_attempts += 1
            return "554 5.7.1 refused for this test"
        return await accept(server, session, envelope)

    handler.handle_DATA = refuse_the_third  # read when the notifier connects
    caplog.set_level(logging.INFO, logger="notifier")

    with pytest.raises(
        NotifyError, match=r"554 5\.7\.1 refused for this test"
    ) as raised:
        notify(email_settings(email_to=[anna]))

    first, second = smtp_server.messages
    counts = [_cars_in(mail) for mail in (first, second)]
    emailed = [r.getMessage() for r in caplog.records if "Emailed" in r.getMessage()]
    assert emailed == [
        f"Emailed {anna} {count} car(s) ({count} new): {mail.subject} "
        f"({mail.message['Message-ID']})"
        for count, mail in zip(counts, (first, second), strict=True)
    ]
    assert not [r for r in caplog.records if r.getMessage().startswith("New for")]
    assert len(notifications()) == sum(counts) < 150
    # The summary says what was sent before the failure.
    assert str(raised.value.summary.for_recipient(anna)).endswith(
        f"refused for this test) after 2 emails, {sum(counts)} vehicles, "
        f"{sum(counts)} recorded"
    )

    handler.handle_DATA = accept
    caplog.clear()
    notify(email_settings(email_to=[anna]))

    emailed = [r.getMessage() for r in caplog.records if "Emailed" in r.getMessage()]
    later = [_cars_in(mail) for mail in smtp_server.messages[2:]]
    assert len(emailed) == len(later) >= 1
    assert sum(counts + later) == len(notifications()) == 150


def test_the_next_email_goes_to_the_server_while_the_one_before_is_marked(
    email_settings, smtp_server, add_windows, notifications, monkeypatch
):
    """The server takes the next email while the notifier marks the one before:
    the first mark holds until the second send has begun (it would wait in vain
    if the second were sent only after the first was marked)."""
    import threading

    from notifier import store
    from notifier.mailer import Mailer

    add_windows([window(f"v{n:03}", license_plate=f"P-{n:03}") for n in range(150)])
    sends: list[str] = []
    second_send_began = threading.Event()
    send, mark_sent = Mailer.send, store.mark_sent

    def recording_send(mailer, message: bytes, recipient: str) -> None:
        sends.append(recipient)
        if len(sends) == 2:
            second_send_began.set()
        send(mailer, message, recipient)

    marks: list[bool] = []

    def mark_after_the_next_send_began(conn, message_id: str) -> None:
        marks.append(second_send_began.wait(timeout=60))
        mark_sent(conn, message_id)

    monkeypatch.setattr(Mailer, "send", recording_send)
    monkeypatch.setattr(store, "mark_sent", mark_after_the_next_send_began)

    notify(email_settings(email_to=["anna@example.nl"]))

    emails = len(smtp_server.messages)
    assert emails > 2
    assert marks == [True] * emails
    assert len(notifications()) == 150


def test_a_mark_that_fails_after_the_next_email_went_is_made_good_by_the_next_run(
    email_settings, smtp_server, add_windows, notifications, monkeypatch, db
):
    """The first mark fails (the database) while the second email is already with
    the server: the run stops, and the next resends exactly the unmarked emails
    with their own Message-IDs; every car is recorded once and no email is left
    unmarked."""
    import psycopg2

    from notifier import store
    from notifier.errors import NotifyError

    add_windows([window(f"v{n:03}", license_plate=f"P-{n:03}") for n in range(150)])
    settings = email_settings(email_to=["anna@example.nl"])
    mark_sent = store.mark_sent

    def failing_first_mark(conn, message_id: str) -> None:
        monkeypatch.setattr(store, "mark_sent", mark_sent)
        raise psycopg2.OperationalError("server closed the connection")

    monkeypatch.setattr(store, "mark_sent", failing_first_mark)
    with pytest.raises(NotifyError, match="server closed the connection"):
        notify(settings)
    first_run = [mail.message["Message-ID"] for mail in smtp_server.messages]
    assert len(first_run) == 2  # the first, and the next sent before that mark

    notify(settings)

    ids = [mail.message["Message-ID"] for mail in smtp_server.messages]
    assert ids[2:4] == first_run  # resent as they were, the same Message-IDs
    assert len(set(ids)) == len(ids) - 2  # nothing else twice
    assert len(notifications()) == 150
    with db.cursor() as cursor:
        cursor.execute(
            "select count(*) filter (where sent_at is null), count(*) "
            "from notifier.outbox"
        )
        assert cursor.fetchone() == (0, len(set(ids)))
