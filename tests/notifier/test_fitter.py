"""EmailFitter on its own: a batch's emails are the same however its rows come."""

from __future__ import annotations

import random
import re
from decimal import Decimal

from notifier.mailer import MAX_EMAIL_BYTES, EmailFitter
from notifier.render import EmailRenderer
from tests.notifier.conftest import many_windows

MAKES = [("Tesla", "Model 3"), ("Kia", "EV6"), ("BYD", "Seal"), ("Škoda", "Enyaq")]
# What differs each time a message is written: its Date and MIME boundary.
VARIES = re.compile(rb"^Date: .*$|={15}[0-9]{19}==", re.MULTILINE)


def _emails(rows, *, copy_the_rest: bool) -> list[tuple[list[str], bytes]]:
    """(vehicle ids shown, the message but its Date and boundary) of each email
    of the batch, fitted one after another; `copy_the_rest` hands the fitter a
    copy of what it left out (which it sorts again) instead of that itself."""
    fitter = EmailFitter(
        EmailRenderer(image_width=300, timezone="Europe/Amsterdam"),
        sender="notifier@example.org",
    )
    emails = []
    remaining = rows
    while remaining:
        fitted = fitter.fit(remaining, recipient="anna@example.nl")
        assert len(fitted.wire) <= MAX_EMAIL_BYTES
        emails.append(
            (
                [row["vehicle_id"] for row in fitted.shown],
                VARIES.sub(b"", fitted.wire),
            )
        )
        remaining = list(fitted.left_out) if copy_the_rest else fitted.left_out
    return emails


def test_the_rest_of_a_batch_is_fitted_as_the_same_rows_sorted_again():
    rng = random.Random(5)
    rows = many_windows(
        180,
        MAKES,
        price_per_month_in_euro=lambda _: Decimal(rng.randrange(400, 900)),
    )
    rng.shuffle(rows)

    emails = _emails(rows, copy_the_rest=False)

    assert len(emails) > 2
    assert emails == _emails(rows, copy_the_rest=True)
    shown = [vehicle for ids, _ in emails for vehicle in ids]
    assert sorted(shown) == sorted(row["vehicle_id"] for row in rows)
