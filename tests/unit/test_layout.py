"""The tree's import rule: nothing outside tests/ imports tests/ (the benchmarks in scripts/ and
the application share helpers through `ml`, e.g. `ml.devservices`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports_tests(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "tests" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tests":
            return True
    return False


def test_nothing_outside_tests_imports_tests() -> None:
    sources = [p for d in ("ml", "serve", "scripts", "dags") for p in (ROOT / d).rglob("*.py")]
    assert len(sources) > 50
    offenders = [str(p.relative_to(ROOT)) for p in sources if _imports_tests(p)]
    assert offenders == []
