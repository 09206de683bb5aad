"""Small helpers the compose stack runs inside the image, before and around Airflow.

    python airflow_bootstrap.py check-config   # refuse example passwords (preflight)
    python airflow_bootstrap.py db-url         # Airflow's metadata DB URL (its role)
    python airflow_bootstrap.py ensure-db      # roles, databases, owners (superuser)
    python airflow_bootstrap.py secret NAME    # a generated secret, the same every time
    python airflow_bootstrap.py as-pipeline CMD ...   # CMD as the pipeline's role

Why: the old tool's `.docker-env` holds POSTGRES_USER/POSTGRES_PASSWORD, the
server's superuser, but no Airflow settings. The stack keeps that superuser for
setup only: `ensure-db` (airflow-init) creates a role for the pipeline, owner of
POSTGRES_DB and its schemas, and one for Airflow, owner of database `airflow`, with
passwords generated once into the `airflow-secrets` volume. Airflow reads its URL
through `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD=... db-url`, its keys through
`..._CMD` the same way; every other container runs under `as-pipeline`, which hands
the project's Settings the pipeline role's login and drops the superuser's and the
UI's passwords from the environment, so no task ever holds them. No password is
ever put on a command line. Only the standard library and psycopg2 (in the image).
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

SECRETS_DIR = Path(os.environ.get("AIRFLOW_SECRETS_DIR", "/opt/airflow/secrets"))
# name → how to make one; Airflow's Fernet key must be 32 url-safe base64 bytes.
GENERATORS = {
    "fernet_key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "jwt_secret": lambda: secrets.token_urlsafe(48),
    "api_secret_key": lambda: secrets.token_urlsafe(48),
    "admin_password": lambda: secrets.token_urlsafe(12),
    "pipeline_db_password": lambda: secrets.token_urlsafe(24),
    "airflow_db_password": lambda: secrets.token_urlsafe(24),
}
# The two login roles ensure-db creates; fixed names, nothing to configure.
PIPELINE_ROLE = "athlon_pipeline"
AIRFLOW_ROLE = "airflow"
# Marts' read-only role (macros/create_reader_role.sql): created here by the
# superuser, so the pipeline role needs no CREATEROLE.
READER_ROLE = "reader"
# What .docker-env.example ships: a stack must never run with it.
EXAMPLE_PASSWORD = "change-me"  # noqa: S105 (the value refused, not a secret)
# Secrets the pipeline's processes never need (as-pipeline drops them).
NOT_FOR_THE_PIPELINE = ("AIRFLOW_ADMIN_PASSWORD", "PGADMIN_DEFAULT_PASSWORD")


def _superuser() -> dict[str, str]:
    """The server's superuser (the postgres image creates it from these names)."""
    return {
        "host": os.environ.get("POSTGRES_HOST") or "postgres",
        "port": os.environ.get("POSTGRES_PORT") or "5432",
        "user": os.environ.get("POSTGRES_USER") or "postgres",
        "password": os.environ.get("POSTGRES_PASSWORD") or "",
    }


def check_config() -> list[str]:
    """What is wrong with the stack's settings: example or missing passwords."""
    problems = []
    for name in sorted(os.environ):
        value = os.environ[name].strip().strip("'\"")
        if name.endswith("PASSWORD") and value.lower() == EXAMPLE_PASSWORD:
            problems.append(f"{name} is still the example's {EXAMPLE_PASSWORD!r}")
    if not (os.environ.get("POSTGRES_PASSWORD") or "").strip():
        problems.append("POSTGRES_PASSWORD is empty")
    if (os.environ.get("POSTGRES_USER") or "postgres") in (PIPELINE_ROLE, AIRFLOW_ROLE):
        problems.append(
            f"POSTGRES_USER must be the server's superuser, not {PIPELINE_ROLE!r} or "
            f"{AIRFLOW_ROLE!r} (the stack creates those roles itself)"
        )
    return problems


def db_url() -> str:
    """SQLAlchemy URL of Airflow's database, as Airflow's own role (quoted login)."""
    pg = _superuser()
    login = (
        quote(AIRFLOW_ROLE, safe="")
        + ":"
        + quote(secret("airflow_db_password"), safe="")
    )
    dbname = os.environ.get("AIRFLOW_DB_NAME") or "airflow"
    return f"postgresql+psycopg2://{login}@{pg['host']}:{pg['port']}/{dbname}"


def _ensure_role(cursor: object, role: str, password: str | None) -> None:
    """Create the role if missing; (re)set its password so it matches the volume's."""
    from psycopg2 import sql

    cursor.execute("select 1 from pg_roles where rolname = %s", (role,))
    if cursor.fetchone() is None:
        kind = sql.SQL("login") if password is not None else sql.SQL("nologin")
        cursor.execute(sql.SQL("create role {} {}").format(sql.Identifier(role), kind))
    if password is not None:
        # A bound parameter, never part of a command line or of this file's output.
        cursor.execute(
            sql.SQL("alter role {} with login password %s").format(
                sql.Identifier(role)
            ),
            (password,),
        )


def _hand_over(dbname: str, role: str) -> int:
    """Make `role` the owner of every schema and relation the superuser owns in it.

    A volume from before the roles existed (or the old tool's) has everything owned
    by the superuser; the role must own its objects to alter and replace them.
    """
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(dbname=dbname, connect_timeout=10, **_superuser())
    conn.autocommit = True
    moved = 0
    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view",
             "S": "sequence", "f": "foreign table"}  # fmt: skip
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "select nspname from pg_namespace where nspowner = "
                "(select oid from pg_roles where rolname = current_user) "
                "and nspname <> 'information_schema' and nspname not like 'pg\\_%%'"
            )
            for (schema,) in cursor.fetchall():
                cursor.execute(
                    sql.SQL("alter schema {} owner to {}").format(
                        sql.Identifier(schema), sql.Identifier(role)
                    )
                )
                moved += 1
            cursor.execute(
                "select n.nspname, c.relname, c.relkind from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where c.relowner = (select oid from pg_roles "
                "where rolname = current_user) and c.relkind = any(%s) "
                "and n.nspname <> 'information_schema' "
                "and n.nspname not like 'pg\\_%%' "
                # sequences owned by a column follow their table
                "and not exists (select from pg_depend d where d.objid = c.oid "
                "and d.deptype in ('a', 'i') and c.relkind = 'S')",
                (list(kinds),),
            )
            for schema, name, kind in cursor.fetchall():
                cursor.execute(
                    sql.SQL("alter {} {}.{} owner to {}").format(
                        sql.SQL(kinds[kind]),
                        sql.Identifier(schema),
                        sql.Identifier(name),
                        sql.Identifier(role),
                    )
                )
                moved += 1
    finally:
        conn.close()
    return moved


def ensure_db() -> str:
    """Roles and databases, each database owned by its role; idempotent.

    The postgres image creates POSTGRES_DB (default: the user's name) and runs
    postgres-init/ only on an empty volume; the project's default is `athlon_flex`,
    and a volume may be older than this stack (the old tool's).
    """
    import psycopg2
    from psycopg2 import sql

    problems = check_config()
    if problems:
        raise SystemExit("refusing to set up the database: " + "; ".join(problems))
    owners = {
        os.environ.get("AIRFLOW_DB_NAME") or "airflow": AIRFLOW_ROLE,
        os.environ.get("POSTGRES_DB") or "athlon_flex": PIPELINE_ROLE,
    }
    conn = psycopg2.connect(dbname="postgres", connect_timeout=10, **_superuser())
    done = []
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            _ensure_role(cursor, AIRFLOW_ROLE, secret("airflow_db_password"))
            _ensure_role(cursor, PIPELINE_ROLE, secret("pipeline_db_password"))
            _ensure_role(cursor, READER_ROLE, None)
            for name, role in owners.items():
                cursor.execute("select 1 from pg_database where datname = %s", (name,))
                exists = cursor.fetchone() is not None
                statement = (
                    "alter database {} owner to {}"
                    if exists
                    else ("create database {} owner {}")
                )
                cursor.execute(
                    sql.SQL(statement).format(
                        sql.Identifier(name), sql.Identifier(role)
                    )
                )
                done.append(f"database {name} {'exists' if exists else 'created'}")
    finally:
        conn.close()
    for name, role in owners.items():
        moved = _hand_over(name, role)
        done.append(f"{name} owned by {role}" + (f" ({moved} moved)" if moved else ""))
    return "; ".join(done)


def as_pipeline(command: list[str]) -> None:
    """Replace this process with `command`, logged in as the pipeline's role."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_FOR_THE_PIPELINE}
    env["POSTGRES_USER"] = PIPELINE_ROLE
    env["POSTGRES_PASSWORD"] = secret("pipeline_db_password")
    os.execvpe(command[0], command, env)  # noqa: S606 (argv as given, no shell)


def secret(name: str) -> str:
    """The stored secret `name`, generated on first use (race-safe: first one wins)."""
    if name not in GENERATORS:
        raise SystemExit(f"unknown secret {name!r}; known: {', '.join(GENERATORS)}")
    path = SECRETS_DIR / name
    if not path.exists():
        SECRETS_DIR.mkdir(parents=True, exist_ok=True)
        draft = SECRETS_DIR / f".{name}.{os.getpid()}"
        draft.write_text(GENERATORS[name]() + "\n")
        draft.chmod(0o640)
        try:
            os.link(draft, path)  # atomic; fails if another process got there first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def main(argv: list[str]) -> int:
    # No trailing newline: Airflow takes a _CMD's output verbatim.
    if argv == ["check-config"]:
        problems = check_config()
        if problems:
            print(
                "refusing to start: " + "; ".join(problems) + ". Set them in "
                "infrastructure/.docker-env (docs/deploy.md).",
                file=sys.stderr,
            )
            return 2
        print("configuration checked: no example passwords")
    elif argv == ["db-url"]:
        sys.stdout.write(db_url())
    elif argv == ["ensure-db"]:
        print(ensure_db())
    elif len(argv) == 2 and argv[0] == "secret":
        sys.stdout.write(secret(argv[1]))
    elif len(argv) >= 2 and argv[0] == "as-pipeline":
        as_pipeline(argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
