"""The drift job's figures as Prometheus samples: each next to its threshold, per feature."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ml.monitoring.pushgateway import drift_registry

SUMMARY = {
    "model": "credit-risk",
    "version": "4",
    "status": "breach",
    "seconds": 3.2,
    "rows": {"current": 1200},
    "drift": {
        "share": 0.25,
        "max_share": 0.2,
        "features": {
            "AGE": {"score": 0.4, "drifted": True},
            "SEX": {"score": 0.01, "drifted": False},
        },
    },
    "score": {"psi": 0.31, "max_psi": 0.2},
    "approval_rate": {"current": 0.7, "reference": 0.8, "max_shift": 0.1},
    "logs": {"malformed": 3},
}


def test_every_figure_is_a_labelled_gauge() -> None:
    text = generate_latest(drift_registry(SUMMARY)).decode()
    got = {
        (s.name, s.labels.get("feature")): (s.value, s.labels)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert got[("mlops_drift_share", None)][0] == 0.25
    assert got[("mlops_drift_share_threshold", None)][0] == 0.2
    assert got[("mlops_drift_score_psi", None)][0] == 0.31
    assert got[("mlops_drift_breach", None)][0] == 1.0
    assert got[("mlops_drift_malformed_lines", None)][0] == 3
    assert got[("mlops_drift_feature_score", "AGE")][0] == 0.4
    assert got[("mlops_drift_feature_drifted", "SEX")][0] == 0.0
    assert got[("mlops_drift_rows", None)][1] == {"model": "credit-risk", "version": "4"}
    assert got[("mlops_drift_last_success_timestamp_seconds", None)][0] > 1.7e9


def test_a_data_check_without_scores_pushes_no_score_figures() -> None:
    summary = {**SUMMARY, "score": None, "approval_rate": None, "status": "ok"}
    text = generate_latest(drift_registry(summary)).decode()
    assert "mlops_drift_score_psi" not in text
    assert "mlops_drift_breach" in text
