"""A real local HTTP endpoint for Apprise's `json://` posts (what ntfy, Gotify or a
webhook would be): records each message, can answer 500, stall, or be down."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Push:
    path: str
    title: str
    message: str


class PushServer:
    """`url(path)` is an Apprise URL for it; `messages` what it accepted."""

    def __init__(self, port: int = 0) -> None:
        self.messages: list[Push] = []
        self.attempts = 0
        self.status = 200
        self.holding = threading.Event()  # set while a request is held
        self._hold = False
        self._release = threading.Event()
        self._accept_held = True
        self._server: ThreadingHTTPServer | None = None
        self.port = port or _free_port()
        self.start()

    def url(self, path: str = "hook", scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def start(self) -> None:
        """Listen (again) on the same port."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's hook name
                length = int(self.headers.get("Content-Length") or 0)
                payload: Any = json.loads(self.rfile.read(length) or b"{}")
                owner.attempts += 1
                if owner._hold:
                    # Before anything is accepted: a kill now loses no message.
                    owner.holding.set()
                    owner._release.wait(60)
                    if not owner._accept_held:
                        self.close_connection = True
                        return
                if owner.status == 200:
                    owner.messages.append(
                        Push(
                            self.path,
                            payload.get("title", ""),
                            payload.get("message", ""),
                        )
                    )
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: connections are refused until `start()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def hold(self) -> None:
        """Stall the next request before it is accepted, until `release()`."""
        self._hold = True
        self.holding.clear()
        self._release.clear()

    def release(self, *, accept: bool = True) -> None:
        """Let a held request go on; `accept=False` drops it unrecorded (its sender
        was killed meanwhile, so nobody would read the answer)."""
        self._accept_held = accept
        self._hold = False
        self._release.set()

    def messages_to(self, path: str) -> list[Push]:
        return [m for m in self.messages if m.path.split("?")[0] == f"/{path}"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def push_server() -> Iterator[PushServer]:
    """A push endpoint for one test (the notifier's and the fault suite's
    conftest import it); a request still held at the end is dropped unrecorded."""
    server = PushServer()
    yield server
    server.release(accept=False)
    server.stop()
