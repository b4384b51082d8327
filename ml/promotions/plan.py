"""`plan`: render the reconciler's actions (text, markdown for the PR comment, JSON).

A ROLLBACK is a move to a version older than production, or once production; `rollback: true`
in the spec also says the regression gate is waived. A REPAIR keeps the alias and fixes what an
interrupted apply or an out-of-band edit left (stage mirror, records). Refused actions are shown
with their reason; the CLI then exits non-zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ml.promotions.reconcile import Action, Kind, Step

_WAIVER = "rollback: true — regression gate waived; integrity gates apply"


def _cell(text: str | None) -> str:
    """One markdown table cell: one line, no column separator."""
    return " ".join((text or "").split()).replace("|", "/")


def _repairs(a: Action) -> str:
    parts = [w.detail for w in a.writes if w.step in (Step.STAGE, Step.APPLIED)]
    if a.interrupted is not None:
        parts.insert(0, "finish the interrupted apply")
    return "; ".join(parts) or "write the apply record"


@dataclass(frozen=True)
class Plan:
    """Every action, in spec order."""

    actions: list[Action]

    @staticmethod
    def arrow(a: Action) -> str:
        """`3 → 4`, `none → 1`, `4 (no change)`, `4 (repair: ...)` or `4 REFUSED: why`."""
        if a.kind == Kind.REFUSED:
            return f"{a.desired} REFUSED: {'; '.join(a.reasons)}"
        if a.moves_alias:
            return f"{'none' if a.current is None else a.current} → {a.desired}"
        if a.kind == Kind.REPAIR:
            return f"{a.desired} (repair: {_repairs(a)})"
        return f"{a.desired} (no change)"

    def text(self) -> str:
        """One line per model: `credit-risk: staging 3 → 4, production 3 → 4 after approval`."""
        lines = []
        for model in dict.fromkeys(a.model for a in self.actions):
            mine = [a for a in self.actions if a.model == model]
            parts = []
            for a in mine:
                part = f"{a.env} {self.arrow(a)}"
                if a.env == "production" and a.writes:
                    part += " after approval"
                parts.append(part)
            line = f"{model}: " + ", ".join(parts)
            if any(a.kind == Kind.ROLLBACK for a in mine):
                line += "  ROLLBACK"
            if any(a.waiver for a in mine):
                line += f" ({_WAIVER})"
            if mine[0].note:
                line += f"  # {_cell(mine[0].note)}"
            lines.append(line)
        return "\n".join(lines)

    def markdown(self) -> str:
        """A table for the PR comment and the job summary."""
        out = [
            "### Promotion plan",
            "",
            "| model | environment | current | desired | action | note |",
            "|---|---|---|---|---|---|",
        ]
        for a in self.actions:
            if a.kind == Kind.REFUSED:
                action = "**REFUSED**: " + "; ".join(a.reasons)
            elif a.kind == Kind.ROLLBACK:
                action = "**ROLLBACK**" + (" (regression gate waived)" if a.waiver else "")
            elif a.kind == Kind.PROMOTE:
                action = "promote"
            elif a.kind == Kind.REPAIR:
                action = f"repair: {_repairs(a)}"
            else:
                action = "no change"
            if a.writes and a.env == "production":
                action += " after approval"
            current = "—" if a.current is None else str(a.current)
            out.append(
                f"| {a.model} | {a.env} | {current} | {a.desired} | {_cell(action)} "
                f"| {_cell(a.note)} |"
            )
        return "\n".join(out) + "\n"

    def json(self) -> str:
        """Machine-readable plan."""
        steps = [
            {
                "model": a.model,
                "environment": a.env,
                "kind": str(a.kind),
                "current": a.current,
                "desired": a.desired,
                "changes": bool(a.writes),
                "rollback": a.kind == Kind.ROLLBACK,
                "waiver": a.waiver,
                "note": a.note,
                "writes": [w.detail for w in a.writes],
                "reasons": list(a.reasons) if a.kind == Kind.REFUSED else [],
            }
            for a in self.actions
        ]
        return json.dumps({"steps": steps}, indent=2)
