"""HTTP transport: a threaded server whose handler adds latency, faults and statistics.

One thread per connection (stdlib `ThreadingHTTPServer`), HTTP/1.1 keep-alive, so the
loader's concurrent requests really overlap: latency is a `time.sleep` in the request's
own thread. The handler only translates between sockets and `ShowroomApi`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from simulation.fake_api.api import (
    JSON_TYPE,
    ApiRequest,
    ApiResponse,
    ShowroomApi,
    problem,
)
from simulation.fake_api.faults import Fault, Faults
from simulation.fake_api.stats import Stats

log = logging.getLogger(__name__)

_MAX_BODY = 1 << 20


class ShowroomState(Protocol):
    """What the handler needs from the running showroom."""

    api: ShowroomApi
    faults: Faults
    stats: Stats
    latency_ms: float


class ShowroomHttpServer(ThreadingHTTPServer):
    """A threading HTTP server that can also close its open keep-alive connections.

    Without that, a stopped server's idle connections would keep their threads and
    answer a client that reuses them.
    """

    daemon_threads = True
    block_on_close = False
    # The listen backlog: the loader opens up to 16 connections at once; the default
    # of 5 makes the kernel drop SYNs and the client waits a second to retry.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: ShowroomState) -> None:
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, ShowroomRequestHandler)

    def track(self, connection: socket.socket) -> None:
        """Remember an open client connection."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a connection that has closed."""
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut every open client connection (their threads then end)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-request is normal here, not a traceback."""
        log.debug(
            "Connection from %s ended with an error", client_address, exc_info=True
        )


def parse_cookies(headers: list[str]) -> dict[str, str]:
    """Cookie name -> value, tolerant of values the stdlib parser would reject.

    Header bytes arrive decoded as latin-1; clients send UTF-8 (the tax label has a
    euro sign), so it is re-decoded. Quoted values are unquoted like SimpleCookie does.
    """
    cookies: dict[str, str] = {}
    for header in headers:
        with contextlib.suppress(UnicodeError):
            header = header.encode("latin-1").decode("utf-8")
        for pair in header.split(";"):
            name, sep, value = pair.strip().partition("=")
            if not sep or not name:
                continue
            value = value.strip()
            if value.startswith('"'):
                parsed = SimpleCookie()
                try:
                    parsed.load(f"x={value}")
                    value = parsed["x"].value
                except (CookieError, KeyError):
                    value = value.strip('"')
            cookies[name.strip()] = value
    return cookies


class ShowroomRequestHandler(BaseHTTPRequestHandler):
    """Reads a request, applies latency and faults, writes the API's answer."""

    server: ShowroomHttpServer
    protocol_version = "HTTP/1.1"
    server_version = "AthlonFlexSimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body leave without delayed-ACK waits
    timeout = 60  # an idle keep-alive connection frees its thread after this

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s - " + format, self.address_string(), *args)

    def _serve(self) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        request = ApiRequest(
            method=self.command,
            path=split.path,
            params={
                name.lower(): value
                for name, value in parse_qsl(split.query, keep_blank_values=True)
            },
            cookies=parse_cookies(self.headers.get_all("Cookie") or []),
            body=self._read_body(),
        )
        endpoint = request.endpoint
        state.stats.request_started(endpoint)
        # Stats are final before the client can see the outcome, so a test may read
        # them the moment its request returns.
        finished = False
        try:
            fault = state.faults.claim(endpoint, request.param("VehicleId"))
            delay_ms = state.latency_ms + ((fault.delay_ms or 0) if fault else 0)
            if delay_ms > 0:
                time.sleep(delay_ms / 1000)
            if fault is not None and fault.drop:
                state.stats.request_finished(None)
                finished = True
                self._drop()
                return
            if fault is None:
                response = state.api.handle(request)
            else:
                response = _faulted(fault, request, state.api)
            state.stats.request_finished(response.status)
            finished = True
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if not finished:
                state.stats.request_finished(None)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, _MAX_BODY)) if length > 0 else b""

    def _send(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def _drop(self) -> None:
        """Close the connection without a response, as a crashing backend would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _faulted(fault: Fault, request: ApiRequest, api: ShowroomApi) -> ApiResponse:
    """The answer a claimed fault prescribes (a delay-only fault answers normally)."""
    status = fault.response_status
    headers: Mapping[str, str] = {}
    if fault.retry_after is not None:
        headers = {"Retry-After": f"{fault.retry_after:g}"}
    if status is None and not fault.malformed:
        return api.handle(request)
    if status is None:
        base = api.handle(request)
    else:
        base = problem(status, "Injected fault of the simulated showroom", **headers)
    if not fault.malformed:
        return base
    # Cutting a JSON object or array anywhere before its end leaves it unparseable.
    body = base.body[: max(1, len(base.body) // 2)]
    return ApiResponse(base.status, body, JSON_TYPE, tuple(headers.items()))
