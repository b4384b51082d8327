"""Training against a real MLflow store: a registered version with signature, metrics and tags,
and bad input that leaves nothing behind."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.cli import app
from ml.contract import CONTRACT_FILE, load_contract
from ml.features import CONTRACT
from ml.registry import Registry
from ml.settings import DEFAULT_DATA_SHA256, MLSettings
from ml.train import train
from tests.fixtures.datasets import write_csv

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "uci_credit_card.csv.gz"


@pytest.mark.slow
def test_full_training_registers_the_xgboost_champion(store: str, tmp_path: Path) -> None:
    # Given the default 30,000-row snapshot and an empty store
    settings = MLSettings(tracking_uri=store, home=tmp_path / "home")
    # When both candidates are trained
    result = train(settings, ["xgboost", "logreg"])
    # Then XGBoost wins with the published quality, and only it is registered
    by_kind = {c.kind: c.evaluation.roc_auc for c in result.candidates}
    assert by_kind["xgboost"] >= 0.78, by_kind
    assert by_kind["logreg"] >= 0.70, by_kind
    assert result.champion.kind == "xgboost"
    client = MlflowClient(store, registry_uri=store)
    versions = client.search_model_versions("name = 'credit-risk'")
    assert [int(v.version) for v in versions] == [result.version.version] == [1]
    version = versions[0]
    assert version.tags["data_sha256"] == DEFAULT_DATA_SHA256
    assert version.tags["data_rows"] == "30000"
    assert version.tags["model_type"] == "xgboost"
    assert len(version.tags["git_sha"]) >= 7
    assert client.get_registered_model("credit-risk").aliases == {}
    assert version.current_stage == "None"
    run = client.get_run(version.run_id)
    for metric in ("roc_auc", "pr_auc", "ks", "brier", "log_loss"):
        assert metric in run.data.metrics
    assert run.data.tags["data_sha256"] == DEFAULT_DATA_SHA256
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"plots", "model_card.md", "data_snapshot.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {f"plots/{n}.png" for n in ("roc", "pr", "calibration", "confusion_matrix")}
    info = mlflow.models.get_model_info(f"models:/credit-risk/{version.version}")
    assert info.signature is not None
    assert len(info.signature.inputs.input_names()) == 23
    assert "xgboost" in info.flavors


def test_cli_train_and_evaluate_on_a_subset(store: str, tmp_path: Path) -> None:
    import mlflow.tracking._tracking_service.utils as tracking_utils

    frame = pd.read_csv(DATA).sample(4000, random_state=1)
    sha = write_csv(tmp_path / "subset.csv.gz", frame)
    runner = CliRunner()
    outputs = tmp_path / "outputs"
    trained = runner.invoke(
        app,
        [
            "train",
            "--model",
            "logreg",
            "--params",
            '{"C": 0.25}',
            "--data",
            str(tmp_path / "subset.csv.gz"),
            "--data-sha256",
            sha,
        ],
        env={"GITHUB_OUTPUT": str(outputs)},
    )
    assert trained.exit_code == 0, trained.output
    assert "Registered credit-risk version 1" in trained.output
    assert outputs.read_text() == "version=1\n"  # the retrain workflow's step output
    # the retrain params reached the run, and no process-wide MLflow URI was left behind
    client = MlflowClient(store, registry_uri=store)
    run_id = client.get_model_version("credit-risk", "1").run_id
    assert client.get_run(run_id).data.params["C"] == "0.25"
    assert tracking_utils._tracking_uri is None
    # The version's run carries the contract it was trained under (serving enforces that one).
    contract_file = Registry(store).download_run_file(run_id, CONTRACT_FILE, tmp_path / "c")
    assert contract_file is not None
    assert load_contract(contract_file) == CONTRACT
    evaluated = runner.invoke(app, ["evaluate", "--version", "1", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert '"roc_auc"' in evaluated.output
    missing = runner.invoke(app, ["evaluate", "--version", "7"])
    assert missing.exit_code == 4
    assert "version 7 does not exist" in missing.output


def _broken(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    if kind == "missing column":
        return frame.drop(columns=["PAY_0"])
    if kind == "wrong dtype":
        return frame.assign(AGE=frame["AGE"].astype(str) + " years")
    if kind == "unknown code":
        return frame.assign(SEX=frame["SEX"].where(frame.index != frame.index[0], 3))
    return frame


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing column", "columns.missing: missing columns ['PAY_0']"),
        ("wrong dtype", "dtype.AGE"),
        ("unknown code", "codes.SEX: unknown codes [3]"),
        ("checksum mismatch", "checksum mismatch"),
        ("empty file", "is empty"),
    ],
)
def test_bad_input_exits_non_zero_and_leaves_no_run_or_version(
    store: str, tmp_path: Path, kind: str, message: str
) -> None:
    path = tmp_path / "bad.csv.gz"
    if kind == "empty file":
        path.write_bytes(gzip.compress(b""))
        sha = hashlib.sha256(b"").hexdigest()
    else:
        frame = pd.read_csv(DATA, nrows=3000)
        sha = write_csv(path, _broken(kind, frame))
        if kind == "checksum mismatch":
            sha = DEFAULT_DATA_SHA256
    result = CliRunner().invoke(app, ["train", "--data", str(path), "--data-sha256", sha])
    assert result.exit_code == 3, result.output
    assert message in " ".join(result.output.split())
    client = MlflowClient(store, registry_uri=store)
    finished = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="attributes.status = 'FINISHED'",
    )
    assert finished == []
    assert client.search_model_versions("name = 'credit-risk'") == []
