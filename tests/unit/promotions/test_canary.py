"""The canary's comparison on the real data: figures computed by hand agree, out-of-contract rows
are left out and counted, bounds decide each result, and the holdout is the one training builds.

The two "models" here are plain scoring functions over the contract's columns (the predictor a
`ScoringModel` calls); loading real versions from a registry is the integration tests' part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.batch import ScoringModel
from ml.errors import ConfigError, DataError
from ml.features import CONTRACT
from ml.holdout import load_dataset
from ml.promotions import canary
from ml.promotions.gates import CanaryGates
from ml.settings import DEFAULT_DATA_SHA256
from ml.train_config import load_train_config

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "uci_credit_card.csv.gz"
PAY_0 = CONTRACT.names.index("PAY_0")


def _model(version: int, shift: float = 0.0) -> ScoringModel:
    """A version whose PD rises with PAY_0 (late payment), `shift` added on the logit."""

    def predictor(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(x[:, PAY_0].astype(np.float64) * 1.2 - 1.6 + shift)))

    return ScoringModel(
        name="credit-risk",
        version=version,
        alias=None,
        run_id=None,
        contract=CONTRACT,
        contract_source="built-in",
        predictor=predictor,
        example=np.zeros((1, len(CONTRACT.features)), dtype=np.float32),
    )


@pytest.fixture(scope="module")
def replay() -> canary.Replay:
    frame = pd.read_csv(DATA).sample(n=3_000, random_state=3)[list(CONTRACT.names)]
    return canary.Replay(frame.reset_index(drop=True), "holdout", "3,000 rows of the data")


def test_an_identical_version_changes_nothing(replay: canary.Replay) -> None:
    f = canary.compare(_model(2), _model(1), replay, 0.5, "gates file")
    assert (f.rows, f.excluded, f.flips) == (3_000, 0, 0)
    assert f.score_psi == pytest.approx(0.0, abs=1e-12)
    assert f.approval_delta == 0.0
    assert all(ok for _, ok, _, _ in canary.outcomes(f, CanaryGates()))


def test_the_figures_are_the_ones_computed_by_hand(replay: canary.Replay) -> None:
    # Given a candidate that is riskier on every applicant
    f = canary.compare(_model(2, shift=0.8), _model(1), replay, 0.5, "gates file")

    # Then its approval rates and flips are what the two score columns say
    pay = replay.frame["PAY_0"].to_numpy(dtype=np.float64)
    old = 1 / (1 + np.exp(-(pay * 1.2 - 1.6)))
    new = 1 / (1 + np.exp(-(pay * 1.2 - 1.6 + 0.8)))
    assert f.approval_production == pytest.approx(float((old < 0.5).mean()))
    assert f.approval_candidate == pytest.approx(float((new < 0.5).mean()))
    assert f.flips == int(((old < 0.5) != (new < 0.5)).sum())
    assert f.approval_delta < -0.05
    assert f.flip_share == pytest.approx(f.flips / 3_000)
    assert f.score_psi > 0.1
    as_dict = f.as_dict()
    assert as_dict["approval_delta"] == f.approval_delta
    assert as_dict["flip_share"] == f.flip_share

    # And each bound decides its own result, every result carrying the figures and bounds
    # (a figure equal to its bound passes)
    bounds = CanaryGates(max_score_psi=f.score_psi, max_flip_share=f.flip_share)
    results = canary.outcomes(f, bounds)
    verdicts = {gate: ok for gate, ok, _, _ in results}
    assert verdicts == {
        "canary:score_psi": True,
        "canary:approval_delta": False,
        "canary:flip_share": True,
    }
    detail = dict((gate, text) for gate, _, text, _ in results)["canary:approval_delta"]
    assert f"v2 {f.approval_candidate:.2%}, production v1 {f.approval_production:.2%}" in detail
    assert "(hint: if the change is intended, widen the bound" in detail
    assert all(figures["max_score_psi"] == f.score_psi for _, _, _, figures in results)


def test_rows_out_of_a_contract_are_left_out_and_counted(replay: canary.Replay) -> None:
    frame = replay.frame.copy()
    frame.loc[:9, "AGE"] = 150  # no version scores these
    f = canary.compare(_model(2), _model(1), canary.Replay(frame, "logs", "x"), 0.5, "x")
    assert (f.rows, f.excluded) == (2_990, 10)
    missing = canary.Replay(frame.drop(columns=["AGE"]), "logs", "x")
    with pytest.raises(
        DataError, match=r"the replay set cannot feed v2: missing columns \['AGE'\]"
    ):
        canary.compare(_model(2), _model(1), missing, 0.5, "x")


def test_the_holdout_is_the_one_training_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    for var in ("ML_DATA_SOURCE", "ML_DATA_SHA256", "ML_TRAIN_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    replay = canary.holdout_replay()
    holdout, _ = load_dataset(
        str(DATA), DEFAULT_DATA_SHA256, load_train_config(REPO / "config" / "train.yaml")
    )
    pd.testing.assert_frame_equal(replay.frame, holdout.x_test)
    assert len(replay.frame) == 6_000
    assert replay.description.startswith("holdout of data/uci_credit_card.csv.gz (sha256 0311596a")
    assert "seed 42, test_size 0.2" in replay.description
    # max_rows samples it, deterministically
    small = canary.replay_for(CanaryGates(max_rows=1_000))
    assert len(small.frame) == 1_000
    assert small.frame.index.equals(canary.replay_for(CanaryGates(max_rows=1_000)).frame.index)
    # an unverified file is no reviewed holdout
    monkeypatch.setenv("ML_DATA_SHA256", "")
    with pytest.raises(ConfigError, match="needs ML_DATA_SHA256"):
        canary.holdout_replay()


def test_the_threshold_is_the_gates_file_or_serve_default() -> None:
    assert canary.threshold_of(CanaryGates(threshold=0.4)) == (0.4, "gates file")
    assert canary.threshold_of(CanaryGates()) == (0.5, "serve's SERVE_THRESHOLD default")
