"""The C API prediction path gives exactly `Booster.inplace_predict`'s output, or is not used."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xgboost as xgb

from serve.xgboost_inplace import InplacePredict, checked_inplace


def _booster(params: dict[str, object], classes: int = 2) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = (x[:, 0] * 3 + x[:, 1] > 0).astype(int) if classes == 2 else rng.integers(0, classes, 300)
    booster = xgb.train({"nthread": 1, "max_depth": 4, **params}, xgb.DMatrix(x, label=y), 30)
    return booster, x


@pytest.mark.parametrize("rows", [1, 13, 64, 300])
def test_matches_inplace_predict(rows: int) -> None:
    booster, x = _booster({"objective": "binary:logistic"})
    x = x[:rows].copy()
    x[::5, 2] = np.nan  # missing values take the trees' default direction

    got = InplacePredict(booster)(x)

    assert got.shape == (rows,)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, booster.inplace_predict(x).astype(np.float64))


def test_takes_any_layout_and_dtype() -> None:
    booster, x = _booster({"objective": "binary:logistic"})
    expected = booster.inplace_predict(x)

    predict = InplacePredict(booster)

    np.testing.assert_array_equal(predict(np.asfortranarray(x)), expected)
    np.testing.assert_array_equal(predict(x.astype(np.float64)), expected)


def test_successive_calls_do_not_share_results() -> None:
    booster, x = _booster({"objective": "binary:logistic"})
    predict = InplacePredict(booster)

    first = predict(x[:3])
    second = predict(x[3:6])

    np.testing.assert_array_equal(first, booster.inplace_predict(x[:3]))
    np.testing.assert_array_equal(second, booster.inplace_predict(x[3:6]))


def test_a_multiclass_booster_keeps_the_python_path(caplog: pytest.LogCaptureFixture) -> None:
    booster, _ = _booster({"objective": "multi:softprob", "num_class": 3}, classes=3)

    with caplog.at_level("INFO", logger="serve"):
        assert checked_inplace(booster) is None

    assert "C API path off" in caplog.text


def test_binary_booster_is_checked_and_used() -> None:
    booster, _ = _booster({"objective": "binary:logistic"})

    assert isinstance(checked_inplace(booster), InplacePredict)


def test_threads_predicting_at_once_each_get_their_own_rows() -> None:
    # The event loop and the scoring threads call one InplacePredict together: each thread has
    # its own proxy DMatrix, and libxgboost its own result buffer.
    booster, x = _booster({"objective": "binary:logistic"})
    predict = InplacePredict(booster)
    slices = [x[i * 30 : i * 30 + 20 + i] for i in range(8)]
    expected = [booster.inplace_predict(rows).astype(np.float64) for rows in slices]
    start = threading.Barrier(len(slices))

    def run(i: int) -> list[np.ndarray]:
        start.wait()
        return [predict(slices[i]) for _ in range(200)]

    with ThreadPoolExecutor(len(slices)) as pool:
        results = list(pool.map(run, range(len(slices))))

    for i, outputs in enumerate(results):
        for got in outputs:
            np.testing.assert_array_equal(got, expected[i])
    assert len(predict._proxies) == len(slices)
