"""Plan rendering of the reconciler's actions: text line, markdown table, JSON, refusals."""

from __future__ import annotations

import json

from ml.errors import GateError
from ml.promotions.gates import GateResult, Verdict, waive
from ml.promotions.plan import Plan
from ml.promotions.reconcile import Desired, Observed, diff, refusal_error
from ml.promotions.records import applied_tag
from tests.fixtures.memory_registry import model, version

M = "credit-risk"
REC = {"promotion.staging.a": "{}", "promotion.production.a": "{}"}


def _plan(
    current: int | None, desired: int, note: str | None = None, rollback: bool = False
) -> Plan:
    # every version up to the current one ran in both environments
    versions = [version(M, n, **(REC if current and n <= current else {})) for n in (3, 4)]
    aliases = {} if current is None else {"staging": current, "production": current}
    tags = {} if current is None else {applied_tag(e): str(current) for e in aliases}
    observed = Observed({M: model(M, versions, aliases, tags)})
    return Plan(diff([Desired(M, desired, rollback, note)], observed, stages=False), gated=True)


def test_text_line_matches_the_issue() -> None:
    assert _plan(3, 4).text() == "credit-risk: staging 3 → 4, production 3 → 4 after approval"
    assert _plan(None, 3).text() == (
        "credit-risk: staging none → 3, production none → 3 after approval"
    )


def test_rollback_is_marked_everywhere() -> None:
    plan = _plan(4, 3, rollback=True)
    assert "ROLLBACK" in plan.text()
    assert "canary, regression gates waived, shown" in plan.text()
    assert "**ROLLBACK**" in plan.markdown()
    assert json.loads(plan.json())["steps"][1]["rollback"] is True


def test_no_change() -> None:
    assert "4 (no change)" in _plan(4, 4).text()
    assert "after approval" not in _plan(4, 4).text()


def test_a_refused_step_says_why() -> None:
    plan = _plan(3, 9)
    assert "9 REFUSED: credit-risk v9 does not exist" in plan.text()
    assert "**REFUSED**" in plan.markdown()
    assert json.loads(plan.json())["steps"][0]["reasons"]


def test_a_multi_line_note_stays_in_its_table_cell() -> None:
    lines = _plan(3, 4, note="line one\nline | two").markdown().splitlines()
    row = next(line for line in lines if line.startswith("| credit-risk | production"))
    assert row == (
        "| credit-risk | production | 3 | 4 | promote after approval | line one line \\| two |"
    )


FIGURES = {
    "candidate": 4, "production": 3, "source": "holdout", "replay": "holdout of data.csv",
    "rows": 6000, "excluded": 0, "threshold": 0.5, "threshold_from": "gates file",
    "score_psi": 0.4123, "approval_candidate": 0.8, "approval_production": 0.88, "flips": 480,
    "approval_delta": -0.08, "flip_share": 0.08, "max_score_psi": 0.1,
    "max_approval_delta": 0.01, "max_flip_share": 0.02,
}  # fmt: skip


def _gated(passed: bool, rollback: bool = False) -> Plan:
    """Production 3 → 4 (or back, with `rollback`), with a verdict carrying canary figures."""
    current, desired = (4, 3) if rollback else (3, 4)
    results = (
        GateResult(M, "loadable", True, "loads"),
        GateResult(M, "canary:score_psi", passed, "score PSI 0.4123 (max 0.1)", figures=FIGURES),
        GateResult(M, "canary:flip_share", True, "8.00% flip", figures=FIGURES),
    )
    if rollback:
        results = tuple(waive(r, rollback=True) for r in results)
    verdict = Verdict(M, desired, results)
    versions = [version(M, n, **(REC if n <= current else {})) for n in (3, 4)]
    aliases = {"staging": current, "production": current}
    tags = {applied_tag(e): str(current) for e in aliases}
    observed = Observed({M: model(M, versions, aliases, tags)})
    desired_ = [Desired(M, desired, rollback)]
    verdicts = {(M, env): verdict for env in ("staging", "production")}
    return Plan(diff(desired_, observed, stages=False, verdicts=verdicts), gated=True)


def test_the_markdown_plan_shows_the_verdict_and_the_canary_figures() -> None:
    md = _gated(passed=True).markdown()
    assert "#### credit-risk v4 (staging, production): gates passed" in md
    assert "| canary:score_psi | PASS | score PSI 0.4123 (max 0.1) |" in md
    assert (
        "Canary: v4 against production v3 on the holdout of data.csv; approved when PD < 0.5" in md
    )
    assert "| rows | approval v3 | approval v4 | delta | flips | score PSI |" in md
    assert (
        "| 6,000 | 88.00% | 80.00% | -8.00 pp (max ±1.00) | 8.00% = 480 (max 2.00%) "
        "| 0.4123 (max 0.1) |"
    ) in md
    assert "Gates NOT evaluated" not in md


def test_a_gate_refusal_names_the_failed_gates_and_the_verdict_says_why() -> None:
    plan = _gated(passed=False)
    md = plan.markdown()
    assert "**REFUSED**: 1 gate(s) FAILED: canary:score_psi (see the gates of v4)" in md
    assert "| canary:score_psi | **FAIL** |" in md
    assert (
        "**Gates FAILED** (apply refuses these moves): credit-risk v4 (staging, production): " in md
    )
    assert plan.failing() == ["credit-risk v4 (staging, production): canary:score_psi"]
    text = plan.text()
    assert "staging 4 REFUSED: 1 gate(s) FAILED: canary:score_psi" in text
    assert "    FAIL canary:score_psi: score PSI 0.4123 (max 0.1)" in text
    assert "  canary v4 vs production v3 on the holdout of data.csv: 6,000 rows" in text
    gates = json.loads(plan.json())["gates"][M]
    assert gates["passed"] is False
    assert gates["results"][1]["figures"]["score_psi"] == 0.4123
    # production is refused because staging is: the exit code is the gates' (5), not apply's
    error = refusal_error(plan.actions)
    assert isinstance(error, GateError)


def test_a_rollback_shows_the_waived_canary_with_its_figures() -> None:
    md = _gated(passed=False, rollback=True).markdown()
    assert "**ROLLBACK** (canary, regression gates waived)" in md
    assert "| canary:score_psi | **WAIVED** | score PSI 0.4123 (max 0.1) [waived: rollback] |" in md
    assert "#### credit-risk v3 (staging, production): gates passed (1 waived by rollback)" in md
    assert "| 6,000 |" in md


def test_a_plan_without_gates_says_so_first_in_every_format() -> None:
    actions = _plan(3, 4).actions
    ungated = Plan(actions, gated=False)
    assert ungated.text().splitlines()[0].startswith("Gates NOT evaluated (--without-gates)")
    assert ungated.markdown().splitlines()[2].startswith("**Gates NOT evaluated")
    assert json.loads(ungated.json())["gates_evaluated"] is False
    assert "Gates NOT evaluated" not in Plan(actions, gated=True).text()


def test_a_hostile_note_is_shown_as_text_in_the_terminal_and_the_pr_comment() -> None:
    note = '<img src=x onerror="alert(1)"> **approved** @org/admins \x1b[2J\x1b]0;owned\x07'
    plan = _plan(3, 4, note=note)
    md = plan.markdown()
    assert "<img" not in md
    assert "&lt;img src=x" in md
    assert "\\*\\*approved\\*\\*" in md
    assert "\\@org/admins" in md
    assert "\x1b" not in md
    text = plan.text()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\\x1b[2J" in text
