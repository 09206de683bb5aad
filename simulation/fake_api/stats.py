"""Request statistics of the simulated showroom, read by tests.

They prove what a test cannot see from outside: how many requests the loader made per
endpoint, and how many were in flight at once (`max_in_flight` > 1 means the server and
the loader really overlap requests).
"""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Thread-safe counters; every property returns a consistent copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._by_endpoint: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0

    def request_started(self, endpoint: str) -> None:
        """Count a request the moment it is parsed (faulted ones included)."""
        with self._lock:
            self._total += 1
            self._by_endpoint[endpoint] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def request_finished(self, status: int | None) -> None:
        """The response is written (status None: the connection was dropped)."""
        with self._lock:
            self._in_flight -= 1
            if status is not None:
                self._by_status[status] += 1

    @property
    def requests_total(self) -> int:
        """Requests received since start or the last reset."""
        with self._lock:
            return self._total

    @property
    def requests_by_endpoint(self) -> Counter[str]:
        """Requests per endpoint name ("Vehicle", "VehicleCluster", ...; 0 if none)."""
        with self._lock:
            return Counter(self._by_endpoint)

    @property
    def responses_by_status(self) -> Counter[int]:
        """Responses per HTTP status (dropped connections are not responses)."""
        with self._lock:
            return Counter(self._by_status)

    @property
    def in_flight(self) -> int:
        """Requests being handled right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests handled at the same moment since start or reset."""
        with self._lock:
            return self._max_in_flight

    def reset(self) -> None:
        """Start counting afresh; requests still in flight stay counted as in flight."""
        with self._lock:
            self._total = 0
            self._by_endpoint.clear()
            self._by_status.clear()
            self._max_in_flight = self._in_flight

    def __repr__(self) -> str:
        return (
            f"Stats(requests_total={self.requests_total}, "
            f"by_endpoint={dict(self.requests_by_endpoint)}, "
            f"max_in_flight={self.max_in_flight})"
        )
