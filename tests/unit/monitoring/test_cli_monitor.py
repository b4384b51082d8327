"""`mlops monitor drift` on local files: the window options, an unreachable Pushgateway that
does not change the verdict, and argument mistakes as one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.monitoring.reference import build_reference
from tests.fixtures.prediction_logs import as_records, prediction_lines
from tests.fixtures.services import free_port


@pytest.fixture(scope="module")
def files(credit: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(1)
    reference = base / "reference.parquet"
    build_reference(credit.iloc[:3000], rng.beta(2, 6, 3000)).to_parquet(reference)
    log = base / "api.log"
    log.write_text(prediction_lines(as_records(credit.iloc[3000:3600]), rng.beta(2, 6, 600)))
    return log, reference


def test_a_local_run_with_a_window_and_an_unreachable_pushgateway(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    log, reference = files
    result = CliRunner().invoke(
        app,
        ["monitor", "drift", "--logs", str(log), "--reference", str(reference),
         "--window", "1h", "--out", str(tmp_path),
         "--pushgateway", f"http://127.0.0.1:{free_port()}"],
    )  # fmt: skip
    # Then the verdict stands (exit 0) and the failed push is a warning
    assert result.exit_code == 0, result.output
    assert "warning: push to the Pushgateway failed" in result.output
    summary = json.loads((tmp_path / "drift-summary.json").read_text())
    assert summary["rows"]["current"] == 600
    assert summary["window"]["start"] is not None
    assert summary["reference_source"] == str(reference)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--window", "soon"], 2, "bad duration 'soon'"),
        (["--end", "yesterday"], 2, "bad time 'yesterday'"),
        (["--config", "nope.yaml"], 2, "monitoring config not found: nope.yaml"),
        (["--end", "2000-01-01T00:00:00Z"], 3, "60 requests fall outside the window"),
    ],
)
def test_mistakes_are_one_line(
    files: tuple[Path, Path], tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    log, reference = files
    result = CliRunner().invoke(
        app,
        ["monitor", "drift", "--logs", str(log), "--reference", str(reference),
         "--out", str(tmp_path), *args],
    )  # fmt: skip
    assert result.exit_code == code, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
