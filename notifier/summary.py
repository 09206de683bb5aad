"""What a notify run did, per recipient: the stage's return value and what a
NotifyError carries of the recipients that were served before it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Channel = Literal["email", "push", "console"]


@dataclass(frozen=True)
class RecipientSummary:
    """What one recipient got in this run."""

    recipient: str
    channel: Channel
    emails_sent: int = 0
    pushes_sent: int = 0
    vehicles: int = 0  # vehicles in the email (or the log, for the console)
    recorded: int = 0  # rows added to notifier.notifications, baselined ones included
    baselined: int = 0  # of which recorded without being sent
    error: str | None = None

    def __str__(self) -> str:
        if self.error:
            failed = f"{self.recipient}: FAILED ({self.error})"
            if not self.recorded:
                return f"{failed}, nothing recorded"
            # A big batch's later email failed: the emails before it were sent.
            return f"{failed} after {self._done()}"
        return f"{self.recipient}: {self._done()}"

    def _done(self) -> str:
        parts = []
        if self.channel == "email":
            parts.append(f"{self.emails_sent} email{'s' * (self.emails_sent != 1)}")
        elif self.channel == "push":
            parts.append(f"{self.pushes_sent} push{'es' * (self.pushes_sent != 1)}")
        parts.append(f"{self.vehicles} vehicle{'s' * (self.vehicles != 1)}")
        parts.append(f"{self.recorded} recorded")
        if self.baselined:
            parts.append(f"{self.baselined} as baseline")
        return ", ".join(parts)


@dataclass(frozen=True)
class NotifySummary:
    """What a notify run did, per recipient."""

    cadence: str
    baseline: bool
    recipients: tuple[RecipientSummary, ...] = field(default_factory=tuple)

    @property
    def emails_sent(self) -> int:
        return sum(item.emails_sent for item in self.recipients)

    @property
    def pushes_sent(self) -> int:
        return sum(item.pushes_sent for item in self.recipients)

    @property
    def vehicles(self) -> int:
        return sum(item.vehicles for item in self.recipients)

    @property
    def recorded(self) -> int:
        return sum(item.recorded for item in self.recipients)

    @property
    def failed(self) -> tuple[RecipientSummary, ...]:
        return tuple(item for item in self.recipients if item.error)

    def for_recipient(self, recipient: str) -> RecipientSummary:
        """The line of one recipient (KeyError if they were not in this run)."""
        for item in self.recipients:
            if item.recipient == recipient:
                return item
        raise KeyError(recipient)

    def __str__(self) -> str:
        mode = "baseline" if self.baseline else self.cadence
        pushes = f", {self.pushes_sent} pushes sent" if self.pushes_sent else ""
        head = (
            f"notify ({mode}): {self.emails_sent} emails sent{pushes}, "
            f"{self.vehicles} vehicles, {self.recorded} recorded"
        )
        if not self.recipients:
            return head + " (no recipients for this cadence)"
        return head + " [" + "; ".join(str(item) for item in self.recipients) + "]"
