"""HTTP to the showroom API: httpx, a run-wide limit on requests in flight and pause on
429, tenacity retries; `ApiError` names what failed for good (docs/architecture.md)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import tenacity

from athlon_flex.settings import Settings
from loader.constants import (
    MAX_ANSWER_BYTES,
    MAX_BACKOFF_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    USER_AGENT,
)

log = logging.getLogger(__name__)
# httpx logs every request at INFO, which would drown the progress lines.
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)


class ApiError(Exception):
    """A request to the showroom API failed for good; the message says which and how."""

    def __init__(
        self, target: str, problem: str, status: int | None = None, subject: str = ""
    ) -> None:
        self.status = status
        super().__init__(f"Athlon API {target}{subject and ' for '}{subject} {problem}")


@dataclass(eq=False)
class _Failed(Exception):
    """One try failed; `final`: no other try fixes it; `wait`: the server's own."""

    problem: str
    status: int | None = None
    wait: float | None = None
    final: bool = False


class RequestLimiter:
    """The run's bound on requests in flight, first come first served (tickets: a
    Semaphore lets a request retried at once jump the queue), the pause a 429 asks
    for, and the run's counts."""

    def __init__(self, max_concurrency: int) -> None:
        self.max_concurrency = max_concurrency
        self.requests = self.retries = self.in_flight = self.max_in_flight = 0
        self._issued = self._served = 0
        self._turn = threading.Condition()
        self._resume_at = 0.0

    def pause(self, seconds: float) -> None:
        with self._turn:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._turn:
            ticket, self._issued = self._issued, self._issued + 1
            self._turn.wait_for(
                lambda: self._served == ticket and self.in_flight < self.max_concurrency
            )
            self._served += 1
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._turn.notify_all()  # the next in line may find a free slot too
        try:
            while (wait := self._resume_at - time.monotonic()) > 0:
                time.sleep(wait)
            yield
        finally:
            with self._turn:
                self.in_flight -= 1
                self._turn.notify_all()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (None if absent)."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):  # a year or hour past C's long
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class ApiClient:
    """One identity's connection to the API (cookies of its own), the run's limits."""

    def __init__(self, settings: Settings, limiter: RequestLimiter) -> None:
        self._limiter, self._tries = limiter, settings.athlon_http_max_retries + 1
        self._timeout = settings.athlon_http_timeout_seconds
        pool = limiter.max_concurrency
        self._client = httpx.Client(
            base_url=settings.athlon_api_url.rstrip("/") + "/",
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(settings.athlon_http_timeout_seconds),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )
        self.cookies = self._client.cookies
        # Exponential back-off, "equal jitter": half of each step fixed, half random.
        half = {
            "multiplier": settings.athlon_http_backoff_seconds / 2,
            "max": MAX_BACKOFF_SECONDS / 2,
        }
        self._backoff = tenacity.wait_exponential(
            **half
        ) + tenacity.wait_random_exponential(**half)

    def get(self, endpoint: str, params: Any = None, *, subject: str = "") -> Any:
        """GET an endpoint and return its JSON; `ApiError` once retries are spent."""
        return self._send("GET", endpoint, subject, params=params)

    def post(self, endpoint: str, body: Mapping[str, Any]) -> None:
        """POST JSON to an endpoint; only the status matters."""
        self._send("POST", endpoint, "", json=body)

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, endpoint: str, subject: str, **kw: Any) -> Any:
        target = f"{method} {endpoint}"

        def wait(state: tenacity.RetryCallState) -> float:
            failure = state.outcome.exception()  # type: ignore[union-attr]
            if failure.wait is not None:  # the server's Retry-After, for the whole run
                self._limiter.pause(failure.wait)
                return failure.wait
            return self._backoff(state)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self._limiter.retries += 1
            log.info(
                "Retrying %s%s in %.2f s (try %d of %d): %s",
                target,
                subject and f" for {subject}",
                state.upcoming_sleep,
                state.attempt_number + 1,
                self._tries,
                state.outcome.exception().problem,  # type: ignore[union-attr]
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._tries),
            wait=wait,
            retry=tenacity.retry_if_exception(lambda e: not getattr(e, "final", True)),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt, self._limiter.slot():
                    result = self._try_once(method, endpoint, kw)
            return result
        except _Failed as failure:
            tries = f" after {self._tries} {'try' if self._tries == 1 else 'tries'}"
            problem = failure.problem + ("" if failure.final else tries)
            raise ApiError(target, problem, failure.status, subject) from None

    def _try_once(self, method: str, endpoint: str, kw: dict[str, Any]) -> Any:
        # httpx's timeout bounds each read: an answer trickled a byte at a time
        # would never end. The setting is the request's, so the body has a deadline.
        deadline = time.monotonic() + self._timeout
        try:
            with self._client.stream(method, endpoint, **kw) as response:
                status = response.status_code
                _check_status(status, response.headers.get("Retry-After"))
                if method == "POST":
                    return None
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise _Failed(
                            f"answered more than {MAX_ANSWER_BYTES >> 20} MiB",
                            status,
                            final=True,
                        )
                    if time.monotonic() > deadline:
                        raise _Failed(
                            f"timed out (its answer took over {self._timeout:g} s)"
                        )
        except httpx.TimeoutException as error:
            raise _Failed(f"timed out ({type(error).__name__})") from None
        except httpx.TransportError as error:
            problem = f"could not be sent ({type(error).__name__}: {error})"
            raise _Failed(problem) from None
        try:
            return json.loads(b"".join(chunks), parse_int=_json_int)
        except RecursionError:  # the same answer again would be as deep
            problem = f"answered {status} with JSON nested too deeply to read"
            raise _Failed(problem, status, final=True) from None
        except ValueError:
            problem = f"answered {status} with a body that is not JSON"
            raise _Failed(problem, status) from None


def _check_status(status: int, retry_after: str | None) -> None:
    """_Failed unless the status is a success."""
    if status == 429:
        wait = retry_after_seconds(retry_after)
        if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
            raise _Failed(
                f"answered 429 and asked to wait {wait:.0f} s, longer than the "
                f"loader waits ({MAX_RETRY_AFTER_SECONDS:.0f} s)",
                status,
                final=True,
            )
        raise _Failed("answered 429", status, wait)
    if 300 <= status < 400:  # its body (if any) is not the answer asked for
        problem = f"answered {status}, a redirect the loader does not follow"
        raise _Failed(problem, status, final=True)
    if status >= 400:
        final = status < 500 and status != 408
        raise _Failed(f"answered {status}", status, final=final)


def _json_int(text: str) -> int | float:
    """A JSON integer; one longer than Python's int() reads (4,300 digits) is valid
    JSON all the same: read as a float (±inf), which no bounded field accepts."""
    try:
        return int(text)
    except ValueError:
        return float(text)
