"""The gates that run, in the order they run: the one list to edit to add a gate.

To add a gate, write the function (`@gate("name")`, see `base`), give it a key in `ModelGates` if
it is configurable, and list it here. The governance gates (ml/governance/gates.py:
protected-inputs, fairness, canary-fairness) are listed after the canary, like any other.
"""

from __future__ import annotations

from ml.governance import gates as governance
from ml.promotions.gates import contract, integrity, metrics
from ml.promotions.gates.base import Check, gate_name
from ml.promotions.gates.canary import canary


def _named(*checks: Check) -> dict[str, Check]:
    return {gate_name(check): check for check in checks}


GATES: dict[str, Check] = _named(
    integrity.flavor,
    integrity.tags,
    integrity.data_in_remote,
    metrics.floors,
    metrics.ceilings,
    integrity.rollback_marker,
    metrics.regression,
    contract.signature,
    integrity.loadable,
    canary,
    *(
        check
        for check in vars(governance).values()
        if callable(check) and getattr(check, "gate_name", None)
    ),
)
"""name → check yielding (gate, passed, detail) or (gate, passed, detail, figures)."""

RUN_GATES = ("tag", "floor", "ceiling")
"""Gates that judge a training run on its own records (tags, logged metrics), so they can run
before the run is registered (`verdicts.check_run`); the others need a version (flavor,
signature, loadable) or production to compare with (regression, canary)."""
