"""The simulated Athlon Flex showroom for tests: real HTTP servers on free ports.

`fake_api` is a small started server per test (tests mutate its catalog); use
`fake_api_factory(...)` for another size, seed, latency or account. Every server a test
started is stopped at its teardown. Servers accept MemberLogin with FAKE_USERNAME and
FAKE_PASSWORD unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from simulation.fake_api import Catalog, FakeShowroom, MemberAccount

FAKE_USERNAME = "user@example.com"
FAKE_PASSWORD = "secret"

__all__ = ["FAKE_PASSWORD", "FAKE_USERNAME", "fake_api", "fake_api_factory"]


@pytest.fixture
def fake_api_factory() -> Iterator[Callable[..., FakeShowroom]]:
    """Start simulated showrooms: `fake_api_factory(clusters=20, latency_ms=50)`.

    Arguments: clusters, vehicles_per_cluster, seed, latency_ms, username, password
    (None for both: no login possible), host ("localhost" for aiohttp clients, whose
    cookie jar ignores cookies from IP addresses), catalog (instead of generating one)
    and account (a MemberAccount with other budget figures).
    """
    started: list[FakeShowroom] = []

    def start(
        clusters: int = 4,
        vehicles_per_cluster: int = 3,
        seed: int = 7,
        latency_ms: float = 0,
        username: str | None = FAKE_USERNAME,
        password: str | None = FAKE_PASSWORD,
        host: str = "127.0.0.1",
        catalog: Catalog | None = None,
        account: MemberAccount | None = None,
    ) -> FakeShowroom:
        if catalog is None:
            catalog = Catalog.generate(
                clusters=clusters, vehicles_per_cluster=vehicles_per_cluster, seed=seed
            )
        server = FakeShowroom(
            catalog,
            host=host,
            port=0,
            latency_ms=latency_ms,
            username=username,
            password=password,
            account=account,
        )
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def fake_api(fake_api_factory: Callable[..., FakeShowroom]) -> FakeShowroom:
    """A started showroom of 4 clusters x 3 vehicles (seed 7), fresh for each test."""
    return fake_api_factory()
