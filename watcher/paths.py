"""Where the installed tool's DAGs are, for AIRFLOW__CORE__DAGS_FOLDER."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def dags_folder() -> Path:
    """The DAGs packaged in the installed wheel, else the checkout's dags/ folder."""
    packaged = Path(str(resources.files(__package__) / "dags"))
    if (packaged / "athlon_flex.py").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "dags"
