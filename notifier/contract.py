"""The names the notifier reads and writes, as fixed in docs/architecture.md.

Kept in one place so a contract change is one edit here.
"""

from __future__ import annotations

from athlon_flex.dbt_project import model_columns

VEHICLES_TO_NOTIFY = "marts.vehicles_to_notify"
NOTIFICATIONS = "notifier.notifications"
RECIPIENTS = "notifier.recipients"
OUTBOX = "notifier.outbox"
STATE = "notifier.state"

# What `transform` must have built before the notifier can run.
REQUIRED_OBJECTS = (VEHICLES_TO_NOTIFY, NOTIFICATIONS, RECIPIENTS, OUTBOX, STATE)

# The recipient name of the log channel (used when no email is configured).
CONSOLE_RECIPIENT = "console"

# Columns of marts.vehicle_availability (and so of marts.vehicles_to_notify, next to
# `recipient`), as its enforced dbt contract declares them. Filters may name any.
VEHICLE_ATTRIBUTES = model_columns("vehicle_availability")
