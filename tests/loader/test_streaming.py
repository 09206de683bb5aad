"""The load streams: fetched details are spooled to disk; kept details are reused."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from athlon_flex.database import ensure_postgres
from athlon_flex.fake_api import FakeShowroom
from athlon_flex.settings import Settings
from loader.pipeline import LoadError, load
from loader.publish import read_previous
from loader.showroom import reusable
from loader.spool import PAGE_ROWS, RowSpool
from tests.loader.conftest import rows


def _row(number: int, options: int) -> dict[str, Any]:
    return {
        "id": f"v{number:04d}",
        "price": number + 0.5,
        "seen": datetime(2026, 11, 27, 12, number % 60, tzinfo=UTC),
        "note": None,
        "options": [
            {"id": f"o{k}", "vehicle_id": f"v{number:04d}"} for k in range(options)
        ],
    }


def test_spool_gives_back_every_row_in_order_a_page_at_a_time(tmp_path: Path) -> None:
    spool = RowSpool(tmp_path / "rows.pickle")
    count = 2 * PAGE_ROWS + 7
    added = [_row(number, options=number % 4) for number in range(count)]
    for row in added:
        spool.add(row)

    pages = list(spool.pages())

    assert [len(page) for page in pages] == [PAGE_ROWS, PAGE_ROWS, 7]
    assert [row for page in pages for row in page] == added  # types kept, tz included
    assert (spool.rows, spool.options) == (
        2 * PAGE_ROWS + 7,
        sum(n % 4 for n in range(207)),
    )
    with pytest.raises(RuntimeError, match="closed for writing"):
        spool.add(_row(999, options=0))


def test_an_empty_spool_has_no_pages(tmp_path: Path) -> None:
    spool = RowSpool(tmp_path / "rows.pickle")
    assert list(spool.pages()) == []
    assert (spool.rows, spool.options) == (0, 0)


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


def test_a_load_leaves_no_spool_or_dlt_files_behind(
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
