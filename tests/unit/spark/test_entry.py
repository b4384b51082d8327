"""The job's driver entry point: the training config it runs with, and the registry secret it
reads (moto in-process: Secrets Manager records secrets, which is all this needs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from ml.errors import ConfigError
from ml.spark.entry import registry_credentials, spark_train_config
from ml.train_config import load_train_config
from tests.fixtures.aws_in_process import aws_in_process

ROOT = Path(__file__).resolve().parents[3]


def test_a_training_job_fits_on_the_session_spark_submit_made(tmp_path: Path) -> None:
    # Given the repository's config (local backend, local[2])
    target = spark_train_config(ROOT / "config" / "train.yaml", tmp_path / "train.yaml")
    config = load_train_config(target)
    # Then the job trains on Spark, on its own session, with the reviewed hyperparameters
    assert config.backend == "spark"
    assert config.spark.master == ""
    assert config.candidates == load_train_config(ROOT / "config" / "train.yaml").candidates


def test_an_unknown_backend_is_refused_naming_the_file(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config" / "train.yaml").read_text())
    config["backend"] = "dask"
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"train\.yaml:\d+: backend"):
        load_train_config(path)


def test_the_job_copy_of_the_config_refuses_what_the_loader_refuses(tmp_path: Path) -> None:
    # Given a training config with a duplicated key (a plain YAML reader keeps the last one)
    source = tmp_path / "source.yaml"
    source.write_text("seed: 1\nseed: 2\n")
    # Then the job's copy is not written: the duplicate is named with its line
    with pytest.raises(ConfigError, match=rf"{source}:2: duplicate key"):
        spark_train_config(source, tmp_path / "train.yaml")
    assert not (tmp_path / "train.yaml").exists()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    with aws_in_process(monkeypatch):
        yield boto3.client("secretsmanager", region_name="eu-west-1")


def test_the_registry_credentials_come_from_the_secret(secrets: object) -> None:
    arn = secrets.create_secret(  # type: ignore[attr-defined]
        Name="credit-risk-batch/mlflow-reader-x",
        SecretString=json.dumps({"username": "batch-reader", "password": "p"}),
    )["ARN"]
    assert registry_credentials(arn, "eu-west-1") == ("batch-reader", "p")


def test_an_unseeded_secret_names_the_fix(secrets: object) -> None:
    arn = secrets.create_secret(Name="s", SecretString="{}")["ARN"]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="make tf-seed-secrets ROOT=platform"):
        registry_credentials(arn, "eu-west-1")
