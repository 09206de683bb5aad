"""The package floors hold: read every import of the project's Python code.

docs/architecture.md states the rule; this is where it is enforced. Imports inside
functions and under TYPE_CHECKING count too: a lazy or type-only import is still an
arrow between two modules.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What each package may import besides itself (and the standard library and
# third-party packages).
ALLOWED: dict[str, frozenset[str]] = {
    "athlon_flex": frozenset(),
    "loader": frozenset({"athlon_flex"}),
    "transform": frozenset({"athlon_flex"}),
    "notifier": frozenset({"athlon_flex"}),
    "watcher": frozenset({"athlon_flex", "loader", "transform", "notifier"}),
    "dags": frozenset({"athlon_flex", "loader", "transform", "notifier", "watcher"}),
    "simulation": frozenset(
        {"athlon_flex", "loader", "transform", "notifier", "watcher"}
    ),
}
# The one sanctioned upward arrow: the CLI commands that start the simulator, the
# demo and the benchmark (inside the command functions, so `--help` stays fast).
EXCEPTIONS = {("watcher.cli", "simulation")}
# The simulated API is a stand-in for the real one: it knows nothing of the watcher.
SELF_CONTAINED = {"simulation.fake_api"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules() -> dict[str, Path]:
    modules = {}
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[_module_name(path)] = path
    return modules


def _imports(path: Path, module: str) -> set[str]:
    """Every project module `path` imports, resolved to the longest known name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative import
                package = module.split(".")[: -node.level or None]
                base = ".".join([*package, node.module])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in ALLOWED}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    modules = _project_modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name in _imports(path, module):
            target = _resolve(name, modules)
            if target and target != module:
                graph[module].add(target)
    return graph


def test_the_scan_sees_every_package() -> None:
    packages = {module.split(".")[0] for module in _project_modules()}
    assert packages == set(ALLOWED)
    graph = _graph()
    assert "athlon_flex.settings" in graph["watcher.cli"]
    assert "athlon_flex.database" in graph["loader.pipeline"]


def test_no_package_imports_one_above_it() -> None:
    offending = []
    for module, targets in sorted(_graph().items()):
        package = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other == package or other in ALLOWED[package]:
                continue
            if (module, other) in EXCEPTIONS:
                continue
            offending.append(f"{module} -> {target}")
    assert offending == []


def test_the_simulated_api_imports_only_itself() -> None:
    offending = [
        f"{module} -> {target}"
        for module, targets in sorted(_graph().items())
        if any(module.startswith(prefix) for prefix in SELF_CONTAINED)
        for target in sorted(targets)
        if not any(target.startswith(prefix) for prefix in SELF_CONTAINED)
    ]
    assert offending == []


def test_no_two_modules_import_each_other_even_through_others() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert loops == []
