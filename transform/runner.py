"""Stage `transform`: run the dbt project (repo root) in this process with dbtRunner.

`build` runs `dbt build`: seeds, staging, the SCD2 snapshots, intermediate models
and marts, and every data test, in dependency order. A failing data test stops
everything downstream of it, so a corrupt load never reaches the snapshots. Between
full builds (after a project change, daily) it builds selectors.yml's `cycle`.
`run_unit_tests` runs the `unit_tests:` (CI and tests; not every ten minutes).
`check_source_freshness` is separate because `dbt build` does not check freshness;
the DAG calls it right before `build`. `generate_docs` / `serve_docs` give the
docs site.

dbt's compiled files and full debug log go under ATHLON_DATA_DIR/dbt (the repo stays
clean); its console output is off and its events go to `logging` instead (logger
`transform.runner.dbt`: warnings and errors; per-node lines at DEBUG).
dbt reads its connection from environment variables (profiles.yml); they are set
only while dbt runs, and invocations are serialised, because dbt keeps global state
and is not safe to run twice at once in one process.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2

from athlon_flex.database import DatabaseError, connect, ensure_postgres
from athlon_flex.dbt_project import PROJECT_DIR
from athlon_flex.errors import StageError
from athlon_flex.settings import Settings

log = logging.getLogger(__name__)
dbt_log = logging.getLogger(f"{__name__}.dbt")

# What dbt parses: a change to any of these invalidates its saved parse.
_PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml")
_PROJECT_FOLDERS = ("models", "snapshots", "macros", "seeds", "data-tests", "analyses")


RAW_TABLES = ("raw.vehicle_clusters", "raw.vehicles", "raw.vehicles__options")

_DBT_LOCK = threading.Lock()

# A full build (every node, every data test) runs after any change to the project and
# at least this often; in between, the cycle builds `--selector cycle` (selectors.yml;
# docs/benchmarks.md says which tests run when and why that is safe).
FULL_BUILD_EVERY = timedelta(hours=24)
# Where the database records which project its views and seed were last fully built
# from, and when: a comment on the schema that holds them. It lives and dies with the
# database (a recreated database gets a full build), unlike anything under target/.
_STATE_SCHEMA = "staging"
_STATE_PREFIX = "athlon-flex full build:"
# And which raw load the last build that passed every test snapshotted: the cycle's
# relation_tests on a snapshot test only the keys changed since
# (macros/snapshot_rows_since_tested.sql reads it).
_TESTED_SCHEMA = "snapshots"
_TESTED_PREFIX = "athlon-flex tested through"

# dbt events shown at INFO: only what went wrong. Its per-node lines ("1 of 104 OK
# created sql view model ...", about 400 for a demo) are DEBUG, shown with `-v`; each
# stage logs one summary line of its own (BuildSummary).
_INFO_EVENTS = frozenset(
    {
        "RunResultError",
        "RunResultFailure",
        "RunResultWarning",
    }
)

_PASSED = frozenset({"success", "pass"})
_FAILED = frozenset({"error", "fail", "runtime error"})


class TransformError(StageError):
    """dbt could not build the project, or a data test failed."""


@dataclass(frozen=True)
class BuildSummary:
    """What one `dbt build` did (unit tests count as tests)."""

    models_passed: int
    models_failed: int
    snapshots_passed: int
    snapshots_failed: int
    tests_passed: int
    tests_failed: int
    tests_warned: int
    skipped: int
    seconds: float
    command: str = "dbt build"
    scope: str = ""  # "full" or "cycle" for `dbt build`, empty for other commands

    def __str__(self) -> str:
        scope = f" ({self.scope})" if self.scope else ""
        return (
            f"{self.command}{scope}: {self.snapshots_passed} snapshots, "
            f"{self.models_passed} models, {self.tests_passed} tests passed "
            f"({self.tests_warned} warned, "
            f"{self.models_failed + self.snapshots_failed + self.tests_failed} "
            f"failed, {self.skipped} skipped) in {self.seconds:.1f}s"
        )


def build(
    settings: Settings, *, full_refresh: bool = False, full: bool = False
) -> BuildSummary:
    """Run `dbt build` (without unit tests); raise TransformError naming failures.

    Unit tests check the SQL logic, not the data, so they stay out of the build that
    runs every ten minutes (dbt's advice); `run_unit_tests` runs them (CI, tests).
    `full_refresh` rebuilds the incremental marts from the whole history (after a
    change to their logic); snapshots are never rebuilt, they are the history.

    The build is full (every node and data test) when asked (`full`, `full_refresh`),
    when the database was not yet fully built from this very project (a new database,
    an edited model, test or seed), and once every FULL_BUILD_EVERY. Otherwise it is
    the cycle's build (`--selector cycle`): snapshots, the table marts and the data
    tests on the raw load, the snapshots and the marts, leaving out the seed, the
    views and the tests that repeat a raw test or a primary key, with one
    relation_tests per relation in place of the tests it runs in one query (25 of
    132 nodes: dbt's cost is per node, not per row).
    """
    _require_raw_tables(settings)
    fingerprint = _project_fingerprint()
    now = datetime.now(UTC)
    state = _read_full_build_state(settings)
    is_full = (
        full
        or full_refresh
        or state is None
        or state[0] != fingerprint
        or now - state[1] >= FULL_BUILD_EVERY
    )
    command = ["build", "--exclude-resource-type", "unit_test"]
    if not is_full:
        # manifest.json (about 1 MB, about 1 s to write) only changes with the
        # project, so the full build writes it; run_results.json is written below.
        command += ["--selector", "cycle", "--no-write-json"]
    if full_refresh:
        command.append("--full-refresh")
    summary = _run_nodes(
        settings, command, "dbt build", scope="full" if is_full else "cycle"
    )
    _record_build(settings, (fingerprint, now) if is_full else None)
    log.info("%s", summary)
    return summary


def run_operation(settings: Settings, macro: str) -> None:
    """Run one of the project's macros (`dbt run-operation`); raise on failure.

    For SQL whose one definition is a macro, such as the notifier's tables, needed
    before any build (the migration from the old tool writes into them).
    """
    result = _invoke(settings, ["run-operation", macro])
    if not result.success:
        raise TransformError(
            f"dbt run-operation {macro} failed: {result.exception or 'see the dbt log'}"
        )


def list_nodes(settings: Settings, selector: str, resource_type: str) -> list[str]:
    """The names of one resource type a selector of selectors.yml picks (`dbt ls`)."""
    result = _invoke(
        settings, ["ls", "--selector", selector, "--resource-type", resource_type]
    )
    if not result.success:
        raise TransformError(
            f"dbt ls --selector {selector} failed: "
            f"{result.exception or 'see the dbt log'}"
        )
    return list(result.result)


def _read_full_build_state(settings: Settings) -> tuple[str, datetime] | None:
    """(project fingerprint, started at) of the last successful full build, if any."""
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select obj_description(oid, 'pg_namespace') from pg_namespace"
            " where nspname = %s",
            (_STATE_SCHEMA,),
        )
        row = cursor.fetchone()
    text = (row[0] if row else None) or ""
    if not text.startswith(_STATE_PREFIX):
        return None
    try:
        fingerprint, started = text.removeprefix(_STATE_PREFIX).split()
        return fingerprint, datetime.fromisoformat(started)
    except ValueError:
        return None  # unreadable: the next build is full and rewrites it


def _record_build(settings: Settings, full: tuple[str, datetime] | None) -> None:
    """After a build that passed: the raw load its tests covered and, for a full
    build, (project fingerprint, started at)."""
    loads = " union all ".join(
        f"select max(extracted_at) as extracted_at from {table}" for table in RAW_TABLES
    )
    with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(f"select max(extracted_at) from ({loads}) as loads")
        (tested,) = cursor.fetchone()
        if tested is not None:  # all raw tables empty: keep the last record
            text = f"{_TESTED_PREFIX} {tested.isoformat()}"
            cursor.execute(f"comment on schema {_TESTED_SCHEMA} is %s", (text,))
        if full:
            text = f"{_STATE_PREFIX} {full[0]} {full[1].isoformat()}"
            cursor.execute(f"comment on schema {_STATE_SCHEMA} is %s", (text,))


def forget_full_build(cursor: Any) -> None:
    """Make the next build a full one, inside the caller's transaction.

    For code that drops a relation the cycle's build does not recreate (the
    migration drops the incremental mart, and with it the views reading it).
    """
    cursor.execute("select 1 from pg_namespace where nspname = %s", (_STATE_SCHEMA,))
    if cursor.fetchone():
        cursor.execute(f"comment on schema {_STATE_SCHEMA} is null")


def run_unit_tests(settings: Settings) -> BuildSummary:
    """Run the project's `unit_tests:` (`dbt test --select test_type:unit`).

    dbt reads the column types of a unit test's inputs from the database, so the
    project must have been built there once (an empty raw load is enough).
    """
    summary = _run_nodes(
        settings, ["test", "--select", "test_type:unit"], "dbt unit tests"
    )
    log.info("%s", summary)
    return summary


def check_source_freshness(settings: Settings) -> None:
    """Check that the last load is recent: warn after 30 min, raise after 2 h.

    `dbt build` does not check freshness; the DAG runs this right before it.
    """
    _require_raw_tables(settings)
    result = _invoke(settings, ["source", "freshness"])
    stale: list[str] = []
    for node_result in _node_results(result, "dbt source freshness"):
        if _kind(node_result.node.resource_type) != "source":
            continue  # the project hooks run too
        name = f"{node_result.node.source_name}.{node_result.node.name}"
        status = str(node_result.status)
        loaded_at = getattr(node_result, "max_loaded_at", None)
        age = getattr(node_result, "age", None)
        if loaded_at is None or age is None or loaded_at.year < 2000:
            age_text = "no rows: never loaded"  # dbt reports year 1 for an empty table
        else:
            age_text = (
                f"last loaded {loaded_at:%Y-%m-%d %H:%M} UTC, {age / 60:.0f} min ago"
            )
        if status == "warn":
            log.warning("Source %s is getting stale: %s", name, age_text)
        elif status in _FAILED:
            message = getattr(node_result, "message", None) or age_text
            stale.append(f"{name} ({message})")
    if stale:
        raise TransformError(
            "Source data is too old (last load more than 2 hours ago) or unreadable: "
            + ", ".join(stale)
            + ". Check that the load stage runs and succeeds; nothing was changed."
        )
    if not result.success:
        raise TransformError(
            "dbt source freshness failed without a result; see the dbt log under "
            f"{_dbt_dir(settings) / 'logs'}. Nothing was changed."
        )


def generate_docs(settings: Settings, output_dir: Path | None = None) -> Path:
    """Generate the dbt docs site (a single static index.html); return its folder."""
    result = _invoke(settings, ["docs", "generate", "--static"])
    if not result.success:
        raise TransformError(
            f"dbt docs generate failed: {result.exception or 'see the dbt log'}"
        )
    target = _dbt_dir(settings) / "target"
    site = (output_dir or _dbt_dir(settings) / "docs").expanduser().resolve()
    site.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target / "static_index.html", site / "index.html")
    for artifact in ("manifest.json", "catalog.json"):
        shutil.copyfile(target / artifact, site / artifact)
    log.info("dbt docs site written to %s", site / "index.html")
    return site


def docs_server(site: Path, port: int = 8080) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the docs site on 127.0.0.1 (port 0: any free port).

    The caller runs `serve_forever()` and closes it; serve_docs does both.
    """
    folder = Path(site)
    if not (folder / "index.html").exists():
        raise TransformError(f"No docs site in {folder}: run generate_docs first.")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(folder)
    )
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:  # the port is taken, or not ours to bind
        raise TransformError(
            f"Cannot serve the docs site on 127.0.0.1:{port} "
            f"({error.strerror or error}); pick another --port. The site stays in "
            f"{folder}."
        ) from None


def check_docs_port(port: int) -> None:
    """TransformError now if 127.0.0.1:`port` cannot be served (taken, not ours), so
    that `athlon-flex docs` fails before the site's generation, not after it."""
    with socket.socket() as probe:
        # As ThreadingHTTPServer binds: a port in TIME_WAIT is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise TransformError(
                f"Cannot serve the docs site on 127.0.0.1:{port} "
                f"({error.strerror or error}); pick another --port. Nothing was "
                "generated."
            ) from None


def serve_docs(site: Path, port: int = 8080) -> None:
    """Serve the docs site in folder `site` on 127.0.0.1:`port` until interrupted."""
    with docs_server(site, port) as server:
        log.info("Serving dbt docs on http://127.0.0.1:%s/", server.server_port)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            log.info("Docs server stopped")


# --- helpers ----------------------------------------------------------------------


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """The dbt vars that come from the settings."""
    return {"availability_grace_minutes": settings.notify_grace_minutes}


def _dbt_dir(settings: Settings) -> Path:
    return settings.data_dir / "dbt"


def _require_raw_tables(settings: Settings) -> None:
    """The loader creates `raw`; without it dbt would fail on its first view."""
    connection = ensure_postgres(settings)
    with connect(connection) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema = 'raw'"
        )
        present = {row[0] for row in cursor.fetchall()}
    missing = [table for table in RAW_TABLES if table not in present]
    if missing:
        raise TransformError(
            f"{', '.join(missing)} missing in {connection.describe()}: the load stage "
            "creates the raw tables, run it first (athlon-flex load). Nothing was "
            "built or changed."
        )


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _forward_event(event: Any) -> None:
    """dbt's events → our logging (dbt's own console output is switched off)."""
    info = event.info
    if info.level == "error":
        level = logging.ERROR
    elif info.level == "warn":
        level = logging.WARNING
    elif info.level == "info" and info.name in _INFO_EVENTS:
        level = logging.INFO
    else:
        level = logging.DEBUG
    if dbt_log.isEnabledFor(level) and info.msg.strip():
        dbt_log.log(level, "%s", info.msg.strip())


def _invoke(settings: Settings, command: list[str]) -> Any:
    """Run one dbt command against the project's database; return dbtRunnerResult."""
    from dbt.cli.main import dbtRunner  # heavy import: only when dbt really runs

    connection = ensure_postgres(settings)
    dbt_dir = _dbt_dir(settings)
    common = [
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(dbt_dir / "target"),
        "--log-path",
        str(dbt_dir / "logs"),
        "--log-level",
        "none",
        # dbt.log keeps warnings and errors. At debug, every node's dozen events
        # queue for one file handler's lock: a third of the build's threads' time.
        "--log-level-file",
        "warn",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
        # The settings the models read (dbt_project.yml's `vars:` has defaults).
        "--vars",
        json.dumps(dbt_vars(settings)),
    ]
    # PGTZ: every session dbt opens reads and renders timestamps in UTC.
    env = {**connection.dbt_env(), "PGTZ": "UTC"}
    log.debug("dbt %s on %s", " ".join(command), connection.describe())
    with _DBT_LOCK, _environment(env):
        target = dbt_dir / "target"
        fingerprint = _reuse_parse_only_if_unchanged(target)
        manifest = None
        if command[0] in _REUSES_MANIFEST:
            manifest = _parsed_manifest(dbtRunner, common, fingerprint, env, target)
        result = dbtRunner(manifest=manifest, callbacks=[_forward_event]).invoke(
            [*command, *common]
        )
        if result.exception is None:
            (target / _FINGERPRINT_FILE).write_text(fingerprint)
        return result


# Commands that run on a parsed manifest kept in this process (the others, rare,
# parse for themselves).
_REUSES_MANIFEST = frozenset({"build", "ls"})
# (fingerprint of the project and of dbt's connection environment) -> dbt Manifest.
# dbt parses the project at every invocation, even when it only loads its saved
# parse (about 1 s: reading it, checking every file, writing manifest.json); a
# long-lived process (`athlon-flex watch`, an Airflow worker) parses once. The parse
# depends on the project files and on the connection (the database name is in
# every node), so both are in the key; one entry is kept.
_MANIFESTS: dict[str, Any] = {}


def _parsed_manifest(
    runner: Any, common: list[str], fingerprint: str, env: Mapping[str, str], target
) -> Any:
    key = hashlib.sha256((fingerprint + repr(sorted(env.items()))).encode()).hexdigest()
    if key not in _MANIFESTS:
        # manifest.json is written by the full build; the parse only needs to load.
        parsed = runner(callbacks=[_forward_event]).invoke(
            ["parse", "--no-write-json", *common]
        )
        if parsed.exception is not None or not parsed.success:
            return None  # let the command parse (and fail) for itself, with its message
        (target / _FINGERPRINT_FILE).write_text(fingerprint)
        _MANIFESTS.clear()
        _MANIFESTS[key] = parsed.result
    manifest = _MANIFESTS[key]
    _forget_compilation(manifest)
    return manifest


def _forget_compilation(manifest: Any) -> None:
    """Put every node back in the state a parse leaves it in: not compiled.

    dbt compiles into the manifest it runs on and injects an ephemeral model's CTE
    into a node only once (`extra_ctes_injected`), so a manifest reused as it was
    left compiled `vehicles_to_notify` without its CTEs the second time ("relation
    __dbt__cte__stg_notifier__recipients does not exist"). (A pickled copy is no
    way out: dbt's lookups do not survive pickling.)
    """
    from dbt.contracts.graph.nodes import CompiledNode

    for node in manifest.nodes.values():
        if isinstance(node, CompiledNode):  # seeds are never compiled
            node.compiled = False
            node.compiled_code = None
            node.extra_ctes_injected = False
            node.extra_ctes = []
            node._pre_injected_sql = None


_FINGERPRINT_FILE = "athlon_project_fingerprint.txt"


def _project_fingerprint() -> str:
    """sha256 over every file dbt parses (names and contents)."""
    digest = hashlib.sha256()
    paths = [PROJECT_DIR / name for name in _PROJECT_FILES]
    for folder in _PROJECT_FOLDERS:
        paths.extend(p for p in (PROJECT_DIR / folder).rglob("*") if p.is_file())
    for path in sorted(paths):
        if path.exists():
            digest.update(str(path.relative_to(PROJECT_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _reuse_parse_only_if_unchanged(target: Path) -> str:
    """Drop dbt's saved parse when a project file changed since it was written.

    dbt's partial parsing does not re-parse YAML-defined snapshots correctly
    (dbt-core issue #10903: after an edit a build failed with "depends on a node
    named 'snap_vehicle_clusters' which was not found"). The saved parse is reused
    only when nothing changed (every ten-minute run in production), which is safe
    and saves seconds; any edit costs one full parse. Returns the fingerprint.
    """
    fingerprint = _project_fingerprint()
    stored = target / _FINGERPRINT_FILE
    if not stored.exists() or stored.read_text() != fingerprint:
        (target / "partial_parse.msgpack").unlink(missing_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    return fingerprint


def _run_nodes(
    settings: Settings, command: list[str], what: str, *, scope: str = ""
) -> BuildSummary:
    """Run a dbt command that builds or tests nodes; count outcomes; raise on any
    failure, naming each failed node."""
    started = time.perf_counter()
    result = _invoke(settings, command)
    seconds = time.perf_counter() - started
    if "--no-write-json" in command and hasattr(result.result, "write"):
        # What each node did and how long it took, as after every dbt run.
        result.result.write(str(_dbt_dir(settings) / "target" / "run_results.json"))

    counts: Counter[tuple[str, str]] = Counter()
    failures: list[str] = []
    for node_result in _node_results(result, what):
        status = str(node_result.status)
        if status in _PASSED:
            outcome = "passed"
        elif status in _FAILED:
            outcome = "failed"
        elif status == "warn":
            outcome = "warned"
        elif status == "skipped":
            outcome = "skipped"
        else:
            continue  # exposures are a no-op
        counts[_kind(node_result.node.resource_type), outcome] += 1
        if outcome == "failed":
            failures.append(
                _describe_failure(node_result)
                + _combined_failures(settings, node_result.node)
            )
        elif outcome == "warned":
            log.warning("dbt warning: %s", _describe_failure(node_result))

    summary = BuildSummary(
        models_passed=counts["model", "passed"],
        models_failed=counts["model", "failed"],
        snapshots_passed=counts["snapshot", "passed"],
        snapshots_failed=counts["snapshot", "failed"],
        tests_passed=counts["test", "passed"],
        tests_failed=counts["test", "failed"],
        tests_warned=counts["test", "warned"],
        skipped=sum(n for (_, outcome), n in counts.items() if outcome == "skipped"),
        seconds=round(seconds, 2),
        command=what,
        scope=scope,
    )
    if failures or not result.success:
        raise TransformError(
            f"{what} failed: {len(failures)} node(s) failed: "
            + "; ".join(failures or ["(see the dbt log)"])
            + f". {summary.skipped} node(s) downstream were skipped and keep their "
            "previous contents; raw data and the snapshots' earlier history are "
            "unchanged. Fix the data or the model and run transform again."
        )
    return summary


def _node_results(result: Any, what: str) -> list[Any]:
    """The per-node results, or TransformError when dbt did not get that far."""
    if result.exception is not None:
        raise TransformError(
            f"{what} could not run: {result.exception}. Nothing was changed."
        ) from result.exception
    return list(getattr(result.result, "results", None) or [])


def _kind(resource_type: Any) -> str:
    value = str(getattr(resource_type, "value", resource_type))
    return "test" if value in ("test", "unit_test") else value


def _describe_failure(node_result: Any) -> str:
    """One line: `source_unique_athlon_vehicles_id (test): Got 1 result, ...`."""
    node = node_result.node
    kind = str(getattr(node.resource_type, "value", node.resource_type))
    message = (node_result.message or str(node_result.status)).strip()
    first_line = message.splitlines()[0] if message else ""
    return f"{node.name} ({kind}): {first_line}"


def _combined_failures(settings: Settings, node: Any) -> str:
    """For a failed `relation_tests` (data-tests/generic/relation_tests.sql): which
    of the tests it combines failed, on how many rows, read by running its compiled
    query again; empty for any other node or when that query cannot run."""
    metadata = getattr(node, "test_metadata", None)
    if getattr(metadata, "name", None) != "relation_tests" or not node.compiled_code:
        return ""
    try:
        with connect(ensure_postgres(settings)) as conn, conn.cursor() as cursor:
            cursor.execute(node.compiled_code)
            rows = cursor.fetchall()
    except (psycopg2.Error, DatabaseError):
        return ""
    failed = ", ".join(f"{name} on {count} row(s)" for name, count in sorted(rows))
    return f" [failed: {failed}]" if failed else ""
