"""`mlops --help` stays fast: importing the CLI imports no heavy library (checked in a fresh
interpreter, so other tests' imports cannot hide one)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "mlflow",
    "pandas",
    "sklearn",
    "boto3",
    "xgboost",
    "pydantic_settings",
    "docker",
    "pyspark",
)


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = f"import sys, ml.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", f"ml.cli imports {done.stdout.strip()}"
