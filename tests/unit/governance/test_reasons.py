"""Reason ranking on a real (small) booster: largest positive eligible contributions first,
never a protected attribute, texts from the governance file, declines only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from ml.governance.config import load_governance
from ml.governance.reasons import ReasonCoder

REPO = Path(__file__).resolve().parents[3]
GOVERNANCE = load_governance(REPO / "config" / "governance.yaml")
NAMES = ["SEX", "AGE", "PAY_0", "LIMIT_BAL", "PAY_AMT1"]


def _booster() -> xgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, len(NAMES))).astype(np.float32)
    y = (x[:, 0] + x[:, 1] + 2 * x[:, 2] - x[:, 3] + rng.normal(size=500) > 0).astype(int)
    return xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(x, label=y, feature_names=NAMES),
        num_boost_round=20,
    )


def test_reasons_rank_eligible_positive_contributions() -> None:
    booster = _booster()
    coder = ReasonCoder(booster, NAMES, GOVERNANCE)
    x = np.random.default_rng(1).normal(size=(200, len(NAMES))).astype(np.float32)
    contributions = coder.contributions(x)
    margin = booster.predict(xgb.DMatrix(x, feature_names=NAMES), output_margin=True)
    assert np.abs(contributions.sum(axis=1) - margin).max() < 1e-4
    declined = np.arange(200) % 2 == 0
    reasons = coder.explain(x, declined)
    for i, got in enumerate(reasons):
        if not declined[i]:
            assert got is None
            continue
        assert got is not None
        eligible = {
            n: c
            for n, c in zip(NAMES, contributions[i, :-1], strict=True)
            if c > 0 and n not in ("SEX", "AGE")
        }
        assert [r.feature for r in got] == sorted(eligible, key=lambda n: -eligible[n])[:4]
        assert all(r.text == GOVERNANCE.reasons.texts[r.feature] for r in got)
        assert all(r.contribution > 0 for r in got)


def test_protected_attributes_are_never_reasons_even_when_they_dominate() -> None:
    booster = _booster()
    coder = ReasonCoder(booster, NAMES, GOVERNANCE)
    x = np.zeros((1, len(NAMES)), dtype=np.float32)
    x[0, 0] = x[0, 1] = 3.0  # SEX and AGE push the score up the most
    contributions = coder.contributions(x)[0]
    assert contributions[0] > 0
    assert contributions[1] > 0
    (got,) = coder.explain(x, np.array([True]))
    assert got is not None
    assert {r.feature for r in got}.isdisjoint({"SEX", "AGE"})


def test_the_numpy_walk_gives_xgboosts_per_path_contributions() -> None:
    # Given a booster with shallow and deep leaves (depth up to 4, pruned by min_child_weight)
    from ml.governance.path_contributions import compile_paths

    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, len(NAMES))).astype(np.float32)
    y = (x[:, 2] + 0.5 * x[:, 3] ** 2 + rng.normal(size=800) > 0.5).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4, "min_child_weight": 30, "nthread": 1},
        xgb.DMatrix(x, label=y, feature_names=NAMES),
        num_boost_round=30,
    )
    walk = compile_paths(booster)
    assert walk is not None
    # Then it equals XGBoost's approx_contribs, and sums to the margin
    probe = rng.normal(size=(50, len(NAMES))).astype(np.float32)
    expected = booster.predict(
        xgb.DMatrix(probe, feature_names=NAMES), pred_contribs=True, approx_contribs=True
    )
    assert np.abs(walk(probe) - expected).max() < 1e-5
    margin = booster.predict(xgb.DMatrix(probe, feature_names=NAMES), output_margin=True)
    assert np.abs(walk(probe).sum(axis=1) - margin).max() < 1e-4
    # And the coder uses it for a few records, XGBoost for many: the same reasons either way
    coder = ReasonCoder(booster, NAMES, GOVERNANCE)
    few = coder.explain(probe[:3], np.ones(3, dtype=bool))
    many = coder.explain(probe, np.ones(50, dtype=bool))[:3]
    assert [[r.feature for r in rs or []] for rs in few] == [
        [r.feature for r in rs or []] for rs in many
    ]


def test_the_reason_texts_travel_in_the_contract_and_come_back_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ml.errors import ConfigError
    from ml.features import CONTRACT
    from ml.governance.reasons import GOVERNANCE_ENV, governance_for, governance_from_record
    from ml.governance.training import contract_record

    # Given the record training writes into contract.json
    record = contract_record(CONTRACT, GOVERNANCE)
    # Then the version's governance reads back: the same texts, settings and protected columns
    logged = governance_from_record(record)
    assert logged is not None
    assert logged.reasons == GOVERNANCE.reasons
    assert set(logged.protected) == {"SEX", "MARRIAGE", "AGE"}
    assert governance_for(logged, "v3") is logged
    # And a version from before (no reasons in its record) is refused, naming the way out,
    # unless the operator names a reviewed file explicitly
    old = {k: v for k, v in record.items() if k != "governance"}
    assert governance_from_record(old) is None
    monkeypatch.delenv(GOVERNANCE_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"v3 was registered without.*{GOVERNANCE_ENV}"):
        governance_for(None, "v3")
    monkeypatch.setenv(GOVERNANCE_ENV, str(REPO / "config" / "governance.yaml"))
    assert governance_for(None, "v3").reasons.texts == GOVERNANCE.reasons.texts
    # And a tampered record (a reason text for a protected attribute) is a clear error
    bad = {**record, "governance": {**record["governance"]}}
    bad["governance"]["reasons"] = {**record["governance"]["reasons"], "texts": {"SEX": "sex"}}
    with pytest.raises(ConfigError, match="logged governance is malformed"):
        governance_from_record(bad)
