"""Plan rendering of the reconciler's actions: text line, markdown table, JSON, refusals."""

from __future__ import annotations

import json

from ml.promotions.plan import Plan
from ml.promotions.reconcile import Desired, Observed, diff
from ml.promotions.records import applied_tag
from tests.fixtures.memory_registry import model, version

M = "credit-risk"
REC = {"promotion.staging.a": "{}", "promotion.production.a": "{}"}


def _plan(
    current: int | None, desired: int, note: str | None = None, rollback: bool = False
) -> Plan:
    versions = [version(M, n, **(REC if n == current else {})) for n in (3, 4)]
    aliases = {} if current is None else {"staging": current, "production": current}
    tags = {} if current is None else {applied_tag(e): str(current) for e in aliases}
    observed = Observed({M: model(M, versions, aliases, tags)})
    return Plan(diff([Desired(M, desired, rollback, note)], observed, stages=False))


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
        "| credit-risk | production | 3 | 4 | promote after approval | line one line / two |"
    )
