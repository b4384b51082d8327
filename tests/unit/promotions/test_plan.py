"""Plan rendering: text line, markdown table, rollback marking."""

from __future__ import annotations

import json

from ml.promotions.plan import Plan, Step


def _plan(current: int | None, desired: int, rollback: bool = False) -> Plan:
    return Plan(
        [
            Step("credit-risk", "staging", current, desired, rollback, rollback, None),
            Step("credit-risk", "production", current, desired, rollback, rollback, "why"),
        ]
    )


def test_text_line_matches_the_issue() -> None:
    assert _plan(3, 4).text() == "credit-risk: staging 3 → 4, production 3 → 4 after approval"


def test_rollback_is_marked_everywhere() -> None:
    plan = _plan(4, 3, rollback=True)
    assert "ROLLBACK" in plan.text()
    assert "regression gate waived" in plan.text()
    assert "**ROLLBACK**" in plan.markdown()
    assert json.loads(plan.json())["steps"][1]["rollback"] is True


def test_no_change() -> None:
    assert "4 (no change)" in _plan(4, 4).text()
    assert "after approval" not in _plan(4, 4).text()


def test_a_multi_line_note_stays_in_its_table_cell() -> None:
    step = Step("credit-risk", "production", 3, 4, False, False, "line one\nline | two")
    row = Plan([step]).markdown().splitlines()[-1]
    assert (
        row == "| credit-risk | production | 3 | 4 | promote after approval | line one line / two |"
    )
