"""Transient API trouble is retried politely; the request limit always holds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from athlon_flex.settings import Settings
from loader.http import retry_after_seconds
from loader.pipeline import load
from simulation.fake_api import FakeShowroom
from tests.loader.conftest import assert_load_fails_and_raw_unchanged, raw_contents


def test_transient_503s_dropped_connections_and_a_429_are_retried_and_succeed(
    fake_api: FakeShowroom,
    loader_settings: Callable[..., Settings],
    db: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    vehicle = fake_api.catalog.vehicles[0]
    fake_api.faults.add("VehicleCluster", retry_after=0.2, times=1)
    fake_api.faults.add("VehicleVariation", status=503, times=2)
    fake_api.faults.add("Vehicle", status=502, times=1, vehicle_id=vehicle.id)
    fake_api.faults.add("Vehicle", drop=True, times=1)

    with caplog.at_level(logging.INFO, logger="loader.http"):
        summary = load(loader_settings(fake_api))

    assert summary.rows["vehicles"] == 12
    # The 429's wait is the server's Retry-After, not the (0.01 s) back-off.
    assert (
        "Retrying GET VehicleCluster in 0.20 s (try 2 of 4): answered 429"
        in caplog.messages
    )
    assert summary.retries == 5
    assert summary.requests == 17 + 5
    assert fake_api.stats.responses_by_status[429] == 1
    assert fake_api.stats.responses_by_status[503] == 2
    assert fake_api.stats.responses_by_status[502] == 1
    assert fake_api.faults.active == []
    with db.cursor() as cursor:
        cursor.execute("select count(*) from raw.vehicles where id = %s", (vehicle.id,))
        assert cursor.fetchone() == (1,)


def test_requests_in_flight_never_exceed_the_concurrency_setting(
    fake_api_factory: Callable[..., FakeShowroom],
    loader_settings: Callable[..., Settings],
) -> None:
    api = fake_api_factory(clusters=6, vehicles_per_cluster=4, latency_ms=20)

    summary = load(loader_settings(api, athlon_max_concurrency=3))

    assert summary.rows["vehicles"] == 24
    # The server counts what really overlapped; the loader counts its own slots.
    assert 2 <= api.stats.max_in_flight <= 3
    assert summary.max_in_flight == 3


def test_refused_login_fails_naming_the_credentials_and_leaves_raw_unchanged(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    load(loader_settings(fake_api))
    before = raw_contents(db)

    settings = loader_settings(fake_api, member=True, athlon_password="wrong")
    message = assert_load_fails_and_raw_unchanged(settings, db, before)

    assert "POST MemberLogin refused the login (401)" in message
    assert "ATHLON_PASSWORD" in message
    assert "wrong" not in message
    assert message.endswith("raw tables left unchanged")


def test_answer_slower_than_the_timeout_is_retried(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings]
) -> None:
    fake_api.faults.add("Vehicle", delay_ms=1500, times=1)

    summary = load(loader_settings(fake_api, athlon_http_timeout_seconds=0.5))

    assert summary.rows["vehicles"] == 12
    assert summary.retries == 1


def test_retry_after_longer_than_a_minute_fails_at_once_and_changes_nothing(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings], db: Any
) -> None:
    load(loader_settings(fake_api))
    before = raw_contents(db)
    fake_api.faults.add("VehicleCluster", retry_after=3600)

    message = assert_load_fails_and_raw_unchanged(loader_settings(fake_api), db, before)

    assert message == (
        "Athlon API GET VehicleCluster answered 429 and asked to wait 3600 s, longer "
        "than the loader waits (60 s); raw tables left unchanged"
    )
    assert fake_api.stats.responses_by_status[429] == 1


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=30)

    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("0.5") == 0.5
    assert 28 <= retry_after_seconds(format_datetime(soon, usegmt=True)) <= 30
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
