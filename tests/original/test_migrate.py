"""`athlon-flex migrate-from-original`: the older tool's database, taken over.

A source database is built with the older tool's schema (tests/support/
original_database.py) holding leaves, returns, price changes and notified windows of
vehicles the simulated showroom still serves; the migration writes them into this
project's snapshots and notifications; then real cycles (simulated API over HTTP,
real dbt, real SMTP) must mail only what the old tool never mailed.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from athlon_flex.database import PostgresAddress, connect, ensure_postgres
from athlon_flex.settings import Settings
from tests.support.original_database import OriginalDatabase
from tests.support.smtp import SmtpServer
from watcher.cycle import run_cycle
from watcher.original.migrate import (
    BadMigrationInput,
    SourceNotRecognised,
    migrate,
    snapshot_columns,
)

RECIPIENT = "anna@example.nl"
T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=3)
T2 = T0 + timedelta(days=10)
T3 = T0 + timedelta(days=20)
MAILED = timedelta(hours=6)  # the old tool mailed at 06:00 the next morning or so


@pytest.fixture
def source(pg_server: PostgresAddress) -> Iterator[tuple[str, OriginalDatabase]]:
    """A fresh database with the older tool's schema; its URL and a writer."""
    name = f"original_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(**pg_server.connect_kwargs())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    conn = psycopg2.connect(**pg_server.connect_kwargs(dbname=name))
    url = (
        f"postgresql://{pg_server.user}@/{name}"
        f"?host={pg_server.host}&port={pg_server.port}"
    )
    yield url, OriginalDatabase.create(conn)
    conn.close()
    with admin.cursor() as cursor:
        cursor.execute(f'drop database if exists "{name}" with (force)')
    admin.close()


def _rows(settings: Settings, query: str) -> list[tuple]:
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def _history(settings: Settings) -> list[tuple]:
    return _rows(
        settings,
        "select vehicle_id, dbt_valid_from, dbt_valid_to, "
        "calculated_price_per_month_in_euro from snapshots.snap_vehicles "
        "order by 1, 2",
    )


def _notifications(settings: Settings) -> set[tuple]:
    return set(
        _rows(
            settings,
            "select vehicle_id, available_since, recipient, notified_at "
            "from notifier.notifications",
        )
    )


def _windows(settings: Settings) -> set[tuple]:
    return set(
        _rows(
            settings,
            "select vehicle_id, available_since, available_until "
            "from marts.vehicle_availability",
        )
    )


def _old_history(old: OriginalDatabase, ids: list[str]) -> None:
    """a: repriced, leased, back (both windows mailed); b: open, mailed; c: left,
    mailed; d: open, never mailed (the old tool's filter left it out)."""
    a, b, c, d = ids
    old.vehicle(a, T0, T1, price=450.0, options={"o1": "Trekhaak"})
    old.vehicle(a, T1, T2, price=430.0, options={"o1": "Trekhaak"})
    old.vehicle(a, T3, None, price=430.0)
    old.vehicle(b, T0, None, options={"o2": "Panoramadak"})
    old.vehicle(c, T1, T2)
    old.vehicle(d, T3, None)
    old.notified(a, T0, T0 + MAILED)
    old.notified(a, T3, T3 + MAILED)
    old.notified(b, T0, T0 + MAILED)
    old.notified(c, T1, T1 + MAILED)


def test_migration_carries_history_and_mails_nothing_the_old_tool_mailed(
    source: tuple[str, OriginalDatabase],
    fake_api_factory: Callable,
    smtp_server: SmtpServer,
    make_settings: Callable,
) -> None:
    from simulation.fake_api import Catalog

    url, old = source
    catalog = Catalog.generate(clusters=3, vehicles_per_cluster=2, seed=11)
    ids = [v.id for v in catalog.vehicles]
    a, b, c, d, e, f = ids
    plates = {v.id: v.license_plate for v in catalog.vehicles}
    catalog.remove_vehicle(c)  # c left under the old tool and stays away
    api = fake_api_factory(catalog=catalog)
    settings = make_settings(
        athlon_api_url=api.url,
        email_to=[RECIPIENT],
        athlon_http_max_retries=1,
        **smtp_server.settings_overrides(),
    )
    _old_history(old, [a, b, c, d])

    # 1. Dry run (the default): the exact plan, nothing written.
    plan = migrate(settings, url, recipients=[RECIPIENT])
    assert (plan.vehicles.read, plan.vehicles.to_add, plan.vehicles.present) == (
        6,
        6,
        0,
    )
    assert (plan.clusters.read, plan.clusters.to_add) == (1, 1)
    # a's option o1 was copied with a's second version (the old tool re-keyed
    # options by the vehicle's row): one version here, as dbt would have kept it.
    assert (plan.options.read, plan.options.to_add, plan.options.merged) == (3, 2, 1)
    assert (plan.notifications.read, plan.notifications.to_add) == (4, 4)
    assert plan.windows == 5
    assert plan.history_since == T0
    assert plan.revision == "c6d237b3de6a"
    assert not plan.applied and plan.changed
    assert str(plan).splitlines()[-1] == (
        "Dry run: nothing was written; run again with --apply to write it."
    )
    assert _rows(
        settings,
        "select to_regclass('snapshots.snap_vehicles'), "
        "to_regclass('notifier.notifications')",
    ) == [(None, None)]

    # 2. Apply: the old versions as snapshot rows, its notifications for EMAIL_TO.
    done = migrate(settings, url, recipients=[RECIPIENT], apply=True)
    assert done.applied and done.changed
    assert (done.vehicles.to_add, done.notifications.to_add) == (6, 4)
    assert _history(settings) == sorted(
        [
            (a, T0, T1, 450),
            (a, T1, T2, 430),
            (a, T3, None, 430),
            (b, T0, None, 450),
            (c, T1, T2, 450),
            (d, T3, None, 450),
        ]
    )
    assert _notifications(settings) == {
        (a, T0, RECIPIENT, T0 + MAILED),
        (a, T3, RECIPIENT, T3 + MAILED),
        (b, T0, RECIPIENT, T0 + MAILED),
        (c, T1, RECIPIENT, T1 + MAILED),
    }
    assert _rows(
        settings,
        "select vehicle_id, option_id, option_name, dbt_valid_from, dbt_valid_to "
        "from snapshots.snap_vehicle_options order by 1, 2, 4",
    ) == sorted([(a, "o1", "Trekhaak", T0, T2), (b, "o2", "Panoramadak", T0, None)])

    # 3. Idempotent: a second run changes nothing.
    history, notifications = _history(settings), _notifications(settings)
    again = migrate(settings, url, recipients=[RECIPIENT], apply=True)
    assert not again.changed
    assert (again.vehicles.present, again.notifications.present) == (6, 4)
    assert str(again).splitlines()[-1] == (
        "Nothing to do: everything was already there."
    )
    assert (_history(settings), _notifications(settings)) == (history, notifications)

    # 4. A real cycle: only d (never mailed) and e, f (new to both tools) go out.
    run_cycle(settings)
    (mail,) = smtp_server.messages
    assert mail.subject.startswith("3 new: ")
    assert {v for v, plate in plates.items() if plate in mail.text} == {d, e, f}
    (loaded,) = _rows(settings, "select distinct extracted_at from raw.vehicles")
    t4 = loaded[0]
    assert _windows(settings) == {
        (a, T0, T2),
        (a, T3, None),  # the window the old tool opened and mailed goes on
        (b, T0, None),
        (c, T1, T2),
        (d, T3, None),
        (e, t4, None),
        (f, t4, None),
    }

    # 5. Quiet cycle: nothing more. A migration after the new tool ran: nothing.
    run_cycle(settings)
    assert len(smtp_server.messages) == 1
    rows_before = len(_history(settings))
    late = migrate(settings, url, recipients=[RECIPIENT], apply=True)
    assert not late.changed
    assert len(_history(settings)) == rows_before
    run_cycle(settings)
    assert len(smtp_server.messages) == 1


def test_migration_after_the_new_tool_ran_joins_windows_and_remails_nothing(
    source: tuple[str, OriginalDatabase],
    fake_api_factory: Callable,
    smtp_server: SmtpServer,
    make_settings: Callable,
) -> None:
    """The new stack ran first (and mailed everything); the old windows join on."""
    from simulation.fake_api import Catalog

    url, old = source
    catalog = Catalog.generate(clusters=2, vehicles_per_cluster=2, seed=5)
    a, b, c, d = (v.id for v in catalog.vehicles)
    catalog.remove_vehicle(c)
    api = fake_api_factory(catalog=catalog)
    settings = make_settings(
        athlon_api_url=api.url,
        email_to=[RECIPIENT],
        athlon_http_max_retries=1,
        **smtp_server.settings_overrides(),
    )
    run_cycle(settings)  # a, b, d mailed by the new tool, windows from t1
    assert len(smtp_server.messages) == 1
    (loaded,) = _rows(settings, "select distinct extracted_at from raw.vehicles")
    t1 = loaded[0]
    _old_history(old, [a, b, c, d])
    # Old history after the new tool's first load is left to the new history.
    old.vehicle(c, t1 + timedelta(minutes=5), None)

    done = migrate(settings, url, recipients=[RECIPIENT], apply=True)
    assert done.cutoff == t1
    assert done.vehicles.left_out == 1
    assert done.carried_over == 1  # d: mailed by the new tool at t1, now from T3
    assert done.mart_dropped

    run_cycle(settings)
    assert len(smtp_server.messages) == 1
    assert _windows(settings) == {
        (a, T0, T2),
        (a, T3, None),
        (b, T0, None),
        (c, T1, T2),
        (d, T3, None),
    }
    assert not migrate(settings, url, recipients=[RECIPIENT], apply=True).changed


def test_overlapping_and_empty_old_versions_are_tidied_not_copied(
    source: tuple[str, OriginalDatabase], make_settings: Callable
) -> None:
    url, old = source
    settings = make_settings()
    old.vehicle("x", T0, T2)
    old.vehicle("x", T1, None)  # overlaps the one before: it ends at T1
    old.vehicle("y", T1, T1)  # empty: never in the showroom
    old.notified("x", T0, T0 + MAILED)
    old.notified("x", T1 + timedelta(hours=1), T2)  # inside the window from T0
    old.notified("ghost", T0, T0 + MAILED)  # a car the old tables do not know
    both = [RECIPIENT, "bob@example.nl"]
    done = migrate(settings, url, recipients=both, apply=True)
    assert (done.vehicles.read, done.vehicles.to_add, done.vehicles.left_out) == (
        3,
        2,
        1,
    )
    assert [row[:3] for row in _history(settings)] == [
        ("x", T0, T1),
        ("x", T1, None),
    ]
    # One window, mailed (twice, per the old table) to each recipient once, at the
    # earliest time; the unknown car is counted, not guessed.
    assert (done.notifications.read, done.notifications.left_out) == (3, 1)
    assert _notifications(settings) == {
        ("x", T0, RECIPIENT, T0 + MAILED),
        ("x", T0, "bob@example.nl", T0 + MAILED),
    }


def test_an_unknown_database_is_refused_in_one_line(
    source: tuple[str, OriginalDatabase], make_settings: Callable
) -> None:
    url, old = source
    with old.conn.cursor() as cursor:
        cursor.execute('drop table "option"; alter table vehicle drop column uri')
    old.conn.commit()
    settings = make_settings()
    with pytest.raises(SourceNotRecognised) as caught:
        migrate(settings, url, recipients=[RECIPIENT], apply=True)
    message = str(caught.value)
    assert "\n" not in message
    assert "missing vehicle.uri, table option" in message
    assert message.endswith("Nothing was read or written.")
    assert _rows(settings, "select to_regclass('snapshots.snap_vehicles')") == [(None,)]
    with pytest.raises(BadMigrationInput, match="No recipients"):
        migrate(settings, url, recipients=[])


def test_snapshot_tables_match_what_dbt_creates(
    pg_server: PostgresAddress, dbt_built_template: str
) -> None:
    """The migration creates the snapshot tables when dbt has not: the same ones."""
    conn = psycopg2.connect(**pg_server.connect_kwargs(dbname=dbt_built_template))
    try:
        for snapshot in (
            "snap_vehicles",
            "snap_vehicle_clusters",
            "snap_vehicle_options",
        ):
            with conn.cursor() as cursor:
                cursor.execute(
                    "select column_name, "
                    "case data_type when 'timestamp with time zone' then 'timestamptz' "
                    "else data_type end "
                    "from information_schema.columns where table_schema = 'snapshots' "
                    "and table_name = %s order by ordinal_position",
                    (snapshot,),
                )
                dbt_made = cursor.fetchall()
            assert snapshot_columns(snapshot) == dbt_made, snapshot
    finally:
        conn.close()


def test_cli_is_a_dry_run_by_default_and_reads_the_url_from_the_environment(
    source: tuple[str, OriginalDatabase], make_settings: Callable, tmp_path: Path
) -> None:
    url, old = source
    _old_history(old, ["a1", "b1", "c1", "d1"])
    settings = make_settings()
    env = {
        "POSTGRES_HOST": settings.postgres_host,
        "POSTGRES_PORT": str(settings.postgres_port),
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_DB": settings.postgres_db,
        "ATHLON_DATA_DIR": str(tmp_path / "athlon"),
        "EMAIL_TO": RECIPIENT,
        "ORIGINAL_DATABASE_URL": url,
        "PATH": "/usr/bin:/bin",
    }

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "watcher.cli", "migrate-from-original", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )

    dry = cli()
    assert dry.returncode == 0, dry.stderr
    assert "vehicle versions: 6 read, 6 to add, 0 already there, 0 left out" in (
        dry.stdout
    )
    assert dry.stdout.strip().endswith("run again with --apply to write it.")
    applied = cli("--apply")
    assert applied.returncode == 0, applied.stderr
    assert "vehicle versions: 6 read, 6 added" in applied.stdout
    assert (
        f"notifications (for {RECIPIENT}): 4 read, 4 added, 0 already there"
        in applied.stdout
    )
    # A password in the URL is never shown (trust auth here ignores it).
    secret_url = url.replace("postgres@", "postgres:hunter2@", 1)
    again = cli(ORIGINAL_DATABASE_URL=secret_url)
    assert again.returncode == 0, again.stderr
    assert "0 to add, 6 already there" in again.stdout
    assert "hunter2" not in again.stdout + again.stderr
    # Any other database (here the server's `postgres`) is refused: one line, exit 2.
    other = url.split("?")[0].rsplit("/", 1)[0] + "/postgres?" + url.split("?")[1]
    unknown = cli(ORIGINAL_DATABASE_URL=other)
    assert unknown.returncode == 2
    (line,) = unknown.stderr.strip().splitlines()
    assert line.startswith("error: postgresql://postgres@")
    assert line.endswith(
        "/postgres is not the older athlon-flex-notifier's database: missing table "
        "vehicle_cluster, table vehicle, table option, table notification (expected "
        "its tables "
        "vehicle_cluster, vehicle, option and notification as its Alembic "
        "migrations create them). Nothing was read or written."
    )
    missing = cli(ORIGINAL_DATABASE_URL="")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "error: name the older tool's database: ORIGINAL_DATABASE_URL or --source"
    )
