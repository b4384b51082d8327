"""`mlops predict --input s3://...` against moto in server mode (S3 on 127.0.0.1), through the
real CLI: the object is scored as a local file would be, with its checksum, and a missing key is
one line with exit code 3."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from conftest_serve import feature_frame, log_tiny_version, sqlite_store
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.cli import app
from ml.features import CONTRACT

pytestmark = pytest.mark.timeout(300)


def test_an_s3_object_is_scored_like_a_file(aws_on_moto: str, tmp_path: Path) -> None:
    uri = sqlite_store(tmp_path)
    version = log_tiny_version(uri, seed=7, contract=CONTRACT)
    MlflowClient(uri, registry_uri=uri).set_registered_model_alias(
        "credit-risk", "production", version
    )
    data = feature_frame(500, seed=3)
    data.insert(0, "ID", np.arange(500))
    data.loc[10, "MARRIAGE"] = 8
    data.to_parquet(tmp_path / "in.parquet", index=False)
    s3 = boto3.client("s3")
    s3.create_bucket(
        Bucket="scoring", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.upload_file(str(tmp_path / "in.parquet"), "scoring", "2026/11/applicants.parquet")
    env = {"MLFLOW_TRACKING_URI": uri}
    out = tmp_path / "scores.parquet"

    result = CliRunner().invoke(
        app,
        ["predict", "--model", "credit-risk@production", "--output", str(out),
         "--input", "s3://scoring/2026/11/applicants.parquet"],
        env=env,
    )  # fmt: skip
    missing = CliRunner().invoke(
        app,
        ["predict", "--model", "credit-risk@production", "--output", str(out),
         "--input", "s3://scoring/2026/11/nope.parquet"],
        env=env,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (
        summary["input_sha256"]
        == hashlib.sha256((tmp_path / "in.parquet").read_bytes()).hexdigest()
    )
    assert (summary["rows"], summary["rejected"]) == (500, 1)
    scores = pd.read_parquet(out)
    assert len(scores) == 499
    assert scores["ID"].tolist() == [i for i in range(500) if i != 10]
    assert missing.exit_code == 3
    assert "cannot download s3://scoring/2026/11/nope.parquet" in missing.output
    assert "--input takes a CSV or Parquet file" in missing.output
    assert len(missing.output.strip().splitlines()) == 1
