"""Fixtures that start the real things once: PostgreSQL, the simulated API, SMTP."""

import importlib.util

# TEMPORARY while the parts are written in parallel: register the plugins that exist.
pytest_plugins = [
    name
    for name in (
        "tests.support.postgres",
        "tests.support.fake_api",
        "tests.support.smtp",
    )
    if importlib.util.find_spec(name) is not None
]
