"""The names the notifier reads and writes, as fixed in docs/architecture.md.

Kept in one place so a contract change is one edit here.
"""

from __future__ import annotations

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
# `recipient`). Filters may name any of these.
VEHICLE_ATTRIBUTES = (
    "availability_id",
    "vehicle_id",
    "make",
    "model",
    "type",
    "model_year",
    "color",
    "official_color",
    "body_type",
    "fuel_type",
    "is_electric",
    "range_in_km",
    "transmission_type",
    "license_plate",
    "emission",
    "registered_mileage",
    "fiscal_value_in_euro",
    "price_per_month_in_euro",
    "contribution_in_euro",
    "net_cost_per_month_in_euro",
    "showroom_uri",
    "image_uri",
    "cluster_showroom_uri",
    "available_since",
    "available_until",
    "is_available",
)
