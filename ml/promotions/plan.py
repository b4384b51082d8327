"""`plan`: per model and environment, what `apply` would change (current → desired).

A step is a ROLLBACK when the target is older than the current production version or was once
production; an explicit `rollback: true` in the spec also says the regression gate is waived.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ml.promotions import ENVIRONMENTS
from ml.promotions.gates import is_rollback
from ml.promotions.spec import LoadedSpec
from ml.registry import Registry


@dataclass(frozen=True)
class Step:
    """One model in one environment."""

    model: str
    environment: str
    current: int | None
    desired: int
    rollback: bool
    waiver: bool
    note: str | None

    @property
    def changes(self) -> bool:
        """True when apply would move the alias."""
        return self.current != self.desired

    def arrow(self) -> str:
        """`3 → 4`, `none → 1` or `4 (no change)`."""
        if not self.changes:
            return f"{self.desired} (no change)"
        return f"{'none' if self.current is None else self.current} → {self.desired}"


@dataclass(frozen=True)
class Plan:
    """Every step, in spec order."""

    steps: list[Step]

    def text(self) -> str:
        """One line per model: `credit-risk: staging 3 → 4, production 3 → 4 after approval`."""
        lines = []
        for model in dict.fromkeys(s.model for s in self.steps):
            parts = []
            steps = [s for s in self.steps if s.model == model]
            for s in steps:
                part = f"{s.environment} {s.arrow()}"
                if s.environment == "production" and s.changes:
                    part += " after approval"
                parts.append(part)
            line = f"{model}: " + ", ".join(parts)
            if any(s.rollback and s.changes for s in steps):
                line += "  ROLLBACK"
            if any(s.waiver for s in steps):
                line += " (rollback: true — regression gate waived; integrity gates apply)"
            note = steps[0].note
            if note:
                line += f"  # {note}"
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
        for s in self.steps:
            if not s.changes:
                action = "no change"
            elif s.rollback:
                action = "**ROLLBACK**" + (" (regression gate waived)" if s.waiver else "")
            else:
                action = "promote"
            if s.changes and s.environment == "production":
                action += " after approval"
            cur = "—" if s.current is None else str(s.current)
            note = " ".join((s.note or "").split()).replace("|", "/")  # one table cell
            out.append(f"| {s.model} | {s.environment} | {cur} | {s.desired} | {action} | {note} |")
        return "\n".join(out) + "\n"

    def json(self) -> str:
        """Machine-readable plan."""
        return json.dumps(
            {"steps": [asdict(s) | {"changes": s.changes} for s in self.steps]}, indent=2
        )


def make_plan(
    registry: Registry, loaded: LoadedSpec, environments: tuple[str, ...] = ENVIRONMENTS
) -> Plan:
    """Read the registry once per model and compare aliases with the spec."""
    steps = []
    for name, entry in loaded.spec.models.items():
        state = registry.model_state(name)
        rollback = is_rollback(state, entry.version)
        for env in environments:
            current = state.aliases.get(env) if state else None
            steps.append(
                Step(
                    model=name,
                    environment=env,
                    current=current,
                    desired=entry.version,
                    rollback=rollback or (entry.rollback and current != entry.version),
                    waiver=entry.rollback,
                    note=entry.note,
                )
            )
    return Plan(steps)
