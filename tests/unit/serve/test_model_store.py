"""Loading a version with its contract: the served version's own contract is the one enforced,
an old version gets the built-in one, and a version nothing bounds is not served."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import mlflow
import pytest
import serve_test_helpers as helpers
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from serve_test_helpers import make_client

from ml.contract import CONTRACT_FILE, Feature
from ml.features import CONTRACT
from serve.errors import ModelLoadError
from serve.model_store import load_from_path
from serve.settings import ServeSettings

NARROW = CONTRACT.replaced(
    Feature("AGE", "int", minimum=18, maximum=85, reason="this version's own bound")
)


@pytest.fixture
def narrowed_dir(model_dir: Path, tmp_path: Path) -> Path:
    """The test model with a contract.json beside it that stops AGE at 85 (its example: 18..79)."""
    copy = Path(shutil.copytree(model_dir.parent, tmp_path / "models")) / model_dir.name
    (copy.parent / CONTRACT_FILE).write_text(NARROW.to_json())
    return copy


def test_a_mounted_version_is_held_to_the_contract_beside_it(narrowed_dir: Path) -> None:
    for client in make_client(ServeSettings(model_path=narrowed_dir, log_predictions=False)):
        refused = client.post("/predict", json={"records": [{**helpers.record(1), "AGE": 90}]})
        accepted = client.post("/predict", json={"records": [{**helpers.record(1), "AGE": 85}]})

        assert refused.status_code == 422
        assert refused.json()["detail"][0]["allowed"] == "an integer from 18 to 85"
        assert accepted.status_code == 200
        contract = client.get("/metadata").json()["model"]["contract"]
        assert contract["source"] == "logged"
        assert contract["features"][4]["range"] == [18, 85]


def test_a_version_without_a_contract_gets_the_built_in_one(client: TestClient) -> None:
    contract = client.get("/metadata").json()["model"]["contract"]

    assert contract["source"] == "built-in"
    assert client.post("/predict", json={"records": [{**helpers.record(1), "AGE": 90}]}).is_success


def test_a_version_nothing_bounds_is_not_loaded(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from xgboost import XGBClassifier

    x = pd.DataFrame({"income": np.arange(40.0), "age": np.arange(40) % 50 + 18})
    model = XGBClassifier(n_estimators=2, max_depth=2).fit(x, x["income"] > 20)
    mlflow.xgboost.save_model(
        model, str(tmp_path / "m"), signature=infer_signature(x, model.predict_proba(x)[:, 1]),
        model_format="ubj", pip_requirements=["xgboost"],
    )  # fmt: skip

    with pytest.raises(ModelLoadError, match="not the built-in credit-risk contract"):
        load_from_path(tmp_path / "m", max_batch=10)


def test_a_contract_that_breaks_its_own_example_is_not_loaded(narrowed_dir: Path) -> None:
    tight = CONTRACT.replaced(Feature("AGE", "int", minimum=90, maximum=100, reason="too tight"))
    (narrowed_dir.parent / CONTRACT_FILE).write_text(tight.to_json())

    with pytest.raises(ModelLoadError, match=r"input example does not parse: records\.0\.AGE"):
        load_from_path(narrowed_dir, max_batch=10)


def test_each_registry_version_brings_its_contract(tmp_path: Path) -> None:
    uri = helpers.sqlite_store(tmp_path)
    legacy = helpers.log_tiny_version(uri, seed=1)
    narrow = helpers.log_tiny_version(uri, seed=2, contract=NARROW)
    registry = MlflowClient(uri, registry_uri=uri)
    registry.set_registered_model_alias("credit-risk", "production", narrow)
    body = {"records": [{**helpers.record(3), "AGE": 90}]}
    settings = ServeSettings(tracking_uri=uri, poll_interval=0.1, log_predictions=False)
    for client in make_client(settings):
        assert client.post("/predict", json=body).status_code == 422

        registry.set_registered_model_alias("credit-risk", "production", legacy)
        deadline = time.monotonic() + 20
        while (answer := client.post("/predict", json=body)).status_code != 200:
            assert answer.status_code == 422, answer.text
            assert time.monotonic() < deadline, "never swapped to the version without a contract"
            time.sleep(0.05)
        assert answer.headers["X-Model-Version"] == legacy
