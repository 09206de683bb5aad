"""The one error type every stage raises for a failure a user can act on.

The CLI prints its message (no traceback) and exits non-zero; Airflow marks the task
failed with the same message. Anything else escaping a stage is a bug.
"""


class StageError(RuntimeError):
    """A stage failed; the message says what failed and what to do about it."""


class ConfigurationError(StageError):
    """What the user configured cannot work (a bad subscriptions file or filter, a
    channel that vanished); retrying cannot help. The CLI exits 2, as for a bad
    setting."""
