"""HTTP to the showroom API: httpx, one limit on requests in flight, tenacity retries.

dlt runs the detail calls in its thread pool (`loader.source`); every client of a run
(the member's and the anonymous fallback) shares one `RequestLimiter`, so "never more
than `athlon_max_concurrency` requests in flight" holds for the run and is counted
(`HttpStats.max_in_flight`).

Per request: a descriptive User-Agent and a timeout; tenacity retries 5xx, 408,
timeouts, connection errors and bodies that are not JSON, with exponential back-off
and jitter; a 429 waits its Retry-After (seconds or an HTTP date) and pauses *every*
request of the run, since the server asked the client to slow down; a Retry-After
longer than MAX_RETRY_AFTER_SECONDS, and any other 4xx, fail at once. A request that
still fails raises `ApiError`, naming endpoint, vehicle and status.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import tenacity

from loader.constants import MAX_BACKOFF_SECONDS, MAX_RETRY_AFTER_SECONDS, USER_AGENT

log = logging.getLogger(__name__)
# httpx logs every request at INFO: a thousand lines a run would drown the progress
# lines. Left alone when the application configured that logger itself.
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)

Params = Mapping[str, str | int | float]


class ApiError(Exception):
    """A request to the showroom API failed for good; the message says which and how."""

    def __init__(
        self,
        method: str,
        endpoint: str,
        problem: str,
        *,
        status: int | None = None,
        subject: str | None = None,
    ) -> None:
        self.status = status
        target = f"{method} {endpoint}" + (f" for {subject}" if subject else "")
        super().__init__(f"Athlon API {target} {problem}")


@dataclass
class HttpStats:
    """What the run's requests cost; shared by every client of one run."""

    requests: int = 0
    retries: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class RequestLimiter:
    """The run-wide bound on requests in flight, and the pause a 429 asks for.

    Slots go first come, first served (threading.Semaphore lets the thread that
    just released take its slot again: a request retried at once after a 429 would
    jump the queue and could spend all its tries while the others wait).
    """

    def __init__(self, max_concurrency: int) -> None:
        self.max_concurrency = max_concurrency
        self.stats = HttpStats()
        self._free = max_concurrency
        self._queue: collections.deque[object] = collections.deque()
        self._turn = threading.Condition()
        self._lock = threading.Lock()
        self._resume_at = 0.0

    def _acquire(self) -> None:
        with self._turn:
            ticket = object()
            self._queue.append(ticket)
            while self._queue[0] is not ticket or not self._free:
                self._turn.wait()
            self._queue.popleft()
            self._free -= 1
            self._turn.notify_all()  # the next in line may find a free slot too

    def _release(self) -> None:
        with self._turn:
            self._free += 1
            self._turn.notify_all()

    def pause(self, seconds: float) -> None:
        """Hold back every request of the run for `seconds` from now."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a free slot (and the end of any pause), count the request."""
        self._acquire()
        try:
            while (wait := self._resume_at - time.monotonic()) > 0:
                time.sleep(wait)
            with self._lock:
                self.stats.requests += 1
                self.stats.in_flight += 1
                self.stats.max_in_flight = max(
                    self.stats.max_in_flight, self.stats.in_flight
                )
            try:
                yield
            finally:
                with self._lock:
                    self.stats.in_flight -= 1
        finally:
            self._release()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (None if absent)."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Retry(Exception):
    """One try failed in a way another try may fix (`wait`: the server's own)."""

    def __init__(
        self, problem: str, *, status: int | None = None, wait: float | None = None
    ) -> None:
        super().__init__(problem)
        self.problem, self.status, self.wait = problem, status, wait


class _Final(Exception):
    """One try failed in a way no other try fixes (a 404, a very long Retry-After)."""

    def __init__(self, problem: str, status: int) -> None:
        super().__init__(problem)
        self.problem, self.status = problem, status


class ApiClient:
    """One identity's connection to the API (cookies of its own), shared limits."""

    def __init__(
        self,
        base_url: str,
        limiter: RequestLimiter,
        *,
        max_retries: int,
        backoff_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self._limiter = limiter
        self._tries = max_retries + 1
        self._backoff = backoff_seconds
        pool = limiter.max_concurrency
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    def set_cookie(self, name: str, value: str) -> None:
        """Send this cookie with every later request of this client."""
        self._client.cookies.set(name, value)

    def get(
        self, endpoint: str, params: Params | None = None, *, subject: str | None = None
    ) -> Any:
        """GET an endpoint and return its JSON; `ApiError` once retries are spent."""
        return self._send("GET", endpoint, params=params, subject=subject)

    def post(self, endpoint: str, body: Mapping[str, Any]) -> None:
        """POST JSON to an endpoint; only the status matters (the body is ignored)."""
        self._send("POST", endpoint, json_body=body)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The server's Retry-After (pausing the whole run), else exponential back-off
        with "equal jitter": half fixed, half random."""
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Retry) and failure.wait is not None:
            self._limiter.pause(failure.wait)
            return failure.wait
        ceiling = min(
            MAX_BACKOFF_SECONDS, self._backoff * 2 ** (state.attempt_number - 1)
        )
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _send(
        self,
        method: str,
        endpoint: str,
        *,
        params: Params | None = None,
        json_body: Mapping[str, Any] | None = None,
        subject: str | None = None,
    ) -> Any:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            self._limiter.stats.retries += 1
            failure = state.outcome.exception() if state.outcome else None
            log.info(
                "Retrying %s %s%s in %.2f s (try %d of %d): %s",
                method,
                endpoint,
                f" for {subject}" if subject else "",
                state.upcoming_sleep,
                state.attempt_number + 1,
                self._tries,
                getattr(failure, "problem", failure),
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._tries),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retry),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt, self._limiter.slot():
                    response = self._try_once(method, endpoint, params, json_body)
            return None if method == "POST" else response
        except _Retry as failure:
            tries = f"{self._tries} {'try' if self._tries == 1 else 'tries'}"
            raise ApiError(
                method,
                endpoint,
                f"{failure.problem} after {tries}",
                status=failure.status,
                subject=subject,
            ) from None
        except _Final as failure:
            raise ApiError(
                method,
                endpoint,
                failure.problem,
                status=failure.status,
                subject=subject,
            ) from None

    def _try_once(
        self,
        method: str,
        endpoint: str,
        params: Params | None,
        json_body: Mapping[str, Any] | None,
    ) -> Any:
        try:
            response = self._client.request(
                method, endpoint, params=params, json=json_body
            )
        except httpx.TimeoutException as error:
            raise _Retry(f"timed out ({type(error).__name__})") from None
        except httpx.TransportError as error:
            raise _Retry(
                f"could not be sent ({type(error).__name__}: {error})"
            ) from None
        status = response.status_code
        if status == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                raise _Final(
                    f"answered 429 and asked to wait {wait:.0f} s, longer than the "
                    f"loader waits ({MAX_RETRY_AFTER_SECONDS:.0f} s)",
                    status,
                )
            raise _Retry("answered 429", status=429, wait=wait)
        if status >= 500 or status == 408:
            raise _Retry(f"answered {status}", status=status)
        if status >= 400:
            raise _Final(f"answered {status}", status)
        if method == "POST":
            return None
        try:
            return response.json()
        except ValueError:
            raise _Retry(
                f"answered {status} with a body that is not JSON", status=status
            ) from None
