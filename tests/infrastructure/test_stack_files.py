"""The compose stack, its env example and the Dockerfile agree with the project.

No Docker engine runs in the tests, so these read the files as compose and Airflow
would: YAML with merge keys, env names against `Settings`, `*_CMD` variables against
the options Airflow accepts them for, the base image against uv.lock.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from athlon_flex.settings import Settings

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infrastructure"
SETTINGS_VARS = {name.upper() for name in Settings.model_fields}

# Variables that belong to the stack, not the project: Airflow's own configuration,
# the stack's bootstrap, the postgres and pgAdmin images, the shell.
STACK_VARS = {
    "AIRFLOW_ADMIN_USERNAME",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_LOG_RETENTION_DAYS",
    "PGADMIN_DEFAULT_EMAIL",
    "PGADMIN_DEFAULT_PASSWORD",
    "HOSTNAME",
    "ATHLON_BIND_ADDRESS",
    "_AIRFLOW_DB_MIGRATE",  # the Airflow image's entrypoint: migrate before starting
}
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-housekeeping",
)
LONG_RUNNING = (*AIRFLOW_SERVICES, "postgres", "dbt-docs", "pgadmin")


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((INFRA / name).read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load("docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _env_example() -> dict[str, str]:
    values = {}
    for line in (INFRA / ".docker-env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def _is_known(name: str) -> bool:
    return (
        name in SETTINGS_VARS
        or name in STACK_VARS
        or name.startswith("AIRFLOW__")
        or name == "AIRFLOW_SECRETS_DIR"
    )


def _strings(node: Any) -> list[str]:
    """Every string anywhere in a parsed YAML tree."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def test_stack_has_every_service_with_its_image(services: dict[str, Any]) -> None:
    assert set(services) == {
        "preflight",
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-housekeeping",
        "dbt-docs",
        "pgadmin",
        "watchtower",
    }
    assert services["postgres"]["image"] == "postgres:16"
    assert services["pgadmin"]["image"].startswith("dpage/pgadmin4:")
    released = (
        "${ATHLON_IMAGE:-ghcr.io/athlon-flex-notifier/athlon-flex-notifier:latest}"
    )
    build = _load("docker-compose.build.yml")["services"]
    for name in (*AIRFLOW_SERVICES, "airflow-init", "dbt-docs", "preflight"):
        assert services[name]["image"] == released, name
        assert "build" not in services[name], name
        # One override file away: the same services, built from the working tree.
        assert build[name]["image"] == "athlon-flex-notifier:local", name
        assert build[name]["pull_policy"] == "build", name
        assert build[name]["build"] == {
            "context": "..",
            "dockerfile": "infrastructure/Dockerfile",
        }


def test_commands_are_the_airflow_components(services: dict[str, Any]) -> None:
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    init = "\n".join(services["airflow-init"]["command"])
    assert "ensure-db" in init
    assert "airflow db migrate" in init
    assert "| airflow users create" in init
    assert "--role Admin" in init
    docs = "\n".join(services["dbt-docs"]["command"])
    assert "athlon-flex docs --generate-only" in docs
    assert "http.server 8081" in docs


def test_ports_are_published_as_documented(services: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in services.items()}
    local = "${ATHLON_BIND_ADDRESS:-127.0.0.1}"
    assert published == {
        "preflight": [],
        "postgres": [],
        "airflow-init": [],
        "airflow-apiserver": [f"{local}:8080:8080"],
        "airflow-scheduler": [],
        "airflow-dag-processor": [],
        "airflow-triggerer": [],
        "airflow-housekeeping": [],
        "dbt-docs": [f"{local}:8081:8081"],
        "pgadmin": [f"{local}:5050:80"],
        "watchtower": [],
    }
    deploy = (REPO / "docs" / "deploy.md").read_text()
    for port in ("8080", "8081", "5050"):
        assert f"**{port}**" in deploy


def test_pgadmin_only_runs_with_the_tools_profile(services: dict[str, Any]) -> None:
    assert services["pgadmin"]["profiles"] == ["tools"]
    assert services["watchtower"]["profiles"] == ["autoupdate"]
    optional = ("pgadmin", "watchtower")
    assert all("profiles" not in s for n, s in services.items() if n not in optional)


def test_long_running_services_restart_and_have_healthchecks(
    services: dict[str, Any],
) -> None:
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
    for name in (*LONG_RUNNING,):
        if name == "airflow-housekeeping":
            continue  # a sleeping loop: nothing to probe
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert {"interval", "timeout", "retries"} <= set(check), name
    assert services["airflow-init"]["restart"] == "no"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]


def test_startup_order_waits_for_healthy_postgres_and_finished_init(
    services: dict[str, Any],
) -> None:
    assert services["airflow-init"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }
    assert services["postgres"]["depends_on"] == {
        "preflight": {"condition": "service_completed_successfully"}
    }
    for name in (*AIRFLOW_SERVICES, "dbt-docs"):
        depends = services[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["airflow-init"] == {
            "condition": "service_completed_successfully"
        }, name
    assert services["airflow-scheduler"]["depends_on"]["airflow-apiserver"] == {
        "condition": "service_healthy"
    }
    assert services["pgadmin"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }


def test_named_volumes_are_declared_and_keep_the_data(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    used = set()
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == set(compose["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert (
        "./postgres-init:/docker-entrypoint-initdb.d:ro"
        in services["postgres"]["volumes"]
    )
    # The docs site gets its own dbt folder, never the DAG's.
    assert services["dbt-docs"]["volumes"] == []
    assert (
        services["dbt-docs"]["environment"]["ATHLON_DATA_DIR"]
        != (services["airflow-scheduler"]["environment"]["ATHLON_DATA_DIR"])
    )


def test_airflow_runs_local_executor_against_its_own_database(
    services: dict[str, Any],
) -> None:
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-apiserver:8080/execution/"
        )
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"].endswith(
            "airflow_bootstrap.py db-url"
        )
        assert env["POSTGRES_HOST"] == "postgres"
        assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
        assert env["AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY"] == "60"
        assert services[name]["env_file"] == [".docker-env"]
    init_sql = (INFRA / "postgres-init" / "10-create-airflow-database.sql").read_text()
    assert "create database airflow;" in init_sql


def test_cmd_variables_name_options_airflow_runs_commands_for() -> None:
    """Airflow silently ignores `X_CMD` unless option X is marked sensitive."""
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations
    config = yaml.safe_load(
        (
            Path(spec.submodule_search_locations[0]) / "config_templates" / "config.yml"
        ).read_text()
    )
    sensitive = {
        (section, key)
        for section, body in config.items()
        for key, option in (body.get("options") or {}).items()
        if option.get("sensitive") is True
    }
    compose_env = _load("docker-compose.yml")["x-airflow-common"]["environment"]
    commands = [name for name in compose_env if name.endswith("_CMD")]
    assert len(commands) == 4
    for name in commands:
        section, _, key = (
            name.removeprefix("AIRFLOW__").removesuffix("_CMD").partition("__")
        )
        assert (section.lower(), key.lower()) in sensitive, name


def test_every_variable_the_stack_uses_is_a_setting_or_stack_variable(
    services: dict[str, Any],
) -> None:
    names: set[str] = set()
    for service in services.values():
        names |= set(service.get("environment") or {})
        for text in _strings(service.get("command")) + _strings(
            service.get("healthcheck")
        ):
            names |= set(re.findall(r"\$\$\{?([A-Z_][A-Z0-9_]*)", text))
    names -= {"PATH"}
    unknown = sorted(name for name in names if not _is_known(name))
    # Shell variables of the scripts themselves (lowercase) are not matched above.
    assert unknown == []


def test_env_example_lists_every_setting_and_nothing_unknown() -> None:
    example = _env_example()
    assert SETTINGS_VARS - set(example) == set()
    assert sorted(name for name in example if not _is_known(name)) == []
    # The old tool's names are all there, so an old .docker-env maps one to one.
    old = {
        "ATHLON_USERNAME",
        "ATHLON_PASSWORD",
        "GROSS_YEARLY_INCOME",
        "APPLY_LOONHEFFINGSKORTING",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_DB",
        "EMAIL_FROM",
        "EMAIL_TO",
        "GOOGLE_APP_PASSWORD",
    }
    assert old <= set(example)


def test_env_example_values_are_valid_settings(tmp_path: Path) -> None:
    """The example, as compose would pass it, loads (compose overrides the host)."""
    example = {k: v for k, v in _env_example().items() if k.upper() in SETTINGS_VARS}
    values = {k.lower(): v for k, v in example.items() if v != ""}
    values["postgres_host"] = "postgres"
    settings = Settings(_env_file=None, **values)
    assert settings.postgres_port == 5432
    assert settings.alert_after_failures == 3
    assert settings.notify_timezone == "Europe/Amsterdam"


def test_dockerfile_base_image_is_the_locked_airflow_version() -> None:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    dockerfile = (INFRA / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert bases == [f"apache/airflow:{locked['apache-airflow']}-python3.11"]


def test_dockerfile_installs_the_lock_without_airflow_extra_and_parses_dbt() -> None:
    dockerfile = (INFRA / "Dockerfile").read_text()
    flat = " ".join(dockerfile.replace("\\\n", " ").split())
    assert (
        "uv export --frozen --no-dev --no-extra airflow --no-hashes "
        "--no-emit-project --no-emit-package pgserver" in flat
    )
    assert 'pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}"' in flat
    assert "pip install --no-cache-dir --no-deps --editable ." in flat
    assert "dbt parse --project-dir . --profiles-dir ." in flat
    assert "AIRFLOW__CORE__DAGS_FOLDER=/opt/athlon-flex/dags" in flat
    ignore = (INFRA / "Dockerfile.dockerignore").read_text().split()
    assert {"**/.venv", "**/.docker-env*", "**/.env*", ".git", "tests"} <= set(ignore)


def test_dev_overlay_mounts_the_tree_over_the_image(services: dict[str, Any]) -> None:
    dev = _load("docker-compose.dev.yml")["services"]
    assert set(dev) - set(services) == {"fake-api"}
    for name in (
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "dbt-docs",
    ):
        assert "..:/opt/athlon-flex" in dev[name]["volumes"], name
        assert dev[name]["environment"]["ATHLON_API_URL"] == (
            "http://fake-api:8000/api/v1"
        )
    assert dev["postgres"]["ports"] == ["${ATHLON_BIND_ADDRESS:-127.0.0.1}:5432:5432"]
    assert dev["fake-api"]["command"][0] == "fake-api"
