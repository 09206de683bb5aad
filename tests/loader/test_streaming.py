"""Kept details are reused only while they hold; a load leaves no files behind."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from athlon_flex.database import ensure_postgres
from athlon_flex.settings import Settings
from loader.pipeline import LoadError, load
from loader.publish import read_previous
from loader.source import Showroom
from simulation.fake_api import FakeShowroom
from tests.loader.conftest import rows


@pytest.fixture
def settings_for_api(
    fake_api: FakeShowroom, loader_settings: Callable[..., Settings]
) -> Settings:
    return loader_settings(fake_api)


def test_reuse_needs_the_same_summary_and_fresh_details(
    settings_for_api: Settings, db: Any
) -> None:
    first = load(settings_for_api)
    vehicle = rows(db, "vehicles", "id")[0]
    baseline, index = read_previous(ensure_postgres(settings_for_api))
    row = {"id": vehicle["id"], "summary_hash": vehicle["summary_hash"]}

    def reusable(index: Any, row: Any, now: datetime, hours: float) -> bool:
        showroom = Showroom(None, None, None, index, now, hours)  # type: ignore[arg-type]
        return showroom.reusable(row)

    assert baseline == 12
    assert index[vehicle["id"]] == (vehicle["summary_hash"], first.extracted_at)
    assert reusable(index, row, first.extracted_at, 24)
    assert not reusable(index, row | {"summary_hash": "other"}, first.extracted_at, 24)
    assert not reusable(index, row | {"id": "unknown"}, first.extracted_at, 24)
    # Expired at the latest after the whole refresh period ...
    later = first.extracted_at.replace(year=first.extracted_at.year + 1)
    assert not reusable(index, row, later, 24)


def test_details_with_a_problem_are_not_kept_for_reuse(
    fake_api: FakeShowroom, settings_for_api: Settings, db: Any
) -> None:
    odd = fake_api.catalog.vehicles[2]
    fake_api.tampering.detail(odd.id, {"pricing": None})
    load(settings_for_api)
    fake_api.stats.reset()

    second = load(settings_for_api)

    assert (second.details_fetched, second.details_reused) == (1, 11)
    assert fake_api.stats.requests_by_endpoint["Vehicle"] == 1
    (row,) = [r for r in rows(db, "vehicles") if r["id"] == odd.id]
    assert row["details_fetched_at"] is None
    assert row["pricing__calculated_price_per_month_in_euro"] is None


@pytest.fixture
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point `tempfile` at an empty directory of this test's own."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def test_a_load_leaves_no_temporary_files_behind(
    fake_api: FakeShowroom, settings_for_api: Settings, own_tempdir: Path
) -> None:
    load(settings_for_api)
    assert list(own_tempdir.iterdir()) == []

    fake_api.faults.add(
        "Vehicle", status=503, vehicle_id=fake_api.catalog.vehicles[3].id
    )
    fake_api.catalog.set_price(fake_api.catalog.vehicles[3].id, 901.0)
    with pytest.raises(LoadError, match="answered 503"):
        load(settings_for_api)
    assert list(own_tempdir.iterdir()) == []
