"""What the gates found: one `GateResult` per check, one `Verdict` per version, and the waivers.

Waivers are decided in one place (`waive`): an explicit rollback (`rollback: true`) waives only
the gates that compare the candidate with today's production (`WAIVED_ON_ROLLBACK`), shown as
WAIVED with their figures. A re-sync shows the gates in `COMPARES_WITH_PRODUCTION` as RE-SYNC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

WAIVED_ON_ROLLBACK = frozenset({"regression", "canary"})
"""Gate names an explicit `rollback: true` waives (shown as WAIVED with their figures): the ones
that compare the candidate with the production version the rollback is undoing."""
COMPARES_WITH_PRODUCTION = frozenset({"regression", "canary"})
"""Gates that judge a candidate against production: not applicable to a re-sync (shown as
RE-SYNC); `signature` then checks only that the version's contract fits its own signature."""


@dataclass(frozen=True)
class GateResult:
    """One check's outcome with its numbers; `gate` is `family:detail` (e.g. floor:roc_auc)."""

    model: str
    gate: str
    passed: bool
    detail: str
    waived: bool = False
    figures: Mapping[str, Any] | None = field(default=None, compare=False)
    """The numbers behind it, for the plan comment and JSON (the canary's)."""
    resync: bool = False
    """Not applicable: the move is a re-sync (see `COMPARES_WITH_PRODUCTION`)."""

    @property
    def label(self) -> str:
        """PASS / FAIL / WAIVED / RE-SYNC."""
        if self.resync:
            return "RE-SYNC"
        if self.waived:
            return "WAIVED"
        return "PASS" if self.passed else "FAIL"

    @property
    def family(self) -> str:
        """The registered gate that produced it (`regression` for `regression:roc_auc`)."""
        return self.gate.split(":", 1)[0]


@dataclass(frozen=True)
class Verdict:
    """Every gate result for the version one model is to move to."""

    model: str
    version: int
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        """True when no result failed (a waived one passed)."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        """The failed results."""
        return [r for r in self.results if not r.passed]


def waive(result: GateResult, rollback: bool) -> GateResult:
    """The one place a rollback waiver is granted."""
    if rollback and not result.passed and result.family in WAIVED_ON_ROLLBACK:
        return replace(
            result, passed=True, waived=True, detail=result.detail + " [waived: rollback]"
        )
    return result
