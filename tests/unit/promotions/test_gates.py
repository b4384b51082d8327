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
    WAIVED_ON_ROLLBACK,
    GateResult,
    load_gates,
    waive,
)
from ml.promotions.gates.catalog import GATES
from ml.promotions.gates.contract import contract_changes

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
            r"gates.yaml:2: defaults.canary: replay: logs needs `logs:`",
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
    changes = contract_changes(CONTRACT, candidate)

    # Then each difference is named once
    assert changes[:2] == ["added ['SCORE_EXT']", "removed ['BILL_AMT6']"]
    assert "LIMIT_BAL: dtype float → int" in changes
    assert "AGE: an integer from 18 to 100 → an integer from 21 to 100" in changes
    assert "SEX: one of 1 (male), 2 (female) → one of 1..3" in changes
    assert "PAY_AMT1: required → optional" in changes
    assert len(changes) == 6, changes
    # And reasons or order alone are no change
    reordered = CONTRACT.reordered(list(reversed(CONTRACT.names)))
    assert contract_changes(CONTRACT, reordered) == []


def test_a_rollback_waives_only_the_gates_that_compare_with_production() -> None:
    figures = {"score_psi": 0.4}
    for gate in ("canary:score_psi", "canary", "regression:roc_auc"):
        failed = GateResult("m", gate, False, "too far", figures=figures)
        waived = waive(failed, rollback=True)
        assert (waived.label, waived.passed, waived.figures) == ("WAIVED", True, figures)
        assert waived.detail == "too far [waived: rollback]"
        assert waive(failed, rollback=False) == failed
    for gate in ("loadable", "signature", "floor:roc_auc", "exists", "tag:git_sha"):
        failed = GateResult("m", gate, False, "broken")
        assert waive(failed, rollback=True).label == "FAIL"
    assert {"canary", "regression"} == WAIVED_ON_ROLLBACK


def test_the_gates_run_in_a_fixed_order_loadable_before_canary() -> None:
    names = list(GATES)
    assert names.index("loadable") < names.index("canary")
    # The governance gates (ml/governance/gates.py) load the model after loadable has.
    assert names[-5:] == ["loadable", "canary", "protected-inputs", "fairness", "canary-fairness"]


def test_the_repository_gates_file_is_plain_yaml_with_the_canary_in_defaults() -> None:
    raw = yaml.safe_load((REPO / "config" / "gates.yaml").read_text())
    assert set(raw["defaults"]["canary"]) >= {
        "replay",
        "threshold",
        "max_score_psi",
        "max_approval_delta",
        "max_flip_share",
    }


# --- re-sync, soak and the verdict cache ------------------------------------------------------


def test_a_re_sync_shows_production_comparisons_as_not_applicable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ml.promotions.gates import GatesFile, ModelGates
    from ml.promotions.gates import verdicts as g
    from ml.promotions.gates.verdicts import check_version
    from tests.fixtures.memory_registry import model, version

    def compares(_: object) -> list[tuple[str, bool, str]]:
        raise AssertionError("a re-sync must not compare with the hand-moved version")

    def floor(_: object) -> list[tuple[str, bool, str]]:
        return [("floor:roc_auc", True, "roc_auc 0.78 >= 0.75")]

    monkeypatch.setattr(g, "GATES", {"floor": floor, "regression": compares, "canary": compares})
    state = model("m", [version("m", 1), version("m", 3)], {"production": 3})
    config = GatesFile.model_validate(
        {"defaults": {"max_regression": {"roc_auc": 0.005}, "canary": {}}}
    ).for_model("m")
    verdict = check_version(None, state, "m", 1, config, rollback=False, resync=True)  # type: ignore[arg-type]
    labels = {r.gate: r.label for r in verdict.results}
    assert labels == {
        "exists": "PASS", "ready": "PASS", "floor:roc_auc": "PASS",
        "regression": "RE-SYNC", "canary": "RE-SYNC",
    }  # fmt: skip
    assert verdict.passed
    assert "re-sync to v1" in next(r.detail for r in verdict.results if r.gate == "canary")
    assert ModelGates().soak is None


def _record(hours_ago: float, sha: str = "abc") -> str:
    import json
    from datetime import UTC, datetime, timedelta

    when = datetime.now(UTC) - timedelta(hours=hours_ago)
    return json.dumps({"git_sha": sha, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")})


@pytest.mark.parametrize(
    ("tags", "rollback", "label"),
    [
        ({}, False, "FAIL"),  # never verified in staging
        ({"promotion.staging.abc": _record(2)}, False, "FAIL"),  # 2 h of 24 h
        ({"promotion.staging.abc": _record(30)}, False, "PASS"),
        ({"promotion.staging.abc": _record(2)}, True, "WAIVED"),  # break-glass
    ],
)
def test_soak_is_checked_against_the_staging_record(
    tags: dict[str, str], rollback: bool, label: str
) -> None:
    from ml.promotions.gates import ModelGates
    from ml.promotions.gates.soak import soak_result
    from tests.fixtures.memory_registry import model, version

    state = model("m", [version("m", 1, **tags)], {})
    result = soak_result(state, "m", 1, ModelGates(soak="24h"), rollback=rollback)
    assert result is not None
    assert result.label == label, result.detail
    assert soak_result(state, "m", 1, ModelGates(), rollback=False) is None


def test_a_bad_soak_duration_names_the_line(tmp_path: Path) -> None:
    path = _gates(tmp_path, "defaults:\n  soak: soon\n")
    with pytest.raises(SpecError, match=rf"{path}:2: defaults\.soak"):
        load_gates(path)


def _verdict(passed: bool = True, gate: str = "floor:roc_auc") -> object:
    from ml.promotions.gates import Verdict

    return Verdict("m", 2, (GateResult("m", gate, passed, "x", figures={"rows": 1}),))


def test_the_verdict_cache_scores_each_pair_once_across_processes(tmp_path: Path) -> None:
    from ml.promotions.gates import ModelGates, VerdictCache
    from tests.fixtures.memory_registry import model, version

    state = model("m", [version("m", 1), version("m", 2)], {"production": 1})
    config = ModelGates(floors={"roc_auc": 0.75})
    key, durable = VerdictCache.key(state, "m", 2, config, rollback=False, resync=False)
    calls = []

    def compute() -> object:
        calls.append(1)
        return _verdict()

    first = VerdictCache(tmp_path)
    assert first.get_or_compute(key, durable, compute) == first.get_or_compute(
        key, durable, compute
    )
    # a later process (validate → plan → apply staging → apply production) reads it from disk
    second = VerdictCache(tmp_path)
    assert second.get_or_compute(key, durable, compute) == _verdict()
    assert (len(calls), first.computed, second.computed) == (1, 1, 0)


def test_the_cache_key_follows_what_a_verdict_depends_on() -> None:
    from dataclasses import replace

    from ml.promotions.gates import ModelGates, VerdictCache
    from tests.fixtures.memory_registry import model, version

    base = model("m", [version("m", 1), version("m", 2), version("m", 3)], {"production": 1})
    config = ModelGates(floors={"roc_auc": 0.75})

    def key(state: object = base, cfg: ModelGates = config, **kw: bool) -> str:
        flags = {"rollback": False, "resync": False, **kw}
        return VerdictCache.key(state, "m", 2, cfg, **flags)[0]  # type: ignore[arg-type]

    recorded = replace(
        base,
        versions={
            **base.versions,
            2: replace(base.versions[2], tags={"promotion.staging.a": "{}"}),
        },
    )
    assert key(recorded) == key()  # an apply record is not an input of the gates
    assert key(model("m", list(base.versions.values()), {"production": 3})) != key()
    assert key(cfg=ModelGates(floors={"roc_auc": 0.8})) != key()
    assert key(rollback=True) != key()
    assert key(resync=True) != key()


def test_a_failure_that_may_be_transient_is_not_kept_on_disk(tmp_path: Path) -> None:
    from ml.promotions.gates import VerdictCache

    VerdictCache(tmp_path).get_or_compute("k", True, lambda: _verdict(False, "loadable"))
    VerdictCache(tmp_path).get_or_compute("f", True, lambda: _verdict(False, "floor:roc_auc"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
