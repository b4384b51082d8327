"""`mlops release models` (the `desired-version` make target): the spec's versions, no registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml.cli import app


def test_models_prints_the_spec_and_outputs_one_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "promotions.yaml"
    spec.write_text("models:\n  credit-risk:\n    version: 9\n  other:\n    version: 2\n")
    out = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    done = CliRunner().invoke(
        app, ["release", "models", "--file", str(spec), "--model", "credit-risk"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"credit-risk": 9, "other": 2}
    assert out.read_text() == "version=9\n"
    missing = CliRunner().invoke(app, ["release", "models", "--file", str(spec), "--model", "x"])
    assert missing.exit_code == 2
    assert "is not listed" in missing.output
