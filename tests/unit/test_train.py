"""ml/train.py without training: how `--params` merges over config/train.yaml."""

from __future__ import annotations

import pytest

from ml.errors import ConfigError
from ml.train import with_params
from ml.train_config import Candidates, TrainConfig

BASE = TrainConfig(candidates=Candidates(xgboost={"max_depth": 5, "n_estimators": 800}))


def test_flat_params_apply_to_the_chosen_model() -> None:
    merged = with_params(BASE, {"max_depth": 3}, "xgboost")
    assert merged.candidates.xgboost == {"max_depth": 3, "n_estimators": 800}
    assert BASE.candidates.xgboost["max_depth"] == 5  # the input is not mutated


def test_params_keyed_by_candidate() -> None:
    assert with_params(BASE, {"logreg": {"C": 0.1}}, None).candidates.logreg == {"C": 0.1}


@pytest.mark.parametrize(
    ("params", "kind", "message"),
    [({"max_depth": 3}, None, "model type"), ({"xgboost": 3}, None, "JSON object")],
)
def test_bad_params_are_config_errors(params: dict, kind: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        with_params(BASE, params, kind)  # type: ignore[arg-type]
