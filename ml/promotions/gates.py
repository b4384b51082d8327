"""Promotion gates: the checks a version must pass before an alias moves to it.

Gates read metrics and MLmodel files, so they run BEFORE the reconciler diffs: `evaluate` turns
(registry, observed state, desired versions, gates file) into one `Verdict` per model, and
`ml.promotions.reconcile.diff` takes the verdicts as an input.

Integrity (the version exists and is READY) always runs first and cannot be configured away.
Every other gate is a function registered with `@gate("name")` in this module, in the order they
run; to add one (e.g. "loadable", "canary"), write the function, give it a key in `ModelGates`
if it is configurable, and decorate it. Waivers are decided in one place: `WAIVED_ON_ROLLBACK`.
An explicit rollback (`rollback: true`) waives only the gates that demand improvement; the
integrity gates, the tags, the signature and the absolute floors stay (an old version below
today's floor is not a safe place to roll back to, and lowering a floor is itself a reviewed
change to `config/gates.yaml`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from ml.errors import SpecError
from ml.promotions.records import is_rollback
from ml.promotions.spec import line_of, load_yaml, plain

if TYPE_CHECKING:
    from ml.promotions.reconcile import Desired, Observed
    from ml.registry import ModelState, Registry, VersionInfo

LOWER_IS_BETTER = frozenset({"brier", "log_loss"})
WAIVED_ON_ROLLBACK = frozenset({"regression"})
"""Gate names an explicit `rollback: true` waives: only those that demand improvement."""
RUN_GATES = ("tag", "floor", "ceiling")
"""Gates that judge a training run on its own records (tags, logged metrics), so they can run
before the run is registered (`check_run`); the others need a version (flavor, signature) or
production to compare with (regression)."""


class ModelGates(BaseModel):
    """Gates for one model (or the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_tags: tuple[str, ...] | None = None
    floors: dict[str, float] | None = None
    ceilings: dict[str, float] | None = None
    max_regression: dict[str, float] | None = None
    allow_schema_change: bool | None = None
    servable_flavors: tuple[str, ...] | None = None


class GatesFile(BaseModel):
    """`config/gates.yaml`: defaults plus per-model overrides (a per-model key replaces it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    defaults: ModelGates = ModelGates()
    models: dict[str, ModelGates] = {}

    def for_model(self, name: str) -> ModelGates:
        """Effective gates: per-model keys override the defaults key by key."""
        override = self.models.get(name, ModelGates())
        merged = self.defaults.model_dump() | override.model_dump(exclude_none=True)
        return ModelGates.model_validate(merged)


def load_gates(path: Path) -> GatesFile:
    """Parse the gates file (same strictness, limits and error format as the spec)."""
    root = load_yaml(path)
    try:
        return GatesFile.model_validate(plain(root) or {})
    except ValidationError as exc:
        keys = ", ".join(ModelGates.model_fields)
        problems = [
            f"{path}:{line_of(root, tuple(e['loc']))}: "
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (hint: keys are {keys})"
            for e in exc.errors()
        ]
        raise SpecError("\n".join(problems)) from None


@dataclass(frozen=True)
class GateResult:
    """One check's outcome with its numbers; `gate` is `family:detail` (e.g. floor:roc_auc)."""

    model: str
    gate: str
    passed: bool
    detail: str
    waived: bool = False

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
    """What a gate sees: the version, its model as observed, the model's gates, the adapter."""

    registry: Registry
    info: VersionInfo
    state: ModelState
    config: ModelGates
    rollback: bool

    @property
    def production(self) -> VersionInfo | None:
        """The version production serves, when it is another one."""
        prod = self.state.holder("production")
        return prod if prod is not None and prod.version != self.info.version else None

    def metrics(self, info: VersionInfo | None = None) -> dict[str, float]:
        """Run metrics of `info` (default: the candidate)."""
        target = info or self.info
        return self.registry.run_metrics(target.run_id) if target.run_id else {}


Check = Callable[[GateInput], Iterable[tuple[str, bool, str]]]
GATES: dict[str, Check] = {}
"""The registered gates, in the order they run: name → check yielding (gate, passed, detail)."""


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


@gate("signature")
def _signature(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    name, prod = g.info.name, g.production
    mine = g.registry.signature_inputs(name, g.info.version)
    if prod is None:
        yield "signature", mine is not None, "has an input signature" if mine else "no signature"
        return
    theirs = g.registry.signature_inputs(name, prod.version)
    if mine == theirs:
        yield "signature", True, f"inputs match production v{prod.version} ({len(mine or {})})"
    elif g.config.allow_schema_change:
        yield "signature", True, "inputs differ from production; allowed by gates file"
    else:
        a, b = mine or {}, theirs or {}
        retyped = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        yield (
            "signature",
            False,
            f"inputs differ from production v{prod.version}: added {sorted(set(a) - set(b))}, "
            f"removed {sorted(set(b) - set(a))}, retyped {retyped} "
            "(hint: set allow_schema_change: true in the gates file by PR)",
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
                for gate_name, passed, detail in check(g):
                    results.append(_waive(GateResult(name, gate_name, passed, detail), rollback))
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
        GateResult(name, gate_name, passed, detail)
        for family in RUN_GATES
        for gate_name, passed, detail in GATES[family](g)
    ]
    return Verdict(name, 0, tuple(results))


def evaluate(
    registry: Registry,
    observed: Observed,
    desired: Iterable[Desired],
    gates: GatesFile,
    workers: int = 4,
) -> dict[str, Verdict]:
    """One verdict per desired model, models concurrently (each gate read is a round trip)."""
    wanted = list(desired)

    def one(d: Desired) -> Verdict:
        return check_version(
            registry,
            observed.state(d.name),
            d.name,
            d.version,
            gates.for_model(d.name),
            rollback=d.rollback,
        )

    if workers <= 1 or len(wanted) <= 1:
        return {d.name: one(d) for d in wanted}
    with ThreadPoolExecutor(max_workers=min(workers, len(wanted))) as pool:
        return {v.model: v for v in pool.map(one, wanted)}
