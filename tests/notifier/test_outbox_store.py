"""The outbox's SQL on its own: a claim and a mark, each one statement and one
committed transaction, write exactly the rows and bytes they name."""

from __future__ import annotations

from datetime import timedelta

import psycopg2.extensions
import pytest

from athlon_flex.database import connect, ensure_postgres
from athlon_flex.settings import Settings
from notifier import store
from tests.notifier.conftest import EARLIER

ANNA = "anna@example.nl"
# An email as the notifier writes it is ASCII (headers encoded, bodies quoted-
# printable), here with what text must carry unchanged; a push is UTF-8.
EMAIL = b"Subject: 2 new\r\n\r\nquote ' backslash \\ percent %s %(x)s =3D\r\n" * 900
PUSH = "2 new: Škoda Enyaq, € 489\n\nback\\slash".encode()
# ASCII that PostgreSQL text cannot hold: goes as bytes, like a push.
NUL = b"Subject: 1 new\r\n\r\nodd \x00 byte\r\n"
WINDOWS = [
    {"vehicle_id": "v1", "available_since": EARLIER},
    {"vehicle_id": "v2", "available_since": EARLIER - timedelta(days=1)},
]
DROPS = [{"vehicle_id": "v1", "changed_at": EARLIER + timedelta(minutes=5)}]


def _rows(db: psycopg2.extensions.connection, sql: str) -> list[tuple]:
    with db.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.parametrize(
    "message", [EMAIL, PUSH, NUL], ids=["ascii email", "utf-8 push", "ascii with nul"]
)
def test_a_claim_keeps_the_message_byte_for_byte_and_a_mark_drops_it(
    settings: Settings,
    db: psycopg2.extensions.connection,
    contract_objects: None,
    message: bytes,
) -> None:
    with connect(ensure_postgres(settings)) as conn:
        claimed = store.write_intent(conn, ANNA, "<m1>", message, WINDOWS, DROPS)
        assert claimed == 3
        assert (
            conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        )
        # The same windows and drop again (another message): nothing left to claim.
        assert store.write_intent(conn, ANNA, "<m2>", b"x", WINDOWS, DROPS) == 0
        assert store.unsent(conn, ANNA) == [("<m1>", message, 3), ("<m2>", b"x", 0)]

        assert _rows(
            db,
            "select vehicle_id, available_since, recipient, message_id "
            "from notifier.notifications order by vehicle_id",
        ) == [
            ("v1", EARLIER, ANNA, "<m1>"),
            ("v2", EARLIER - timedelta(days=1), ANNA, "<m1>"),
        ]
        assert _rows(
            db,
            "select vehicle_id, changed_at, recipient, message_id "
            "from notifier.price_drop_notifications",
        ) == [("v1", EARLIER + timedelta(minutes=5), ANNA, "<m1>")]

        store.mark_sent(conn, "<m1>")
        assert (
            conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        )

    assert _rows(
        db,
        "select message_id, message is null, sent_at is not null "
        "from notifier.outbox order by message_id",
    ) == [("<m1>", True, True), ("<m2>", False, False)]
    # Every row of the message marked in one transaction: the same moment.
    (moments,) = _rows(
        db,
        "select array_agg(distinct stamp) from ("
        " select notified_at as stamp from notifier.notifications"
        " union all select notified_at from notifier.price_drop_notifications"
        " union all select sent_at from notifier.outbox where message_id = '<m1>'"
        ") as marked",
    )
    assert len(moments[0]) == 1


def test_a_claim_with_no_drops_claims_its_windows_alone(
    settings: Settings, db: psycopg2.extensions.connection, contract_objects: None
) -> None:
    with connect(ensure_postgres(settings)) as conn:
        assert store.write_intent(conn, ANNA, "<m1>", EMAIL, WINDOWS) == 2
        assert store.write_intent(conn, ANNA, "<m2>", EMAIL, [], DROPS) == 1
    assert _rows(db, "select count(*) from notifier.notifications") == [(2,)]
    assert _rows(db, "select message_id from notifier.price_drop_notifications") == [
        ("<m2>",)
    ]


def test_the_outbox_keeps_messages_uncompressed(
    db: psycopg2.extensions.connection, contract_objects: None
) -> None:
    assert _rows(
        db,
        "select attstorage from pg_attribute "
        "where attrelid = 'notifier.outbox'::regclass and attname = 'message'",
    ) == [("e",)]
