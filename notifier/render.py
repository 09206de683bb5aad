"""Turn a recipient's new windows into the email: subject, HTML and plain text.

Grouped per cluster (make + model) with its picture and showroom link, one table row
per vehicle. Strings from the API are untrusted: the HTML template autoescapes, and a
link is only a link when it is http(s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2

from notifier.phrases import (
    alert_kind,
    back_phrase,
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
    """One row of a cluster's table, every value ready to print."""

    label: str
    fiscal_value: str
    monthly_price: str
    contribution: str
    net_cost: str
    available_since: str
    url: str | None
    # Back again, cheaper, how fast such cars go (notifier.phrases); "" for none.
    note: str = ""


@dataclass(frozen=True)
class Cluster:
    """A make and model with its picture, showroom page and new vehicles."""

    make: str
    model: str
    image_url: str | None
    url: str | None
    vehicles: tuple[VehicleLine, ...]


@dataclass(frozen=True)
class RenderedEmail:
    """What goes into the message."""

    subject: str
    html: str
    text: str


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
    if not isinstance(value, str) or not value.strip():
        return None
    url = quote(value.strip(), safe=URL_SAFE)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


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


def subject_for(count: int) -> str:
    """`Athlon Flex: 3 new vehicles` (singular for one)."""
    noun = "vehicle" if count == 1 else "vehicles"
    return f"Athlon Flex: {count} new {noun}"


def _note(row: Mapping[str, Any], timezone: str) -> str:
    """What a car's line says besides its figures, in the shared phrases."""
    parts = []
    kind = alert_kind(row)
    if kind == "back":
        parts.append(back_phrase(local_time(row.get("left_at"), timezone)))
    elif kind == "price_drop":
        parts.append(
            price_drop_phrase(
                euro(row.get("price_per_month_in_euro")),
                euro(row.get("previous_price_per_month_in_euro")),
            )
        )
    speed = lease_speed_phrase(row.get("lease_speed_median_hours"))
    if speed:
        parts.append(speed)
    return "; ".join(parts)


def group_clusters(
    rows: Iterable[Mapping[str, Any]], *, image_width: int, timezone: str
) -> list[Cluster]:
    """Rows grouped by (make, model), clusters alphabetical, vehicles cheapest first."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (_text(row.get("make")), _text(row.get("model")))
        grouped.setdefault(key, []).append(row)
    clusters = []
    for (make, model), members in sorted(grouped.items()):
        # Unknown and non-finite prices last (NaN cannot be ordered).
        members.sort(
            key=lambda r: (
                (price := _amount(r.get("price_per_month_in_euro"))) is None,
                price or Decimal(0),
                str(r.get("license_plate") or ""),
                str(r.get("vehicle_id")),
            )
        )
        image = next(
            (
                url
                for r in members
                if (url := image_url(r.get("image_uri"), image_width))
            ),
            None,
        )
        link = next(
            (url for r in members if (url := safe_url(r.get("cluster_showroom_uri")))),
            None,
        )
        lines = tuple(
            VehicleLine(
                label=vehicle_label(r),
                fiscal_value=euro(r.get("fiscal_value_in_euro")),
                monthly_price=euro(r.get("price_per_month_in_euro")),
                contribution=euro(r.get("contribution_in_euro")),
                net_cost=euro(r.get("net_cost_per_month_in_euro")),
                available_since=local_time(r.get("available_since"), timezone),
                url=safe_url(r.get("showroom_uri")),
                note=_note(r, timezone),
            )
            for r in members
        )
        clusters.append(Cluster(make, model, image, link, lines))
    return clusters


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
    )


def render_email(
    rows: Iterable[Mapping[str, Any]], *, image_width: int, timezone: str
) -> RenderedEmail:
    """The email for these windows (all for one recipient)."""
    clusters = group_clusters(rows, image_width=image_width, timezone=timezone)
    count = sum(len(cluster.vehicles) for cluster in clusters)
    context = {
        "subject": subject_for(count),
        "count": count,
        "clusters": clusters,
        "image_width": image_width,
        "timezone": timezone,
    }
    environment = _environment()
    return RenderedEmail(
        subject=context["subject"],
        html=environment.get_template("new_vehicles.html").render(context),
        text=environment.get_template("new_vehicles.txt").render(context),
    )
