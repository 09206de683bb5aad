"""Switching from the older athlon-flex-notifier: its history, notifications, filter.

`migrate` carries its database over (`athlon-flex migrate-from-original`),
`filters` turns its notify filter into a subscriptions file
(`athlon-flex import-original-filter`). docs/deploy.md has the walk-through.
"""
