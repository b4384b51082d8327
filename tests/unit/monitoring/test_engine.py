"""The engine on the real data set: two halves of it agree; moved features, out-of-contract values
and missing values are breaches that name the features; too little data is an error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.errors import DataError
from ml.monitoring.config import MonitoringConfig, Sampling
from ml.monitoring.engine import compare, score_psi

CONFIG = MonitoringConfig()


@pytest.fixture(scope="module")
def halves(credit: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = credit.sample(frac=1.0, random_state=7).reset_index(drop=True)
    return shuffled.iloc[:3000].reset_index(drop=True), shuffled.iloc[3000:9000].reset_index(
        drop=True
    )


def test_two_samples_of_the_same_data_do_not_drift(
    halves: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    current, reference = halves
    result = compare(
        current, reference, thresholds=CONFIG.data_check, config=CONFIG, report=tmp_path / "r.html"
    )
    assert not result.breached, result.breaches
    summary = result.summary
    assert summary["status"] == "ok"
    assert summary["drift"]["share"] == 0.0
    assert set(summary["drift"]["features"]) >= {"AGE", "PAY_0", "LIMIT_BAL"}
    assert summary["score"] is None  # no score column on either side
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_moved_features_and_bad_values_are_named(
    halves: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    current, reference = (frame.copy() for frame in halves)
    current["LIMIT_BAL"] *= 1.7
    current["AGE"] = (current["AGE"] + 9).clip(upper=100)
    current["BILL_AMT1"] *= 2.0
    current["BILL_AMT2"] *= 2.0
    current["PAY_AMT1"] *= 0.3
    current.loc[:4, "EDUCATION"] = 9  # outside the contract's codes
    current.loc[:2, "PAY_AMT2"] = np.nan
    result = compare(current, reference, thresholds=CONFIG.data_check, config=CONFIG)
    by_check = {b.check: b for b in result.breaches}
    assert set(by_check) == {"drift_share", "out_of_range_share", "missing_share"}
    assert set(by_check["drift_share"].features) >= {
        "LIMIT_BAL",
        "AGE",
        "BILL_AMT1",
        "BILL_AMT2",
        "PAY_AMT1",
    }
    assert by_check["out_of_range_share"].features == ("EDUCATION",)
    assert by_check["missing_share"].features == ("PAY_AMT2",)
    assert result.summary["quality"]["EDUCATION"]["out_of_range"] == 5
    assert result.summary["quality"]["PAY_AMT2"]["missing"] == 3
    assert "drift_share" in by_check["drift_share"].describe()


def test_scores_and_approvals_are_compared_when_both_sides_have_them(
    halves: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    current, reference = (frame.copy() for frame in halves)
    rng = np.random.default_rng(0)
    reference["score"] = rng.beta(2, 6, len(reference))
    current["score"] = rng.beta(4, 4, len(current))  # riskier: fewer approvals
    result = compare(current, reference, thresholds=CONFIG.drift, config=CONFIG)
    checks = {b.check for b in result.breaches}
    assert {"score_psi", "approval_shift"} <= checks
    approval = result.summary["approval_rate"]
    assert approval["current"] < approval["reference"] - 0.1


def test_sampling_is_deterministic(halves: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    current, reference = halves
    config = MonitoringConfig(sampling=Sampling(max_rows=1500, seed=3))
    first = compare(current, reference, thresholds=config.data_check, config=config)
    second = compare(current, reference, thresholds=config.data_check, config=config)
    assert first.summary["rows"]["current_sampled"] == 1500
    assert first.summary["drift"]["features"] == second.summary["drift"]["features"]


def test_too_few_rows_and_missing_features_are_errors(
    halves: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    current, reference = halves
    with pytest.raises(DataError, match=r"only 10 current rows; .* data_check.min_rows"):
        compare(current.head(10), reference, thresholds=CONFIG.data_check, config=CONFIG,
                kind="data_check")  # fmt: skip
    with pytest.raises(DataError, match=r"current data lacks contract features AGE"):
        compare(current.drop(columns=["AGE"]), reference, thresholds=CONFIG.data_check,
                config=CONFIG)  # fmt: skip


def test_score_psi_is_the_figure_compare_reports(halves: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    # Given two score columns that differ (and a non-finite value, which both drop)
    current, reference = (frame.copy() for frame in halves)
    rng = np.random.default_rng(1)
    reference["score"] = rng.beta(2, 6, len(reference))
    current["score"] = rng.beta(3, 6, len(current))
    current.loc[0, "score"] = np.nan
    # When the PSI is computed alone and by the whole comparison
    alone = score_psi(reference["score"].to_numpy(), current["score"].to_numpy())
    whole = compare(current, reference, thresholds=CONFIG.drift, config=CONFIG)
    # Then they are the same number (one implementation), and identical scores give 0
    assert alone == pytest.approx(whole.summary["score"]["psi"], abs=1e-12)
    assert alone > 0.01
    assert score_psi(reference["score"], reference["score"]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(DataError, match="no finite current score"):
        score_psi([0.1, 0.2], [np.nan])
