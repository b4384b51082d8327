"""The gates file's canary section, the contract comparison the signature gate reports, and the
one place a rollback waiver is granted. (The gates against a real registry and real models:
tests/integration/test_promotions_gates.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml.contract import Feature
from ml.errors import SpecError
from ml.features import CONTRACT
from ml.monitoring.config import load_monitoring_config
from ml.promotions.canary import serve_threshold
from ml.promotions.gates import (
    GATES,
    WAIVED_ON_ROLLBACK,
    GateResult,
    _contract_changes,
    _waive,
    load_gates,
)

REPO = Path(__file__).resolve().parents[3]


def _gates(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gates.yaml"
    path.write_text(text)
    return path


def test_the_reviewed_gates_hold_a_canary_for_credit_risk() -> None:
    canary = load_gates(REPO / "config" / "gates.yaml").for_model("credit-risk").canary
    assert canary is not None
    assert canary.enabled
    assert canary.replay == "holdout"
    # The reviewed threshold is the one serve declines at and monitoring counts approvals at.
    assert canary.threshold == serve_threshold()
    assert (
        canary.threshold
        == load_monitoring_config(REPO / "config" / "monitoring.yaml").approval_threshold
    )


def test_a_model_overrides_one_canary_bound_and_keeps_the_rest(tmp_path: Path) -> None:
    path = _gates(
        tmp_path,
        "defaults:\n  canary: {max_flip_share: 0.02, max_score_psi: 0.1}\n"
        "models:\n  a: {canary: {max_score_psi: 0.3}}\n  b: {canary: {enabled: false}}\n",
    )
    gates = load_gates(path)
    a, b, c = (gates.for_model(n).canary for n in "abc")
    assert a is not None
    assert (a.max_score_psi, a.max_flip_share) == (0.3, 0.02)
    assert b is not None
    assert not b.enabled
    assert c is not None
    assert (c.max_score_psi, c.max_flip_share) == (0.1, 0.02)
    assert load_gates(_gates(tmp_path, "defaults: {}\n")).for_model("a").canary is None


@pytest.mark.parametrize(
    ("canary", "message"),
    [
        (
            "{replay: logs}",
            r"gates.yaml:2: defaults.canary: Value error, replay: logs needs `logs:`",
        ),
        ("{window: 7x, replay: logs, logs: x}", r"gates.yaml:2: .*bad duration '7x'"),
        ("{max_psi: 0.1}", r"gates.yaml:2: defaults.canary.max_psi: Extra inputs .*max_score_psi"),
        ("{max_flip_share: 2}", r"defaults.canary.max_flip_share: Input should be less than"),
        ("{replay: reference}", r"defaults.canary.replay: Input should be 'holdout' or 'logs'"),
    ],
)
def test_a_bad_canary_section_names_file_line_and_keys(
    tmp_path: Path, canary: str, message: str
) -> None:
    path = _gates(tmp_path, f"defaults:\n  canary: {canary}\n")
    with pytest.raises(SpecError, match=message):
        load_gates(path)


def test_contract_changes_say_what_differs() -> None:
    # Given production's contract and a candidate's that adds, drops, retypes and rebounds
    new = CONTRACT.replaced(
        Feature("AGE", "int", minimum=21, maximum=100, reason="policy"),
        Feature("SEX", "int", codes=(1, 2, 3), reason="a third code"),
        Feature("LIMIT_BAL", "int", minimum=0, maximum=10_000_000, reason="whole dollars"),
        Feature("PAY_AMT1", "float", minimum=0, maximum=10_000_000, reason="x", required=False),
    )
    features = [f for f in new.features if f.name != "BILL_AMT6"]
    features.append(Feature("SCORE_EXT", "float", minimum=0, maximum=1, reason="bureau"))
    candidate = type(new)(tuple(features))

    # When compared
    changes = _contract_changes(CONTRACT, candidate)

    # Then each difference is named once
    assert changes[:2] == ["added ['SCORE_EXT']", "removed ['BILL_AMT6']"]
    assert "LIMIT_BAL: dtype float → int" in changes
    assert "AGE: an integer from 18 to 100 → an integer from 21 to 100" in changes
    assert "SEX: one of 1 (male), 2 (female) → one of 1..3" in changes
    assert "PAY_AMT1: required → optional" in changes
    assert len(changes) == 6, changes
    # And reasons or order alone are no change
    reordered = CONTRACT.reordered(list(reversed(CONTRACT.names)))
    assert _contract_changes(CONTRACT, reordered) == []


def test_a_rollback_waives_only_the_gates_that_compare_with_production() -> None:
    figures = {"score_psi": 0.4}
    for gate in ("canary:score_psi", "canary", "regression:roc_auc"):
        failed = GateResult("m", gate, False, "too far", figures=figures)
        waived = _waive(failed, rollback=True)
        assert (waived.label, waived.passed, waived.figures) == ("WAIVED", True, figures)
        assert waived.detail == "too far [waived: rollback]"
        assert _waive(failed, rollback=False) == failed
    for gate in ("loadable", "signature", "floor:roc_auc", "exists", "tag:git_sha"):
        failed = GateResult("m", gate, False, "broken")
        assert _waive(failed, rollback=True).label == "FAIL"
    assert {"canary", "regression"} == WAIVED_ON_ROLLBACK


def test_the_gates_run_in_a_fixed_order_loadable_before_canary() -> None:
    names = list(GATES)
    assert names.index("loadable") < names.index("canary")
    # The governance gates (ml/governance/gates.py) load the model after loadable has.
    assert names[-4:] == ["loadable", "canary", "protected-inputs", "fairness"]


def test_the_repository_gates_file_is_plain_yaml_with_the_canary_in_defaults() -> None:
    raw = yaml.safe_load((REPO / "config" / "gates.yaml").read_text())
    assert set(raw["defaults"]["canary"]) >= {
        "replay",
        "threshold",
        "max_score_psi",
        "max_approval_delta",
        "max_flip_share",
    }
