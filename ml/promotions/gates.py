"""Promotion gates: the checks a version must pass before an alias moves to it.

Gates read metrics, MLmodel files, contracts and the model itself, so they run BEFORE the
reconciler diffs: `evaluate` turns (registry, observed state, desired versions, gates file) into
one `Verdict` per model, and `ml.promotions.reconcile.diff` takes the verdicts as an input
(`gated_diff` does both for apply and plan).

Integrity (the version exists and is READY) always runs first and cannot be configured away.
Every other gate is a function registered with `@gate("name")` in this module, in the order they
run; to add one, write the function, give it a key in `ModelGates` if it is configurable, and
decorate it. `loadable` (the booster loads from the artefact store and scores) always runs.
Waivers are decided in one place: `WAIVED_ON_ROLLBACK`. An explicit rollback (`rollback: true`)
waives only the gates that compare the candidate with today's production (`regression`,
`canary`): production is what the rollback undoes, so "no worse than / no different from
production" is the wrong question; the waived results still show, figures and all, as WAIVED.
The integrity gates, the tags, the contract, the loadability and the absolute floors stay (an
old version below today's floor is not a safe place to roll back to, and lowering a floor is
itself a reviewed change to `config/gates.yaml`).

A re-sync (the alias moved outside git, apply puts back the version git last applied) is not a
promotion: the gates in `COMPARES_WITH_PRODUCTION` do not apply (the "production" they would
compare with is the hand-moved version) and show as RE-SYNC with the reason; the integrity gates
still run. `soak` is production's own gate: the version must have been verified in staging at
least that long ago (the staging apply record's time).

A verdict is computed once: `VerdictCache` keys it by what it depends on (the candidate and its
run, the production version and its run, the model's effective gates, the replay data, the
rollback and re-sync flags) and keeps it in memory and on disk (`ML_PROMOTE_VERDICT_CACHE`), so
validate, plan, apply staging and apply production score each pair once. `soak` depends on the
clock and is never cached; a failure that may be transient (a load or a read that failed) is not
written to disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ml.errors import ConfigError, ContractError, DataError, RegistryError, SpecError
from ml.governance.fairness import GovernanceGates
from ml.promotions.records import (
    first_verified,
    has_record,
    is_rollback,
    pending_operation,
)
from ml.promotions.spec import line_of, load_yaml, plain

if TYPE_CHECKING:
    from ml.batch import ScoringModel
    from ml.contract import ModelContract
    from ml.promotions.reconcile import Action, Desired, Observed
    from ml.registry import ModelState, Registry, VersionInfo

LOWER_IS_BETTER = frozenset({"brier", "log_loss"})
WAIVED_ON_ROLLBACK = frozenset({"regression", "canary"})
"""Gate names an explicit `rollback: true` waives (shown as WAIVED with their figures): the ones
that compare the candidate with the production version the rollback is undoing."""
COMPARES_WITH_PRODUCTION = frozenset({"regression", "canary"})
"""Gates that judge a candidate against production: not applicable to a re-sync (shown as
RE-SYNC); `signature` then checks only that the version's contract fits its own signature."""
_CACHEABLE_FAILURES = frozenset({"tag", "floor", "ceiling", "regression", "rollback-marker"})
"""Failures that are facts about the versions (a canary failure with figures is one too); any
other failure may be transient (a download that failed) and is never written to disk."""
RUN_GATES = ("tag", "floor", "ceiling")
"""Gates that judge a training run on its own records (tags, logged metrics), so they can run
before the run is registered (`check_run`); the others need a version (flavor, signature,
loadable) or production to compare with (regression, canary)."""


class CanaryGates(BaseModel):
    """`canary:`: the candidate against production on a replay set (ml/promotions/canary.py).

    A per-model `canary:` overrides the defaults' key by key; `enabled: false` turns it off.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    replay: Literal["holdout", "logs"] = "holdout"
    logs: str | None = Field(
        default=None, description="serve's prediction log: file, folder or s3:// prefix"
    )
    window: str | None = Field(default=None, description="only the last 24h, 7d, ... of logs")
    max_rows: int = Field(default=20_000, ge=100)
    min_rows: int = Field(default=1_000, ge=1)
    seed: int = 0
    threshold: float | None = Field(default=None, ge=0, le=1)
    max_score_psi: float = Field(default=0.1, ge=0)
    max_approval_delta: float = Field(default=0.01, ge=0, le=1)
    max_flip_share: float = Field(default=0.02, ge=0, le=1)

    @model_validator(mode="after")
    def _logs_named(self) -> CanaryGates:
        if self.replay == "logs" and not self.logs:
            raise ValueError("replay: logs needs `logs:` (a file, a folder or s3://bucket/prefix)")
        if self.window is not None:
            from ml.monitoring.logs import parse_duration

            try:
                parse_duration(self.window)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None  # reported with the file and line
        return self


class ModelGates(BaseModel):
    """Gates for one model (or the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_tags: tuple[str, ...] | None = None
    floors: dict[str, float] | None = None
    ceilings: dict[str, float] | None = None
    max_regression: dict[str, float] | None = None
    allow_schema_change: bool | None = None
    servable_flavors: tuple[str, ...] | None = None
    canary: CanaryGates | None = None
    governance: GovernanceGates | None = None  # ml/governance/gates.py
    soak: str | None = Field(
        default=None,
        description="Minimum time a version runs verified in staging before production takes "
        "it (24h, 90m, 7d); checked against the staging apply record.",
    )

    @field_validator("soak")
    @classmethod
    def _soak_is_duration(cls, soak: str | None) -> str | None:
        if soak is not None:
            from ml.monitoring.logs import parse_duration

            try:
                parse_duration(soak)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return soak


class GatesFile(BaseModel):
    """`config/gates.yaml`: defaults plus per-model overrides (a per-model key replaces it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    defaults: ModelGates = ModelGates()
    models: dict[str, ModelGates] = {}

    def for_model(self, name: str) -> ModelGates:
        """Effective gates: per-model keys override the defaults key by key (inside `canary:`
        too, so a model can change one bound and keep the rest)."""
        override = self.models.get(name, ModelGates())
        merged = self.defaults.model_dump() | override.model_dump(exclude_none=True)
        if self.defaults.canary is not None and override.canary is not None:
            merged["canary"] = self.defaults.canary.model_dump() | override.canary.model_dump(
                exclude_unset=True
            )
        return ModelGates.model_validate(merged)


def load_gates(path: Path) -> GatesFile:
    """Parse the gates file (same strictness, limits and error format as the spec)."""
    root = load_yaml(path)
    try:
        return GatesFile.model_validate(plain(root) or {})
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            fields = CanaryGates.model_fields if "canary" in e["loc"] else ModelGates.model_fields
            if "governance" in e["loc"]:
                fields = GovernanceGates.model_fields
            problems.append(
                f"{path}:{line_of(root, tuple(e['loc']))}: "
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} "
                f"(hint: keys are {', '.join(fields)})"
            )
        raise SpecError("\n".join(problems)) from None


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


@dataclass(frozen=True)
class GateInput:
    """What a gate sees: the version, its model as observed, the model's gates, the adapter.

    `scoring_model` and `contract` load once per evaluation: the loadable, signature and canary
    gates share them (a failure is kept too, so it is reported, not retried).
    """

    registry: Registry
    info: VersionInfo
    state: ModelState
    config: ModelGates
    rollback: bool
    cache: dict[tuple[str, int], Any] = field(default_factory=dict, compare=False, repr=False)
    resync: bool = False

    @property
    def production(self) -> VersionInfo | None:
        """The version production serves, when it is another one (None for a re-sync: the alias
        names a version moved there outside git, nothing to judge the candidate against)."""
        if self.resync:
            return None
        prod = self.state.holder("production")
        return prod if prod is not None and prod.version != self.info.version else None

    def metrics(self, info: VersionInfo | None = None) -> dict[str, float]:
        """Run metrics of `info` (default: the candidate)."""
        target = info or self.info
        return self.registry.run_metrics(target.run_id) if target.run_id else {}

    def _once(self, kind: str, info: VersionInfo, load: Callable[[], Any]) -> Any:
        key = (kind, info.version)
        if key not in self.cache:
            try:
                self.cache[key] = load()
            except (RegistryError, ContractError) as exc:
                self.cache[key] = exc
        found = self.cache[key]
        if isinstance(found, Exception):
            raise found
        return found

    def scoring_model(self, info: VersionInfo | None = None) -> ScoringModel:
        """`info` (default: the candidate) loaded from the artefact store as batch scoring and
        serve load it: the booster, the contract, the input example.

        Raises:
            RegistryError: the artifacts cannot be downloaded or loaded (the message names why).
            ContractError: the contract is malformed or does not fit the signature.
        """
        from ml.batch import ModelRef, load_version

        target = info or self.info

        def load() -> ScoringModel:
            with tempfile.TemporaryDirectory(prefix="gate-load-") as tmp:
                return load_version(
                    self.registry, ModelRef(target.name, version=target.version), Path(tmp)
                )

        return self._once("model", target, load)

    def contract(self, info: VersionInfo | None = None) -> tuple[ModelContract, str]:
        """The contract `info` (default: the candidate) is held to and its source (its logged
        `contract.json`, or the built-in one for a version from before contracts).

        Raises:
            ContractError: no signature, or the contract is malformed or disagrees with it.
        """
        from ml.contract import CONTRACT_FILE
        from ml.version_contract import contract_for

        target = info or self.info

        def read() -> tuple[ModelContract, str]:
            signature = self.registry.signature_inputs(target.name, target.version)
            if not signature:
                raise ContractError(f"v{target.version} was logged without an input signature")
            with tempfile.TemporaryDirectory(prefix="gate-contract-") as tmp:
                logged = (
                    self.registry.download_run_file(target.run_id, CONTRACT_FILE, Path(tmp))
                    if target.run_id
                    else None
                )
                return contract_for(logged, signature)

        return self._once("contract", target, read)


Outcome = tuple[str, bool, str] | tuple[str, bool, str, Mapping[str, Any]]
Check = Callable[[GateInput], Iterable[Outcome]]
GATES: dict[str, Check] = {}
"""The registered gates, in the order they run: name → check yielding (gate, passed, detail)
or (gate, passed, detail, figures)."""


def gate(name: str) -> Callable[[Check], Check]:
    """Register a gate under `name` (its results are named `name` or `name:<detail>`)."""

    def register(check: Check) -> Check:
        GATES[name] = check
        return check

    return register


@gate("flavor")
def _flavor(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    servable = g.config.servable_flavors
    if not servable:
        return
    flavors = g.registry.flavors(g.info.name, g.info.version)
    ok = bool(set(flavors) & set(servable))
    hint = "" if ok else " (hint: register the model in a flavor the image serves)"
    yield "flavor", ok, f"logged as {flavors}; the serve image loads {list(servable)}{hint}"


@gate("tag")
def _tags(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    for tag in g.config.required_tags or ():
        value = g.info.tags.get(tag)
        yield f"tag:{tag}", bool(value), f"{tag}={value!r}" if value else f"missing tag {tag}"


@gate("data_in_remote")
def _data_in_remote(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    # The object the version was trained on is still in the DVC remote (ml.lineage).
    from ml.lineage import data_in_remote

    yield from data_in_remote(g.info.tags, f"{g.info.name} v{g.info.version}")


def _bound(g: GateInput, kind: str, bounds: Mapping[str, float] | None, sign: str) -> Iterable:
    metrics = g.metrics()
    for metric, limit in sorted((bounds or {}).items()):
        value = metrics.get(metric)
        ok = value is not None and (value >= limit if sign == ">=" else value <= limit)
        shown = "missing" if value is None else f"{value:.4f}"
        yield f"{kind}:{metric}", ok, f"{metric} {shown} {sign} {limit}"


@gate("floor")
def _floors(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    return _bound(g, "floor", g.config.floors, ">=")


@gate("ceiling")
def _ceilings(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    return _bound(g, "ceiling", g.config.ceilings, "<=")


@gate("rollback-marker")
def _rollback_marker(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    if not g.rollback:
        return
    v = g.info.version
    if is_rollback(g.state, v):
        yield (
            "rollback-marker",
            True,
            f"rollback: true and v{v} is older than, or was once, production",
        )
    else:
        yield (
            "rollback-marker",
            False,
            f"rollback: true but v{v} is neither older than production nor was ever production "
            "(hint: remove `rollback: true`)",
        )


@gate("regression")
def _regression(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    prod = g.production
    limits = sorted((g.config.max_regression or {}).items())
    if prod is None:
        reason = (
            "no production version"
            if g.state.holder("production") is None
            else "already production"
        )
        for metric, _ in limits:
            yield f"regression:{metric}", True, f"skipped ({reason})"
        return
    mine, base = g.metrics(), g.metrics(prod)
    for metric, allowed in limits:
        new, old = mine.get(metric), base.get(metric)
        if new is None or old is None:
            yield (
                f"regression:{metric}",
                False,
                f"{metric} missing on v{g.info.version} or production",
            )
            continue
        drop = (new - old) if metric in LOWER_IS_BETTER else (old - new)
        yield (
            f"regression:{metric}",
            drop <= allowed,
            f"{metric} v{g.info.version} {new:.4f} vs production v{prod.version} {old:.4f}: "
            f"worse by {drop:+.4f} (allowed {allowed})",
        )


def _contract_changes(old: ModelContract, new: ModelContract) -> list[str]:
    """What a reviewer must know changed between two contracts, one phrase per change: features
    added or removed, dtypes, required, codes and ranges (reasons and order are not a change:
    each version scores its own column order)."""
    before = {f.name: f for f in old.features}
    after = {f.name: f for f in new.features}
    changes = []
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    if added:
        changes.append(f"added {added}")
    if removed:
        changes.append(f"removed {removed}")
    for name in (n for n in after if n in before):
        a, b = before[name], after[name]
        if a.dtype != b.dtype:
            changes.append(f"{name}: dtype {a.dtype} → {b.dtype}")
        if (a.codes and sorted(a.codes), a.minimum, a.maximum) != (
            b.codes and sorted(b.codes),
            b.minimum,
            b.maximum,
        ):
            changes.append(f"{name}: {a.allowed()} → {b.allowed()}")
        if a.required != b.required:
            changes.append(
                f"{name}: {'required' if a.required else 'optional'} → "
                f"{'required' if b.required else 'optional'}"
            )
    return changes


@gate("signature")
def _signature(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    """The candidate's contract (features, dtypes, codes, ranges) against production's."""
    prod = g.production
    try:
        mine, source = g.contract()
    except (ContractError, RegistryError) as exc:
        yield "signature", False, f"no usable contract: {exc}"
        return
    if prod is None:
        aside = "; not compared with production: re-sync" if g.resync else ""
        yield (
            "signature",
            True,
            f"its {source} contract ({len(mine.features)} features) fits its signature{aside}",
        )
        return
    hint = " (hint: set allow_schema_change: true in the gates file by PR)"
    try:
        theirs, _ = g.contract(prod)
    except (ContractError, RegistryError) as exc:
        allowed = bool(g.config.allow_schema_change)
        yield (
            "signature",
            allowed,
            f"cannot compare with production v{prod.version}'s contract ({exc})"
            + ("; allowed by allow_schema_change" if allowed else hint),
        )
        return
    changes = _contract_changes(theirs, mine)
    if not changes:
        yield (
            "signature",
            True,
            f"contract matches production v{prod.version}'s ({len(mine.features)} features, "
            "dtypes, codes and ranges)",
        )
        return
    shown = "; ".join(changes[:8]) + (f"; and {len(changes) - 8} more" if len(changes) > 8 else "")
    if g.config.allow_schema_change:
        yield (
            "signature",
            True,
            f"contract differs from production v{prod.version}'s: {shown}; "
            "allowed by allow_schema_change in the gates file",
        )
    else:
        yield (
            "signature",
            False,
            f"contract differs from production v{prod.version}'s: {shown}{hint}",
        )


@gate("loadable")
def _loadable(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    """Load the booster from the artefact store as serving does and score its logged input
    example and the contract's probe rows: a version that cannot be served never moves."""
    try:
        model = g.scoring_model()
        model.self_test()
    except (RegistryError, ContractError) as exc:
        yield (
            "loadable",
            False,
            f"{exc} (hint: this version cannot be served; register one from an intact run)",
        )
        return
    yield (
        "loadable",
        True,
        f"loads from the artefact store and scores its input example ({len(model.example)} "
        f"rows) and the {len(model.probes())} probe rows of its {model.contract_source} contract",
    )


@gate("canary")
def _canary(g: GateInput) -> Iterable[Outcome]:
    """The candidate against today's production version on a replay set: score PSI, approval
    rates at the serving threshold and flipped decisions, each within its bound."""
    config = g.config.canary
    if config is None or not config.enabled:
        return
    prod = g.production
    if prod is None:
        reason = (
            "no production version to compare with"
            if g.state.holder("production") is None
            else f"v{g.info.version} is production already"
        )
        yield "canary", True, f"skipped: {reason}"
        return
    from ml.promotions import canary

    try:
        candidate = g.scoring_model()
    except (RegistryError, ContractError):
        yield "canary", False, f"not run: v{g.info.version} does not load (see loadable)"
        return
    try:
        production = g.scoring_model(prod)
    except (RegistryError, ContractError) as exc:
        yield (
            "canary",
            False,
            f"not run: production v{prod.version} does not load, so there is nothing to compare "
            f"with ({exc}) (hint: fix production's artifacts, or set canary: {{enabled: false}} "
            "for this model by PR)",
        )
        return
    try:
        figures = canary.compare(
            candidate, production, canary.replay_for(config), *canary.threshold_of(config)
        )
    except (DataError, ConfigError) as exc:
        yield "canary", False, f"not run: {exc}"
        return
    yield from canary.outcomes(figures, config)
    if figures.rows < config.min_rows:
        yield (
            "canary:rows",
            False,
            f"only {figures.rows:,} replayed rows, fewer than min_rows {config.min_rows:,}: too "
            "few to judge (hint: replay the holdout, widen the window, or lower min_rows by PR)",
            figures.as_dict(),
        )


def _waive(result: GateResult, rollback: bool) -> GateResult:
    """The one place a rollback waiver is granted."""
    if rollback and not result.passed and result.family in WAIVED_ON_ROLLBACK:
        return replace(
            result, passed=True, waived=True, detail=result.detail + " [waived: rollback]"
        )
    return result


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
                    results.append(_waive(result, rollback))
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


def soak_result(
    state: ModelState | None, name: str, version: int, config: ModelGates, *, rollback: bool
) -> GateResult | None:
    """Production's `soak` gate: the version was verified in staging at least `soak` ago.

    None when no soak is configured. An explicit rollback (break-glass) waives it; it depends
    on the clock, so it is never cached.
    """
    if config.soak is None or state is None or version not in state.versions:
        return None
    from ml.monitoring.logs import parse_duration

    need = parse_duration(config.soak)
    info = state.versions[version]
    since = first_verified(info, "staging", pending_operation(state.tags, "staging"))
    if since is None:
        result = GateResult(
            name,
            "soak",
            False,
            f"v{version} was never verified in staging; production needs {config.soak} there "
            "(hint: apply --env staging and wait, or lower `soak` by PR)",
        )
    else:
        soaked = (datetime.now(UTC) - since).total_seconds()
        result = GateResult(
            name,
            "soak",
            soaked >= need,
            f"verified in staging at {since:%Y-%m-%dT%H:%M:%SZ}: {soaked / 3600:.1f} h of the "
            f"{config.soak} soak"
            + ("" if soaked >= need else " (hint: wait, or lower `soak` by PR)"),
        )
    if rollback and not result.passed:
        return replace(
            result, passed=True, waived=True, detail=result.detail + " [waived: rollback]"
        )
    return result


def _fingerprint(path: Path) -> str:
    """Size and mtime of a file, or of every file under a folder (cheap; content changes that
    keep both are caught by the data checksum the holdout is keyed by)."""
    if path.is_file():
        st = path.stat()
        return f"{path}:{st.st_size}:{st.st_mtime_ns}"
    if path.is_dir():
        return "|".join(_fingerprint(p) for p in sorted(path.rglob("*")) if p.is_file())
    return f"{path}:missing"


def replay_key(config: ModelGates) -> str | None:
    """What the canary's replay data is, as a cache key part; None when it cannot be told
    cheaply (an s3:// prefix, a time window), so the verdict is not kept across processes."""
    canary = config.canary
    if canary is None or not canary.enabled:
        return "no-canary"
    if canary.replay == "holdout":
        from ml.settings import MLSettings

        settings = MLSettings()
        train = Path(settings.train_config)
        digest = hashlib.sha256(train.read_bytes()).hexdigest() if train.is_file() else "none"
        return f"holdout:{settings.data_source}:{settings.data_sha256}:{digest}"
    if canary.window or not canary.logs or "://" in canary.logs:
        return None
    return "logs:" + hashlib.sha256(_fingerprint(Path(canary.logs)).encode()).hexdigest()


def _verdict_json(verdict: Verdict) -> str:
    return json.dumps(
        {
            "model": verdict.model,
            "version": verdict.version,
            "results": [
                {**asdict(r), "figures": dict(r.figures) if r.figures else None}
                for r in verdict.results
            ],
        },
        default=float,
        sort_keys=True,
    )


def _verdict_from(raw: str) -> Verdict | None:
    try:
        data = json.loads(raw)
        results = tuple(GateResult(**r) for r in data["results"])
        return Verdict(str(data["model"]), int(data["version"]), results)
    except (ValueError, KeyError, TypeError):
        return None  # an unreadable entry is a miss


def _durable(verdict: Verdict) -> bool:
    """True when every failure is a fact about the versions (see `_CACHEABLE_FAILURES`)."""
    return all(
        r.family in _CACHEABLE_FAILURES or (r.family == "canary" and r.figures)
        for r in verdict.failures
    )


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class VerdictCache:
    """Verdicts by what they depend on, in memory and (with `directory`) on disk.

    The key: model, candidate version and run, production version and run, rollback and
    re-sync flags, the model's effective gates and the replay data (`replay_key`). A key whose
    replay data cannot be told cheaply is kept in memory only.
    """

    def __init__(self, directory: Path | None = None) -> None:
        """`directory`: where verdicts persist across processes (None: memory only)."""
        self.directory = directory
        self.memory: dict[str, Verdict] = {}
        self.computed = 0  # verdicts evaluated (not found), for tests and the benchmark
        self._lock = threading.Lock()

    @staticmethod
    def key(
        state: ModelState | None,
        name: str,
        version: int,
        config: ModelGates,
        *,
        rollback: bool,
        resync: bool,
    ) -> tuple[str, bool]:
        """(key, durable): `durable` when the key names everything the verdict reads."""
        info = state.versions.get(version) if state else None
        holder = None if resync or state is None else state.holder("production")
        replay = replay_key(config)
        parts = {
            "model": name,
            "version": version,
            "run": info.run_id if info else None,
            "status": info.status if info else None,
            # the version's own tags (required_tags); apply records change nothing a gate reads
            # except "was it ever production" (the rollback marker)
            "tags": sorted(kv for kv in info.tags.items() if not kv[0].startswith("promotion."))
            if info
            else None,
            "ran_in_production": has_record(info, "production") if info else None,
            "production": [holder.version, holder.run_id] if holder else None,
            "rollback": rollback,
            "resync": resync,
            "gates": config.model_dump(mode="json", exclude={"soak"}),
            "replay": replay,
            # the governance gates read this reviewed file: a changed file is a new verdict
            "governance": _file_digest(config.governance.file) if config.governance else None,
        }
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest(), replay is not None

    def get_or_compute(self, key: str, durable: bool, compute: Callable[[], Verdict]) -> Verdict:
        """The cached verdict for `key`, or `compute()` it once and keep it."""
        with self._lock:
            if key in self.memory:
                return self.memory[key]
        path = self.directory / f"{key}.json" if self.directory and durable else None
        if path is not None and path.is_file():
            found = _verdict_from(path.read_text(encoding="utf-8"))
            if found is not None:
                with self._lock:
                    self.memory[key] = found
                return found
        verdict = compute()
        with self._lock:
            self.memory[key] = verdict
            self.computed += 1
        if path is not None and _durable(verdict):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(_verdict_json(verdict), encoding="utf-8")
                tmp.replace(path)
            except OSError:
                pass  # a cache that cannot be written only costs time
        return verdict


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
    from ml.promotions.reconcile import diff

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


# The governance gates register themselves here, after `canary` (protected-inputs, fairness).
from ml.governance import gates as _governance_gates  # noqa: E402, F401
