"""Where the dbt project is, and the columns its YAML declares for a model.

The marts other code reads carry enforced dbt model contracts (models/marts/
_marts__models.yml): dbt refuses to build a mart whose columns or types differ from
that YAML. Reading the column list from the same YAML keeps one declaration of each
mart's schema, instead of a copy per reader.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml


def _find_project_dir() -> Path:
    """The dbt project: packaged in the installed wheel, else the checkout's root.

    An installed tool (`uv tool install`, pipx) has no source tree to walk up to, so
    the package's own resources come first (pyproject's force-include puts the
    project under athlon_flex/dbt_project/); a development checkout (editable
    install) has it at the repository root, next to this package.
    """
    packaged = Path(str(resources.files(__package__) / "dbt_project"))
    if (packaged / "dbt_project.yml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent


PROJECT_DIR = _find_project_dir()


@cache
def model_columns(model: str) -> tuple[str, ...]:
    """The columns the project's YAML declares for `model`, in their order."""
    for path in sorted((PROJECT_DIR / "models").rglob("*.yml")):
        for entry in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            if entry.get("name") == model:
                return tuple(column["name"] for column in entry.get("columns") or [])
    raise LookupError(f"model {model!r} is not declared in {PROJECT_DIR / 'models'}")
