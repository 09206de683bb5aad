"""Fixtures that start the real things once: PostgreSQL, the simulated API, SMTP.

Also the order in which pytest-xdist hands out test files (`--dist loadfile` with
`--no-loadscope-reorder`, pyproject.toml): the longest files first, so that the two
workers never end with one of them alone on a long file while the other is idle.
xdist's own order (files with the most tests first) sent the single-test files that
take longest (the native stack, the memory measurement, the benchmarks) last.
"""

from __future__ import annotations

import gc
import os
import tempfile
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.support.postgres",
    "tests.support.fake_api",
    "tests.support.smtp",
]

# Longest first, by the summed durations of their tests (docs/benchmarks.md, "The
# test suite"; ranked again on 2 December from two whole runs' `--durations=0`, each
# file's share of its run's summed time averaged over the two);
# every file not named here follows, in pytest's own order. Only the
# order matters: a file that grows or shrinks keeps its place until it is measured
# again, and costs at most a less even end of the run.
LONGEST_FIRST = (
    "tests/infrastructure/test_native_stack.py",
    "tests/faults/test_exactly_once.py",
    "tests/notifier/test_price_drops.py",
    "tests/dbt/test_build_scope.py",
    "tests/notifier/test_back_again.py",
    "tests/dags/test_dag_runs.py",
    "tests/faults/test_odd_showroom.py",
    # Ranked from their first runs (2 December, evening), not from two whole runs.
    "tests/pipeline/test_adversary_ops.py",
    "tests/faults/test_adversary_loader.py",
    "tests/pipeline/test_bench.py",
    "tests/notifier/test_daily_digest.py",
    "tests/original/test_migrate.py",
    "tests/pipeline/test_scenario.py",
    "tests/faults/test_process_faults.py",
    "tests/watcher/test_watch.py",
    "tests/loader/test_memory.py",
    "tests/faults/test_postgres_restart.py",
    "tests/faults/test_notify_killed.py",
    "tests/faults/test_adversary_notifier.py",
    "tests/pipeline/test_installed_tool.py",
    "tests/pipeline/test_cli_run.py",
    "tests/dbt/test_availability_scenario.py",
    "tests/dags/test_trigger.py",
    "tests/faults/test_push_faults.py",
    "tests/pipeline/test_latency_bench.py",
    "tests/dags/test_alerts.py",
    "tests/faults/test_api_faults.py",
    "tests/faults/test_dbt_test_failure.py",
    "tests/dbt/test_history.py",
    "tests/faults/test_price_drop_killed.py",
    "tests/faults/test_smtp_faults.py",
    "tests/pipeline/test_demo.py",
    "tests/dbt/test_freshness_and_docs.py",
    "tests/infrastructure/test_hardening.py",
    "tests/notifier/test_email.py",
    "tests/pipeline/test_cli_watch.py",
    "tests/notifier/test_subscriptions.py",
    "tests/loader/test_fail_closed.py",
    "tests/foundation/test_embedded_postgres.py",
    "tests/loader/test_incremental_details.py",
    "tests/notifier/test_bookkeeping.py",
    "tests/notifier/test_daily_digest_edges.py",
)


# The tmpfs Linux machines mount there. The tests' files (each worker's PostgreSQL
# data, dbt's target folders of compiled SQL, dlt's load files, Airflow homes) live
# there unless TMPDIR says otherwise: dbt writes two files per node it runs, and on
# the disk those writes, PostgreSQL's and the journal's cost CPU the tests share.
MEMORY_TMPDIR = Path("/dev/shm")
# A run leaves about 0.6 GB there (pytest keeps the last three runs' folders): a
# smaller tmpfs (a container's 64 MB default) keeps the disk.
MEMORY_TMPDIR_MIN_FREE = 4 * 2**30


def pytest_configure(config: pytest.Config) -> None:
    """Put pytest's temporary folders, and every process's TMPDIR, in memory.

    Only when nobody chose a TMPDIR and the tmpfs is there, writable and has room;
    xdist's workers and every subprocess a test starts inherit the variable.
    """
    if os.environ.get("TMPDIR") or config.option.basetemp:
        return
    if not (MEMORY_TMPDIR.is_dir() and os.access(MEMORY_TMPDIR, os.W_OK | os.X_OK)):
        return
    space = os.statvfs(MEMORY_TMPDIR)
    if space.f_bavail * space.f_frsize >= MEMORY_TMPDIR_MIN_FREE:
        os.environ["TMPDIR"] = str(MEMORY_TMPDIR)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Collect what the last test left for garbage, then freeze what survived.

    The in-process dbt builds allocate millions of objects, and Python's collector
    kept walking everything the worker had ever kept alive (Airflow's, dbt's and
    dlt's modules, dbt's parsed project): 20 full collections in one fault file took
    5.1 s of its 63 s. Frozen objects are never walked again (gc.freeze); each test's
    own garbage is still collected, at the start of the next test. Only the test
    processes do this; every product process a test starts keeps Python's defaults.
    """
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the files of LONGEST_FIRST first; a file's own tests keep their order."""
    rank = {path: place for place, path in enumerate(LONGEST_FIRST)}
    # sort is stable: within a file, and among the files not ranked, nothing moves.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
