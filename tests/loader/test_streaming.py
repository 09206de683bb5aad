"""The load streams: rows are spooled to disk, stored rows are read in one snapshot."""

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
from loader.previous import PreviousSnapshot, SnapshotChanged
from loader.spool import PAGE_ROWS, RowSpool
from tests.loader.conftest import raw_contents, rows, without


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


def test_stored_rows_come_whole_with_their_options_in_list_order(
    settings_for_api: Settings, db: Any
) -> None:
    first = load(settings_for_api)
    stored = rows(db, "vehicles", "id")
    stored_options = rows(db, "vehicles__options", "vehicle_id, _dlt_list_idx")
    wanted = {row["id"] for row in stored[::2]}  # every other vehicle

    previous = PreviousSnapshot(ensure_postgres(settings_for_api)).read()
    streamed = list(previous.rows(wanted))

    assert previous.vehicle_count == 12
    assert [row["id"] for row in streamed] == sorted(wanted)
    for row in streamed:
        expected = next(s for s in stored if s["id"] == row["id"])
        assert without(row, "options") == {
            column: expected[column] for column in without(row, "options")
        }
        assert row["details_fetched_at"] == first.extracted_at
        assert row["options"] == [
            {column: option[column] for column in row["options"][0]}
            for option in stored_options
            if option["vehicle_id"] == row["id"]
        ]
        assert len(row["options"]) > 0


@pytest.mark.parametrize("change", ["delete", "refetch"])
def test_a_stored_row_that_changed_after_the_index_was_read_is_refused(
    settings_for_api: Settings, db: Any, change: str
) -> None:
    load(settings_for_api)
    ids = sorted(row["id"] for row in rows(db, "vehicles"))
    previous = PreviousSnapshot(ensure_postgres(settings_for_api)).read()
    # Another session commits in between (the pipeline lock rules this out).
    with db.cursor() as cursor:
        if change == "delete":
            cursor.execute("delete from raw.vehicles where id = %s", (ids[4],))
        else:
            cursor.execute(
                "update raw.vehicles set details_fetched_at = now() where id = %s",
                (ids[4],),
            )
    db.commit()

    with pytest.raises(SnapshotChanged) as changed:
        list(previous.rows(set(ids)))

    assert str(changed.value) == (
        "raw.vehicles lost 1 of the 12 vehicles whose details this load reuses"
        if change == "delete"
        else f"raw.vehicles row {ids[4]} changed during this load"
    )


def test_reuse_needs_the_same_summary_and_fresh_details(
    settings_for_api: Settings, db: Any
) -> None:
    first = load(settings_for_api)
    vehicle = rows(db, "vehicles", "id")[0]
    previous = PreviousSnapshot(ensure_postgres(settings_for_api)).read()
    hash_, vehicle_id = vehicle["summary_hash"], vehicle["id"]

    assert previous.reusable(vehicle_id, hash_, first.extracted_at, 24)
    assert not previous.reusable(vehicle_id, "other", first.extracted_at, 24)
    assert not previous.reusable("unknown", hash_, first.extracted_at, 24)
    # Expired at the latest after the whole refresh period ...
    later = first.extracted_at.replace(year=first.extracted_at.year + 1)
    assert not previous.reusable(vehicle_id, hash_, later, 24)


def test_no_reuse_from_tables_that_lack_a_column_the_loader_writes(
    settings_for_api: Settings, db: Any
) -> None:
    load(settings_for_api)
    vehicle = rows(db, "vehicles", "id")[0]
    with db.cursor() as cursor:
        cursor.execute(
            "alter table raw.vehicles drop column pricing__net_cost_per_month_in_euro"
        )
    db.commit()

    previous = PreviousSnapshot(ensure_postgres(settings_for_api)).read()

    assert previous.vehicle_count == 12
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


def test_a_load_whose_stored_rows_changed_meanwhile_fails_and_changes_nothing(
    settings_for_api: Settings, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(settings_for_api)
    victim = sorted(row["id"] for row in rows(db, "vehicles"))[2]
    read_index = PreviousSnapshot.read

    def read_then_another_session_commits(self: PreviousSnapshot) -> PreviousSnapshot:
        read_index(self)
        with db.cursor() as cursor:
            cursor.execute(
                "update raw.vehicles set summary_hash = 'edited' where id = %s",
                (victim,),
            )
        db.commit()
        return self

    monkeypatch.setattr(PreviousSnapshot, "read", read_then_another_session_commits)
    before = raw_contents(db)
    vehicles_before = rows(db, "vehicles", "id")

    with pytest.raises(LoadError) as failure:
        load(settings_for_api)

    assert str(failure.value) == (
        f"raw.vehicles row {victim} changed during this load (did another load run "
        "at the same time?); raw tables left unchanged"
    )
    # Nothing of the load: every table as before, but for the other session's edit.
    after = raw_contents(db)
    assert {k: v for k, v in after.items() if k != "vehicles"} == {
        k: v for k, v in before.items() if k != "vehicles"
    }
    assert rows(db, "vehicles", "id") == [
        row | {"summary_hash": "edited"} if row["id"] == victim else row
        for row in vehicles_before
    ]
