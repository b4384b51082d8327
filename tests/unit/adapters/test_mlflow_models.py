"""The MLflow model adapter against a real SQLite store: a run logs what training logs, and the
models it logged load back in their flavour (as evaluation and serving's fallback load them)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from ml.adapters import mlflow_models
from ml.registry import Registry


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"LIMIT_BAL": rng.uniform(0, 1, 60), "AGE": rng.integers(20, 70, 60)})
    return x, (x["LIMIT_BAL"] > 0.5).astype(int).to_numpy()


def test_a_run_logs_its_records_and_both_flavours_load_back(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    # Given a real store and two fitted models
    x, y = data
    booster = XGBClassifier(n_estimators=3, max_depth=2).fit(x, y)
    pipeline = Pipeline([("model", LogisticRegression())]).fit(x, y)
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = registry.ensure_experiment("e", (tmp_path / "art").as_uri())
    note = tmp_path / "note.txt"
    note.write_text("hello")

    # When one run logs tags, params, metrics, files, the dataset and both models
    with registry.fluent(), mlflow_models.start_run(experiment, "adapter") as run:
        signature = mlflow_models.infer_signature(x.head(5), booster.predict_proba(x.head(5)))
        run.set_tags({"model_type": "xgboost"})
        run.log_params({"max_depth": 2})
        run.log_metrics({"roc_auc": 0.9})
        run.log_dict({"features": ["LIMIT_BAL", "AGE"]}, "contract.json")
        run.log_file(note, "notes")
        labelled = x.assign(y=y)
        run.log_dataset(labelled, source="s3://b/d.csv", target="y", name="d.csv", digest="ab")
        xgb_uri = run.log_model(booster, "xgboost", signature, x.head(5), ["xgboost"])
        sk_uri = run.log_model(pipeline, "sklearn", signature, x.head(5), ["scikit-learn"])

    # Then the signature names the input columns with MLflow's types
    assert signature.columns == {"LIMIT_BAL": "double", "AGE": "long"}
    # and the run holds what was logged, FINISHED
    recorded = registry.run(run.run_id)
    assert recorded is not None
    assert recorded.status == "FINISHED"
    assert recorded.tags["model_type"] == "xgboost"
    assert recorded.metrics["roc_auc"] == 0.9
    # and each model loads back in the flavour it was logged in, scoring like the original
    for uri, original in ((xgb_uri, booster), (sk_uri, pipeline)):
        assert uri.startswith("models:/")
        local = registry.download_model(uri, tmp_path / uri.rsplit("/", 1)[-1])
        loaded = mlflow_models.load_classifier(local)
        assert type(loaded) is type(original)
        np.testing.assert_allclose(loaded.predict_proba(x), original.predict_proba(x))
    pyfunc = mlflow_models.load_pyfunc(local)
    np.testing.assert_allclose(
        np.asarray(pyfunc.predict(x))[:, -1], pipeline.predict_proba(x)[:, 1]
    )


def test_a_failing_block_leaves_the_run_failed(tmp_path: Path) -> None:
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = registry.ensure_experiment("e", (tmp_path / "art").as_uri())
    with (
        pytest.raises(RuntimeError),
        registry.fluent(),
        mlflow_models.start_run(experiment, "broken") as run,
    ):
        raise RuntimeError("boom")
    recorded = registry.run(run.run_id)
    assert recorded is not None
    assert recorded.status == "FAILED"


def test_a_pyfunc_loads_without_mlflows_requirement_check(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    # Given a scikit-learn model whose requirements the environment does not meet
    x, y = data
    pipeline = Pipeline([("model", LogisticRegression())]).fit(x, y)
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = registry.ensure_experiment("e", (tmp_path / "art").as_uri())
    with registry.fluent(), mlflow_models.start_run(experiment, "adapter") as run:
        signature = mlflow_models.infer_signature(x.head(5), pipeline.predict_proba(x.head(5)))
        uri = run.log_model(pipeline, "sklearn", signature, x.head(5), ["scikit-learn==0.0.1"])
    local = registry.download_model(uri, tmp_path / "model")

    # When it loads, listening to MLflow's logger (it does not propagate to pytest's)
    warned: list[str] = []
    listener = logging.Handler(logging.WARNING)
    listener.emit = lambda record: warned.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("mlflow").addHandler(listener)
    try:
        pyfunc = mlflow_models.load_pyfunc(local)
    finally:
        logging.getLogger("mlflow").removeHandler(listener)

    # Then MLflow's requirement check did not run (it would warn of the mismatch, after mapping
    # every installed distribution), and the model scores as the original
    assert not [m for m in warned if "mismatches between the model's dependencies" in m]
    np.testing.assert_allclose(
        np.asarray(pyfunc.predict(x))[:, -1], pipeline.predict_proba(x)[:, 1]
    )
