"""The one time-zone rule, for the settings and the subscriptions file alike."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator


def check_time_zone(value: str) -> str:
    """An IANA time zone name (`Europe/Amsterdam`), or ValueError naming it."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]
