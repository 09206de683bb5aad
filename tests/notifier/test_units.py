"""The small pure parts: money and time formats, digest slots, transports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from athlon_flex.settings import Settings
from notifier.mailer import SmtpTransport, transport_from_settings
from notifier.render import euro, local_time, safe_url, subject_for
from notifier.schedule import (
    due_daily_digest,
    last_digest_slot,
    previous_digest_slot,
)


def _settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def _transport(**values) -> SmtpTransport:
    """The transport these settings choose; there must be one."""
    transport = transport_from_settings(_settings(**values))
    assert transport is not None
    return transport


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (Decimal("1010"), "€ 1.010,00"),
        (0, "€ 0,00"),
        (599.99, "€ 599,99"),
        (Decimal("1234567.895"), "€ 1.234.567,90"),
        (-5, "€ -5,00"),
        (None, "-"),
    ],
)
def test_euro_amounts_are_dutch_style(amount, shown):
    assert euro(amount) == shown


def _kinds(*kinds_and_models: tuple[str, str, str]) -> list[dict]:
    return [
        {"alert_kind": kind, "make": make, "model": model}
        for kind, make, model in kinds_and_models
    ]


@pytest.mark.parametrize(
    ("rows", "more", "subject"),
    [
        (_kinds(("new", "Tesla", "Model 3")), 0, "1 new: Tesla Model 3"),
        (
            _kinds(
                ("new", "Kia", "EV6"),
                ("new", "Tesla", "Model 3"),
                ("price_drop", "Tesla", "Model 3"),
                ("new", "Tesla", "Model 3"),
            ),
            0,
            "3 new, 1 cheaper: Tesla Model 3, Kia EV6",
        ),
        (
            _kinds(("back", "BYD", "Seal"), ("price_drop", "BYD", "Seal")),
            7,
            "1 back, 1 cheaper, 7 more: BYD Seal",
        ),
        # Cut at a whole model, saying there are more.
        (
            _kinds(
                *[("new", "Volkswagen", f"ID.{n} Pro Performance") for n in range(9)]
            ),
            0,
            "9 new: Volkswagen ID.0 Pro Performance, ...",
        ),
        (
            _kinds(("new", "M" * 90, "X")),
            0,
            "1 new: ...",
        ),
    ],
)
def test_subject_counts_each_kind_and_names_the_biggest_models(rows, more, subject):
    assert subject_for(rows, more=more) == subject
    assert len(subject) <= 68


def test_available_since_is_shown_in_amsterdam_time_across_dst():
    winter = datetime(2025, 1, 15, 12, 5, tzinfo=UTC)
    summer = datetime(2025, 7, 15, 12, 5, tzinfo=UTC)
    assert local_time(winter, "Europe/Amsterdam") == "15-01-2025 13:05"
    assert local_time(summer, "Europe/Amsterdam") == "15-07-2025 14:05"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        (
            "https://flex.athlon.com/app/showroom/Kia/EV 6/1",
            "https://flex.athlon.com/app/showroom/Kia/EV%206/1",
        ),
        ("javascript:alert(1)", None),
        ("data:text/html,<b>x</b>", None),
        ("//evil.example/x", None),
        ("", None),
        (None, None),
    ],
)
def test_only_http_links_are_rendered(url, safe):
    assert safe_url(url) == safe
    assert safe_url(url) == safe  # asked again: the same answer from the cache


def test_a_link_too_long_to_cache_is_checked_the_same_way():
    from notifier.render import MAX_CACHED_URL_CHARS

    path = "a b" * MAX_CACHED_URL_CHARS
    assert safe_url(f"https://example.org/{path}") == (
        "https://example.org/" + "a%20b" * MAX_CACHED_URL_CHARS
    )
    assert safe_url(f"javascript:{path}") is None


def test_a_renderers_order_is_rows_in_email_order_whatever_the_rows_hold():
    from notifier.render import EmailRenderer, rows_in_email_order
    from tests.notifier.conftest import window

    rows = [
        window("a", price_per_month_in_euro=Decimal("700")),
        window("b", make="Kia", model="EV6", price_per_month_in_euro=Decimal("NaN")),
        window("c", price_per_month_in_euro=None),
        window("d", make="Kia", model="EV6", price_per_month_in_euro=Decimal("5")),
        window("e", available_until=datetime(2025, 1, 1, tzinfo=UTC)),
        {**window("f", price_per_month_in_euro=Decimal("1")), "alert_kind": "gone"},
        {**window("g"), "unhashable": ["a list"]},  # no cached place: sorted anyway
        window("h", make=None, model=None, license_plate=None),
    ]
    renderer = EmailRenderer(image_width=300, timezone="Europe/Amsterdam")
    expected = rows_in_email_order(rows)
    assert renderer.in_email_order(rows) == expected
    assert renderer.in_email_order(reversed(rows)) == expected  # from the cache
    assert "".join(row["vehicle_id"] for row in expected) == "hdbegacf"


def test_digest_slot_is_today_once_passed_else_yesterday_in_local_time():
    at_0730 = time(7, 30)
    # 2025-03-30 is the spring DST switch in Amsterdam (UTC+1 → UTC+2 at 02:00).
    before = datetime(2025, 3, 30, 5, 0, tzinfo=UTC)  # 07:00 local
    after = datetime(2025, 3, 30, 5, 45, tzinfo=UTC)  # 07:45 local
    assert last_digest_slot(at_0730, "Europe/Amsterdam", before) == datetime(
        2025, 3, 29, 6, 30, tzinfo=UTC
    )
    assert last_digest_slot(at_0730, "Europe/Amsterdam", after) == datetime(
        2025, 3, 30, 5, 30, tzinfo=UTC
    )


def test_the_previous_digest_slot_is_the_local_day_before_across_dst():
    """The bound of a digest's cars gone: 23 hours back over the spring switch."""
    at_0730 = time(7, 30)
    slot = datetime(2025, 3, 30, 5, 30, tzinfo=UTC)  # 07:30 CEST
    assert previous_digest_slot(at_0730, "Europe/Amsterdam", slot) == datetime(
        2025, 3, 29, 6, 30, tzinfo=UTC
    )


def test_daily_digest_is_due_only_in_the_interval_holding_a_digest_time(
    tmp_path: Path,
):
    path = tmp_path / "subscriptions.yml"
    path.write_text(
        "recipients:\n"
        "  - email: anna@example.nl\n"
        "  - email: bob@example.nl\n"
        "    cadence: daily\n"
        '    daily_time: "07:30"\n'
        "  - email: carla@example.nl\n"
        "    cadence: daily\n",  # NOTIFY_DAILY_TIME
        encoding="utf-8",
    )
    settings = _settings(notify_subscriptions_file=path, notify_daily_time=time(18, 0))
    june = datetime(2025, 6, 2, tzinfo=UTC)  # Amsterdam is UTC+2

    assert due_daily_digest(settings, june.replace(hour=5, minute=35))
    assert not due_daily_digest(settings, june.replace(hour=5, minute=45))
    assert due_daily_digest(settings, june.replace(hour=16, minute=0))
    assert due_daily_digest(
        settings,
        june.replace(hour=9),
        since=june.replace(hour=5),  # a long interval still holds 07:30
    )
    assert not due_daily_digest(_settings(email_to=["anna@example.nl"]), june)


def test_gmail_is_the_transport_with_an_app_password_and_no_smtp_host():
    transport = _transport(
        email_from="me@gmail.com",
        email_to=["anna@example.nl"],
        google_app_password="abcd efgh ijkl mnop",
    )
    assert (transport.host, transport.port, transport.security, transport.user) == (
        "smtp.gmail.com",
        465,
        "ssl",
        "me@gmail.com",
    )
    assert "abcd" not in transport.describe()
    assert "abcd" not in repr(transport)


def test_any_smtp_server_with_its_own_user_and_default_port():
    transport = _transport(
        email_from="alerts@example.org",
        email_to=["anna@example.nl"],
        smtp_host="mail.example.org",
        smtp_security="starttls",
        smtp_user="apikey",
        smtp_password="s3cret",
    )
    assert (transport.host, transport.port, transport.security, transport.user) == (
        "mail.example.org",
        587,
        "starttls",
        "apikey",
    )
    assert transport.describe() == "mail.example.org:587 (starttls as apikey)"


def test_email_is_enabled_by_a_subscriptions_file_without_email_to(tmp_path):
    transport = {"email_from": "a@example.org", "smtp_host": "localhost"}
    assert not _settings().email_configured
    assert not _settings(**transport).email_configured
    assert _settings(**transport, email_to=["b@example.org"]).email_configured
    assert _settings(
        **transport, notify_subscriptions_file=tmp_path / "s.yml"
    ).email_configured
    assert not _settings(notify_subscriptions_file=tmp_path / "s.yml").email_configured


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (1e30, "€ 1.000.000.000.000.000.000.000.000.000.000,00"),
        (Decimal("1e30"), "€ 1.000.000.000.000.000.000.000.000.000.000,00"),
        (Decimal("NaN"), "-"),
        (float("nan"), "-"),
        (Decimal("Infinity"), "-"),
        (float("-inf"), "-"),
        ("not a number", "-"),
        (Decimal("-0.005"), "€ -0,01"),
    ],
)
def test_euro_never_fails_on_what_numeric_can_hold(amount, shown):
    assert euro(amount) == shown


def test_an_email_renders_whatever_the_mart_holds():
    from notifier.render import render_email
    from tests.notifier.conftest import window

    huge = "x" * 200_000
    rows = [
        window("a", price_per_month_in_euro=Decimal("1e30")),
        window("b", price_per_month_in_euro=Decimal("NaN"), fiscal_value_in_euro=-1),
        window("c", make=None, model=None, type=None, model_year=None),
        window("d", license_plate=huge, net_cost_per_month_in_euro=float("inf")),
        {**window("e", price_per_month_in_euro=None), "available_since": None},
        window("f", available_since=datetime(9999, 12, 31, 23, 30, tzinfo=UTC)),
    ]
    email = render_email(rows, image_width=300, timezone="Europe/Amsterdam")
    assert email.subject == "6 new: Tesla Model 3, - -"
    assert "€ 1.000.000.000.000.000.000.000.000.000.000,00" in email.text
    assert "€ -1,00" in email.text
    assert huge in email.html
    assert "9999-12-31T23:30:00+00:00" in email.text
    assert "- -" in email.text  # the cluster without make and model


def test_a_bound_never_holds_for_a_value_that_is_not_a_finite_number():
    from notifier.filters import FilterSet

    bounded = FilterSet.model_validate({"max_price_per_month": 500})
    assert bounded.matches({"price_per_month_in_euro": Decimal(400)})
    for value in (Decimal("NaN"), float("nan"), Decimal("1e30"), None, "n/a"):
        assert not bounded.matches({"price_per_month_in_euro": value}), value


def test_a_catastrophic_pattern_matches_in_linear_time():
    from notifier.filters import FilterSet

    # ^(a+)+$ backtracks 2^n steps in Python's re on this text; RE2 does not.
    nested = FilterSet.model_validate({"model": "^(a+)+$"})
    assert not nested.matches({"model": "a" * 5_000 + "!"})
    assert nested.matches({"model": "A" * 5_000})


# The parts of a message that differ each time it is written: its Date (the
# second may have turned) and its MIME boundary (random).
DATE = re.compile(rb"^Date: .*$", re.MULTILINE)
BOUNDARY = re.compile(rb"={15}[0-9]{19}==")


def _boundaries(message: bytes) -> set[bytes]:
    return set(BOUNDARY.findall(message))


def _without_date_and_boundary(message: bytes) -> bytes:
    return BOUNDARY.sub(b"BOUNDARY", DATE.sub(b"Date:", message))


@pytest.mark.parametrize(
    ("subject", "text", "html"),
    [
        (
            "2 new: Škoda Enyaq, Tesla Model 3",
            "Hello\n.lone dot line\nFrom here\n",
            '<p style="a=b">€ 489</p>\n',
        ),
        (
            "8 new: " + ", ".join(["Škoda Enyaq iV 80"] * 8),  # folded, encoded
            "a\rb\r\nc",
            "<p>" + "x" * 300 + "</p>",
        ),
        ("text-deadbeef", "", ""),
        ("", "=" * 40 + "\n", "==============="),
    ],
)
def test_the_written_message_is_byte_for_byte_the_composed_one(subject, text, html):
    from notifier.mailer import Bodies, MessageWriter, as_wire_bytes, compose
    from notifier.render import RenderedEmail

    email = RenderedEmail(subject=subject, html=html, text=text)
    sender, recipient, message_id = "from@example.org", "to@example.org", "<m1@ex.org>"
    composed = as_wire_bytes(
        compose(email, sender=sender, recipient=recipient, message_id=message_id)
    )
    written = MessageWriter(sender).write(
        email, recipient=recipient, message_id=message_id, bodies=Bodies.of(email)
    )

    assert _without_date_and_boundary(written) == _without_date_and_boundary(composed)
    (boundary,) = _boundaries(written)  # one boundary, in all four places
    assert written.count(boundary) == 4


def test_a_writer_writes_each_message_of_a_run_as_composed_with_its_own_boundary():
    from notifier.mailer import Bodies, MessageWriter, as_wire_bytes, compose
    from notifier.render import RenderedEmail

    sender = "athlon-flex-notifier@example.org"
    writer = MessageWriter(sender)
    long_address = "a." * 30 + "very-long-mailbox@subdomain.example.org"  # folded
    messages = [
        (recipient, RenderedEmail(subject, f"<p>{n}</p>\n", f"car {n}\n"))
        for n, (recipient, subject) in enumerate(
            [
                ("anna@example.nl", "45 new, 1 cheaper: Tesla Model 3, Kia EV6"),
                ("anna@example.nl", "3 new: " + ", ".join(["Škoda Enyaq iV"] * 6)),
                (long_address, "1 new: Polestar 2"),
                ("anna@example.nl", "1 gone: Tesla Model Y"),
                (long_address, "2 new: Škoda Elroq, BMW i4"),
            ]
        )
    ]
    boundaries = set()
    for n, (recipient, email) in enumerate(messages):
        message_id = f"<{n:040d}.athlon-flex@example.org>"
        written = writer.write(
            email, recipient=recipient, message_id=message_id, bodies=Bodies.of(email)
        )
        composed = as_wire_bytes(
            compose(email, sender=sender, recipient=recipient, message_id=message_id)
        )
        assert _without_date_and_boundary(written) == _without_date_and_boundary(
            composed
        ), n
        (boundary,) = _boundaries(written)
        boundaries.add(boundary)
    assert len(boundaries) == len(messages)  # each message its own
