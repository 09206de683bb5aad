"""The tool as `uv tool install` or pipx gives it: a wheel in a fresh environment.

Built from this checkout, installed next to the locked dependencies (no dev group,
no Airflow) into a new virtual environment, and run from a folder that is not the
checkout: the dbt project and the DAGs must come from the wheel itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _uv_command() -> list[str]:
    """uv as README's commands installed it: `uv run` names itself in $UV."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def _uv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_uv_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh environment holding only the wheel and its deps."""
    if (
        shutil.which("uv") is None
        and subprocess.run(
            [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
        ).returncode
    ):
        pytest.fail("uv is needed to build the wheel (README's commands install it)")
    work = tmp_path_factory.mktemp("wheel")
    _uv("build", "--wheel", "--out-dir", str(work / "dist"))
    (wheel,) = (work / "dist").glob("athlon_flex_notifier-*.whl")
    requirements = work / "requirements.txt"
    _uv(
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "--output-file",
        str(requirements),
    )
    venv = work / "venv"
    _uv("venv", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    _uv("pip", "install", "--python", str(python), "-r", str(requirements))
    _uv("pip", "install", "--python", str(python), "--no-deps", str(wheel))
    return venv / "bin"


def _run(
    bin_dir: Path, cwd: Path, data_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTGRES_", "ATHLON_", "EMAIL_", "SMTP_", "NOTIFY_"))
        and key not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env["ATHLON_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [str(bin_dir / "athlon-flex"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_installed_tool_finds_its_dbt_project_and_dags_in_the_wheel(
    installed: Path, tmp_path: Path
) -> None:
    result = _run(installed, tmp_path, tmp_path / ".athlon", "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    site = installed.parent / "lib"
    assert lines[0].startswith(f"dbt project: {site}")
    assert lines[0].endswith("site-packages/athlon_flex/dbt_project")
    assert lines[1].startswith(f"Airflow DAGs: {site}")
    assert lines[1].endswith("site-packages/watcher/dags")
    assert str(ROOT) not in result.stdout


def test_installed_tool_runs_the_demo_outside_the_checkout(
    installed: Path, tmp_path: Path, embedded_data_dir: Path
) -> None:
    # The fixture's data dir: every server started below it is stopped afterwards.
    result = _run(
        installed,
        tmp_path,
        embedded_data_dir,
        "demo",
        "--cycles",
        "2",
        "--clusters",
        "2",
        "--vehicles-per-cluster",
        "2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    news = [line for line in result.stdout.splitlines() if line.startswith("   NEW ")]
    assert len(news) == 5  # four cars first, then the one that arrived
    assert "== Cycle 2: 2 cars leased, 1 arrives (" in result.stdout
    assert (embedded_data_dir / "demo" / "pgdata" / "PG_VERSION").exists()
    # dbt wrote its target under the data dir, not into the installed package.
    assert (embedded_data_dir / "demo" / "dbt" / "target" / "manifest.json").exists()
