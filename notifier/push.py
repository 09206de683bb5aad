"""Push channels through Apprise: ntfy, Telegram, Pushover, Slack, Discord, ...

A recipient in the subscriptions file lists Apprise URLs under `apprise:`. Each URL
is a channel of its own with its own recipient key, `apprise:<16 hex of its
sha256>`, in notifier.recipients, notifications and outbox: the URL itself holds
tokens, so it is never stored, logged or put in an error; the key and Apprise's
service name ("ntfy", "Telegram") stand for it.

Apprise's own log lines are kept out of ours: at debug level it prints URLs with
their topics and paths (an ntfy topic is the whole secret). What it says when a
send fails is collected per send and passed on with every part of the URL
replaced by `***`.

Apprise loads its 190 plugins on import (seconds on a busy machine), so it is
imported only when a push channel is configured.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

KEY_PREFIX = "apprise:"
# 16 hex digits (64 bits): no two of anyone's channels collide in practice, and the
# key stays short in logs and summaries.
KEY_HEX_DIGITS = 16
# Parts of a URL shorter than this are not redacted (`a`, `80`): they give nothing
# away, and redacting them would garble the rest of the message.
MIN_SECRET_LENGTH = 3


class PushError(Exception):
    """A push was not delivered; the text names the channel by key, never by URL."""


def channel_key(url: str) -> str:
    """`apprise:3f2a...`: the channel's recipient key, derived from its URL only."""
    digest = hashlib.sha256(url.strip().encode()).hexdigest()
    return KEY_PREFIX + digest[:KEY_HEX_DIGITS]


def is_push_key(recipient: str) -> bool:
    """Whether a recipient key is a push channel's (not an address, not console)."""
    return recipient.startswith(KEY_PREFIX)


@cache
def _apprise() -> Any:
    """The apprise module, its logger detached from ours (see the module doc)."""
    import apprise

    apprise_log = logging.getLogger("apprise")
    apprise_log.propagate = False
    if not any(isinstance(h, _Collector) for h in apprise_log.handlers):
        apprise_log.addHandler(_COLLECTOR)
    apprise_log.setLevel(logging.WARNING)
    return apprise


class _Collector(logging.Handler):
    """Keeps Apprise's warnings while a send runs (`collecting`), drops the rest."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.lines is not None:
            try:
                self.lines.append(record.getMessage())
            except Exception:  # a malformed record must not break a send
                self.lines.append(str(record.msg))


_COLLECTOR = _Collector()


class _QuietWhileSending(logging.Filter):
    """Drops urllib3's lines (Apprise sends with requests) while a push is sent:
    at debug level they name the request path, which is the token of many
    services. Other requests (none in the notifier) log as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.sending, "active", False)


_QUIET = _QuietWhileSending()
logging.getLogger("urllib3").addFilter(_QUIET)
logging.getLogger("urllib3.connectionpool").addFilter(_QUIET)


@contextmanager
def _collecting() -> Iterator[list[str]]:
    lines: list[str] = []
    _COLLECTOR.lines = lines
    _QUIET.sending.active = True
    try:
        yield lines
    finally:
        _COLLECTOR.lines = None
        _QUIET.sending.active = False


def _secret_parts(url: str) -> list[str]:
    """The URL and every piece of it that may be (part of) a token, longest first."""
    parts = {url, url.strip()}
    try:
        split = urlsplit(url.strip())
    except ValueError:
        split = None
    if split is not None:
        rest = url.strip().split("://", 1)[-1]
        parts.add(rest)
        for piece in re.split(r"[/@:?&=#]", rest):
            parts.add(piece)
            parts.add(unquote(piece))
    return sorted(
        (p for p in parts if len(p) >= MIN_SECRET_LENGTH), key=len, reverse=True
    )


def redact(text: str, url: str) -> str:
    """`text` with the URL and each of its parts replaced by `***`."""
    for part in _secret_parts(url):
        text = text.replace(part, "***")
    return text


def _scheme(url: str) -> str:
    """The scheme (`ntfy`), safe to show: it names a service, not an account."""
    scheme = url.strip().split("://", 1)[0] if "://" in url else ""
    return scheme if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}", scheme) else ""


def _instantiate(url: str) -> Any:
    apprise = _apprise()
    # Memory only: Apprise would otherwise keep plugin state in a cache folder
    # under the user's home. No redirects: requests turns a POST answered 301 or
    # 302 (an http-to-https redirect in front of ntfy, a moved webhook) into a GET
    # without the message, whose 200 Apprise takes for delivered: the cars would
    # be recorded as pushed and never shown. A redirect is a failure that names
    # its status, and the URL is fixed (or `?redirect=yes` added) by hand.
    asset = apprise.AppriseAsset(storage_mode="memory", http_redirects=False)
    with _collecting():
        return apprise.Apprise.instantiate(url.strip(), asset=asset)


def check_url(url: Any) -> str:
    """The URL if Apprise recognises it, else ValueError saying so without it."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("an Apprise URL must be non-empty text")
    if re.search(r"[\x00-\x1f\x7f]", url.strip()):
        raise ValueError("an Apprise URL may not hold control characters")
    if _instantiate(url) is None:
        scheme = _scheme(url)
        what = f"scheme {scheme!r}" if scheme else "this URL (no scheme://)"
        raise ValueError(
            f"Apprise does not recognise {what} or the URL is incomplete; see "
            "https://github.com/caronc/apprise/wiki for each service's URL "
            "(the URL itself is not shown: it holds tokens)"
        )
    return url.strip()


@dataclass(frozen=True)
class PushChannel:
    """One Apprise URL of a recipient. `repr` and `str` never show the URL."""

    url: str = field(repr=False)
    owner: str  # the recipient's name or email, for humans

    @property
    def key(self) -> str:
        return channel_key(self.url)

    @property
    def service(self) -> str:
        plugin = _instantiate(self.url)
        return plugin.service_name if plugin is not None else _scheme(self.url)

    def describe(self) -> str:
        """`apprise:3f2a... (ntfy, anna)`: what logs and errors name the channel by."""
        return f"{self.key} ({self.service}, {self.owner})"

    def __str__(self) -> str:
        return self.describe()

    def send(self, title: str, body: str) -> None:
        """Deliver one message, or raise PushError (URL parts redacted)."""
        plugin = _instantiate(self.url)
        if plugin is None:  # validated at configuration time; be explicit
            raise PushError(f"{self.key}: Apprise no longer recognises the URL")
        with _collecting() as said:
            try:
                delivered = plugin.notify(body=body, title=title)
            except Exception as error:  # a plugin bug must not leak the URL
                said.append(f"{type(error).__name__}: {error}")
                delivered = False
        if not delivered:
            reason = "; ".join(dict.fromkeys(line.strip() for line in said if line))
            reason = redact(" ".join(reason.split()), self.url)
            raise PushError(
                f"{self.key} ({plugin.service_name}) did not accept the message"
                + (f": {reason}" if reason else "")
            )


def encode_message(title: str, body: str) -> bytes:
    """A push as the outbox keeps it: title, a blank line, the body (UTF-8)."""
    return f"{title}\n\n{body}".encode()


def decode_message(message: bytes) -> tuple[str, str]:
    """(title, body) of an outbox row written by encode_message."""
    title, _, body = message.decode().partition("\n\n")
    return title, body
