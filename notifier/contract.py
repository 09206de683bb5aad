"""The names the notifier reads and writes, as fixed in docs/architecture.md.

Kept in one place so a contract change is one edit here.
"""

from __future__ import annotations

from athlon_flex.dbt_project import model_columns

VEHICLES_TO_NOTIFY = "marts.vehicles_to_notify"
VEHICLE_AVAILABILITY = "marts.vehicle_availability"
VEHICLE_PRICE_CHANGES = "marts.vehicle_price_changes"
VEHICLE_LEASE_SPEED = "marts.vehicle_lease_speed"
NOTIFICATIONS = "notifier.notifications"
PRICE_DROP_NOTIFICATIONS = "notifier.price_drop_notifications"
RECIPIENTS = "notifier.recipients"
OUTBOX = "notifier.outbox"
STATE = "notifier.state"

# What `transform` must have built before the notifier can run.
REQUIRED_OBJECTS = (
    VEHICLES_TO_NOTIFY,
    VEHICLE_AVAILABILITY,
    VEHICLE_PRICE_CHANGES,
    VEHICLE_LEASE_SPEED,
    NOTIFICATIONS,
    PRICE_DROP_NOTIFICATIONS,
    RECIPIENTS,
    OUTBOX,
    STATE,
)

# A median of fewer stays than this says little: no "usually leased within" then.
LEASE_SPEED_MIN_LEASED = 3

# The recipient name of the log channel (used when no email is configured).
CONSOLE_RECIPIENT = "console"

# Columns of marts.vehicle_availability (and so of marts.vehicles_to_notify, next to
# `recipient`), as its enforced dbt contract declares them. Filters may name any.
VEHICLE_ATTRIBUTES = model_columns("vehicle_availability")
