"""The tree's rules: nothing outside tests/ imports tests/ (the benchmarks in scripts/ and the
application share helpers through `ml`, e.g. `ml.devservices`); every test file that uses a shared
expensive fixture runs in that fixture's xdist work unit (tests/conftest.py)."""

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


def test_files_sharing_an_expensive_fixture_share_a_work_unit() -> None:
    from tests.conftest import SHARED_FIXTURE_FILES

    # The fixture's name as a test asks for it (`spark` alone is a common word).
    fixtures = {"aws_world": "aws-world", "docker_client": "docker", "spark: SparkSession": "spark"}
    found = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path == Path(__file__):
            continue
        text = path.read_text(encoding="utf-8")
        for fixture, unit in fixtures.items():
            if fixture in text:
                found[str(path.relative_to(ROOT))] = unit
    assert found == SHARED_FIXTURE_FILES
