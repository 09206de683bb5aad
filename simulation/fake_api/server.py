"""Run the simulated showroom: in a background thread (tests) or blocking (the CLI)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from types import TracebackType
from typing import Self

from simulation.fake_api.api import API_PREFIX, ShowroomApi
from simulation.fake_api.catalog import Catalog
from simulation.fake_api.faults import Faults
from simulation.fake_api.handler import ShowroomHttpServer
from simulation.fake_api.members import MemberAccount, Sessions
from simulation.fake_api.stats import Stats
from simulation.fake_api.tampering import Tampering

log = logging.getLogger(__name__)


class FakeShowroom:
    """A real HTTP server speaking the Athlon Flex showroom API over a `Catalog`.

    `start()` serves from a background thread and returns self; `url` is the API base
    (`http://127.0.0.1:<port>/api/v1`). Change `catalog`, `faults`, `tampering` (odd
    but well-formed answers) and `latency_ms` while it runs; read `stats`. Logging in
    works when a username and password (or an `account`) are given.
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        username: str | None = None,
        password: str | None = None,
        account: MemberAccount | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("Give both username and password, or neither")
        if username is not None and password is not None:
            account = (
                MemberAccount(username, password)
                if account is None
                else replace(account, username=username, password=password)
            )
        self.catalog = catalog if catalog is not None else Catalog.generate()
        self.account = account
        self.host = host
        self._requested_port = port
        self.latency_ms = latency_ms
        self.faults = Faults()
        self.tampering = Tampering()
        self.stats = Stats()
        self.sessions = Sessions()
        self.api = ShowroomApi(self.catalog, account, self.sessions, self.tampering)
        self._server: ShowroomHttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def latency_ms(self) -> float:
        """Delay added to every response, in milliseconds (change it any time)."""
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"latency_ms cannot be negative, got {value}")
        self._latency_ms = float(value)

    @property
    def port(self) -> int:
        """The TCP port listened on (the free one picked when asked for port 0)."""
        if self._server is None:
            raise RuntimeError("The simulated showroom is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL of the API, as the client's BASE_URL: http://host:port/api/v1."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104
        return f"http://{host}:{self.port}{API_PREFIX}"

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Listen and serve from a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("The simulated showroom is already started")
        try:
            server = ShowroomHttpServer((self.host, self._requested_port), self)
        except OSError as error:
            raise OSError(
                f"The simulated showroom cannot listen on {self.host}:"
                f"{self._requested_port} ({error.strerror or error}); pick another "
                "port or stop what is using it."
            ) from error
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how fast stop() returns
            name=f"fake-showroom-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.debug("Simulated showroom serving at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None
        log.debug("Simulated showroom stopped")

    def wait(self) -> None:
        """Block until the server stops (Ctrl+C raises KeyboardInterrupt here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def expire_sessions(self) -> None:
        """Log every member out: their next personal request answers 401."""
        self.sessions.expire_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"FakeShowroom({len(self.catalog)} vehicles, {where})"


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    clusters: int = 100,
    vehicles_per_cluster: int = 10,
    latency_ms: float = 0,
    seed: int = 1,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Generate a catalog and serve it until interrupted (the `fake-api` command)."""
    catalog = Catalog.generate(
        clusters=clusters, vehicles_per_cluster=vehicles_per_cluster, seed=seed
    )
    showroom = FakeShowroom(
        catalog,
        host=host,
        port=port,
        latency_ms=latency_ms,
        username=username,
        password=password,
    )
    showroom.start()
    log.info(
        "Simulated Athlon Flex showroom with %d vehicles in %d clusters (seed %d, "
        "latency %g ms) at %s",
        len(catalog),
        clusters,
        seed,
        latency_ms,
        showroom.url,
    )
    if username:
        log.info("MemberLogin accepts %s", username)
    log.info("Set ATHLON_API_URL=%s; stop with Ctrl+C", showroom.url)
    try:
        showroom.wait()
    except KeyboardInterrupt:
        log.info("Stopping the simulated showroom")
    finally:
        showroom.stop()
