"""`status`: how each model and environment stands against git, from the reconciler's `sync`.

- interrupted: a `promotion.<env>.pending` record: an apply (or a deploy/revert) started and did
  not finish; exit 16 (`InterruptedOperationError`). A rerun of the apply finishes it.
- drift: the registry differs from what git last applied (alias moved/removed/set outside git,
  the stage mirror wrong, a version deleted); exit 6 (`DriftError`). Each row names the command
  that repairs it: `mlops promote apply --env <env>` (a re-sync when git's version is the one
  last applied there: the gates that compare with production do not apply).
- pending: git asks for a version not applied yet (e.g. production awaiting approval); exit 0
  unless `--fail-on-pending`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ml.errors import DriftError, InterruptedOperationError, MlopsError
from ml.promotions.reconcile import Action, Kind, Sync
from ml.promotions.records import find_leases, holder_alive

if TYPE_CHECKING:
    from ml.promotions.reconcile import Observed


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
    fix: str | None = field(default=None)
    lease: str | None = field(default=None)

    @classmethod
    def of(cls, action: Action, spec: Path | None = None) -> EnvStatus:
        """The status row of one action, with the command that repairs it (when one does)."""
        return cls(
            action.model,
            action.env,
            action.desired,
            action.applied,
            action.current,
            str(action.sync),
            "; ".join(action.reasons),
            repair_command(action, spec),
        )


def repair_command(action: Action, spec: Path | None = None) -> str | None:
    """The command that brings `action`'s environment back to git (None: in sync or pending)."""
    file = f" --file {spec}" if spec is not None and str(spec) != "promotions.yaml" else ""
    apply = f"mlops promote apply --env {action.env}{file}"
    if action.sync == Sync.INTERRUPTED:
        if action.interrupted is not None and action.interrupted.op != "apply":
            return "rerun the interrupted `mlops deploy` (it resumes or reverts)"
        return apply
    if action.sync != Sync.DRIFT:
        return None
    if action.kind == Kind.RESYNC:
        return f"{apply} (a re-sync to v{action.desired}: integrity gates only)"
    if action.kind == Kind.REFUSED:
        return "edit promotions.yaml to a registered version (`mlops versions <model>`)"
    return apply


@dataclass(frozen=True)
class LeaseRow:
    """A lease found on a model: who holds which environment until when."""

    model: str
    environment: str
    owner: str
    expires: str
    live: bool
    holder_alive: bool | None

    @property
    def message(self) -> str:
        """One line naming the holder, its expiry and how to release it."""
        if not self.live:
            state = "expired"
        elif self.holder_alive is False:
            state = "held by a dead process"
        else:
            state = "held"
        env = self.environment if self.environment != "all" else "<env>"
        return (
            f"{self.model} lease ({self.environment}) {state} by {self.owner} until "
            f"{self.expires} (hint: `mlops promote unlock --env {env}` releases it once its "
            "holder is gone; `--force` for a live one)"
        )


def lease_rows(observed: Observed, names: list[str]) -> list[LeaseRow]:
    """Every lease tag on the models, live or left behind (a failed run's)."""
    rows = []
    for name in names:
        state = observed.state(name)
        for key, lease in find_leases(state.tags if state else {}).items():
            env = key.split(".", 1)[1] if "." in key else "all"
            rows.append(
                LeaseRow(
                    name, env, lease.owner, lease.expires, lease.live(), holder_alive(lease.owner)
                )
            )
    return rows


def status_error(rows: list[EnvStatus], *, fail_on_pending: bool) -> MlopsError | None:
    """The exit the rows call for: interrupted (16) before drift (6) before pending."""
    interrupted = [r for r in rows if r.state == Sync.INTERRUPTED]
    if interrupted:
        return InterruptedOperationError(
            "; ".join(f"{r.model} {r.message} (fix: {r.fix})" for r in interrupted)
        )
    drift = [r for r in rows if r.state == Sync.DRIFT]
    if drift:
        return DriftError(
            "registry drift: " + "; ".join(f"{r.model} {r.message} (fix: {r.fix})" for r in drift)
        )
    pending = [r for r in rows if r.state == Sync.PENDING]
    if fail_on_pending and pending:
        return DriftError("apply pending: " + "; ".join(f"{r.model} {r.message}" for r in pending))
    return None


def with_leases(rows: list[EnvStatus], leases: list[LeaseRow]) -> list[EnvStatus]:
    """Each row with the lease of its environment (or the model-wide one), named in words."""
    out = []
    for r in rows:
        mine = [x for x in leases if x.model == r.model and x.environment in (r.environment, "all")]
        out.append(replace(r, lease="; ".join(x.message for x in mine) or None))
    return out


def status_json(rows: list[EnvStatus]) -> str:
    """Machine-readable status."""
    return json.dumps([r.__dict__ for r in rows], indent=2)
