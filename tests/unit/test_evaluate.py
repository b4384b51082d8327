"""ml/evaluate.py: the metric reproduction check `mlops evaluate --run` applies."""

from __future__ import annotations

from ml.evaluate import REPRODUCTION_TOLERANCE, reproduction_mismatch


def test_a_run_that_reproduces_its_metrics_has_no_mismatch() -> None:
    logged = {"roc_auc": 0.78, "ks": 0.42, "brier": 0.13, "pr_auc": 0.5}
    scored = {"roc_auc": 0.78 + REPRODUCTION_TOLERANCE / 2, "ks": 0.42, "brier": 0.13}
    assert reproduction_mismatch(logged, {**scored, "pr_auc": 0.1}) == {}


def test_a_metric_off_by_more_than_the_tolerance_is_named_with_both_values() -> None:
    logged = {"roc_auc": 0.78, "ks": 0.42, "brier": 0.13}
    scored = {"roc_auc": 0.70, "ks": 0.42, "brier": 0.13}
    assert reproduction_mismatch(logged, scored) == {"roc_auc": (0.78, 0.70)}


def test_a_metric_the_run_did_not_log_is_not_checked() -> None:
    assert reproduction_mismatch({"ks": 0.4}, {"roc_auc": 0.1, "ks": 0.4, "brier": 0.9}) == {}
