"""JSON text with the real API's number formats.

The real API writes some decimals with a fixed scale ("calculatedPricePerMonthInEuro":
1010.00, "minPriceInEuroPerMonth": 1010.000000) and others shortest ("emission":
153.0). `json.dumps` cannot do the former, so this small encoder takes, per response
shape, which keys carry a fixed number of decimals. Parsed back, the values are the
same floats either way; the text is what a strict client or a snapshot test sees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any

NO_FIXED: Mapping[str, int] = {}


def encode(value: Any, fixed_decimals: Mapping[str, int] = NO_FIXED) -> bytes:
    """UTF-8 JSON of `value`; floats under a key in `fixed_decimals` get that scale."""
    out: list[str] = []
    _write(value, fixed_decimals, None, out)
    return "".join(out).encode()


def _write(
    value: Any, fixed: Mapping[str, int], places: int | None, out: list[str]
) -> None:
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"JSON has no representation for {value}")
        out.append(f"{value:.{places}f}" if places is not None else repr(value))
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(encode_basestring(key))
            out.append(":")
            _write(item, fixed, fixed.get(key), out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, fixed, None, out)
        out.append("]")
    else:
        raise TypeError(f"Cannot encode {type(value).__name__} as JSON")
