"""Fixtures that start the real things once: PostgreSQL, the simulated API, SMTP."""

pytest_plugins = [
    "tests.support.postgres",
    "tests.support.fake_api",
    "tests.support.smtp",
]
