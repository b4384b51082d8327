"""Training as separate steps (what the Airflow DAG runs), against a real MLflow store:
`data ingest` → `train --no-register` → `evaluate --run` → `gate --run` → `register --run`.

Each step prints one JSON line that the next takes its input from; nothing is registered until
`register`, a failed gate leaves no version, and a retried register does not make a second one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.cli import app
from tests.fixtures.datasets import write_csv

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "uci_credit_card.csv.gz"
SMALL = '{"n_estimators": 40, "learning_rate": 0.3, "max_depth": 3}'


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def _gates(path: Path, roc_auc_floor: float) -> Path:
    path.write_text(
        "defaults:\n  required_tags: [git_sha, data_sha256]\n"
        f"models:\n  credit-risk:\n    floors: {{roc_auc: {roc_auc_floor}}}\n"
    )
    return path


def test_the_steps_hand_the_run_and_version_on(store: str, tmp_path: Path) -> None:
    runner = CliRunner()
    source = tmp_path / "subset.csv.gz"
    sha = write_csv(source, pd.read_csv(DATA).sample(4000, random_state=3))

    # ingest: checksum verified, an uncompressed copy staged
    ingested = runner.invoke(
        app,
        ["data", "ingest", "--data", str(source), "--data-sha256", sha, "--out",
         str(tmp_path / "stage"), "--json"],
    )  # fmt: skip
    assert ingested.exit_code == 0, ingested.output
    staged = _last_json(ingested.stdout)
    assert (staged["sha256"], staged["rows"]) == (sha, 4000)
    assert hashlib.sha256(Path(staged["path"]).read_bytes()).hexdigest() == sha

    # train --no-register: the champion run, no version
    trained = runner.invoke(
        app,
        ["train", "--no-register", "--json", "--model", "xgboost", "--params", SMALL,
         "--data", staged["source"], "--data-sha256", staged["sha256"]],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    run = _last_json(trained.stdout)
    assert run["version"] is None
    assert run["model_type"] == "xgboost"
    client = MlflowClient(store, registry_uri=store)
    assert client.search_model_versions("name = 'credit-risk'") == []

    # evaluate --run: the logged artifact scores its own holdout as the run logged
    evaluated = runner.invoke(app, ["evaluate", "--run", run["run_id"], "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    scored = _last_json(evaluated.stdout)
    assert scored["reproduces_logged"] is True
    assert scored["roc_auc"] == pytest.approx(run["roc_auc"], abs=1e-9)

    # gate --run: a floor above the run fails (exit 5, named), and registers nothing
    strict = _gates(tmp_path / "strict.yaml", 0.99)
    failed = runner.invoke(app, ["gate", "--run", run["run_id"], "--gates", str(strict)])
    assert failed.exit_code == 5, failed.output
    assert "floor:roc_auc" in failed.output
    assert "0.99" in failed.output
    assert client.search_model_versions("name = 'credit-risk'") == []
    lenient = _gates(tmp_path / "lenient.yaml", 0.6)
    passed = runner.invoke(app, ["gate", "--run", run["run_id"], "--gates", str(lenient), "--json"])
    assert passed.exit_code == 0, passed.output
    verdict = _last_json(passed.stdout)
    assert verdict["passed"] is True
    assert {r["gate"] for r in verdict["results"]} == {
        "tag:git_sha", "tag:data_sha256", "floor:roc_auc"
    }  # fmt: skip

    # register --run: version 1 from that run; a retry returns it instead of a second version
    first = runner.invoke(app, ["register", "--run", run["run_id"], "--json"])
    assert first.exit_code == 0, first.output
    assert _last_json(first.stdout) | {} == {
        "model": "credit-risk", "run_id": run["run_id"], "version": 1, "created": True
    }  # fmt: skip
    again = runner.invoke(app, ["register", "--run", run["run_id"], "--json"])
    assert _last_json(again.stdout)["created"] is False
    versions = client.search_model_versions("name = 'credit-risk'")
    assert [(int(v.version), v.run_id) for v in versions] == [(1, run["run_id"])]
    tags = versions[0].tags
    assert tags["data_sha256"] == sha
    assert tags["model_type"] == "xgboost"
    assert json.loads(tags["candidates"]) == {"xgboost": round(run["roc_auc"], 4)}
    assert client.get_registered_model("credit-risk").aliases == {}

    # the version's run passes the same gate through --version
    by_version = runner.invoke(app, ["gate", "--version", "1", "--gates", str(lenient)])
    assert by_version.exit_code == 0, by_version.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["register", "--run", "0" * 32], 4, "does not exist"),
        (["gate"], 2, "exactly one of --run"),
        (["data", "ingest", "--data", "x.csv"], 2, "--data needs --data-sha256"),
        (["evaluate", "--run", "r", "--version", "1"], 2, "drop --version"),
    ],
)
def test_step_mistakes_are_one_line_errors(
    store: str, args: list[str], code: int, message: str
) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
