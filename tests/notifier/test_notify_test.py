"""`athlon-flex notify --test`: a message to every channel, one line each, nothing
recorded; the real CLI in a process of its own."""

from __future__ import annotations

import subprocess
import sys

from notifier.push import channel_key
from tests.faults.invariant import cli_env

ANNA = "anna@example.nl"
BOB = "bob@example.nl"


def _notify_test(settings, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", "notify", "--test"],
        env=cli_env(settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_notify_test_reaches_every_channel_says_which_failed_and_records_nothing(
    email_settings,
    smtp_server,
    push_server,
    write_subscriptions,
    notifications,
    add_windows,
    db,
    tmp_path,
):
    add_windows([])
    works = push_server.url("works")
    down = "json://127.0.0.1:9/nobody-listens"  # port 9 (discard): refused
    subscriptions = write_subscriptions(
        {
            "recipients": [
                {"email": ANNA, "apprise": [works]},
                {"email": BOB},
                {"name": "carl", "apprise": down},
            ]
        }
    )
    smtp_server.refuse_recipient(BOB, "550 5.1.1 no such user")
    settings = email_settings(notify_subscriptions_file=subscriptions)

    done = _notify_test(settings, tmp_path)

    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        f"ok     email   {ANNA}",
        f"FAILED email   {BOB}: SMTP {smtp_server.host}:{smtp_server.port} (none "
        "without login): recipient refused: "
        "550 5.1.1 no such user",
        f"ok     push    {channel_key(works)} (JSON, {ANNA})",
    ]
    assert lines[3].startswith(
        f"FAILED push    {channel_key(down)} (JSON, carl): {channel_key(down)} "
        "(JSON) did not accept the message"
    )
    assert len(lines) == 4
    assert "nobody-listens" not in done.stdout + done.stderr
    assert "error: 2 of 4 channel(s) failed the test" in done.stderr
    (mail,) = smtp_server.messages
    assert (mail.rcpt_tos, mail.subject) == ((ANNA,), "Athlon Flex: test message")
    assert "this channel works. Nothing was recorded" in mail.text
    (push,) = push_server.messages
    assert push.title == "Athlon Flex: test message"
    assert notifications() == []
    with db.cursor() as cursor:
        cursor.execute("select count(*) from notifier.outbox")
        assert cursor.fetchone() == (0,)


def test_notify_test_without_channels_uses_the_console_and_exits_0(
    make_settings, tmp_path
):
    done = _notify_test(make_settings(), tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ok     console console"]
