"""Fairness on the canary's replay, on the real data: a candidate that declines women more fails
with its figures and production's beside; on a log replay (no outcomes) only the approval figures
are judged; the plan shows the table.

The two "models" are plain scoring functions over the contract's columns (the predictor a
`ScoringModel` calls); real versions from a registry are the integration tests' part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.batch import ScoringModel
from ml.features import CONTRACT
from ml.governance import canary_fairness
from ml.governance.config import load_governance
from ml.governance.fairness import FairnessBounds
from ml.promotions import canary
from ml.promotions.gates import GateResult, Verdict
from ml.promotions.plan import Plan

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "uci_credit_card.csv.gz"
GOVERNANCE = load_governance(REPO / "config" / "governance.yaml")
PAY_0, SEX = CONTRACT.names.index("PAY_0"), CONTRACT.names.index("SEX")


def _model(version: int, against_women: float = 0.0) -> ScoringModel:
    """PD rising with PAY_0; `against_women` added on the logit for SEX=2."""

    def predictor(x: np.ndarray) -> np.ndarray:
        logit = x[:, PAY_0].astype(np.float64) * 1.2 - 1.6 + against_women * (x[:, SEX] == 2)
        return 1 / (1 + np.exp(-logit))

    return ScoringModel(
        name="credit-risk", version=version, alias=None, run_id=None, contract=CONTRACT,
        contract_source="built-in", predictor=predictor,
        example=np.zeros((1, len(CONTRACT.features)), dtype=np.float32),
    )  # fmt: skip


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(DATA).sample(n=4_000, random_state=5).reset_index(drop=True)


def _results(f: canary_fairness.ReplayFairness) -> list[GateResult]:
    return [
        GateResult("credit-risk", gate, ok, detail, figures=figures)
        for gate, ok, detail, figures in canary_fairness.outcomes(f, FairnessBounds())
    ]


def test_a_candidate_that_declines_women_fails_on_the_replay_with_both_figures(
    data: pd.DataFrame,
) -> None:
    # Given a replay with outcomes, production fair, the candidate pushing women's PD up
    replay = canary.Replay(
        data[list(CONTRACT.names)], "holdout", "4,000 rows of the data", data["target"].to_numpy()
    )
    f = canary_fairness.replay_figures(
        _model(2, against_women=2.5), _model(1), replay, GOVERNANCE, FairnessBounds()
    )
    results = {r.gate: r for r in _results(f)}
    # Then SEX fails on the four-fifths rule, with the candidate's and production's figures
    sex = results["canary-fairness:SEX"]
    assert not sex.passed
    assert "SEX=2: approval ratio" in sex.detail
    assert "production v1 ratio" in sex.detail
    (women,) = sex.figures["groups"]  # type: ignore[index]
    approved = data["PAY_0"].to_numpy() * 1.2 - 1.6 < 0  # PD < 0.5 for production
    men, fem = data["SEX"] == 1, data["SEX"] == 2
    by_hand = approved[fem].mean() / approved[men].mean()
    assert women["production"]["approval_ratio"] == pytest.approx(by_hand)
    assert women["approval_ratio"] < 0.8 <= women["production"]["approval_ratio"]
    assert women["tpr_difference"] is not None
    # And the attributes the candidate treats alike pass
    assert results["canary-fairness:MARRIAGE"].passed
    # And a fair candidate passes every attribute
    fair = canary_fairness.replay_figures(
        _model(2), _model(1), replay, GOVERNANCE, FairnessBounds()
    )
    assert all(r.passed for r in _results(fair))


def test_a_log_replay_without_outcomes_judges_approval_only(data: pd.DataFrame) -> None:
    # Given logged inputs (no outcomes), SEX missing from every 7th record
    frame = data[list(CONTRACT.names)].astype({"SEX": "float64"})
    frame.loc[::7, "SEX"] = np.nan
    replay = canary.Replay(frame, "logs", "4,000 logged records")
    f = canary_fairness.replay_figures(
        _model(2, against_women=2.5), _model(1), replay, GOVERNANCE, FairnessBounds()
    )
    results = {r.gate: r for r in _results(f)}
    # Then the records out of contract are left out, as the canary leaves them out
    assert f.rows == 4_000 - len(frame.index[::7])
    assert not f.labelled
    # And TPR and calibration are n/a, not judged; the approval ratio still is
    marriage = results["canary-fairness:MARRIAGE"]
    assert marriage.passed
    assert "TPR diff n/a" in marriage.detail
    assert "no outcomes: approval figures only" in marriage.detail
    sex = results["canary-fairness:SEX"]
    assert not sex.passed
    assert "SEX=2: approval ratio" in sex.detail
    assert "TPR difference" not in sex.detail.split(" | ")[0]


def test_a_rollback_plan_shows_the_replay_fairness_table_as_it_shows_the_canary(
    data: pd.DataFrame,
) -> None:
    from ml.promotions.reconcile import Desired, Observed, diff
    from ml.promotions.records import applied_tag
    from tests.fixtures.memory_registry import model, version

    # Given a rollback from production v4 to v3, judged on a replay where v3 declines women more
    replay = canary.Replay(
        data[list(CONTRACT.names)], "holdout", "4,000 rows", data["target"].to_numpy()
    )
    f = canary_fairness.replay_figures(
        _model(3, against_women=2.5), _model(4), replay, GOVERNANCE, FairnessBounds()
    )
    verdict = Verdict("credit-risk", 3, tuple(_results(f)))
    rec = {"promotion.staging.a": "{}", "promotion.production.a": "{}"}
    versions = [version("credit-risk", n, **rec) for n in (3, 4)]
    aliases = {"staging": 4, "production": 4}
    tags = {applied_tag(e): "4" for e in aliases}
    observed = Observed({"credit-risk": model("credit-risk", versions, aliases, tags)})
    verdicts = {("credit-risk", env): verdict for env in ("staging", "production")}
    plan = Plan(
        diff([Desired("credit-risk", 3, True)], observed, stages=False, verdicts=verdicts),
        gated=True,
    )
    # When the plan is rendered for the PR comment and the terminal
    md, text = plan.markdown(), plan.text()
    # Then the table names both versions' figures group by group, and the failure is not waived
    assert "Fairness on the canary replay: v3 (production v4 beside) on the 4,000 rows" in md
    assert "| attribute | group | rows | approval cand. / prod. |" in md
    assert "| SEX | 2 (vs 1) | " in md
    assert "| canary-fairness:SEX | **FAIL** |" in md
    assert "canary fairness v3 vs production v4, approval ratio to the reference group: " in text
    assert "SEX=2 0." in text
    assert "FAIL canary-fairness:SEX: SEX=2: approval ratio" in text
