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
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ml.errors import ConfigError, ContractError, DataError, RegistryError, SpecError
from ml.governance.fairness import GovernanceGates
from ml.promotions.records import is_rollback
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

    @property
    def label(self) -> str:
        """PASS / FAIL / WAIVED."""
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

    @property
    def production(self) -> VersionInfo | None:
        """The version production serves, when it is another one."""
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
        from ml.contract import CONTRACT_FILE, contract_for

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
        yield (
            "signature",
            True,
            f"its {source} contract ({len(mine.features)} features) fits its signature",
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


def check_version(
    registry: Registry,
    state: ModelState | None,
    name: str,
    version: int,
    config: ModelGates,
    *,
    rollback: bool,
) -> Verdict:
    """Every gate for one model's desired version; integrity failures stop before metrics."""
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
            g = GateInput(registry, info, state, config, rollback)
            for check in GATES.values():
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


def evaluate(
    registry: Registry,
    observed: Observed,
    desired: Iterable[Desired],
    gates: GatesFile,
    workers: int = 4,
    known: dict[tuple[str, int, bool, int | None], Verdict] | None = None,
) -> dict[str, Verdict]:
    """One verdict per desired model, models concurrently (each gate read is a round trip).

    `known` keeps verdicts across calls: a verdict depends on the version, the rollback flag
    and the production version it is compared with, so apply's second look under the lease
    reuses the first one's loads and canary unless production moved in between.
    """
    wanted = list(desired)
    seen = {} if known is None else known

    def one(d: Desired) -> Verdict:
        state = observed.state(d.name)
        holder = state.holder("production") if state else None
        key = (d.name, d.version, d.rollback, holder.version if holder else None)
        if key not in seen:
            seen[key] = check_version(
                registry, state, d.name, d.version, gates.for_model(d.name), rollback=d.rollback
            )
        return seen[key]

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
    known: dict[tuple[str, int, bool, int | None], Verdict] | None = None,
) -> list[Action]:
    """The reconciler's diff with gate verdicts for the models whose alias would move: diff,
    evaluate those models once, diff again. Apply decides with it and plan renders it, so both
    show the same verdicts. `gates=None` is the plain diff (nothing evaluated); `known` as in
    `evaluate`."""
    from ml.promotions.reconcile import diff

    def run(verdicts: Mapping[str, Verdict] | None) -> list[Action]:
        return diff(
            desired,
            observed,
            envs,
            verdicts,
            stages=stages,
            allow_skip_staging=allow_skip_staging,
        )

    actions = run(None)
    moving = {a.model for a in actions if a.moves_alias}
    movers = [d for d in desired if d.name in moving]
    if gates is None or not movers:
        return actions
    return run(evaluate(registry, observed, movers, gates, workers, known))


# The governance gates register themselves here, after `canary` (protected-inputs, fairness).
from ml.governance import gates as _governance_gates  # noqa: E402, F401
