"""Small helpers the compose stack runs inside the image, before and around Airflow.

    python airflow_bootstrap.py db-url        # metadata DB URL, from POSTGRES_*
    python airflow_bootstrap.py ensure-db     # create it and POSTGRES_DB if missing
    python airflow_bootstrap.py secret NAME   # a generated secret, the same every time

Why: the old tool's `.docker-env` holds POSTGRES_USER/POSTGRES_PASSWORD but no Airflow
settings. Compose cannot build a URL from an env_file's values, so Airflow reads
`AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD=... db-url`; its secrets (JWT, Fernet, API
session) are generated once into the `airflow-secrets` volume and read through
`..._CMD` the same way, so every Airflow container agrees without anyone writing them
into the env file. Only the standard library and psycopg2 (in the image) are used.
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
}


def _postgres() -> dict[str, str]:
    """Where Airflow's metadata DB lives: the project's server, database `airflow`."""
    return {
        "host": os.environ.get("POSTGRES_HOST") or "postgres",
        "port": os.environ.get("POSTGRES_PORT") or "5432",
        "user": os.environ.get("POSTGRES_USER") or "postgres",
        "password": os.environ.get("POSTGRES_PASSWORD") or "",
        "dbname": os.environ.get("AIRFLOW_DB_NAME") or "airflow",
    }


def db_url() -> str:
    """SQLAlchemy URL with user and password quoted (they may hold @, :, / ...)."""
    pg = _postgres()
    login = quote(pg["user"], safe="")
    if pg["password"]:
        login += ":" + quote(pg["password"], safe="")
    return f"postgresql+psycopg2://{login}@{pg['host']}:{pg['port']}/{pg['dbname']}"


def ensure_db() -> str:
    """Create Airflow's and the project's databases when missing.

    The postgres image creates POSTGRES_DB (default: the user's name) and runs
    postgres-init/ only on an empty volume; the project's default is `athlon_flex`,
    and a volume may be older than the init script (the old tool's).
    """
    import psycopg2
    from psycopg2 import sql

    pg = _postgres()
    wanted = [pg.pop("dbname"), os.environ.get("POSTGRES_DB") or "athlon_flex"]
    conn = psycopg2.connect(dbname="postgres", connect_timeout=10, **pg)
    done = []
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            for name in dict.fromkeys(wanted):
                cursor.execute("select 1 from pg_database where datname = %s", (name,))
                if cursor.fetchone():
                    done.append(f"database {name} exists")
                    continue
                cursor.execute(
                    sql.SQL("create database {}").format(sql.Identifier(name))
                )
                done.append(f"database {name} created")
    finally:
        conn.close()
    return "; ".join(done)


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
    if argv == ["db-url"]:
        sys.stdout.write(db_url())
    elif argv == ["ensure-db"]:
        print(ensure_db())
    elif len(argv) == 2 and argv[0] == "secret":
        sys.stdout.write(secret(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
