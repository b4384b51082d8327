"""`status`: desired (git) against actual (registry), per model and environment.

Three versions matter per environment: desired (the spec), last applied (the registered-model tag
`promotion.<env>.version` that `apply` writes) and actual (the alias). Desired production is the
spec's version, like staging; `--env staging` narrows the check.

- actual != last applied, alias gone, version deleted or archived → DRIFT (changed outside git;
  exit non-zero; `apply` restores git's state).
- desired != last applied, registry untouched → PENDING (merged but not applied yet, e.g.
  production awaiting approval): reported, exit 0 unless `--fail-on-pending`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ml.promotions import ENVIRONMENTS
from ml.promotions.apply import STAGE_OF, model_tag
from ml.promotions.spec import LoadedSpec
from ml.registry import ModelState, Registry


@dataclass(frozen=True)
class EnvStatus:
    """One model in one environment."""

    model: str
    environment: str
    desired: int
    applied: int | None
    actual: int | None
    state: str  # in-sync | pending | drift
    message: str


def _check(name: str, env: str, desired: int, state: ModelState | None, stages: bool) -> EnvStatus:
    if state is None:
        return EnvStatus(name, env, desired, None, None, "drift", f"{name} is not registered")
    raw = state.tags.get(model_tag(env))
    applied = int(raw) if raw and raw.isdigit() else None
    actual = state.aliases.get(env)

    def result(kind: str, msg: str) -> EnvStatus:
        return EnvStatus(name, env, desired, applied, actual, kind, msg)

    if applied is not None:
        if applied not in state.versions:
            return result(
                "drift", f"{env}: v{applied} (last applied) was deleted from the registry"
            )
        if actual is None:
            return result("drift", f"{env}: alias removed outside git (last applied v{applied})")
        if actual != applied:
            return result(
                "drift",
                f"{env}: alias moved outside git: v{applied} → v{actual} (git says v{applied})",
            )
        stage = state.versions[applied].stage
        if stages and stage != STAGE_OF[env] and not (env == "staging" and stage == "Production"):
            return result("drift", f"{env}: v{applied} stage is {stage}, expected {STAGE_OF[env]}")
    elif actual is not None:
        return result("drift", f"{env}: alias set to v{actual} outside git (never applied)")
    if desired not in state.versions:
        return result("drift", f"{env}: desired v{desired} does not exist (deleted?)")
    if applied != desired:
        shown = "none" if applied is None else f"v{applied}"
        return result("pending", f"{env}: apply pending: {shown} → v{desired}")
    return result("in-sync", f"{env}: v{desired} in sync")


def check_status(
    registry: Registry,
    loaded: LoadedSpec,
    environments: tuple[str, ...] = ENVIRONMENTS,
    *,
    stages: bool = True,
) -> list[EnvStatus]:
    """Status of every model of the spec in each environment."""
    states = {name: registry.model_state(name) for name in loaded.spec.models}
    return [
        _check(name, env, entry.version, states[name], stages)
        for name, entry in loaded.spec.models.items()
        for env in environments
    ]


def status_json(rows: list[EnvStatus]) -> str:
    """Machine-readable status."""
    return json.dumps([asdict(r) for r in rows], indent=2)
