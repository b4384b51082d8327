"""The one seam between a deploy and the promotions engine: moving (and moving back) aliases.

A deploy moves the environment's alias to the release's versions through the engine's own
check and write, so the apply records (`promotion.<env>.<sha>`), the `promotion.<env>.version`
tag, the gates and the legacy stage mirror stay one implementation. When the engine becomes a
reconciler (issue 18), only this module is re-pointed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ml.registry import Registry

if TYPE_CHECKING:
    from ml.promotions.apply import ApplyContext, PendingWrite
    from ml.promotions.gates import GatesFile


def observe(registry: Registry, names: list[str], env: str) -> dict[str, int | None]:
    """The version `env`'s alias points at, per model (None: no alias)."""
    out: dict[str, int | None] = {}
    for name in names:
        state = registry.model_state(name)
        out[name] = state.aliases.get(env) if state else None
    return out


def check(
    registry: Registry,
    targets: Mapping[str, int],
    env: str,
    *,
    gates: GatesFile | None,
    stages: bool,
    allow_skip_staging: bool,
    rollback: bool = False,
) -> list[PendingWrite]:
    """Read and check every model before anything is written (the engine's `check`).

    Raises the engine's refusals (`GateError`, `ApplyError`) with nothing written.
    """
    from ml.promotions.apply import check as engine_check

    steps = []
    for name, version in sorted(targets.items()):
        step = engine_check(
            registry,
            name,
            version,
            env,
            stages=stages,
            allow_skip_staging=allow_skip_staging,
            rollback=rollback,
            gates=gates,
        )
        if step is not None:
            steps.append(step)
    return steps


def write(
    registry: Registry, steps: list[PendingWrite], ctx: ApplyContext, *, stages: bool
) -> list[str]:
    """Execute and verify checked steps (the engine's `write`); the changes made."""
    from ml.promotions.apply import write as engine_write

    changes: list[str] = []
    for step in steps:
        changes += [f"{step.name}: {c}" for c in engine_write(registry, step, ctx, stages=stages)]
    return changes


def move(
    registry: Registry,
    targets: Mapping[str, int | None],
    env: str,
    ctx: ApplyContext,
    *,
    gates: GatesFile | None,
    stages: bool,
    allow_skip_staging: bool,
    rollback: bool = False,
) -> list[str]:
    """Check, then write: every alias of `env` to its target; None removes the alias (a revert
    to an environment that had none). Idempotent: what already holds is not written."""
    present = {k: v for k, v in targets.items() if v is not None}
    steps = check(
        registry,
        present,
        env,
        gates=gates,
        stages=stages,
        allow_skip_staging=allow_skip_staging,
        rollback=rollback,
    )
    changes = write(registry, steps, ctx, stages=stages)
    for name in sorted(k for k, v in targets.items() if v is None):
        state = registry.model_state(name)
        if state is not None and env in state.aliases:
            registry.delete_alias(name, env)
            changes.append(f"{name}: alias {env} removed (it had none before)")
    return changes
