"""`status`: how each model and environment stands against git, from the reconciler's `sync`.

- interrupted: a `promotion.<env>.pending` record: an apply (or a deploy/revert) started and did
  not finish; exit 16 (`InterruptedOperationError`). A rerun of the apply finishes it.
- drift: the registry differs from what git last applied (alias moved/removed/set outside git,
  the stage mirror wrong, a version deleted); exit 6 (`DriftError`). `apply` restores git's state.
- pending: git asks for a version not applied yet (e.g. production awaiting approval); exit 0
  unless `--fail-on-pending`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ml.errors import DriftError, InterruptedOperationError, MlopsError
from ml.promotions.reconcile import Action, Sync


@dataclass(frozen=True)
class EnvStatus:
    """One model in one environment."""

    model: str
    environment: str
    desired: int
    applied: int | None
    actual: int | None
    state: str
    message: str

    @classmethod
    def of(cls, action: Action) -> EnvStatus:
        """The status row of one action."""
        return cls(
            action.model,
            action.env,
            action.desired,
            action.applied,
            action.current,
            str(action.sync),
            "; ".join(action.reasons),
        )


def status_error(rows: list[EnvStatus], *, fail_on_pending: bool) -> MlopsError | None:
    """The exit the rows call for: interrupted (16) before drift (6) before pending."""
    interrupted = [r for r in rows if r.state == Sync.INTERRUPTED]
    if interrupted:
        return InterruptedOperationError(
            "; ".join(f"{r.model} {r.message}" for r in interrupted)
            + " (hint: rerun `mlops promote apply --env <env>` to finish an interrupted apply)"
        )
    drift = [r for r in rows if r.state == Sync.DRIFT]
    if drift:
        return DriftError(
            "registry drift: "
            + "; ".join(f"{r.model} {r.message}" for r in drift)
            + " (hint: `mlops promote apply --env <env>` restores git's state)"
        )
    pending = [r for r in rows if r.state == Sync.PENDING]
    if fail_on_pending and pending:
        return DriftError("apply pending: " + "; ".join(f"{r.model} {r.message}" for r in pending))
    return None


def status_json(rows: list[EnvStatus]) -> str:
    """Machine-readable status."""
    return json.dumps([r.__dict__ for r in rows], indent=2)
