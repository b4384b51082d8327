"""The boundary between the application and Airflow, read from the source (no Airflow needed).

The application never imports Airflow (their pins clash; Airflow lives in .venv-airflow), and the
DAG files import only Airflow, its docker provider's SDK and the standard library: they reach the
application through the `mlops` executable.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
ALLOWED_IN_DAGS = {"airflow", "docker", "mlops_tasks", "__future__"}


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["ml", "serve"])
def test_the_application_never_imports_airflow(package: str) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / package).rglob("*.py"))
        if "airflow" in _imported(path)
    ]
    assert offenders == []


def test_there_are_dag_files() -> None:
    names = {p.name for p in DAG_FILES}
    assert {"credit_risk_training.py", "credit_risk_monitoring.py"} <= names


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_files_import_only_airflow_and_the_standard_library(path: Path) -> None:
    foreign = _imported(path) - ALLOWED_IN_DAGS - set(sys.stdlib_module_names)
    assert foreign == set(), f"{path.name} imports {sorted(foreign)}"
