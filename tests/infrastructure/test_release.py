"""Auto-update: the release workflow publishes what the compose stack pulls.

No registry or Docker here: the workflow and compose files are parsed and checked
against each other (image name, architectures, trigger, permissions, watchtower).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "release-image.yml"
INFRA = REPO / "infrastructure"
PROJECT_IMAGE_SERVICES = (
    "preflight",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-housekeeping",
    "dbt-docs",
)


def _workflow() -> dict[str, Any]:
    parsed = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True.
    parsed["on"] = parsed.pop(True, parsed.get("on"))
    return parsed


def _steps() -> dict[str, dict[str, Any]]:
    (job,) = _workflow()["jobs"].values()
    return {step["uses"].split("@")[0]: step for step in job["steps"]}


def _services() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())["services"]


def test_release_tags_build_both_architectures_and_push_to_ghcr() -> None:
    workflow = _workflow()
    assert workflow["on"]["push"] == {"tags": ["v*.*.*"]}
    assert workflow["permissions"] == {"contents": "read", "packages": "write"}
    steps = _steps()
    build = steps["docker/build-push-action"]["with"]
    assert build["file"] == "infrastructure/Dockerfile"
    assert build["context"] == "."
    assert set(build["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["push"] is True
    assert build["tags"] == "${{ steps.meta.outputs.tags }}"
    assert "docker/setup-qemu-action" in steps  # arm64 on an amd64 runner
    assert steps["docker/login-action"]["with"]["registry"] == "ghcr.io"
    assert steps["docker/login-action"]["with"]["password"] == (
        "${{ secrets.GITHUB_TOKEN }}"
    )
    tags = steps["docker/metadata-action"]["with"]["tags"]
    assert "type=semver,pattern={{version}}" in tags
    assert "type=raw,value=latest" in tags


def test_compose_pulls_what_the_workflow_publishes_by_default() -> None:
    published = _steps()["docker/metadata-action"]["with"]["images"]
    assert published == "ghcr.io/${{ github.repository_owner }}/athlon-flex-notifier"
    pattern = re.escape(published).replace(
        re.escape("${{ github.repository_owner }}"), r"[a-z0-9-]+"
    )
    for name in PROJECT_IMAGE_SERVICES:
        image = _services()[name]["image"]
        found = re.fullmatch(r"\$\{ATHLON_IMAGE:-(.+)\}", image)
        assert found, name
        assert re.fullmatch(pattern + ":latest", found.group(1)), name


def test_watchtower_is_opt_in_and_updates_only_the_projects_containers() -> None:
    services = _services()
    watchtower = services["watchtower"]
    assert watchtower["profiles"] == ["autoupdate"]
    assert watchtower["image"].startswith("containrrr/watchtower:")
    assert watchtower["image"].split(":")[1][0].isdigit()  # a pinned release
    assert "--label-enable" in watchtower["command"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in watchtower["volumes"]
    labelled = {
        name
        for name, service in services.items()
        if (service.get("labels") or {}).get("com.centurylinklabs.watchtower.enable")
        == "true"
    }
    assert labelled == set(PROJECT_IMAGE_SERVICES) - {"preflight"}
    # A pulled release migrates Airflow's database before the API server starts.
    env = services["airflow-apiserver"]["environment"]
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    # Local builds are never "updated" from a registry.
    build = yaml.safe_load((INFRA / "docker-compose.build.yml").read_text())
    for name in PROJECT_IMAGE_SERVICES:
        labels = build["services"][name]["labels"]
        assert labels["com.centurylinklabs.watchtower.enable"] == "false"


def test_deploy_docs_describe_update_and_rollback() -> None:
    deploy = (REPO / "docs" / "deploy.md").read_text()
    assert "## Update and rollback" in deploy
    section = deploy[deploy.index("## Update and rollback") :]
    section = section[: section.index("\n## ", 5)]
    for needed in (
        "--profile autoupdate",
        "ATHLON_IMAGE=",
        "docker-compose.build.yml",
        "release-image.yml",
        "airflow db downgrade",
    ):
        assert needed in section, needed
