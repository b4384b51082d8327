"""The Spark training backend on a real `local[2]` cluster, a real MLflow store and `mlops serve`.

The same data, split and hyperparameters (fewer trees than config/train.yaml, for time) are fit
once by the local backend and once by SparkXGBClassifier (`backend: spark`), each registered as a
version of one SQLite store. The Spark version must match the local one's quality, carry the same
records (tags, contract, reference sample, native booster), pass `mlops promote validate` with the
repository's gates and governance, and be what a real `mlops serve` process answers with.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.batch import ModelRef, load_version
from ml.cli import app
from ml.contract import CONTRACT_FILE
from ml.features import FEATURES
from ml.governance.training import used_features
from ml.holdout import load_dataset
from ml.registry import Registry
from ml.settings import DEFAULT_DATA_SHA256, MLSettings
from ml.train import BACKEND_TAG, TrainResult, train
from ml.train_config import load_train_config
from tests.fixtures.models import write_spec
from tests.integration.conftest_serve import serve_subprocess

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "uci_credit_card.csv.gz"
GOVERNANCE = ROOT / "config" / "governance.yaml"
GATES = ROOT / "config" / "gates.yaml"
NAME = "credit-risk"


@dataclass(frozen=True)
class World:
    uri: str
    tmp: Path
    env: dict[str, str]
    local: TrainResult
    spark: TrainResult


def _config(tmp: Path, backend: str) -> Path:
    config = yaml.safe_load((ROOT / "config" / "train.yaml").read_text())
    config["candidates"]["xgboost"].update(n_estimators=200, learning_rate=0.04)
    config["backend"] = backend
    config["spark"] = {"master": "local[2]", "num_workers": 2}
    path = tmp / f"train-{backend}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, spark_session: Any) -> World:
    tmp = tmp_path_factory.mktemp("spark-train")
    home = (tmp / "home").resolve()
    uri = f"sqlite:///{(home / 'mlflow.db').as_posix()}"
    guard = pytest.MonkeyPatch()
    for name in ("MLFLOW_TRACKING_URI", "ML_TRACKING_URI"):
        guard.delenv(name, raising=False)
    try:
        results = {
            backend: train(
                MLSettings(
                    home=home,
                    train_config=_config(tmp, backend),
                    governance_config=GOVERNANCE,
                ),
                ["xgboost"],
            )
            for backend in ("local", "spark")
        }
    finally:
        guard.undo()
    env = {
        "MLFLOW_TRACKING_URI": uri,
        "ML_DATA_SOURCE": str(DATA),
        "ML_DATA_SHA256": DEFAULT_DATA_SHA256,
        "ML_TRAIN_CONFIG": str(tmp / "train-spark.yaml"),
        "ML_GOVERNANCE_CONFIG": str(GOVERNANCE),
        "COLUMNS": "400",
    }
    return World(uri, tmp, env, results["local"], results["spark"])


def test_spark_reaches_the_local_trainer_s_roc_auc(world: World) -> None:
    # Given the same split and hyperparameters on both backends
    local, spark = world.local.champion.evaluation, world.spark.champion.evaluation
    # Then the distributed fit is as good as the local one on the holdout
    assert abs(spark.roc_auc - local.roc_auc) <= 0.005, (spark.roc_auc, local.roc_auc)
    assert spark.roc_auc >= 0.77
    assert (world.local.version.version, world.spark.version.version) == (1, 2)


def test_the_spark_version_carries_the_local_trainer_s_records(world: World) -> None:
    client = MlflowClient(world.uri, registry_uri=world.uri)
    runs = {
        backend: client.get_run(result.champion.run_id)
        for backend, result in (("local", world.local), ("spark", world.spark))
    }
    # Then the runs differ only in the backend tag's value and the run's own identity
    own = {"training_session", "mlflow.runName"}
    tags = {b: {k: v for k, v in r.data.tags.items() if k not in own} for b, r in runs.items()}
    assert tags["local"].keys() == tags["spark"].keys()
    assert (tags["local"][BACKEND_TAG], tags["spark"][BACKEND_TAG]) == ("local", "spark")
    differing = {k for k in tags["local"] if tags["local"][k] != tags["spark"][k]}
    assert differing <= {BACKEND_TAG, "model_uri", "champion", "candidates"}, differing
    assert runs["local"].data.params == runs["spark"].data.params
    assert runs["local"].data.metrics.keys() == runs["spark"].data.metrics.keys()
    # The same artefacts: the contract, the reference sample, plots, card, snapshot
    listed = {
        b: sorted(a.path for a in client.list_artifacts(r.info.run_id)) for b, r in runs.items()
    }
    assert listed["local"] == listed["spark"]
    contracts = {
        b: client.download_artifacts(r.info.run_id, CONTRACT_FILE, str(world.tmp / b))
        for b, r in runs.items()
    }
    assert Path(contracts["local"]).read_text() == Path(contracts["spark"]).read_text()
    # The same native booster flavour, with the contract's feature names and types
    registry = Registry(world.uri)
    boosters = {
        b: load_version(
            registry, ModelRef(NAME, version=r.version.version), world.tmp / f"dl-{b}"
        ).predictor.booster  # type: ignore[attr-defined]
        for b, r in (("local", world.local), ("spark", world.spark))
    }
    assert boosters["spark"].feature_names == boosters["local"].feature_names == FEATURES
    assert boosters["spark"].feature_types == boosters["local"].feature_types
    # Governance holds as in the local backend: no tree splits on a protected non-input
    assert not used_features(boosters["spark"]) & {"SEX", "MARRIAGE"}


def test_the_spark_version_passes_the_repository_s_gates(world: World) -> None:
    spec = write_spec(world.tmp / "promotions.yaml", {NAME: world.spark.version.version})
    result = CliRunner().invoke(
        app, ["promote", "validate", "--file", str(spec), "--gates", str(GATES)], env=world.env
    )
    assert result.exit_code == 0, result.output


def test_mlops_serve_answers_with_the_spark_version(world: World) -> None:
    version = world.spark.version.version
    holdout, _ = load_dataset(
        str(DATA), DEFAULT_DATA_SHA256, load_train_config(world.tmp / "train-spark.yaml")
    )
    rows = holdout.x_test.head(20)
    records = json.loads(rows.to_json(orient="records"))
    booster = load_version(
        Registry(world.uri), ModelRef(NAME, version=version), world.tmp / "dl-serve"
    ).predictor.booster  # type: ignore[attr-defined]
    import xgboost as xgb

    expected = booster.predict(xgb.DMatrix(rows))
    env = {"MLFLOW_TRACKING_URI": world.uri, "SERVE_MODEL_VERSION": str(version)}
    mlops = str(Path(sys.executable).parent / "mlops")
    with serve_subprocess(env, world.tmp / "serve.log", command=(mlops, "serve")) as (url, _):
        answer = httpx.post(f"{url}/predict", json={"records": records}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert str(body["model"]["version"]) == str(version), body["model"]
    served = np.array([p["probability"] for p in body["predictions"]])
    np.testing.assert_allclose(served, expected, rtol=1e-6)
