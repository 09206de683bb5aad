"""Injectable faults: make chosen requests fail the way a real API under load does.

A test adds a rule ("the next 2 `Vehicle` requests answer 503") and the loader's
retry, back-off and error paths run against real HTTP. Rules are checked in the order
they were added; the first that matches a request claims it and uses up one of its
`times`. A rule can combine a delay with a status, a malformed body or a drop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

ENDPOINTS = (
    "VehicleCluster",
    "VehicleVariation",
    "Vehicle",
    "TaxRates",
    "MemberLogin",
    "MemberProfile",
)
_CANONICAL = {name.lower(): name for name in ENDPOINTS}


def canonical_endpoint(name: str) -> str:
    """The endpoint's name as the API spells it; ValueError for a typo."""
    try:
        return _CANONICAL[name.lower()]
    except KeyError:
        raise ValueError(
            f"Unknown endpoint {name!r}; expected one of {', '.join(ENDPOINTS)}"
        ) from None


@dataclass(slots=True)
class Fault:
    """One rule. `times` None means forever; `hits` counts the requests it claimed.

    Effects: `delay_ms` waits before answering; `drop` closes the connection without a
    response; `status` answers with that code (a `retry_after` adds the header, and
    alone implies 429); `malformed` sends a cut-off JSON body (with `status` or 200).
    """

    endpoint: str | None
    status: int | None = None
    times: int | None = None
    vehicle_id: str | None = None
    retry_after: float | None = None
    malformed: bool = False
    delay_ms: float | None = None
    drop: bool = False
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        """Whether the rule has claimed all the requests it was meant to."""
        return self.times is not None and self.hits >= self.times

    def matches(self, endpoint: str, vehicle_id: str | None) -> bool:
        """Whether a request to `endpoint` (for `vehicle_id`) falls under the rule."""
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return self.vehicle_id is None or (
            vehicle_id is not None and self.vehicle_id.lower() == vehicle_id.lower()
        )

    @property
    def response_status(self) -> int | None:
        """The status to answer with, None for the normal one."""
        if self.status is None and self.retry_after is not None:
            return 429
        return self.status


class Faults:
    """The rules of one server, safe to change while requests are served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def add(
        self,
        endpoint: str | None = None,
        status: int | None = None,
        times: int | None = None,
        vehicle_id: str | None = None,
        retry_after: float | None = None,
        malformed: bool = False,
        delay_ms: float | None = None,
        drop: bool = False,
    ) -> Fault:
        """Add a rule for `endpoint` (None: every endpoint); returns it to inspect.

        `times` is how many matching requests it affects (None, the default: all of
        them until removed or cleared).
        """
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"Not an HTTP status: {status}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None), got {times}")
        if not (
            status is not None
            or retry_after is not None
            or malformed
            or delay_ms is not None
            or drop
        ):
            raise ValueError(
                "A fault needs an effect: status, retry_after, malformed, delay_ms "
                "or drop"
            )
        rule = Fault(
            endpoint=None if endpoint is None else canonical_endpoint(endpoint),
            status=status,
            times=times,
            vehicle_id=vehicle_id,
            retry_after=retry_after,
            malformed=malformed,
            delay_ms=delay_ms,
            drop=drop,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def claim(self, endpoint: str, vehicle_id: str | None) -> Fault | None:
        """The first live rule matching the request, charged one use; or None."""
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(endpoint, vehicle_id):
                    rule.hits += 1
                    return rule
            return None

    def clear(self) -> None:
        """Drop every rule: the API behaves normally again."""
        with self._lock:
            self._rules.clear()

    @property
    def active(self) -> list[Fault]:
        """Rules that can still claim requests."""
        with self._lock:
            return [rule for rule in self._rules if not rule.exhausted]
