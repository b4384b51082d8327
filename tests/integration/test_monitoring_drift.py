"""Drift on real data, through the CLI: a version trained on the real training split (its
reference logged by training), production logs written by serve's own writer.

- the holdout, scored by that version: no drift, exit 0;
- a shifted sample (several features moved): exit 15 naming them;
- the data gate on the same two sets against `models:/credit-risk/1`;
- s3:// logs and a CloudWatch Logs export to S3, both on moto in server mode;
- bad input (unknown version, no reference, malformed logs): one line, no traceback.
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from ml.cli import app
from ml.holdout import load_dataset
from ml.settings import DEFAULT_DATA_SHA256, MLSettings
from ml.train_config import load_train_config
from tests.fixtures.datasets import SHIFTED, shift
from tests.fixtures.prediction_logs import as_records, prediction_lines

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "uci_credit_card.csv.gz"


@dataclass(frozen=True)
class Trained:
    uri: str
    base: Path
    holdout_log: Path
    shifted_log: Path
    holdout_csv: Path
    shifted_csv: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Version 1 of credit-risk trained on the real split (fewer trees than config/train.yaml,
    for time), and its holdout and a shifted holdout scored by it and logged as serve logs."""
    import mlflow

    from ml.train import train

    base = tmp_path_factory.mktemp("drift")
    config = yaml.safe_load((ROOT / "config" / "train.yaml").read_text())
    config["candidates"]["xgboost"]["n_estimators"] = 150
    config["candidates"]["xgboost"]["learning_rate"] = 0.05
    (base / "train.yaml").write_text(yaml.safe_dump(config))
    uri = f"sqlite:///{base / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(ROOT)
        settings = MLSettings(home=base / "home", train_config=base / "train.yaml")
        result = train(settings, ["xgboost"])
        assert result.version.version == 1
        model = mlflow.xgboost.load_model(f"models:/credit-risk/{result.version.version}")
    holdout, _ = load_dataset(
        str(DATA), DEFAULT_DATA_SHA256, load_train_config(base / "train.yaml")
    )
    current = holdout.x_test.reset_index(drop=True)
    moved = shift(current)
    paths = {}
    for name, frame in (("holdout", current), ("shifted", moved)):
        scores = model.predict_proba(frame)[:, 1]
        paths[f"{name}_log"] = base / f"{name}.log"
        paths[f"{name}_log"].write_text(prediction_lines(as_records(frame), scores, version="1"))
        paths[f"{name}_csv"] = base / f"{name}.csv"
        frame.to_csv(paths[f"{name}_csv"], index=False)
    return Trained(uri=uri, base=base, **paths)


@pytest.fixture
def cli(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    monkeypatch.chdir(ROOT)
    return CliRunner()


def summary(out: Path, name: str = "drift-summary.json") -> dict:
    return json.loads((out / name).read_text())


def test_the_holdout_does_not_drift(trained: Trained, cli: CliRunner, tmp_path: Path) -> None:
    # When the drift job reads the holdout as production logs of version 1
    result = cli.invoke(
        app, ["monitor", "drift", "--logs", str(trained.holdout_log), "--out", str(tmp_path)]
    )
    # Then nothing crossed a threshold, against the reference training logged for version 1
    assert result.exit_code == 0, result.output
    got = summary(tmp_path)
    assert got["status"] == "ok"
    assert got["breaches"] == []
    assert (got["model"], got["version"]) == ("credit-risk", "1")
    assert got["rows"] == {
        "current": 6000,
        "reference": 24000,
        "current_sampled": 6000,
        "reference_sampled": 24000,
    }
    assert got["score"]["psi"] < 0.1
    assert abs(got["approval_rate"]["shift"]) < 0.05
    assert got["reference_source"] == "models:/credit-risk/1"
    assert (tmp_path / "drift-report.html").stat().st_size > 100_000


def test_a_shifted_sample_breaches_naming_the_features(
    trained: Trained, cli: CliRunner, tmp_path: Path
) -> None:
    result = cli.invoke(
        app, ["monitor", "drift", "--logs", str(trained.shifted_log), "--out", str(tmp_path)]
    )
    assert result.exit_code == 15, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: drift breach: drift_share")
    for feature in SHIFTED:
        assert feature in error
    got = summary(tmp_path)
    drift = next(b for b in got["breaches"] if b["check"] == "drift_share")
    assert set(drift["features"]) == set(SHIFTED)
    assert {"score_psi", "approval_shift"} <= {b["check"] for b in got["breaches"]}
    assert "Traceback" not in result.output


def test_the_data_gate_against_the_versions_reference(
    trained: Trained, cli: CliRunner, tmp_path: Path
) -> None:
    ok = cli.invoke(
        app,
        ["data", "check", "--current", str(trained.holdout_csv), "--reference",
         "models:/credit-risk/1", "--out", str(tmp_path / "ok")],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert summary(tmp_path / "ok", "data-check-summary.json")["status"] == "ok"
    bad = cli.invoke(
        app,
        ["data", "check", "--current", str(trained.shifted_csv), "--reference",
         "models:/credit-risk/1", "--out", str(tmp_path / "bad")],
    )  # fmt: skip
    assert bad.exit_code == 15, bad.output
    got = summary(tmp_path / "bad", "data-check-summary.json")
    assert set(got["breaches"][0]["features"]) == set(SHIFTED)
    assert got["score"] is None  # a training set has no scores


def test_bad_input_is_one_line_and_moves_nothing(
    trained: Trained, cli: CliRunner, tmp_path: Path
) -> None:
    # A version the registry does not have
    records = as_records(pd.read_csv(trained.holdout_csv).head(600))
    unknown = tmp_path / "v7.log"
    unknown.write_text(prediction_lines(records, [0.2] * 600, version="7"))
    result = cli.invoke(app, ["monitor", "drift", "--logs", str(unknown), "--out", str(tmp_path)])
    assert result.exit_code == 4, result.output
    assert "credit-risk version 7 is not in the registry" in result.output
    # A version asked for that the logs do not hold
    result = cli.invoke(
        app, ["monitor", "drift", "--logs", str(unknown), "--version", "1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 3, result.output
    assert "no predictions of version 1 in the logs; seen: 7 (600 records)" in result.output
    # Mostly malformed logs
    garbage = tmp_path / "garbage.log"
    garbage.write_text('{"event":"prediction","ts":1,"model":"credit-risk"}\n' * 50)
    result = cli.invoke(app, ["monitor", "drift", "--logs", str(garbage)])
    assert result.exit_code == 3, result.output
    assert "50 of 50 prediction lines" in result.output
    # A reference file that is not there
    result = cli.invoke(
        app,
        ["data", "check", "--current", str(trained.holdout_csv), "--reference",
         str(tmp_path / "nope.parquet")],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    for output in (result.output,):
        assert "Traceback" not in output
        assert len(output.strip().splitlines()) == 1


def test_a_version_without_a_reference_says_how_to_fix_it(
    trained: Trained, cli: CliRunner, tmp_path: Path
) -> None:
    from tests.integration.conftest_serve import log_tiny_version

    version = log_tiny_version(trained.uri, seed=3)  # logged like serve tests do: no reference
    records = as_records(pd.read_csv(trained.holdout_csv).head(600))
    log = tmp_path / "tiny.log"
    log.write_text(prediction_lines(records, [0.2] * 600, version=version))
    result = cli.invoke(app, ["monitor", "drift", "--logs", str(log), "--out", str(tmp_path)])
    assert result.exit_code == 3, result.output
    assert f"credit-risk version {version}" in result.output
    assert "retrain it, or pass --reference PATH" in result.output


def test_s3_logs_and_a_cloudwatch_export(
    trained: Trained, cli: CliRunner, aws_on_moto: str, tmp_path: Path
) -> None:
    import boto3

    urllib.request.urlopen(
        urllib.request.Request(f"{aws_on_moto}/moto-api/reset", method="POST"), timeout=5
    )
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="logs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    lines = trained.holdout_log.read_text().splitlines()
    # Given plain and gzip objects under one prefix
    half = len(lines) // 2
    s3.put_object(Bucket="logs", Key="api/part-1.log", Body="\n".join(lines[:half]).encode())
    second = gzip.compress("\n".join(lines[half:]).encode())
    s3.put_object(Bucket="logs", Key="api/part-2.gz", Body=second)
    result = cli.invoke(
        app, ["monitor", "drift", "--logs", "s3://logs/api/", "--out", str(tmp_path / "s3")]
    )
    assert result.exit_code == 0, result.output
    assert summary(tmp_path / "s3")["logs"]["sources"] == 2
    assert summary(tmp_path / "s3")["rows"]["current"] == 6000

    # Given the same lines sent to CloudWatch Logs (as ECS's awslogs driver does) and exported
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/ecs/credit-risk-api")
    logs.create_log_stream(logGroupName="/ecs/credit-risk-api", logStreamName="api/api/task-1")
    now = int(time.time() * 1000)
    for start in range(0, len(lines), 200):
        logs.put_log_events(
            logGroupName="/ecs/credit-risk-api",
            logStreamName="api/api/task-1",
            logEvents=[{"timestamp": now, "message": m} for m in lines[start : start + 200]],
        )
    logs.create_export_task(
        logGroupName="/ecs/credit-risk-api",
        fromTime=now - 60_000,
        to=now + 60_000,
        destination="logs",
        destinationPrefix="exports",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="logs", Prefix="exports/")["Contents"]]
    assert any(k.endswith("/000000.gz") for k in keys)
    assert gzip.decompress(s3.get_object(Bucket="logs", Key=keys[0])["Body"].read())[:4].isdigit()
    # When the drift job reads the export
    result = cli.invoke(
        app, ["monitor", "drift", "--logs", "s3://logs/exports", "--out", str(tmp_path / "cw")]
    )
    # Then the timestamp prefix of every line is skipped and every record read
    assert result.exit_code == 0, result.output
    got = summary(tmp_path / "cw")
    assert got["rows"]["current"] == 6000
    assert got["logs"]["malformed"] == 0
    # And a bucket that does not exist is a one-line error
    result = cli.invoke(app, ["monitor", "drift", "--logs", "s3://no-such-bucket/x"])
    assert result.exit_code == 3, result.output
    assert "cannot read s3://no-such-bucket/x" in result.output
    np.testing.assert_equal(len(result.output.strip().splitlines()), 1)
