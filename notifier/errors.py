"""The notify stage's error type."""

from __future__ import annotations

from athlon_flex.errors import ConfigurationError, StageError
from notifier.summary import NotifySummary


class NotifyError(StageError):
    """Notifying failed; the message says for whom and what was (not) recorded.

    `summary` carries what did succeed when some recipients were served before the
    failure (None when nothing was attempted).
    """

    def __init__(self, message: str, *, summary: NotifySummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


class NotifyConfigurationError(NotifyError, ConfigurationError):
    """The notifier's configuration is unusable; nothing was sent or recorded.

    The message is always one line (YAML's errors span several), so the CLI's
    `error: ...` is one line too.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
