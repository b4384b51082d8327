"""Verdicts: every gate of the catalog for the version each model is to move to.

Gates read metrics, MLmodel files, contracts and the model itself, so they run BEFORE the
reconciler diffs: `evaluate` turns (registry, observed state, desired versions, gates file) into
one `Verdict` per model, and `ml.promotions.reconcile.diff` takes the verdicts as an input
(`gated_diff` does both for apply and plan).

Integrity (the version exists and is READY) always runs first and cannot be configured away;
then every gate of `catalog.GATES`. An explicit rollback (`rollback: true`) waives only the gates
that compare the candidate with today's production (`results.waive`); the integrity gates, the
tags, the contract, the loadability and the absolute floors stay (an old version below today's
floor is not a safe place to roll back to, and lowering a floor is itself a reviewed change).
A re-sync (the alias moved outside git, apply puts back the version git last applied) is not a
promotion: the gates in `COMPARES_WITH_PRODUCTION` show as RE-SYNC with the reason instead of
running. `soak` is production's own gate, added per call (never cached).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from ml.promotions.gates.base import GateInput
from ml.promotions.gates.cache import VerdictCache
from ml.promotions.gates.catalog import GATES, RUN_GATES
from ml.promotions.gates.results import COMPARES_WITH_PRODUCTION, GateResult, Verdict, waive
from ml.promotions.gates.soak import soak_result
from ml.promotions.reconcile import Action, Desired, Observed, diff

if TYPE_CHECKING:
    from ml.promotions.gates.config import GatesFile, ModelGates
    from ml.registry import ModelState, Registry


def _not_applicable(g: GateInput, family: str) -> GateResult | None:
    """The RE-SYNC result standing for a gate that compares with production, when configured."""
    if family == "regression" and not g.config.max_regression:
        return None
    if family == "canary" and (g.config.canary is None or not g.config.canary.enabled):
        return None
    holder = g.state.holder("production")
    moved = f"v{holder.version}" if holder is not None else "no version"
    return GateResult(
        g.info.name,
        family,
        True,
        f"not applicable: re-sync to v{g.info.version}, the version git last applied (the alias "
        f"names {moved}, moved outside git); nothing to compare the candidate with",
        resync=True,
    )


def check_version(
    registry: Registry,
    state: ModelState | None,
    name: str,
    version: int,
    config: ModelGates,
    *,
    rollback: bool,
    resync: bool = False,
) -> Verdict:
    """Every gate for one model's desired version; integrity failures stop before metrics.

    `resync`: the gates in `COMPARES_WITH_PRODUCTION` show as RE-SYNC instead of running."""
    results: list[GateResult] = []
    info = state.versions.get(version) if state else None
    if state is None:
        results.append(
            GateResult(
                name,
                "exists",
                False,
                f"unknown model {name!r}: not registered in MLflow "
                "(hint: check the name, or train and register it first)",
            )
        )
    elif info is None:
        results.append(
            GateResult(
                name,
                "exists",
                False,
                f"{name} v{version} is not in the registry "
                f"(registered: {sorted(state.versions) or 'none'}; hint: pick an existing "
                "version or register it with `mlops train`)",
            )
        )
    else:
        results.append(GateResult(name, "exists", True, f"{name} v{version} is registered"))
        ready = info.status == "READY"
        results.append(GateResult(name, "ready", ready, f"status {info.status} (need READY)"))
        if ready:
            g = GateInput(registry, info, state, config, rollback, resync=resync)
            for family, check in GATES.items():
                if resync and family in COMPARES_WITH_PRODUCTION:
                    shown = _not_applicable(g, family)
                    if shown is not None:
                        results.append(shown)
                    continue
                for outcome in check(g):
                    gate_name, passed, detail = outcome[:3]
                    figures = outcome[3] if len(outcome) > 3 else None
                    result = GateResult(name, gate_name, passed, detail, figures=figures)
                    results.append(waive(result, rollback))
    return Verdict(name, version, tuple(results))


def check_run(registry: Registry, name: str, run_id: str, config: ModelGates) -> Verdict:
    """The `RUN_GATES` of `name`'s gates for a training run that is not (yet) a version.

    The performance gate of an orchestrated retrain: the same registered checks (and numbers)
    `promote validate` applies later to the version, read from the run's tags and metrics; the
    verdict's version is 0 (no version yet).
    """
    from ml.registry import ModelState, VersionInfo

    tags = registry.run_tags(run_id)
    info = VersionInfo(name, 0, "READY", "None", run_id, source=f"runs:/{run_id}", tags=tags)
    g = GateInput(registry, info, ModelState(name, {}, {}, {}), config, rollback=False)
    results = [
        GateResult(name, *outcome[:3])  # run gates carry no figures
        for family in RUN_GATES
        for outcome in GATES[family](g)
    ]
    return Verdict(name, 0, tuple(results))


def evaluate(
    registry: Registry,
    observed: Observed,
    desired: Iterable[Desired],
    gates: GatesFile,
    workers: int = 4,
    cache: VerdictCache | None = None,
    *,
    env: str | None = None,
    resync: frozenset[str] = frozenset(),
) -> dict[str, Verdict]:
    """One verdict per desired model, models concurrently (each gate read is a round trip).

    `env`: the environment the versions move in (`Desired.at(env)`; production adds its `soak`
    gate); None judges `Desired.version` without soak (validate). `resync`: models whose move is
    a re-sync. `cache` keeps verdicts across calls and processes (see `VerdictCache`).
    """
    wanted = list(desired)
    cache = cache if cache is not None else VerdictCache()

    def one(d: Desired) -> Verdict:
        state = observed.state(d.name)
        version = d.at(env) if env else d.version
        config = gates.for_model(d.name)
        again = d.name in resync
        key, durable = VerdictCache.key(
            state, d.name, version, config, rollback=d.rollback, resync=again
        )
        verdict = cache.get_or_compute(
            key,
            durable,
            lambda: check_version(
                registry, state, d.name, version, config, rollback=d.rollback, resync=again
            ),
        )
        if env == "production" and not again:
            soak = soak_result(state, d.name, version, config, rollback=d.rollback)
            if soak is not None:
                verdict = replace(verdict, results=(*verdict.results, soak))
        return verdict

    if workers <= 1 or len(wanted) <= 1:
        return {d.name: one(d) for d in wanted}
    with ThreadPoolExecutor(max_workers=min(workers, len(wanted))) as pool:
        return {v.model: v for v in pool.map(one, wanted)}


def gated_diff(
    registry: Registry,
    desired: Sequence[Desired],
    observed: Observed,
    envs: Sequence[str],
    gates: GatesFile | None,
    *,
    stages: bool,
    allow_skip_staging: bool = False,
    workers: int = 4,
    cache: VerdictCache | None = None,
) -> list[Action]:
    """The reconciler's diff with gate verdicts for the moves that change an alias: diff,
    evaluate those (model, environment) pairs once, diff again. Apply decides with it and plan
    renders it, so both show the same verdicts. `gates=None` is the plain diff (nothing
    evaluated); `cache` as in `evaluate` (a version judged for staging is not judged again for
    production unless production moved)."""

    def run(verdicts: Mapping[tuple[str, str], Verdict] | None) -> list[Action]:
        return diff(
            desired,
            observed,
            envs,
            verdicts,
            stages=stages,
            allow_skip_staging=allow_skip_staging,
        )

    actions = run(None)
    if gates is None or not any(a.moves_alias for a in actions):
        return actions
    cache = cache if cache is not None else VerdictCache()
    verdicts: dict[tuple[str, str], Verdict] = {}
    for env in envs:
        moving = [a for a in actions if a.env == env and a.moves_alias]
        if not moving:
            continue
        names = {a.model for a in moving}
        resync = frozenset(a.model for a in moving if a.resync)
        movers = [d for d in desired if d.name in names]
        found = evaluate(registry, observed, movers, gates, workers, cache, env=env, resync=resync)
        verdicts.update({(name, env): v for name, v in found.items()})
    return run(verdicts)
