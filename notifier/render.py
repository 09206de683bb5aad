"""Turn a recipient's new windows into the email: subject, HTML and plain text.

Grouped per cluster (make + model) with its picture and showroom link, one table row
per vehicle. Strings from the API are untrusted: the HTML template autoescapes, a
link is only a link when it is http(s), and the subject holds no control character
or encoded word (header_text).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from notifier.phrases import (
    ALERT_KINDS,
    BADGES,
    SUBJECT_WORDS,
    AlertKind,
    alert_kind,
    back_phrase,
    gone_phrase,
    lease_speed_phrase,
    price_drop_phrase,
)

TEMPLATES = Path(__file__).parent / "templates"
IMAGE_WIDTH_PLACEHOLDER = "[#width#]"
MISSING = "-"
# Reserved URL characters plus "%" (already-encoded input stays as it is).
URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


@dataclass(frozen=True)
class VehicleLine:
    """One car of a cluster, every value ready to print.

    `fields` holds every field of FIELD_NAMES (MISSING when unknown); the email
    shows a field of SHARED_FIELDS only when some car of the email has it, and one
    of OWN_FIELDS only on the cars that have it (`own_fields`).
    """

    label: str
    kind: AlertKind
    badge: str
    fields: dict[str, str]
    notes: tuple[str, ...]  # back again, lease speed: one line each
    url: str | None

    @property
    def own_fields(self) -> tuple[str, ...]:
        return tuple(name for name in OWN_FIELDS if self.fields[name] != MISSING)

    @cached_property
    def known_fields(self) -> frozenset[str]:
        """The fields this car has (not MISSING): worked out once per line, as an
        email asks every car of a batch which fields to show (_shown_fields)."""
        return frozenset(name for name, text in self.fields.items() if text != MISSING)


@dataclass(frozen=True)
class Cluster:
    """A make and model with its picture, showroom page and new vehicles."""

    make: str
    model: str
    image_url: str | None
    url: str | None
    vehicles: tuple[VehicleLine, ...]


@dataclass(frozen=True)
class Remainder:
    """Cars of a make and model left out of this message (they follow later)."""

    make: str
    model: str
    count: int
    url: str | None


@dataclass(frozen=True)
class RenderedEmail:
    """What goes into the message; `cards` are the cars' cards (HTML, text) in
    the order the bodies show them (EmailRenderer.render), or none."""

    subject: str
    html: str
    text: str
    cards: tuple[tuple[str, str], ...] = field(default=(), repr=False)


# The fields shown per car, in order: (name, how it is read from a row).
FIELD_NAMES = (
    "Monthly price",
    "Colour",
    "Fuel",
    "Range",
    "Mileage",
    "Fiscal value",
    "Contribution",
    "Net cost",
    "Available since",
    "Available until",
)
# Shown only on the cars that have them: "Available until" belongs to a car that
# left (a digest's GONE line); an open car beside it says nothing rather than "-".
OWN_FIELDS = ("Available until",)

# A subject longer than this is cut at a model: phones show about 40 to 70
# characters, and with "Subject: " the header stays on one 78-character line
# (a folded header reads back with a leading space in some tools).
SUBJECT_MAX_CHARS = 68


def _amount(value: Any) -> Decimal | None:
    """A finite Decimal of the value, or None (unknown, NaN, infinite, not a number).

    The mart's numeric columns can hold NaN and huge values (1e30); none of them
    may stop an email.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def euro(value: Any) -> str:
    """Dutch style: `€ 1.010,00`; `-` when unknown or not a finite number."""
    amount = _amount(value)
    if amount is None:
        return MISSING
    with localcontext() as context:
        # Enough digits for any magnitude: quantize fails when the result needs
        # more than the context's precision (28 digits by default).
        context.prec = max(28, amount.adjusted() + 4)
        amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    english = f"{amount:,.2f}"  # 1,010.00
    dutch = english.replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"€ {dutch}"


def local_time(value: datetime | None, timezone: str) -> str:
    """`03-05-2025 14:10` in the recipient's time zone."""
    if not isinstance(value, datetime):
        return MISSING if value is None else str(value)
    try:
        return value.astimezone(ZoneInfo(timezone)).strftime("%d-%m-%Y %H:%M")
    except (OverflowError, ValueError):  # year 9999 plus an hour, and the like
        return value.isoformat()


def safe_url(value: Any) -> str | None:
    """The URL if it is http(s), else None (no javascript: links from the API).

    Spaces and other characters a URL may not hold (`/showroom/Tesla/Model 3`) are
    percent-encoded, so the link survives plain-text mail clients too.
    """
    if not isinstance(value, str):
        return None
    if len(value) > MAX_CACHED_URL_CHARS:
        return _safe_url(value)
    return _cached_safe_url(value)


def _safe_url(value: str) -> str | None:
    if not value.strip():
        return None
    url = quote(value.strip(), safe=URL_SAFE)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


# A run asks for each cluster's link and picture with every email and with every
# count of the cars left for the next one: each URL is worked out once. Longer
# text (the API's, untrusted) is not kept.
MAX_CACHED_URL_CHARS = 2_000
_cached_safe_url = lru_cache(maxsize=4_096)(_safe_url)


def image_url(value: Any, width: int) -> str | None:
    """The API's image URI with its `[#width#]` placeholder filled in."""
    url = safe_url(value)
    return url.replace(IMAGE_WIDTH_PLACEHOLDER, str(width)) if url else None


def _text(value: Any) -> str:
    """A grouping key: the value as text, `-` when unknown."""
    return MISSING if value is None else str(value)


def vehicle_label(row: Mapping[str, Any]) -> str:
    """`Long Range AWD 2024, AB-123-C`: type, model year, licence plate."""
    parts = (row.get("type"), row.get("model_year"))
    name = " ".join(str(part) for part in parts if part is not None and part != "")
    plate = row.get("license_plate")
    return f"{name}, {plate}" if plate else name


def _kilometres(value: Any) -> str:
    """`12.000 km`; `-` when unknown."""
    amount = _amount(value)
    if amount is None:
        return MISSING
    return f"{int(amount.to_integral_value(ROUND_HALF_UP)):,} km".replace(",", ".")


def _plain(value: Any) -> str:
    return MISSING if value is None or str(value).strip() == "" else str(value)


def _fields(row: Mapping[str, Any], kind: AlertKind, timezone: str) -> dict[str, str]:
    price = euro(row.get("price_per_month_in_euro"))
    if kind == "price_drop":
        price = price_drop_phrase(
            price, euro(row.get("previous_price_per_month_in_euro"))
        )
    return {
        "Monthly price": price,
        "Colour": _plain(row.get("color")),
        "Fuel": _plain(row.get("fuel_type")),
        "Range": _kilometres(row.get("range_in_km")),
        "Mileage": _kilometres(row.get("registered_mileage")),
        "Fiscal value": euro(row.get("fiscal_value_in_euro")),
        "Contribution": euro(row.get("contribution_in_euro")),
        "Net cost": euro(row.get("net_cost_per_month_in_euro")),
        "Available since": local_time(row.get("available_since"), timezone),
        "Available until": local_time(row.get("available_until"), timezone),
    }


def _notes(row: Mapping[str, Any], kind: AlertKind, timezone: str) -> tuple[str, ...]:
    if kind == "gone":  # how fast such cars go is no news about a car gone
        return ()
    notes = []
    if kind == "back":
        left = row.get("left_at")
        notes.append(back_phrase(local_time(left, timezone) if left else None))
    speed = lease_speed_phrase(row.get("lease_speed_median_hours"))
    if speed:
        notes.append(speed)
    return tuple(notes)


def vehicle_line(row: Mapping[str, Any], timezone: str) -> VehicleLine:
    """One car as the email and the push text show it."""
    kind = alert_kind(row)
    return VehicleLine(
        label=vehicle_label(row),
        kind=kind,
        badge=BADGES[kind],
        fields=_fields(row, kind, timezone),
        notes=_notes(row, kind, timezone),
        # A car that left has no page in the showroom any more.
        url=None if kind == "gone" else safe_url(row.get("showroom_uri")),
    )


def _model_name(row: Mapping[str, Any]) -> str:
    return f"{_text(row.get('make'))} {_text(row.get('model'))}"


def kind_counts(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """`["3 new", "1 cheaper"]`: how many lines of each kind, in the kinds' order."""
    kinds = Counter(alert_kind(row) for row in rows)
    return [
        f"{kinds[kind]} {SUBJECT_WORDS[kind]}" for kind in ALERT_KINDS if kinds[kind]
    ]


def subject_for(
    rows: Sequence[Mapping[str, Any]], *, more: int = 0, limit: int = SUBJECT_MAX_CHARS
) -> str:
    """`3 new, 1 cheaper: Tesla Model 3, Kia EV6`: counts per kind, then the makes
    and models with the most cars, as many as fit in `limit` characters.

    `more` cars left for a later message are counted too (`, 930 more`).
    """
    counts = kind_counts(rows)
    if more:
        counts.append(f"{more} more")
    head = ", ".join(counts) or "nothing new"
    models = Counter(header_text(_model_name(row)) for row in rows)
    names = [name for name, _ in sorted(models.items(), key=lambda i: (-i[1], i[0]))]
    subject = head
    for index, name in enumerate(names):
        separator = ": " if index == 0 else ", "
        rest = len(names) - index - 1
        candidate = subject + separator + name
        # Room for ", ..." when more models follow.
        if len(candidate) + (5 if rest else 0) > limit:
            return subject + (": ..." if index == 0 else ", ...")
        subject = candidate
    return subject


# Bidirectional formatting (LRE to RLO, LRI to PDI): in a subject line they turn
# the text after them around, the counts included.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)], " ")


def header_text(text: str) -> str:
    """API text as it may stand in a header (the subject, a push title): one
    line, no control characters, and no RFC 2047 encoded word.

    Python's email package decodes an encoded word in the value it is given
    before it writes the header (and, before 3.11.10 and 3.12.5, writes a CR LF
    decoded so as it is: CVE-2024-6923): a model named
    `=?utf-8?q?=0D=0AReply-To:_x?=` would add a header to the email, or end its
    headers. `=?` is written `= ?`, which no encoded word begins with.
    """
    cleaned = "".join(
        " " if unicodedata.category(char) == "Cc" else char
        for char in text.translate(_BIDI_CONTROLS)
    )
    return " ".join(cleaned.split()).replace("=?", "= ?")


def remainder(rows: Iterable[Mapping[str, Any]]) -> list[Remainder]:
    """Counts per make and model, with the cluster's showroom page, alphabetical."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (_text(row.get("make")), _text(row.get("model")))
        grouped.setdefault(key, []).append(row)
    return [
        Remainder(
            make,
            model,
            len(members),
            next(
                (u for r in members if (u := safe_url(r.get("cluster_showroom_uri")))),
                None,
            ),
        )
        for (make, model), members in sorted(grouped.items())
    ]


def _email_order(row: Mapping[str, Any]) -> tuple:
    """Where a row stands in the email: by make and model, the cars still there
    before those gone, then cheapest first (unknown and non-finite prices last:
    NaN cannot be ordered)."""
    price = _amount(row.get("price_per_month_in_euro"))
    return (
        _text(row.get("make")),
        _text(row.get("model")),
        alert_kind(row) == "gone",
        price is None,
        price or Decimal(0),
        str(row.get("license_plate") or ""),
        str(row.get("vehicle_id")),
    )


def _grouped(
    rows: Iterable[Mapping[str, Any]],
    order: Callable[[Mapping[str, Any]], tuple] = _email_order,
) -> list[tuple[str, str, list[Mapping[str, Any]]]]:
    """(make, model, its rows) in the email's order (`order`: _email_order or a
    cache of it)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in sorted(rows, key=order):
        groups.setdefault(order(row)[:2], []).append(row)
    return [(make, model, members) for (make, model), members in groups.items()]


def _cluster(
    make: str,
    model: str,
    members: Sequence[Mapping[str, Any]],
    lines: tuple[VehicleLine, ...],
    image_width: int,
) -> Cluster:
    image = next(
        (url for r in members if (url := image_url(r.get("image_uri"), image_width))),
        None,
    )
    link = next(
        (url for r in members if (url := safe_url(r.get("cluster_showroom_uri")))),
        None,
    )
    return Cluster(make, model, image, link, lines)


def group_clusters(
    rows: Iterable[Mapping[str, Any]], *, image_width: int, timezone: str
) -> list[Cluster]:
    """Rows grouped by (make, model), clusters alphabetical, vehicles cheapest first."""
    return [
        _cluster(
            make,
            model,
            members,
            tuple(vehicle_line(r, timezone) for r in members),
            image_width,
        )
        for make, model, members in _grouped(rows)
    ]


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # HTML escaped, plain text left as is (it is never rendered as markup).
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the package and change only with it; checking
        # their mtime on every render cost 1,100 stat calls in a 1,500-car run.
        auto_reload=False,
    )


def _shown_fields(lines: Iterable[VehicleLine]) -> tuple[str, ...]:
    """The fields every car of the email shows, those some car has: one unknown
    for all is left out (Contribution and Net cost without a login). OWN_FIELDS
    are never among them (`VehicleLine.own_fields`)."""
    missing = set(FIELD_NAMES) - set(OWN_FIELDS)
    for line in lines:
        missing -= line.known_fields
        if not missing:
            break
    return tuple(
        name for name in FIELD_NAMES if name not in missing and name not in OWN_FIELDS
    )


def unsubscribe_address(sender: str | None, recipient: str | None) -> str | None:
    """`mailto:` URI of the List-Unsubscribe header and the footer: the sender, with
    a subject naming the recipient, for the operator who keeps the subscriptions."""
    if not sender:
        return None
    subject = quote(f"unsubscribe {recipient}" if recipient else "unsubscribe")
    return f"mailto:{sender}?subject={subject}"


class EmailRenderer:
    """Renders the emails of one run for one time zone and picture width.

    A first run shows every car to every recipient, about 45 cars an email. Each
    car's line and card (vehicle.html, vehicle.txt) is built once here and reused
    by every email, every size try (mailer.EmailFitter) and every recipient that
    shows it, so an email costs the join of its cards, not a template pass over
    each car. Keep one for a run only: the cards hold the run's rows.
    """

    def __init__(self, *, image_width: int, timezone: str) -> None:
        self.image_width = image_width
        self.timezone = timezone
        self._lines: dict[int, VehicleLine] = {}
        self._cards: dict[tuple[int, tuple[str, ...]], tuple[Markup, str]] = {}
        # A car's content (its row without the recipient: the same car is the
        # same card for everyone) → a number, so the caches hash a number.
        self._numbers: dict[Hashable, int] = {}
        # id(row) → (the row, its number): a row's content is read once however
        # often it is looked up; holding the row keeps its id from being reused.
        self._rows: dict[int, tuple[Mapping[str, Any], int | None]] = {}
        # A car's number → its place in an email (_email_order): a batch is sorted
        # again for each of its emails and each size try.
        self._places: dict[int, tuple] = {}

    def _number(self, row: Mapping[str, Any]) -> int | None:
        """The number of the row's content; None when a value cannot be hashed
        (such a row is rendered each time)."""
        known = self._rows.get(id(row))
        if known is not None and known[0] is row:
            return known[1]
        content = tuple(item for item in row.items() if item[0] != "recipient")
        try:
            number: int | None = self._numbers.setdefault(content, len(self._numbers))
        except TypeError:
            number = None
        self._rows[id(row)] = (row, number)
        return number

    def place(self, row: Mapping[str, Any]) -> tuple:
        """The row's place in an email: _email_order, worked out once per car."""
        number = self._number(row)
        if number is None:
            return _email_order(row)
        found = self._places.get(number)
        if found is None:
            found = self._places[number] = _email_order(row)
        return found

    def in_email_order(
        self, rows: Iterable[Mapping[str, Any]]
    ) -> list[Mapping[str, Any]]:
        """rows_in_email_order, with each car's place worked out once per run."""
        return sorted(rows, key=self.place)

    def line(self, row: Mapping[str, Any]) -> VehicleLine:
        number = self._number(row)
        if number is None:
            return vehicle_line(row, self.timezone)
        found = self._lines.get(number)
        if found is None:
            found = self._lines[number] = vehicle_line(row, self.timezone)
        return found

    def _card(
        self, row: Mapping[str, Any], fields: tuple[str, ...]
    ) -> tuple[Markup, str]:
        number = self._number(row)
        found = self._cards.get((number, fields)) if number is not None else None
        if found is None:
            environment = _environment()
            context = {"vehicle": self.line(row), "fields": fields}
            found = (
                # vehicle.html autoescapes (an .html template): its output is safe
                # to place as it is, where escaping it again would show markup.
                Markup(environment.get_template("vehicle.html").render(context)),  # noqa: S704
                environment.get_template("vehicle.txt").render(context),
            )
            if number is not None:
                self._cards[(number, fields)] = found
        return found

    def cards(self, rows: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, str]]:
        """Each row's card as (HTML, text), as far as it is read, with the fields
        some of these rows have: an email of some of them shows those or fewer."""
        fields = _shown_fields(self.line(row) for row in rows)
        return (self._card(row, fields) for row in rows)

    def render(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        left_out: Sequence[Mapping[str, Any]] = (),
        sender: str | None = None,
        recipient: str | None = None,
    ) -> RenderedEmail:
        """The email for these windows (all for one recipient).

        `left_out` are the recipient's other cars that did not fit this message:
        only counted per make and model, they follow in the next one.
        """
        rows = list(rows)
        groups = [
            (make, model, members, tuple(self.line(r) for r in members))
            for make, model, members in _grouped(rows, self.place)
        ]
        fields = _shown_fields(line for *_, lines in groups for line in lines)
        clusters = [
            (
                _cluster(make, model, members, lines, self.image_width),
                [self._card(r, fields) for r in members],
            )
            for make, model, members, lines in groups
        ]
        kinds = Counter(line.kind for *_, lines in groups for line in lines)
        context = {
            "subject": subject_for(rows, more=len(left_out)),
            "count": len(rows),
            "kinds": [(SUBJECT_WORDS[k], kinds[k]) for k in ALERT_KINDS if kinds[k]],
            "gone": kinds["gone"],
            "clusters": [
                (cluster, [html for html, _ in cards]) for cluster, cards in clusters
            ],
            "fields": fields,
            "left_out": remainder(left_out),
            "left_out_count": len(left_out),
            "image_width": self.image_width,
            "timezone": self.timezone,
            "sender": sender,
            "recipient": recipient,
            "unsubscribe": unsubscribe_address(sender, recipient),
        }
        environment = _environment()
        html = environment.get_template("new_vehicles.html").render(context)
        context["clusters"] = [
            (cluster, [text for _, text in cards]) for cluster, cards in clusters
        ]
        return RenderedEmail(
            subject=context["subject"],
            html=html,
            text=environment.get_template("new_vehicles.txt").render(context),
            cards=tuple(card for _, cards in clusters for card in cards),
        )


def render_email(
    rows: Iterable[Mapping[str, Any]],
    *,
    image_width: int,
    timezone: str,
    left_out: Sequence[Mapping[str, Any]] = (),
    sender: str | None = None,
    recipient: str | None = None,
) -> RenderedEmail:
    """The email for these windows (all for one recipient); EmailRenderer.render
    for a single email."""
    return EmailRenderer(image_width=image_width, timezone=timezone).render(
        rows, left_out=left_out, sender=sender, recipient=recipient
    )


# A push is read on a lock screen: Pushover takes 1,024 characters, Discord 2,000,
# SMS 160 per part. Past this the rest is counted per make and model and follows
# in the next push.
PUSH_MAX_CHARS = 1000


def _push_line(line: VehicleLine, make: str, model: str) -> str:
    price = line.fields["Monthly price"]
    if line.kind != "price_drop" and price != MISSING:
        price = f"{price}/month"
    parts = [f"{line.badge} {make} {model} {line.label}".strip() + f": {price}"]
    if line.kind == "back":
        parts.append(line.notes[0])
    if line.kind == "gone":
        parts.append(gone_phrase(line.fields["Available until"]))
    text = ", ".join(parts)
    return f"{text} {line.url}" if line.url else text


def render_push(
    rows: Sequence[Mapping[str, Any]],
    *,
    timezone: str,
    limit: int = PUSH_MAX_CHARS,
) -> tuple[str, str, list[Mapping[str, Any]]]:
    """(title, body, rows shown) of a push: one line per car, as many as fit in
    `limit` characters, then the rest counted per make and model.

    Only the rows shown are in the text; the caller claims those alone, and the
    rest follow in the next push.
    """
    ordered = rows_in_email_order(rows)
    if not ordered:
        return subject_for([]), "", []
    # As many whole lines as fit (only those are built: a first run has hundreds),
    # then fewer while the count of the rest does not fit either.
    lines: list[str] = []
    used = 0
    for row in ordered:
        line = _one(_push_line(vehicle_line(row, timezone), *_make_model(row)))
        if lines and used + 1 + len(line) > limit:
            break
        used += len(line) + (1 if lines else 0)
        lines.append(line)
    shown = len(lines)
    while True:
        rest = ordered[shown:]
        tail = _push_remainder(rest)
        body = "\n".join(lines[:shown] + ([tail] if tail else []))
        if len(body) <= limit or shown == 1:
            break
        shown -= 1
    # One car whose line alone is too long (API text) is cut, never dropped.
    return subject_for(ordered[:shown], more=len(rest)), body[:limit], ordered[:shown]


def _make_model(row: Mapping[str, Any]) -> tuple[str, str]:
    return _text(row.get("make")), _text(row.get("model"))


def _one(text: str) -> str:
    """No newline inside a car's line (API text may hold one)."""
    return " ".join(text.split())


def _push_remainder(rest: Sequence[Mapping[str, Any]]) -> str:
    if not rest:
        return ""
    counts = ", ".join(
        f"{item.count} {item.make} {item.model}" for item in remainder(rest)
    )
    return _one(f"{len(rest)} more in the next message: {counts}")


def rows_in_email_order(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows in the order group_clusters shows them."""
    return sorted(rows, key=_email_order)
