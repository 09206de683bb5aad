"""BodyEncoder: a body encoded with its cards taken from the run's cache is
quoted_printable of the whole body, byte for byte, whatever the text holds."""

from __future__ import annotations

import random
from collections import Counter

from notifier.mailer import BodyEncoder, quoted_printable

# Lines that meet each rule of the encoder that could tell a part from the
# whole: soft breaks at 76 characters (plain and encoded ones at the edge),
# whitespace that ends a line (near the edge too), a lone dot, "=", non-ASCII,
# and every kind of line end.
LINES = [
    "",
    ".",
    "..",
    " ",
    "\t",
    "plain",
    "x" * 75,
    "x" * 76,
    "x" * 77,
    "x" * 74 + " ",
    "x" * 75 + " ",
    "x" * 73 + "\t",
    "x" * 74 + "=",
    "x" * 73 + "€",
    "€" * 30,
    "a=b " * 25,
    '<p style="margin:0 0 4px;">Škoda Enyaq iV 80</p>',
    "ends with space ",
]
LINE_ENDS = ["\n", "\n", "\n", "\r\n", "\r"]


def _text(rng: random.Random, lines: int, ends: list[str] = LINE_ENDS) -> str:
    return "".join(
        rng.choice(LINES) + rng.choice(ends) for _ in range(lines)
    ) + rng.choice(["", rng.choice(LINES)])


class CountingEncoder(BodyEncoder):
    """Counts the cards encoded on their own (once, then from the cache): those
    that end their line, and those the body's newline follows."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: Counter[bool] = Counter()

    def card(self, card: str) -> str:
        self.taken[card.endswith("\n")] += 1
        return super().card(card)


def test_a_body_is_its_quoted_printable_whatever_its_cards_and_lines():
    taken: Counter[bool] = Counter()
    for seed in range(500):
        rng = random.Random(seed)
        # Cards as the templates make them (LF), now and then with a CR.
        ends = LINE_ENDS if seed % 5 == 0 else ["\n"]
        cards = [_text(rng, rng.randint(0, 4), ends) for _ in range(rng.randint(0, 6))]
        # A card ends its own line or is followed by one (as in the HTML body),
        # or stands in the middle of a line, or is not in the text at all.
        parts = []
        for card in cards:
            parts.append(_text(rng, rng.randint(0, 2)))
            parts.append(card + rng.choice(["", "\n", "\r\n", " tail\n", "x"]))
        parts.append(_text(rng, rng.randint(0, 2)))
        text = "".join(parts)
        shown = [*cards, _text(rng, 2)] if seed % 7 == 0 else cards

        encoder = CountingEncoder()
        assert encoder.body(text, shown) == quoted_printable(text), seed
        assert encoder.body(text, shown) == quoted_printable(text), seed  # cached
        taken += encoder.taken
    # The cache stood in for cards of both kinds, not only the whole body.
    assert taken[True] > 100
    assert taken[False] > 100


def test_an_emails_bodies_are_their_quoted_printable_cards_from_the_cache():
    from notifier.mailer import Bodies
    from notifier.render import EmailRenderer
    from tests.notifier.conftest import window

    rows = [
        window(f"v{n}", make=make, color="Zwart " if n % 2 else "Grijs")
        for n, make in enumerate(["Tesla", "Kia", "Kia", "Škoda", "Tesla"])
    ]
    renderer = EmailRenderer(image_width=300, timezone="Europe/Amsterdam")
    email = renderer.render(rows[:4], left_out=rows[4:], sender="a@b.nl")
    assert len(email.cards) == 4
    encoder = BodyEncoder()
    for html, text in email.cards:  # the fitter measured them first
        encoder.card_size(html)
        encoder.card_size(text)
    assert encoder.bodies(email) == Bodies.of(email)
