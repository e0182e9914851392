"""The package's layers: cores that import without Dagster, and no import cycles.

A cycle held together by imports deferred into functions still ties its modules into one
knot (the checks used to import the assets that import the checks), so the graph here
counts every `import` in a module, at any depth.
"""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "forex_assets"
CORES = (
    "compute",
    "features",
    "ingest",
    "market",
    "metrics",
    "models",
    "storage",
    "strategies",
    "trading",
    "validation",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a `from package import module` names
    the module, anything else the package)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
                named = {f"{node.module}.{alias.name}" for alias in node.names}
                targets = (
                    named if named <= modules.keys() else {node.module} | (named & modules.keys())
                )
            elif isinstance(node, ast.Import):
                targets = {alias.name for alias in node.names} & modules.keys()
            else:
                continue
            graph[name] |= targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


_BLOCKED_IMPORT = """
import importlib, pkgutil, sys

class NoDagster:
    def find_spec(self, name, path=None, target=None):
        if name == "dagster" or name.startswith(("dagster.", "dagster_")):
            raise ImportError(f"{name} is blocked: a core must import without Dagster")
        return None

sys.meta_path.insert(0, NoDagster())
import forex_assets, forex_assets.processes, forex_assets.settings
for core in sys.argv[1:]:
    package = importlib.import_module(f"forex_assets.{core}")
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        importlib.import_module(module.name)
print("imported without dagster")
"""


def test_every_core_imports_with_dagster_blocked():
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, *CORES],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported without dagster" in result.stdout
