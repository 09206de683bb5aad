"""HTTP to the showroom API: one async client per identity, a shared limit, retries.

Why asyncio + `httpx.AsyncClient` rather than threads: a run is ~1,000 small GETs
that each wait on the network; one event loop overlaps them without a thread per
request, and one `asyncio.Semaphore` shared by every client of the run (the member's
and the anonymous fallback) makes "never more than `athlon_max_concurrency` requests
in flight" a simple, countable fact (`HttpStats.max_in_flight`).

Politeness and robustness, per request:
- a descriptive User-Agent (settings.USER_AGENT) and a timeout on every phase;
- retries with exponential back-off and jitter on 5xx, 408, timeouts, connection
  errors and bodies that are not JSON (a cut-off body is a transport failure);
- 429 honours Retry-After (seconds or an HTTP date) and pauses *every* request of the
  run, not only the one that was told, since the server asked the client to slow down;
- any other 4xx is final at once (no retry fixes a 404 or a 401).
A request that still fails raises `ApiError`, naming endpoint, vehicle and status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from loader.settings import MAX_BACKOFF_SECONDS, MAX_RETRY_AFTER_SECONDS, USER_AGENT

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
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.subject = subject
        target = f"{method} {endpoint}"
        if subject:
            target += f" for {subject}"
        super().__init__(f"Athlon API {target} {problem}")


@dataclass
class HttpStats:
    """What the run's requests cost; shared by every client of one run."""

    requests: int = 0
    retries: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class RequestLimiter:
    """The run-wide bound on requests in flight, and the pause a 429 asks for."""

    def __init__(self, max_concurrency: int) -> None:
        self.max_concurrency = max_concurrency
        self.stats = HttpStats()
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._resume_at = 0.0

    def pause(self, seconds: float) -> None:
        """Hold back every request of the run for `seconds` from now."""
        resume_at = asyncio.get_running_loop().time() + seconds
        self._resume_at = max(self._resume_at, resume_at)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot (and the end of any pause), count the request."""
        async with self._semaphore:
            loop = asyncio.get_running_loop()
            while (wait := self._resume_at - loop.time()) > 0:
                await asyncio.sleep(wait)
            stats = self.stats
            stats.requests += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            try:
                yield
            finally:
                stats.in_flight -= 1


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing request is tried again."""

    max_retries: int
    backoff_seconds: float

    def delay(self, retry: int) -> float:
        """Exponential back-off with "equal jitter": half fixed, half random."""
        ceiling = min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2**retry)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (None if absent)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Retry(Exception):
    """One try failed in a way another try may fix."""

    def __init__(
        self, problem: str, *, status: int | None = None, wait: float | None = None
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status
        self.wait = wait


class ApiClient:
    """One identity's connection to the API (cookies of its own), shared limits."""

    def __init__(
        self,
        base_url: str,
        limiter: RequestLimiter,
        policy: RetryPolicy,
        *,
        timeout_seconds: float,
    ) -> None:
        self._limiter = limiter
        self._policy = policy
        pool = limiter.max_concurrency
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    @property
    def stats(self) -> HttpStats:
        """The run's request counters (shared with the other clients of the run)."""
        return self._limiter.stats

    def set_cookie(self, name: str, value: str) -> None:
        """Send this cookie with every later request of this client."""
        self._client.cookies.set(name, value)

    async def get(
        self,
        endpoint: str,
        params: Params | None = None,
        *,
        subject: str | None = None,
    ) -> Any:
        """GET an endpoint and return its JSON; `ApiError` once retries are spent."""
        return await self._send("GET", endpoint, params=params, subject=subject)

    async def post(self, endpoint: str, body: Mapping[str, Any]) -> None:
        """POST JSON to an endpoint; only the status matters (the body is ignored)."""
        await self._send("POST", endpoint, json_body=body, want_json=False)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    async def _send(
        self,
        method: str,
        endpoint: str,
        *,
        params: Params | None = None,
        json_body: Mapping[str, Any] | None = None,
        subject: str | None = None,
        want_json: bool = True,
    ) -> Any:
        tries = self._policy.max_retries + 1
        for attempt in range(tries):
            try:
                async with self._limiter.slot():
                    return await self._try_once(
                        method, endpoint, params, json_body, subject, want_json
                    )
            except _Retry as failure:
                if attempt + 1 == tries:
                    raise ApiError(
                        method,
                        endpoint,
                        f"{failure.problem} after {tries} "
                        f"{'try' if tries == 1 else 'tries'}",
                        status=failure.status,
                        subject=subject,
                    ) from None
                wait = failure.wait
                if wait is None:
                    wait = self._policy.delay(attempt)
                else:
                    self._limiter.pause(wait)
                self.stats.retries += 1
                log.info(
                    "Retrying %s %s%s in %.2f s (try %d of %d): %s",
                    method,
                    endpoint,
                    f" for {subject}" if subject else "",
                    wait,
                    attempt + 2,
                    tries,
                    failure.problem,
                )
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _try_once(
        self,
        method: str,
        endpoint: str,
        params: Params | None,
        json_body: Mapping[str, Any] | None,
        subject: str | None,
        want_json: bool,
    ) -> Any:
        try:
            response = await self._client.request(
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
                raise ApiError(
                    method,
                    endpoint,
                    f"answered 429 and asked to wait {wait:.0f} s, longer than the "
                    f"loader waits ({MAX_RETRY_AFTER_SECONDS:.0f} s)",
                    status=429,
                    subject=subject,
                )
            raise _Retry("answered 429", status=429, wait=wait)
        if status >= 500 or status == 408:
            raise _Retry(f"answered {status}", status=status)
        if status >= 400:
            raise ApiError(
                method,
                endpoint,
                f"answered {status}",
                status=status,
                subject=subject,
            )
        if not want_json:
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            raise _Retry(
                f"answered {status} with a body that is not JSON", status=status
            ) from None
