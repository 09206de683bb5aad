"""Adversarial inputs to the notifier, each through the real stages (simulated API
over HTTP, PostgreSQL, dbt, aiosmtpd, a local HTTP endpoint for push) and each
ending in exact rows and messages: every car once per recipient and channel,
none lost."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from athlon_flex.settings import Settings
from notifier.errors import NotifyConfigurationError, NotifyError
from notifier.push import channel_key
from simulation.fake_api import FakeShowroom
from tests.faults.invariant import (
    RECIPIENT,
    assert_nothing_lost_or_doubled,
    cli_env,
    notifications,
)
from tests.support.smtp import RecordingHandler, SmtpServer, running_smtp_server
from watcher.cycle import run_cycle

ANNA = RECIPIENT
BOB = "bob@example.nl"
CARLA = "carla@example.nl"


def _subscriptions(tmp_path: Path, recipients: list[dict]) -> Path:
    path = tmp_path / "subscriptions.yml"
    path.write_text(yaml.safe_dump({"recipients": recipients}), encoding="utf-8")
    return path


def _texts(smtp_server: SmtpServer, recipient: str) -> list[str]:
    return [mail.text for mail in smtp_server.mailbox(recipient)]


# --- A car's name that is an RFC 2047 encoded word holding CR LF -----------------


def test_a_car_name_that_decodes_to_cr_lf_injects_no_header_and_blanks_no_email(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """The API's text reaches the Subject. Python's email package (before 3.11.10
    and 3.12.5, CVE-2024-6923) decodes an encoded word in a header value it is
    given and writes the CR LF it holds as they are: a model named so added a
    Reply-To header to the email, or ended its headers, so the recipient got a
    text/plain message without From, Message-ID or cars."""
    catalog = showroom.catalog
    reply_to = catalog.add_vehicle("Evil", "=?utf-8?q?=0D=0AReply-To:_a@e.io?=")
    blank = catalog.add_vehicle("Evil", "=?utf-8?q?=0D=0A=0D=0AHi?=")
    subscriptions = _subscriptions(
        tmp_path,
        [
            {"email": ANNA},
            {"email": BOB, "filters": {"model": "Reply-To"}},
            {"email": CARLA, "filters": {"model": "Hi"}},
        ],
    )
    settings = cycle_settings(showroom, notify_subscriptions_file=subscriptions)

    run_cycle(settings)

    (bob_mail,) = smtp_server.messages_to(BOB)
    assert bob_mail.message["Reply-To"] is None
    assert bob_mail.subject == "1 new: Evil = ?utf-8?q?=0D=0AReply-To:_a@e.io?="
    assert bob_mail.message.get_all("Subject") == [bob_mail.subject]
    (carla_mail,) = smtp_server.messages_to(CARLA)
    assert carla_mail.message["From"] == "notifier@example.org"
    assert carla_mail.message["Message-ID"] is not None
    assert carla_mail.message.get_content_type() == "multipart/alternative"
    assert blank.license_plate in carla_mail.text
    assert reply_to.license_plate in bob_mail.text
    for mail in smtp_server.messages:
        assert "\r" not in mail.subject and "\n" not in mail.subject
    assert_nothing_lost_or_doubled(settings, catalog, _texts(smtp_server, ANNA))
    assert {(v, r) for v, _, r in notifications(settings) if r != ANNA} == {
        (reply_to.id, BOB),
        (blank.id, CARLA),
    }


# --- A push endpoint that redirects ----------------------------------------------


class RedirectingEndpoint:
    """POST /old answers 302 to /new; GET anything answers 200 (what a web app or
    an http-to-https redirect in front of ntfy does). Only a POST to /new is a
    delivered push."""

    def __init__(self) -> None:
        owner = self
        self.posts: list[tuple[str, bytes]] = []
        self.gets: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.posts.append((self.path, body))
                if self.path == "/old":
                    self.send_response(302)
                    self.send_header("Location", "/new")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # http.server's hook name
                owner.gets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.server.server_port}/{path}"

    def delivered(self) -> list[bytes]:
        return [body for path, body in self.posts if path == "/new"]


@pytest.fixture
def redirecting() -> Iterator[RedirectingEndpoint]:
    endpoint = RedirectingEndpoint()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


def test_a_push_endpoint_that_redirects_is_a_failure_not_a_push_told(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    redirecting: RedirectingEndpoint,
    tmp_path: Path,
) -> None:
    """Apprise follows redirects by default and requests turns a POST answered
    302 into a GET without the message: the GET's 200 counted as delivered, so
    the cars were recorded as pushed and the phone never heard of them."""
    url = redirecting.url("old")
    subscriptions = _subscriptions(tmp_path, [{"email": ANNA, "apprise": [url]}])
    settings = cycle_settings(showroom, notify_subscriptions_file=subscriptions)

    with pytest.raises(NotifyError, match=channel_key(url)):
        run_cycle(settings)

    key = channel_key(url)
    assert redirecting.delivered() == []
    assert [r for _, _, r in notifications(settings) if r == key] == []
    # The email channel is served all the same.
    assert_nothing_lost_or_doubled(
        settings, showroom.catalog, _texts(smtp_server, ANNA)
    )


# --- One mailbox spelled with the root's trailing dot ----------------------------


def test_a_domain_with_a_trailing_dot_is_refused_not_a_second_recipient(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """`example.nl.` is the fully qualified `example.nl`: one mailbox. Taken as
    another recipient, it got every car a second time (mail servers such as
    Postfix strip the dot and deliver both)."""
    subscriptions = _subscriptions(tmp_path, [{"email": ANNA}, {"email": ANNA + "."}])
    settings = cycle_settings(showroom, notify_subscriptions_file=subscriptions)

    with pytest.raises(NotifyConfigurationError, match=r"recipient #2") as refused:
        run_cycle(settings)

    assert "\n" not in str(refused.value)
    assert smtp_server.messages == []
    assert notifications(settings) == []
    with pytest.raises(Exception, match="not an email address"):
        cycle_settings(showroom, email_to=[ANNA, "bob@example.nl."])


# --- An SMTP server that hangs up after each message it took ---------------------


class HangUpAfterEachMessage(RecordingHandler):
    """Takes a message, says 250, then ends the connection without waiting for
    QUIT (a relay that takes one message per session, or one that restarted)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        await server.push(reply)  # the client hears 250 ...
        server.transport.close()  # ... and then the connection is gone
        return reply  # written to a closed transport: nothing goes out


@pytest.fixture
def hanging_up() -> Iterator[SmtpServer]:
    with running_smtp_server(HangUpAfterEachMessage()) as server:
        yield server


def test_a_server_that_hangs_up_after_a_message_fails_no_one_after_it(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    hanging_up: SmtpServer,
) -> None:
    """The message before was taken (250); the connection then ended. The next
    message, to another recipient, went over the dead connection: SMTP says
    "connection closed" at MAIL FROM, before any of it was sent, yet it counted as
    "may have been taken", so that recipient was skipped (the run failed) and
    served a cycle late. A connection found dead before DATA is opened again."""
    settings = cycle_settings(
        showroom, email_to=[ANNA, BOB, CARLA], smtp_port=hanging_up.port
    )

    summary = run_cycle(settings)

    assert summary.notify.emails_sent == 3
    assert [m.rcpt_tos for m in hanging_up.messages] == [(ANNA,), (BOB,), (CARLA,)]
    for recipient in (ANNA, BOB, CARLA):
        assert_nothing_lost_or_doubled(
            settings,
            showroom.catalog,
            _texts(hanging_up, recipient),
            recipient=recipient,
        )


# --- A filter regex at its limits -----------------------------------------------


def test_a_refused_regex_is_one_short_line_and_exit_2(
    showroom: FakeShowroom,
    cycle_settings: Callable[..., Settings],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """RE2 refuses a pattern too big for it, and its reason quotes the pattern:
    the error was one line of 200 KB naming the recipient somewhere in it.
    Both quotes are cut."""
    pattern = "(x" * 50_000
    subscriptions = _subscriptions(
        tmp_path, [{"email": ANNA}, {"email": BOB, "filters": {"model": pattern}}]
    )
    settings = cycle_settings(showroom, notify_subscriptions_file=subscriptions)

    done = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "run"],
        cwd=tmp_path,
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(
        f"error: Subscriptions file {subscriptions} is invalid: recipient #2 "
        f"({BOB}), filters.0: key 'model': regex "
    )
    assert "is refused (missing ): (x(x(x" in line
    assert line.endswith("; nothing was sent or recorded.")
    assert len(line) < 1_000
    assert smtp_server.messages == []
