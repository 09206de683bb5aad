"""Odd data on purpose: answers that are HTTP 200 and valid JSON, but wrong or strange.

`faults` break requests (status codes, drops, cut-off bodies); tampering bends the
content of good answers, the way a real API that is half-deployed or fed bad data
does: a cluster whose `VehicleVariation` list comes back empty while
`VehicleCluster` still counts its cars, a car whose `details` are null, a date that is
not ISO 8601, a number sent as a string, a value far out of range, an id listed twice
in different case. Each rule names the vehicle (or cluster) it bends.

`changes` map a dotted path in the vehicle's JSON ("details.registrationDate",
"pricing", "rangeInKm") to the value to put there; `MISSING` removes the key.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(slots=True)
class EmptyCluster:
    """`VehicleVariation` answers [] for this make + model (`times` None: always)."""

    make: str
    model: str
    times: int | None = None
    hits: int = 0


def apply_changes(obj: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `obj` with each dotted path set to its value (or removed)."""
    result = copy.deepcopy(obj)
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = result
        for key in parents:
            nested = target.get(key)
            if not isinstance(nested, dict):
                nested = target[key] = {}
            target = nested
        if value is MISSING:
            target.pop(last, None)
        else:
            target[last] = value
    return result


class Tampering:
    """The content rules of one server, safe to change while requests are served.

    `version` changes with every rule, so cached answers are rebuilt.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0
        self._empty: list[EmptyCluster] = []
        self._summaries: dict[str, dict[str, Any]] = {}
        self._details: dict[str, dict[str, Any]] = {}
        self._duplicates: dict[str, list[str]] = {}

    def empty_variations(
        self, make: str, model: str, times: int | None = None
    ) -> EmptyCluster:
        """`VehicleVariation` for this cluster answers [] (the next `times` asks)."""
        rule = EmptyCluster(make, model, times)
        with self._lock:
            self._empty.append(rule)
            self.version += 1
        return rule

    def summary(self, vehicle_id: str, changes: Mapping[str, Any]) -> None:
        """Bend this vehicle's element of `VehicleVariation`."""
        with self._lock:
            self._summaries.setdefault(vehicle_id.lower(), {}).update(changes)
            self.version += 1

    def detail(self, vehicle_id: str, changes: Mapping[str, Any]) -> None:
        """Bend this vehicle's `GET Vehicle` answer."""
        with self._lock:
            self._details.setdefault(vehicle_id.lower(), {}).update(changes)
            self.version += 1

    def duplicate(self, vehicle_id: str, as_id: str) -> None:
        """List the vehicle a second time in its cluster, under `as_id` (e.g. upper
        case); `GET Vehicle` finds either spelling, as ids are case-insensitive."""
        with self._lock:
            self._duplicates.setdefault(vehicle_id.lower(), []).append(as_id)
            self.version += 1

    def clear(self) -> None:
        """Every answer is honest again."""
        with self._lock:
            self._empty.clear()
            self._summaries.clear()
            self._details.clear()
            self._duplicates.clear()
            self.version += 1

    def claim_empty(self, make: str, model: str) -> bool:
        """Whether this ask for the cluster's variations must answer [] (charged)."""
        with self._lock:
            for rule in self._empty:
                live = rule.times is None or rule.hits < rule.times
                if live and (rule.make.lower(), rule.model.lower()) == (make, model):
                    rule.hits += 1
                    return True
            return False

    def summaries(self, summary: dict[str, Any]) -> list[dict[str, Any]]:
        """The elements `VehicleVariation` lists for one honest summary."""
        vehicle_id = str(summary["id"]).lower()
        with self._lock:
            changes = self._summaries.get(vehicle_id)
            duplicates = list(self._duplicates.get(vehicle_id, ()))
        bent = apply_changes(summary, changes) if changes else summary
        return [bent, *({**bent, "id": other} for other in duplicates)]

    def detail_changes(self, vehicle_id: str) -> dict[str, Any] | None:
        """The changes to this vehicle's `GET Vehicle` answer, if any."""
        with self._lock:
            changes = self._details.get(vehicle_id.lower())
            return dict(changes) if changes else None
