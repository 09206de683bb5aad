"""The notifier: read what is new for whom, render, send, record.

Follow the data: `marts.vehicles_to_notify` (store.py) → filters per recipient
(subscriptions.py, filters.py) → email (render.py, mailer.py) or the log → one row per
window and recipient in `notifier.notifications` (store.py). stage.py wires it up.
"""
