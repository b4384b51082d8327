"""The one seam between a deploy and the promotions engine: moving (and moving back) aliases.

A deploy moves the environment's alias to the release's versions through the engine's own
`decide` (gates, production-after-staging, stage mirror: the reconciler's diff) and `execute`
(alias, stage mirror, apply record `promotion.<env>.<sha>`, `promotion.<env>.version`), then the
engine's `verify`. Only the pending record is the deploy's own: the deploy writes
`promotion.<env>.pending` with op "deploy" (or "revert") and the release BEFORE the move and
clears it only after its smoke test, so the engine's pending/clear steps are left out here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ml.registry import Registry

if TYPE_CHECKING:
    from ml.promotions.apply import ApplyContext
    from ml.promotions.gates import GatesFile
    from ml.promotions.reconcile import Action


def observe(registry: Registry, names: list[str], env: str) -> dict[str, int | None]:
    """The version `env`'s alias points at, per model (None: no alias)."""
    states = registry.read_models(names)
    return {name: (s.aliases.get(env) if (s := states.get(name)) else None) for name in names}


def _options(stages: bool, allow_skip_staging: bool) -> Any:
    from ml.promotions.apply import ApplyOptions

    return ApplyOptions(stages=stages, allow_skip_staging=allow_skip_staging)


def check(
    registry: Registry,
    targets: Mapping[str, int],
    env: str,
    *,
    gates: GatesFile | None,
    stages: bool,
    allow_skip_staging: bool,
    rollback: bool = False,
) -> list[Action]:
    """The engine's actions that move `env` to `targets`; raises its refusals (`GateError`,
    `ApplyError`, ...) with nothing written. A deploy's or revert's own pending record (left by
    an interrupted deploy, which this deploy resumes) is not a refusal here."""
    from ml.promotions.apply import decide
    from ml.promotions.reconcile import Desired, Observed
    from ml.promotions.reconcile import observe as engine_observe
    from ml.promotions.records import pending_operation, pending_tag

    names = sorted(targets)
    observed = engine_observe(registry, names)
    states = {}
    for name in names:
        state = observed.state(name)
        op = pending_operation(state.tags, env) if state else None
        if state is not None and op is not None and op.op in ("deploy", "revert"):
            state = replace(
                state, tags={k: v for k, v in state.tags.items() if k != pending_tag(env)}
            )
        states[name] = state
    desired = [Desired(name, targets[name], rollback=rollback) for name in names]
    actions = decide(
        registry, desired, Observed(states), env, gates, _options(stages, allow_skip_staging)
    )
    return [a for a in actions if a.writes]


def write(
    registry: Registry, actions: list[Action], ctx: ApplyContext, owner: str, *, stages: bool
) -> list[str]:
    """Execute checked actions without the engine's pending/clear steps, then the engine's
    verification (which also checks that the pending record and the lease are this deploy's)."""
    from ml.promotions.apply import execute, verify
    from ml.promotions.reconcile import Step

    changes: list[str] = []
    options = _options(stages, True)
    for action in actions:
        body = tuple(w for w in action.writes if w.step not in (Step.PENDING, Step.CLEAR))
        execute(registry, replace(action, writes=body), ctx, owner, options)
        verify(registry, action, ctx, owner, options)
        changes += [f"{action.model}: {w.detail}" for w in body]
    return changes


def move(
    registry: Registry,
    targets: Mapping[str, int | None],
    env: str,
    ctx: ApplyContext,
    owner: str,
    *,
    gates: GatesFile | None,
    stages: bool,
    allow_skip_staging: bool,
    rollback: bool = False,
) -> list[str]:
    """Check, then write: every alias of `env` to its target; None removes the alias (a revert
    to an environment that had none). Idempotent: what already holds is not written."""
    present = {k: v for k, v in targets.items() if v is not None}
    actions = check(
        registry,
        present,
        env,
        gates=gates,
        stages=stages,
        allow_skip_staging=allow_skip_staging,
        rollback=rollback,
    )
    changes = write(registry, actions, ctx, owner, stages=stages)
    for name in sorted(k for k, v in targets.items() if v is None):
        state = registry.model_state(name)
        if state is not None and env in state.aliases:
            registry.delete_alias(name, env)
            changes.append(f"{name}: alias {env} removed (it had none before)")
    return changes
