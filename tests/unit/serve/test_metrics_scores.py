"""serve_score and serve_approvals_total: one call per request, per version, bounded versions."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from serve.metrics import MAX_SCORE_VERSIONS, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_histogram_and_approvals_per_version() -> None:
    metrics = Metrics()
    metrics.observe_scores("4", np.array([0.01, 0.05, 0.3, 0.5, 0.97]), 0.5)
    metrics.observe_scores("4", np.array([0.2]), 0.5)
    metrics.observe_scores("5", np.array([0.9]), 0.5)
    got = samples(metrics)
    v4 = (("version", "4"),)
    assert got[("serve_score_count", v4)] == 6
    assert got[("serve_approvals_total", v4)] == 4  # below the threshold: 0.01, 0.05, 0.3, 0.2
    assert got[("serve_score_bucket", (("le", "0.05"), ("version", "4")))] == 2  # le is <=
    assert got[("serve_score_bucket", (("le", "0.5"), ("version", "4")))] == 5
    assert got[("serve_score_bucket", (("le", "0.95"), ("version", "4")))] == 5
    assert got[("serve_score_bucket", (("le", "+Inf"), ("version", "4")))] == 6
    assert abs(got[("serve_score_sum", v4)] - 2.03) < 1e-5
    assert got[("serve_approvals_total", (("version", "5"),))] == 0


def test_only_the_latest_versions_keep_series() -> None:
    metrics = Metrics()
    for version in range(1, MAX_SCORE_VERSIONS + 3):
        metrics.observe_scores(str(version), np.array([0.1]), 0.5)
    versions = {
        dict(labels)["version"] for name, labels in samples(metrics) if name == "serve_score_count"
    }
    assert versions == {str(v) for v in range(3, MAX_SCORE_VERSIONS + 3)}


def test_a_few_scores_and_a_batch_are_counted_alike() -> None:
    # Given the same 200 scores, observed one by one (the plain-Python path) or at once (numpy),
    # bucket edges included
    scores = np.concatenate([np.random.default_rng(3).random(190), [0.05, 0.5, 0.95, 0.0, 1.0]])
    scores = np.concatenate([scores, np.full(5, 0.25)])
    one_by_one, at_once = Metrics(), Metrics()
    for s in scores:
        one_by_one.observe_scores("1", np.array([s]), 0.5)
    at_once.observe_scores("1", scores, 0.5)
    # Then every bucket, the sum, the count and the approvals are the same
    a, b = samples(one_by_one), samples(at_once)
    score_samples = {k: v for k, v in a.items() if k[0].startswith(("serve_score", "serve_appr"))}
    assert len(score_samples) > 20
    for key, value in score_samples.items():
        assert b[key] == pytest.approx(value), key
