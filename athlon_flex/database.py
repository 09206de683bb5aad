"""Where the project's PostgreSQL is, and the embedded server when none is configured.

With POSTGRES_HOST set, that server is used and nothing is started. Without it, a real
PostgreSQL 16 from the `pgserver` wheel runs with its data under ATHLON_DATA_DIR; it
listens on a Unix socket only and keeps running after the command ends, so the next
command (or the DAG's next task) reuses it and finds the data of the last one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from athlon_flex.errors import ConfigurationError, StageError
from athlon_flex.settings import Settings

log = logging.getLogger(__name__)


def _ensure_runtime_dir() -> None:
    """Give pgserver (and dbt) a private XDG runtime dir when the system has none.

    Without XDG_RUNTIME_DIR (root, CI, containers) platformdirs warns on every import
    and pgserver keeps its lock file in a shared /tmp folder.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    runtime = Path(f"/tmp/athlon-flex-runtime-{os.getuid()}")  # noqa: S108
    runtime.mkdir(mode=0o700, exist_ok=True)
    # mkdir's mode yields to the umask and to a folder that already exists: make it
    # private, or platformdirs warns on every command and falls back to /tmp.
    with contextlib.suppress(OSError):  # not ours: platformdirs will say so
        runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


_ensure_runtime_dir()


class DatabaseError(StageError):
    """PostgreSQL could not be started or reached."""


@dataclass(frozen=True)
class PostgresAddress:
    """How to reach the project's database. `host` may be a Unix socket directory."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str

    def connect_kwargs(self, dbname: str | None = None) -> dict[str, object]:
        """Keyword arguments for psycopg2.connect; libpq takes a socket dir as host."""
        kwargs: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": dbname or self.dbname,
            "application_name": "athlon-flex",
        }
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def dlt_credentials(self) -> dict[str, object]:
        """Credentials in the shape dlt's postgres destination takes.

        dlt renders credentials as a URL, where a socket directory such as /tmp/x is
        lost as a host; libpq takes `?host=/tmp/x` instead and lets it win over the
        placeholder host.
        """
        credentials: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "password": self.password or "",
            "database": self.dbname,
        }
        if self.host.startswith("/"):
            credentials["host"] = "localhost"
            credentials["query"] = {"host": self.host}
        return credentials

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that profiles.yml reads (the same names as ours)."""
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password or "",
            "POSTGRES_DB": self.dbname,
        }

    def describe(self) -> str:
        """Where we are connected, for logs; never includes the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


def _is_our_postmaster(info: object, pgdata: Path) -> bool:
    """Whether postmaster.pid's process is the server of this data folder.

    pgserver only asks whether a process with that pid is alive. After a crash or a
    reboot the file stays behind and its pid may belong to any other process by
    then: the server was taken as running, `status` said so, and every command
    failed to connect until someone deleted the file by hand. A postmaster works in
    its data folder (PostgreSQL changes into it), so the process's working folder
    must be this one. When the process cannot be inspected, it counts as the
    server: removing a live server's postmaster.pid would let a second one start
    on the same data.
    """
    import psutil

    if info is None or not info.is_running():  # type: ignore[attr-defined]
        return False
    try:
        folder = Path(info.process.cwd())  # type: ignore[attr-defined]
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # not ours to inspect: never judged stale
        return True
    return folder.resolve() == pgdata.resolve()


def _read_postmaster_info(pgdata: Path):  # -> PostmasterInfo | None
    """postmaster.pid, read again while the server is still writing it."""
    from pgserver.utils import PostmasterInfo

    for _ in range(50):
        try:
            return PostmasterInfo.read_from_pgdata(pgdata) if pgdata.is_dir() else None
        except (AssertionError, ValueError, OSError, KeyError):
            time.sleep(0.1)
    return None


def _forget_stale_pid_file(pgdata: Path) -> None:
    """Remove a postmaster.pid whose pid now belongs to another process, or one
    that stays unreadable (empty after a power cut) and names no live process."""
    pid_file = pgdata / "postmaster.pid"
    info = _read_postmaster_info(pgdata)
    if info is None and pid_file.is_file():
        first = pid_file.read_text(encoding="utf-8", errors="replace").split("\n")[0]
        if first.strip().isdigit():
            import psutil

            if psutil.pid_exists(int(first)):
                return  # a server writing it still: pgserver will say so
        log.warning(
            "%s cannot be read (%r...): removing it and starting the server",
            pid_file,
            first[:20],
        )
        pid_file.unlink(missing_ok=True)
        return
    if info is not None and info.is_running() and not _is_our_postmaster(info, pgdata):
        log.warning(
            "%s names pid %s, which is another process now (the server stopped "
            "without removing it): removing it and starting the server",
            pgdata / "postmaster.pid",
            info.pid,
        )
        with contextlib.suppress(FileNotFoundError):
            (pgdata / "postmaster.pid").unlink()


def _start_embedded(data_dir: Path):  # -> pgserver.PostgresServer (imported lazily)
    """Start (or find running) the pgserver instance whose data lives under data_dir."""
    import pgserver  # heavy-ish import; only the embedded path needs it
    from pgserver.utils import PostmasterInfo

    pgdata = data_dir / "pgdata"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file there, a read-only or missing parent
        why = "not a folder" if data_dir.exists() else error.strerror or str(error)
        raise ConfigurationError(
            f"ATHLON_DATA_DIR={str(data_dir)!r}: cannot create the data folder "
            f"({why}); point it at a writable folder. Nothing was changed."
        ) from None
    try:
        _forget_stale_pid_file(pgdata)
        # cleanup_mode=None: the server outlives this process; the next command
        # reuses it.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        # get_server caches its handle per folder: if the server stopped since this
        # process first started it, start it again rather than hand out a dead one.
        info = PostmasterInfo.read_from_pgdata(server.pgdata)
        if not _is_our_postmaster(info, Path(server.pgdata)):
            _forget_stale_pid_file(Path(server.pgdata))
            with server._lock:
                server.ensure_postgres_running()
        return server
    except Exception as error:  # pgserver raises bare subprocess/assert errors
        raise DatabaseError(
            f"Could not start the embedded PostgreSQL in {pgdata}: {error}. "
            f"See {pgdata / 'log'} for the server's own log."
        ) from error


@dataclass(frozen=True)
class EmbeddedStatus:
    """The embedded server under a data dir, read from its postmaster.pid."""

    pgdata: Path
    running: bool
    pid: int | None = None
    socket_dir: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        if not self.running:
            return f"embedded PostgreSQL: stopped (data in {self.pgdata})"
        return (
            f"embedded PostgreSQL: running, pid {self.pid}, socket "
            f"{self.socket_dir}/.s.PGSQL.{self.port} (data in {self.pgdata})"
        )


def embedded_status(data_dir: Path) -> EmbeddedStatus:
    """Whether the embedded server under data_dir runs; never starts it."""
    pgdata = data_dir / "pgdata"
    # postmaster.pid gains its lines one by one while the server starts; pgserver's
    # parser asserts on a partial file. Read again until it is whole (or gone).
    info = _read_postmaster_info(pgdata)
    if not _is_our_postmaster(info, pgdata):
        return EmbeddedStatus(pgdata=pgdata, running=False)
    return EmbeddedStatus(
        pgdata=pgdata,
        running=True,
        pid=info.pid,
        socket_dir=str(info.socket_dir) if info.socket_dir else None,
        port=info.port,
    )


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server under data_dir (fast shutdown); False if not running.

    pg_ctl directly: pgserver's own cleanup trusts the postmaster pid it saw at
    start, which a restarted server has made stale. Its data stays.
    """
    import subprocess

    from pgserver._commands import pg_ctl

    if not embedded_status(data_dir).running:
        return False
    pgdata = data_dir / "pgdata"
    as_user = "pgserver" if os.geteuid() == 0 else None  # pgserver's user under root
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=as_user)
    except subprocess.CalledProcessError as error:
        raise DatabaseError(
            f"Could not stop the embedded PostgreSQL in {pgdata}: {error}. "
            f"See {pgdata / 'log'}."
        ) from error
    return True


def open_connection(
    connection: PostgresAddress, dbname: str | None = None
) -> psycopg2.extensions.connection:
    """A new psycopg2 connection; an unreachable server raises DatabaseError."""
    try:
        return psycopg2.connect(**connection.connect_kwargs(dbname=dbname))
    except psycopg2.OperationalError as error:
        raise DatabaseError(
            f"Cannot connect to PostgreSQL at {connection.describe()}: "
            f"{str(error).strip()}"
        ) from error


@contextmanager
def _admin_cursor(
    connection: PostgresAddress,
) -> Iterator[psycopg2.extensions.cursor]:
    """An autocommit cursor on the server's `postgres` database.

    CREATE and DROP DATABASE cannot run inside a transaction block.
    """
    conn = open_connection(connection, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def _ensure_database_exists(connection: PostgresAddress) -> None:
    """CREATE DATABASE has no IF NOT EXISTS: check first."""
    with _admin_cursor(connection) as cursor:
        cursor.execute(
            "select 1 from pg_database where datname = %s", (connection.dbname,)
        )
        if cursor.fetchone() is None:
            log.info("Creating database %s", connection.dbname)
            cursor.execute(
                sql.SQL("create database {}").format(sql.Identifier(connection.dbname))
            )


def ensure_postgres(settings: Settings) -> PostgresAddress:
    """How to reach the project's database; starts the embedded one if needed."""
    if not settings.uses_embedded_postgres:
        assert settings.postgres_host is not None
        return PostgresAddress(
            host=settings.postgres_host,
            port=settings.postgres_port,
            user=settings.postgres_user,
            password=(
                settings.postgres_password.get_secret_value()
                if settings.postgres_password
                else None
            ),
            dbname=settings.postgres_db,
        )
    server = _start_embedded(settings.data_dir)
    info = server.get_postmaster_info()
    connection = PostgresAddress(
        host=str(info.socket_dir),
        port=info.port or 5432,
        user="postgres",
        password=None,
        dbname=settings.postgres_db,
    )
    _ensure_database_exists(connection)
    log.debug("Embedded PostgreSQL ready at %s", connection.describe())
    return connection


def recreate_database(connection: PostgresAddress) -> None:
    """Drop and create the connection's database: for the demo's and bench's own."""
    with _admin_cursor(connection) as cursor:
        cursor.execute(
            sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(connection.dbname)
            )
        )
    _ensure_database_exists(connection)


@contextmanager
def connect(connection: PostgresAddress) -> Iterator[psycopg2.extensions.connection]:
    """A psycopg2 connection that commits on success, rolls back on error, closes."""
    conn = open_connection(connection)
    try:
        with conn:
            yield conn
    finally:
        conn.close()
