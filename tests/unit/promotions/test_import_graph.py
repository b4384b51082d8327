"""The promotions engine and the governance gates import each other without a circle.

Every `import` counts (module level, inside functions and under TYPE_CHECKING), and importing
`a.b.c` counts as importing the package `a.b` too, as Python runs its `__init__` first. Before
the gates were split, gates ↔ canary ↔ reconcile and gates ↔ governance formed circles.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("ml/promotions", "ml/governance")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of `modules` that `path` imports (a name imported from a package is the
    submodule when there is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for target in targets:
            parts = target.split(".")
            # importing a.b.c runs a/__init__ and a/b/__init__ first
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in found if m in modules}


def graph() -> dict[str, set[str]]:
    """Module → the modules (of the two packages) it imports."""
    modules = _modules()
    edges = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    for name in edges:  # a package's own __init__ does not import its children by being one
        edges[name] = {m for m in edges[name] if not name.startswith(m + ".") or m == name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary circle found by a depth-first search (one per back edge)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_no_import_circle_in_the_engine_or_the_governance_gates() -> None:
    assert cycles(graph()) == []


def test_the_check_finds_a_planted_circle() -> None:
    edges = graph()
    # plant: the gates package importing the catalog (the bottom-of-module import it replaced)
    edges["ml.promotions.gates"] = {*edges["ml.promotions.gates"], "ml.promotions.gates.catalog"}
    found = cycles(edges)
    assert any("ml.governance.gates" in c and "ml.promotions.gates" in c for c in found), found


def test_the_catalog_lists_the_governance_gates_after_the_canary() -> None:
    from ml.promotions.gates.catalog import GATES

    names = list(GATES)
    assert names[names.index("canary") + 1 :] == ["protected-inputs", "fairness", "canary-fairness"]


@pytest.mark.parametrize(
    "first", ["ml.governance.gates", "ml.promotions.gates.verdicts", "ml.promotions.canary"]
)
def test_any_module_can_be_imported_first(first: str) -> None:
    code = f"import {first}; from ml.promotions.gates.catalog import GATES; print(len(GATES))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) >= 10
