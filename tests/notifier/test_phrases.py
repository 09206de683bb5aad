"""The shared words for each kind of news: exact strings, every edge of the figures."""

import math

import pytest

from notifier.phrases import (
    alert_kind,
    back_phrase,
    gone_phrase,
    lease_speed_phrase,
    price_drop_phrase,
)


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (0, "cars like this are usually leased within 1 h"),
        (0.2, "cars like this are usually leased within 1 h"),
        (2.1, "cars like this are usually leased within 3 h"),
        (47.5, "cars like this are usually leased within 48 h"),
        (48, "cars like this are usually leased within 2 days"),
        (50, "cars like this are usually leased within 3 days"),
        ("3", "cars like this are usually leased within 3 h"),
        (None, None),
        (math.nan, None),
        (math.inf, None),
        (-1, None),
        (True, None),
        ("soon", None),
    ],
)
def test_lease_speed_phrase(hours, expected):
    assert lease_speed_phrase(hours) == expected


def test_kinds_and_phrases():
    assert alert_kind({}) == "new"
    assert alert_kind({"alert_kind": None}) == "new"
    assert alert_kind({"alert_kind": "back"}) == "back"
    assert alert_kind({"alert_kind": "gone"}) == "gone"
    with pytest.raises(ValueError, match="unknown alert kind 'sold'"):
        alert_kind({"alert_kind": "sold"})
    assert price_drop_phrase("€ 489,00", "€ 539,00") == "now € 489,00 (was € 539,00)"
    assert back_phrase("28-11-2026 14:10") == "back again (left 28-11-2026 14:10)"
    assert back_phrase(None) == "back again"
    assert gone_phrase("02-12-2026 14:10") == "available until 02-12-2026 14:10"
