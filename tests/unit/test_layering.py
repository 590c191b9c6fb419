"""The import-direction check: each package imports only packages of lower layers.

The layers are those of ARCHITECTURE.md; imports under ``if TYPE_CHECKING:`` are type-only
and exempt. Failing here means a module reaches upwards (or sideways into a sibling).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "dockyard"

LAYERS: dict[str, int] = {
    "__init__": 0, "errors": 1, "api_version": 1,
    "types": 2, "util": 2,
    "host": 3,
    "content": 4, "metadata": 4,
    "snapshots": 5, "diff": 5,
    "image": 6, "volume": 6, "network": 6, "runtime": 6,
    "distribution": 7, "builder": 7,
    "engine": 8,
    "api": 9, "registry": 9, "cluster": 9,
    "client": 10,
    "compose": 11,
    "cli": 12, "daemon": 12, "testing": 12,
}
ALLOWED_SIDEWAYS = {("cli", "daemon")}  # `dockyard daemon` is a CLI subcommand


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in ast.walk(node):
                type_only.add(id(inner))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


def violations() -> list[str]:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        source = _package_of(path)
        if source not in LAYERS:
            problems.append(f"{path}: package {source!r} has no layer in LAYERS")
            continue
        for module, line in _imports(ast.parse(path.read_text(), str(path))):
            parts = module.split(".")
            if parts[0] != "dockyard" or len(parts) < 2:
                continue
            target = parts[1]
            if target == source or (source, target) in ALLOWED_SIDEWAYS:
                continue
            if target not in LAYERS:
                problems.append(f"{path}:{line}: imports unknown package {target!r}")
            elif LAYERS[target] >= LAYERS[source]:
                problems.append(f"{path.relative_to(ROOT.parent)}:{line}: {source} (layer "
                                f"{LAYERS[source]}) imports {target} (layer {LAYERS[target]})")
    return problems


def test_imports_point_down() -> None:
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    tree = ast.parse("from dockyard.engine import x\nif TYPE_CHECKING:\n    import dockyard.api\n")
    modules = [m for m, _ in _imports(tree)]
    assert modules == ["dockyard.engine"]
