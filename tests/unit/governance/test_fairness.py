"""Fairness figures and verdicts on constructed decisions whose figures are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.governance.config import load_governance
from ml.governance.fairness import FairnessBounds, group_figures, outcomes

REPO = Path(__file__).resolve().parents[3]
GOVERNANCE = load_governance(REPO / "config" / "governance.yaml")


def _world(n: int, women_declined: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    """n men and n women; all repay; women declined at the given share, men at 10 %."""
    rng = np.random.default_rng(seed)
    sex = np.repeat([1, 2], n)
    labels = np.zeros(2 * n, dtype=int)
    declined = np.concatenate([rng.random(n) < 0.10, rng.random(n) < women_declined])
    scores = np.where(declined, 0.9, 0.1)
    return scores, labels, sex


def test_equal_treatment_passes_with_its_figures() -> None:
    scores, labels, sex = _world(2000, 0.10)
    figures = group_figures(scores, labels, {"SEX": sex}, GOVERNANCE, FairnessBounds())
    assert [(f.attribute, f.group, f.reference, f.rows) for f in figures] == [
        ("SEX", "2", "1", 2000)
    ]
    (gate, passed, detail, data) = outcomes(figures, FairnessBounds())[0]
    assert (gate, passed) == ("fairness:SEX", True)
    assert "SEX=2 vs 1: approval 0.8" in detail
    assert data["groups"][0]["approval_ratio"] > 0.95


def test_a_disadvantaged_group_fails_the_four_fifths_rule() -> None:
    # Given women declined at 40 % and men at 10 %: approval ratio 0.6 / 0.9 = 0.67
    scores, labels, sex = _world(2000, 0.40)
    figures = group_figures(scores, labels, {"SEX": sex}, GOVERNANCE, FairnessBounds())
    (_, passed, detail, _) = outcomes(figures, FairnessBounds())[0]
    assert not passed
    assert figures[0].approval_ratio < 0.8
    assert f"SEX=2: approval ratio {figures[0].approval_ratio:.3f} < 0.8" in detail
    # Every applicant repaid: the TPR is the approval rate, and its gap fails too
    assert "SEX=2: TPR difference -0.2" in detail


def test_small_groups_are_shown_not_judged() -> None:
    scores, labels, sex = _world(100, 0.60)
    (_, passed, detail, _) = outcomes(
        group_figures(scores, labels, {"SEX": sex}, GOVERNANCE, FairnessBounds()),
        FairnessBounds(),
    )[0]
    assert passed
    assert "[not judged: fewer than 300 rows]" in detail


def test_calibration_difference_is_judged_beyond_its_noise() -> None:
    # Given scores that overstate women's risk by 0.2 (a calibration gap), the same decisions
    rng = np.random.default_rng(1)
    n = 3000
    sex = np.repeat([1, 2], n)
    labels = (rng.random(2 * n) < 0.2).astype(int)
    scores = np.full(2 * n, 0.2)
    scores[sex == 2] = 0.4
    bounds = FairnessBounds(threshold=0.5)
    figures = group_figures(scores, labels, {"SEX": sex}, GOVERNANCE, bounds)
    (_, passed, detail, _) = outcomes(figures, bounds)[0]
    assert not passed
    assert "calibration difference +0.2" in detail
    assert "approval ratio" not in detail.split("|")[0]


def test_age_is_judged_in_bands_against_its_reference_band() -> None:
    ages = np.array([22] * 400 + [40] * 400 + [70] * 10)
    scores = np.full(len(ages), 0.1)
    labels = np.zeros(len(ages), dtype=int)
    figures = group_figures(scores, labels, {"AGE": ages}, GOVERNANCE, FairnessBounds())
    assert [(f.group, f.reference, f.judged) for f in figures] == [
        ("<25", "35-44", True),
        ("60+", "35-44", False),
    ]
