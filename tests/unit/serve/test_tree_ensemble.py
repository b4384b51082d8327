"""The numpy tree walk must give the booster's probabilities, or refuse to run."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from serve.tree_ensemble import compile_ensemble


def _data(seed: int, rows: int = 400, width: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Integer-valued columns (like the credit data's codes) make many rows tie on thresholds.
    x = np.column_stack(
        [rng.integers(-2, 9, rows), rng.normal(size=(rows, width - 1)) * 1000]
    ).astype(np.float32)
    y = ((x[:, 0] > 2) ^ (x[:, 1] > 300) | (rng.random(rows) < 0.1)).astype(int)
    return x, y


def _booster(
    params: dict[str, object], rounds: int, seed: int = 0
) -> tuple[xgb.Booster, np.ndarray]:
    x, y = _data(seed)
    return xgb.train({"nthread": 1, **params}, xgb.DMatrix(x, label=y), rounds), x


@pytest.mark.parametrize(
    ("params", "rounds"),
    [
        ({"objective": "binary:logistic", "max_depth": 5, "eta": 0.1}, 200),
        ({"objective": "binary:logistic", "max_depth": 1}, 3),  # stumps
        ({"objective": "binary:logistic", "max_depth": 8, "min_child_weight": 0}, 30),  # ragged
        ({"objective": "binary:logistic", "base_score": 0.9, "max_depth": 3}, 10),
        ({"objective": "reg:logistic", "max_depth": 4}, 20),
        ({"objective": "binary:logistic", "grow_policy": "lossguide", "max_leaves": 9}, 20),
    ],
)
def test_walk_matches_the_booster(params: dict[str, object], rounds: int) -> None:
    booster, x = _booster(params, rounds)
    ensemble = compile_ensemble(booster)
    assert ensemble is not None
    for rows in (x[:1], x[:7], x):
        expected = booster.inplace_predict(rows)
        np.testing.assert_allclose(ensemble.predict(rows), expected, rtol=0, atol=1e-6)


def test_values_on_a_threshold_go_right_as_in_xgboost() -> None:
    booster, x = _booster({"objective": "binary:logistic", "max_depth": 4}, 40)
    ensemble = compile_ensemble(booster)
    assert ensemble is not None
    cuts = ensemble.thresholds[np.isfinite(ensemble.thresholds)]
    feats = ensemble.features[np.isfinite(ensemble.thresholds)]
    ties = np.repeat(x[:1], cuts.size, axis=0)
    ties[np.arange(cuts.size), feats] = cuts  # each row sits exactly on one real threshold
    np.testing.assert_allclose(
        ensemble.predict(ties), booster.inplace_predict(ties), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"objective": "multi:softprob", "num_class": 3}, "objective 'multi:softprob'"),
        ({"objective": "reg:squarederror"}, "objective 'reg:squarederror'"),
        ({"objective": "binary:logistic", "booster": "dart"}, "booster 'dart'"),
        ({"objective": "binary:logistic", "booster": "gblinear"}, "booster 'gblinear'"),
    ],
)
def test_what_it_cannot_walk_is_left_to_the_booster(
    params: dict[str, object], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = _data(1)
    if params.get("num_class"):
        y = (x[:, 0] % 3).astype(int)
    booster = xgb.train({"nthread": 1, **params}, xgb.DMatrix(x, label=y), 20)
    with caplog.at_level("INFO", logger="serve"):
        assert compile_ensemble(booster) is None
    assert reason in caplog.text


def test_trees_deeper_than_the_layout_allows_are_left_to_the_booster(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Alternating labels on one feature: only a tree of depth 12 separates 4096 points
    # (exact splits: the histogram method would stop at 256 bins).
    x = np.arange(4096, dtype=np.float32).reshape(-1, 1)
    y = (np.arange(4096) % 2).astype(float)
    params = {"objective": "binary:logistic", "max_depth": 12, "min_child_weight": 0, "eta": 1}
    booster = xgb.train(
        {"nthread": 1, "tree_method": "exact", **params}, xgb.DMatrix(x, label=y), 1
    )
    with caplog.at_level("INFO", logger="serve"):
        assert compile_ensemble(booster) is None
    assert "depth 12 > 10" in caplog.text


def test_predictor_uses_the_booster_for_large_or_non_finite_batches(tmp_path) -> None:
    from serve.predictor import BoosterPredictor

    booster, x = _booster({"objective": "binary:logistic", "max_depth": 3}, 20)
    path = tmp_path / "model.ubj"
    booster.save_model(str(path))
    predictor = BoosterPredictor(path)
    assert predictor.ensemble is not None
    for rows in (x[:1], x[: predictor.SMALL_BATCH], x[: predictor.SMALL_BATCH + 1], x):
        np.testing.assert_allclose(predictor(rows), booster.inplace_predict(rows), atol=1e-6)
    # Never sent by the API (the schema refuses NaN), but a NaN must still follow XGBoost's
    # default direction, which only the booster knows.
    holes = x[:2].copy()
    holes[0, 0] = np.nan
    np.testing.assert_allclose(predictor(holes), booster.inplace_predict(holes), atol=1e-6)
