"""The DAGs' copy of the exit codes (dags/exit_codes.json) is ml/errors.py's table.

The Airflow environment cannot import the application, so the DAG helper reads the checked-in
JSON; this test fails when an error class changes its code, label or finality and the copy was
not regenerated.
"""

from __future__ import annotations

import json
from pathlib import Path

from ml.errors import ConfigError, GitHubError, MonitoringBreach, exit_codes, exit_codes_json

ROOT = Path(__file__).resolve().parents[3]
COPY = ROOT / "dags" / "exit_codes.json"


def test_the_dags_copy_equals_ml_errors() -> None:
    assert COPY.read_text(encoding="utf-8") == exit_codes_json(), (
        "dags/exit_codes.json differs from ml/errors.py: run `make dags-exit-codes`"
    )


def test_the_table_reads_the_classes() -> None:
    table = exit_codes()
    assert table[ConfigError.exit_code] == ("configuration", True)
    assert table[MonitoringBreach.exit_code] == ("threshold crossed", True)
    assert table[GitHubError.exit_code] == ("git/GitHub", False)
    assert table[1] == ("unexpected", False)
    assert len(json.loads(COPY.read_text(encoding="utf-8"))) == len(table)


def test_the_dag_helper_reads_the_copy_not_a_table_of_its_own() -> None:
    source = (ROOT / "dags" / "mlops_tasks.py").read_text(encoding="utf-8")
    assert "exit_codes.json" in source
    assert "FINAL_EXIT_CODES" not in source
