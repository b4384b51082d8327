"""Promotion gates: integrity (exists, READY, a flavor the serve image loads), required tags,
metric floors/ceilings, regression against production, and the input signature.

The gates file is reviewed like code. An explicit rollback (`rollback: true`) waives only the gate
that demands improvement (regression); every integrity gate, the tags, the signature and the
absolute floors stay: an old version below today's floor is not a safe place to roll back to, and
lowering a floor is itself a reviewed change to `config/gates.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml.errors import SpecError
from ml.promotions.records import has_record
from ml.promotions.spec import LoadedSpec, _line_of, _plain, load_yaml
from ml.registry import ModelState, Registry, VersionInfo

LOWER_IS_BETTER = frozenset({"brier", "log_loss"})
DEFAULT_GATES = Path("config/gates.yaml")


class ModelGates(BaseModel):
    """Gates for one model (or the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_tags: tuple[str, ...] | None = None
    floors: dict[str, float] | None = None
    ceilings: dict[str, float] | None = None
    max_regression: dict[str, float] | None = Field(default=None)
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
    """Parse the gates file (same strictness and error format as the spec)."""
    root = load_yaml(path)
    try:
        return GatesFile.model_validate(_plain(root) or {})
    except ValidationError as exc:
        problems = [
            f"{path}:{_line_of(root, tuple(e['loc']))}: "
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} "
            "(hint: keys are required_tags, floors, ceilings, max_regression, allow_schema_change, "
            "servable_flavors)"
            for e in exc.errors()
        ]
        raise SpecError("\n".join(problems)) from None


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict with its numbers."""

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


def was_production(version: VersionInfo) -> bool:
    """True when the engine once applied this version to production (its tag says so)."""
    return has_record(version, "production")


def is_rollback(state: ModelState | None, target: int) -> bool:
    """Target is older than the current production version, or was once production."""
    if state is None:
        return False
    current = state.aliases.get("production")
    if current is None or current == target:
        return False
    info = state.versions.get(target)
    return target < current or (info is not None and was_production(info))


def check_model(
    registry: Registry,
    name: str,
    version: int,
    gates: ModelGates,
    *,
    rollback: bool,
    state: ModelState | None,
) -> list[GateResult]:
    """Run every gate for one model; integrity failures stop before metrics are read."""
    results: list[GateResult] = []

    def add(gate: str, passed: bool, detail: str, waived: bool = False) -> None:
        results.append(GateResult(name, gate, passed, detail, waived))

    info = state.versions.get(version) if state else None
    if info is None:
        known = sorted(state.versions) if state else []
        add(
            "exists",
            False,
            f"{name} v{version} is not in the registry (registered: {known or 'none'}; "
            "hint: pick an existing version or register it with `mlops train`)",
        )
        return results
    add("exists", True, f"{name} v{version} is registered")
    add("ready", info.status == "READY", f"status {info.status} (need READY)")
    if info.status != "READY":
        return results

    if gates.servable_flavors:
        flavors = registry.flavors(name, version)
        servable = sorted(set(flavors) & set(gates.servable_flavors))
        add(
            "flavor",
            bool(servable),
            f"logged as {flavors}; the serve image loads {list(gates.servable_flavors)}"
            + ("" if servable else " (hint: register the model in a flavor the image serves)"),
        )

    for tag in gates.required_tags or ():
        tag_value = info.tags.get(tag)
        add(
            f"tag:{tag}",
            bool(tag_value),
            f"{tag}={tag_value!r}" if tag_value else f"missing tag {tag}",
        )

    metrics = registry.run_metrics_cached(info.run_id) if info.run_id else {}
    for metric, floor in sorted((gates.floors or {}).items()):
        value = metrics.get(metric)
        ok = value is not None and value >= floor
        shown = "missing" if value is None else f"{value:.4f}"
        add(f"floor:{metric}", ok, f"{metric} {shown} >= {floor}")
    for metric, ceiling in sorted((gates.ceilings or {}).items()):
        value = metrics.get(metric)
        ok = value is not None and value <= ceiling
        shown = "missing" if value is None else f"{value:.4f}"
        add(f"ceiling:{metric}", ok, f"{metric} {shown} <= {ceiling}")

    prod = state.holder("production") if state else None
    older = is_rollback(state, version)
    if rollback:
        add(
            "rollback-marker",
            older,
            f"rollback: true and v{version} is older than, or was once, production"
            if older
            else f"rollback: true but v{version} is neither older than production nor was "
            "ever production (hint: remove `rollback: true`)",
        )
    if prod is None or prod.version == version:
        reason = "no production version" if prod is None else "already production"
        for metric in sorted(gates.max_regression or {}):
            add(f"regression:{metric}", True, f"skipped ({reason})")
    else:
        base = registry.run_metrics_cached(prod.run_id) if prod.run_id else {}
        for metric, allowed in sorted((gates.max_regression or {}).items()):
            new, old = metrics.get(metric), base.get(metric)
            if new is None or old is None:
                add(f"regression:{metric}", False, f"{metric} missing on v{version} or production")
                continue
            drop = (new - old) if metric in LOWER_IS_BETTER else (old - new)
            ok = drop <= allowed
            detail = (
                f"{metric} v{version} {new:.4f} vs production v{prod.version} {old:.4f}: "
                f"worse by {drop:+.4f} (allowed {allowed})"
            )
            if rollback and not ok:
                add(f"regression:{metric}", True, detail + " [waived: rollback]", waived=True)
            else:
                add(f"regression:{metric}", ok, detail)

    if prod is not None and prod.version != version:
        mine = registry.signature_inputs(name, version)
        theirs = registry.signature_inputs(name, prod.version)
        same = mine == theirs
        if same:
            add("signature", True, f"inputs match production v{prod.version} ({len(mine or {})})")
        elif gates.allow_schema_change:
            add("signature", True, "inputs differ from production; allowed by gates file")
        else:
            added = sorted(set(mine or {}) - set(theirs or {}))
            gone = sorted(set(theirs or {}) - set(mine or {}))
            retyped = sorted(
                k
                for k in set(mine or {}) & set(theirs or {})
                if (mine or {})[k] != (theirs or {})[k]
            )
            add(
                "signature",
                False,
                f"inputs differ from production v{prod.version}: added {added}, removed {gone}, "
                f"retyped {retyped} (hint: set allow_schema_change: true in the gates file by PR)",
            )
    else:
        mine = registry.signature_inputs(name, version)
        add("signature", mine is not None, "has an input signature" if mine else "no signature")
    return results


def check_spec(registry: Registry, loaded: LoadedSpec, gates: GatesFile) -> list[GateResult]:
    """Every gate for every model in the spec, against the live registry."""
    results: list[GateResult] = []
    for name, entry in loaded.spec.models.items():
        state = registry.model_state(name)
        if state is None:
            results.append(
                GateResult(
                    name,
                    "exists",
                    False,
                    f"{loaded.where(name)}: unknown model {name!r}: not registered in MLflow "
                    "(hint: check the name, or train and register it first)",
                )
            )
            continue
        for res in check_model(
            registry,
            name,
            entry.version,
            gates.for_model(name),
            rollback=entry.rollback,
            state=state,
        ):
            if not res.passed:
                res = GateResult(
                    res.model, res.gate, False, f"{loaded.where(name)}: {res.detail}", res.waived
                )
            results.append(res)
    return results
