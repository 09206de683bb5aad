"""The load streams: rows are spooled to disk, stored rows are read in one snapshot."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from athlon_flex.database import ensure_postgres
from athlon_flex.settings import Settings
from loader.pipeline import LoadError, load
from loader.previous import PreviousSnapshot
from loader.spool import PAGE_ROWS, RowSpool
from simulation.fake_api import FakeShowroom
from tests.loader.conftest import rows, without


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


DLT_CHILD_COLUMNS = ("_dlt_id", "_dlt_parent_id", "_dlt_list_idx")


def _read(settings: Settings, tmp_path: Path) -> tuple[PreviousSnapshot, RowSpool]:
    spool = RowSpool(tmp_path / "stored.pickle")
    return PreviousSnapshot(ensure_postgres(settings)).read(spool), spool


def test_the_stored_snapshot_is_copied_whole_with_options_in_list_order(
    settings_for_api: Settings, db: Any, tmp_path: Path
) -> None:
    first = load(settings_for_api)
    stored = rows(db, "vehicles", "id")
    stored_options = rows(db, "vehicles__options", "vehicle_id, _dlt_list_idx")

    previous, spool = _read(settings_for_api, tmp_path)
    copied = [row for page in spool.pages() for row in page]

    assert previous.vehicle_count == 12
    assert [row["id"] for row in copied] == sorted(row["id"] for row in stored)
    assert (spool.rows, spool.options) == (12, len(stored_options))
    assert previous.option_count(row["id"] for row in stored) == len(stored_options)
    for row, expected in zip(copied, stored, strict=True):
        # Every column but extracted_at, which the next run sets anew.
        assert without(row, "options") == without(
            expected, "extracted_at", "_dlt_id", "_dlt_load_id"
        )
        assert row["details_fetched_at"] == first.extracted_at
        assert row["options"] == [
            without(
                option, "extracted_at", "_dlt_id", "_dlt_parent_id", "_dlt_list_idx"
            )
            for option in stored_options
            if option["vehicle_id"] == row["id"]
        ]
        assert len(row["options"]) > 0


def test_reuse_needs_the_same_summary_and_fresh_details(
    settings_for_api: Settings, db: Any, tmp_path: Path
) -> None:
    first = load(settings_for_api)
    vehicle = rows(db, "vehicles", "id")[0]
    previous, _ = _read(settings_for_api, tmp_path)
    hash_, vehicle_id = vehicle["summary_hash"], vehicle["id"]

    assert previous.reusable(vehicle_id, hash_, first.extracted_at, 24)
    assert not previous.reusable(vehicle_id, "other", first.extracted_at, 24)
    assert not previous.reusable("unknown", hash_, first.extracted_at, 24)
    # Expired at the latest after the whole refresh period ...
    later = first.extracted_at.replace(year=first.extracted_at.year + 1)
    assert not previous.reusable(vehicle_id, hash_, later, 24)


def test_no_reuse_from_tables_that_lack_a_column_the_loader_writes(
    settings_for_api: Settings, db: Any, tmp_path: Path
) -> None:
    load(settings_for_api)
    vehicle = rows(db, "vehicles", "id")[0]
    with db.cursor() as cursor:
        cursor.execute(
            "alter table raw.vehicles drop column pricing__net_cost_per_month_in_euro"
        )
    db.commit()

    previous, spool = _read(settings_for_api, tmp_path)

    assert previous.vehicle_count == 12
    assert list(spool.pages()) == []
    assert not previous.reusable(
        vehicle["id"], vehicle["summary_hash"], vehicle["extracted_at"], 24
    )


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
