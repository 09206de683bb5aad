"""Fixtures of the fault suite: a tiny showroom and settings that fail fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from athlon_flex.settings import Settings
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import quick_settings
from tests.faults.killing import TableLocks
from tests.notifier.push_server import push_server  # noqa: F401 (a fixture)
from tests.support.smtp import SmtpServer


@pytest.fixture
def showroom(fake_api_factory: Callable[..., FakeShowroom]) -> FakeShowroom:
    """3 clusters x 2 vehicles: enough to fail one car mid-run, cheap for dbt."""
    return fake_api_factory(clusters=3, vehicles_per_cluster=2, seed=11)


@pytest.fixture
def cycle_settings(
    make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> Callable[..., Settings]:
    """`cycle_settings(api, **overrides)`: the test's database, quick retries, SMTP."""

    def build(api: FakeShowroom, **overrides: Any) -> Settings:
        return make_settings(**quick_settings(api, smtp_server, **overrides))

    return build


@pytest.fixture
def embedded_dir(embedded_data_dir: Path) -> Path:
    """ATHLON_DATA_DIR of a server of the test's own; stopped and deleted afterwards."""
    return embedded_data_dir


@pytest.fixture
def table_locks(
    make_settings: Callable[..., Settings],
) -> Iterator[Callable[[Settings], TableLocks]]:
    """`table_locks(settings)`: connections that stop a notify before a write
    (tests/faults/killing.py), closed when the test ends (before make_settings
    drops the database)."""
    opened: list[TableLocks] = []

    def open_(settings: Settings) -> TableLocks:
        opened.append(TableLocks(settings))
        return opened[-1]

    yield open_
    for item in opened:
        item.close()
