"""The reconciler: observe the registry once, diff it against the spec, and nothing else.

`observe(registry, names)` reads every model in one batch. `diff(desired, observed, envs,
verdicts)` is pure: it returns one `Action` per model and environment, saying both what apply
must write (`writes`, in order) and how the environment stands (`sync`: in-sync, pending,
interrupted, drift). The three consumers never compare anything themselves: `plan` renders the
actions, `apply` executes their writes and verifies by diffing again, `status` prints `sync`.

Environments are diffed in order (staging, then production): with both, production's
prerequisite "verified in staging first" and its stage mirror see staging's planned move, so a
plan previews the whole of CD. Lanes never block each other: production's prerequisite is a
finished staging record of the version (`records.verified_in`), never staging's live state, and
an explicit rollback to a version production ran before skips it (break-glass).

A re-sync is not a promotion: when the alias was moved outside git and git's version is the one
last applied to that environment, the action is RESYNC (integrity gates apply; the gates that
compare a candidate with production do not, see `gates.results.COMPARES_WITH_PRODUCTION`),
recorded as a repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from ml.errors import ApplyError, GateError, InterruptedOperationError, MlopsError, RollbackError
from ml.promotions.records import (
    ENVIRONMENTS,
    STAGE_OF,
    Operation,
    applied_tag,
    applied_version,
    has_record,
    is_rollback,
    pending_operation,
    pending_tag,
    stage_fixes,
    verified_in,
)

if TYPE_CHECKING:
    from ml.promotions.gates.results import Verdict
    from ml.promotions.spec import LoadedSpec
    from ml.registry import ModelState, Registry


@dataclass(frozen=True)
class Desired:
    """What git asks for one model (from promotions.yaml).

    `version` is what both environments run, unless `pins` (`environments:` in the spec) gives
    each environment its own: ask `at(env)`.
    """

    name: str
    version: int
    rollback: bool = False
    note: str | None = None
    where: str = ""
    pins: tuple[tuple[str, int], ...] = ()

    def at(self, env: str) -> int:
        """The version git wants in `env`."""
        return dict(self.pins).get(env, self.version)


def desired_from(loaded: LoadedSpec) -> list[Desired]:
    """The spec's models, in file order (`version` is production's for a pinned-apart entry)."""
    out = []
    for name, e in loaded.spec.models.items():
        pins = tuple((env, e.version_in(env)) for env in ENVIRONMENTS) if e.pinned_apart else ()
        version = e.version_in("production")
        out.append(Desired(name, version, e.rollback, e.note, loaded.where(name), pins))
    return out


@dataclass(frozen=True)
class Observed:
    """The registry as read once: each model's state, None when not registered."""

    models: Mapping[str, ModelState | None]

    def state(self, name: str) -> ModelState | None:
        """One model's state (None when not registered or not read)."""
        return self.models.get(name)


def observe(registry: Registry, names: Sequence[str], workers: int = 8) -> Observed:
    """Read every model of `names` in one batch (concurrently over REST)."""
    return Observed(registry.read_models(list(dict.fromkeys(names)), workers=workers))


class Kind(StrEnum):
    """What apply would do to one model in one environment."""

    NOOP = "noop"  # the registry holds it
    PROMOTE = "promote"  # the alias moves (first time or forward)
    ROLLBACK = "rollback"  # the alias moves to an older or former production version
    RESYNC = "resync"  # the alias moved outside git; it goes back to the version git last applied
    REPAIR = "repair"  # the alias is right; the mirror, records or a pending record are not
    REFUSED = "refused"  # cannot be applied; `refusal` and `reasons` say why


class Sync(StrEnum):
    """How one environment stands against git (what `status` reports)."""

    IN_SYNC = "in-sync"
    PENDING = "pending"  # git asks for more than was applied (merged, not applied yet)
    INTERRUPTED = "interrupted"  # a pending record: an apply or deploy did not finish
    DRIFT = "drift"  # the registry differs from what git last applied


class Refusal(StrEnum):
    """Why an action is refused; each maps to one error class (`refusal_error`)."""

    MISSING = "missing"  # model or version not registered
    NOT_READY = "not-ready"
    PROMPT = "prompt"
    GATES = "gates"
    STAGING_FIRST = "staging-first"
    INTERRUPTED = "interrupted"  # another operation (deploy/revert) is in flight
    NOT_A_ROLLBACK = "not-a-rollback"  # `rollback: true` to a version production never ran


class Step(StrEnum):
    """Kinds of registry write, in the order apply makes them."""

    PENDING = "pending"  # promotion.<env>.pending = this apply (before any alias write)
    ALIAS = "alias"
    STAGE = "stage"
    RECORD = "record"  # promotion.<env>.<sha> on the version
    APPLIED = "applied"  # promotion.<env>.version on the model
    CLEAR = "clear"  # delete promotion.<env>.pending (after verification)


@dataclass(frozen=True)
class Write:
    """One registry write: `version` is what it concerns, `stage` for a stage write."""

    step: Step
    version: int | None
    detail: str
    stage: str | None = None


@dataclass(frozen=True)
class Action:
    """One model in one environment: what apply must write, and how it stands now."""

    model: str
    env: str
    kind: Kind
    sync: Sync
    desired: int
    current: int | None  # the alias now
    applied: int | None  # promotion.<env>.version now
    previous: int | None  # what the apply record calls the version it moves away from
    writes: tuple[Write, ...] = ()
    reasons: tuple[str, ...] = ()  # refusal, drift or interruption details
    refusal: Refusal | None = None
    rollback: bool = False
    waiver: bool = False  # `rollback: true` in the spec
    skip_staging: bool = False
    note: str | None = None
    where: str = ""
    interrupted: Operation | None = None
    gates: Verdict | None = field(default=None, compare=False)

    @property
    def moves_alias(self) -> bool:
        """True when apply moves the alias."""
        return any(w.step == Step.ALIAS for w in self.writes)

    @property
    def resync(self) -> bool:
        """True when apply restores the version git last applied (a repair, not a promotion)."""
        return self.kind == Kind.RESYNC


def _interrupted_stages(state: ModelState, env: str) -> list[str]:
    """Stages of the other environments with an interrupted operation: their pending record
    explains the stage moves in flight, and their rerun finishes them."""
    return [STAGE_OF[e] for e in ENVIRONMENTS if e != env and pending_operation(state.tags, e)]


def _sync(env: str, state: ModelState, desired: int, stages: bool) -> tuple[Sync, list[str]]:
    """How `env` stands: interrupted, then drift from git's last apply, then pending."""
    op = pending_operation(state.tags, env)
    if op is not None:
        return Sync.INTERRUPTED, [f"interrupted {op.describe(env)}"]
    applied = applied_version(state.tags, env)
    current = state.aliases.get(env)
    if applied is not None:
        if applied not in state.versions:
            return Sync.DRIFT, [f"{env}: v{applied} (last applied) was deleted from the registry"]
        if current is None:
            return Sync.DRIFT, [f"{env}: alias removed outside git (last applied v{applied})"]
        if current != applied:
            return Sync.DRIFT, [
                f"{env}: alias moved outside git: v{applied} → v{current} (git says v{applied})"
            ]
    elif current is not None:
        return Sync.DRIFT, [f"{env}: alias set to v{current} outside git (never applied)"]
    if stages and current is not None:
        now = {v: i.stage for v, i in state.versions.items()}
        fixes = stage_fixes(env, state.aliases, now, _interrupted_stages(state, env))
        if fixes:
            return Sync.DRIFT, [
                f"{env}: stage of v{v} is {have}, expected {want}" for v, have, want in fixes
            ]
    if desired not in state.versions:
        return Sync.DRIFT, [f"{env}: desired v{desired} does not exist (deleted?)"]
    if applied != desired:
        shown = "none" if applied is None else f"v{applied}"
        return Sync.PENDING, [f"{env}: apply pending: {shown} → v{desired}"]
    return Sync.IN_SYNC, [f"{env}: v{desired} in sync"]


def _fields(
    d: Desired,
    env: str,
    current: int | None = None,
    applied: int | None = None,
    previous: int | None = None,
    rollback: bool = False,
    interrupted: Operation | None = None,
    verdict: Verdict | None = None,
) -> dict[str, object]:
    """The fields every action of `d` in `env` carries, whatever its kind."""
    return {
        "model": d.name, "env": env, "desired": d.at(env), "current": current,
        "applied": applied, "previous": previous, "rollback": rollback, "waiver": d.rollback,
        "note": d.note, "where": d.where, "interrupted": interrupted, "gates": verdict,
    }  # fmt: skip


def _refused(base: dict[str, object], refusal: Refusal, reasons: list[str], sync: Sync) -> Action:
    return Action(
        **base,  # type: ignore[arg-type]
        kind=Kind.REFUSED,
        sync=sync,
        refusal=refusal,
        reasons=tuple(reasons),
    )


def _diff_env(
    d: Desired,
    state: ModelState,
    env: str,
    aliases: dict[str, int],
    staging_ok: bool | None,
    verdict: Verdict | None,
    *,
    stages: bool,
    allow_skip_staging: bool,
) -> Action:
    """One model in one environment. `aliases` are the model's aliases as they will be when
    this env's turn comes (staging's planned move included); `staging_ok` is whether staging
    will hold the version by then (None: decide from the observed state)."""
    v = d.at(env)
    current, applied = state.aliases.get(env), applied_version(state.tags, env)
    op = pending_operation(state.tags, env)
    sync, why = _sync(env, state, v, stages)
    resuming = op is not None and op.op == "apply"
    previous = (
        op.previous
        if resuming and op is not None
        else (applied if applied is not None else current)
    )
    # git's version is the one last applied here and the alias left it outside git: put it back
    resync = current != v and applied == v and op is None
    if resync:
        previous = current
    rollback = not resync and (is_rollback(state, v) or (d.rollback and current != v))
    base = _fields(d, env, current, applied, previous, rollback, op, verdict)
    info = state.versions.get(v)
    if state.tags.get("mlflow.prompt.is_prompt", "").lower() == "true":
        return _refused(
            base,
            Refusal.PROMPT,
            [f"{d.name} is a prompt, not a model (hint: remove it from the spec)"],
            Sync.DRIFT,
        )
    if info is None:
        return _refused(
            base,
            Refusal.MISSING,
            [f"{d.name} v{v} does not exist (registered: {sorted(state.versions) or 'none'})"],
            sync,
        )
    if info.status != "READY":
        return _refused(
            base, Refusal.NOT_READY, [f"{d.name} v{v} is {info.status}, not READY"], sync
        )
    if op is not None and not resuming:
        return _refused(
            base,
            Refusal.INTERRUPTED,
            [
                f"interrupted {op.describe(env)} (hint: "
                "finish or revert it with `mlops deploy` first)"
            ],
            sync,
        )

    needs_alias = current != v
    after = {**aliases, env: v}
    now = {n: i.stage for n, i in state.versions.items()}
    fixes = stage_fixes(env, after, now, _interrupted_stages(state, env)) if stages else []
    complete = (
        not needs_alias and not fixes and op is None and applied == v and has_record(info, env)
    )
    if complete:
        return Action(**base, kind=Kind.NOOP, sync=sync, reasons=tuple(why))  # type: ignore[arg-type]

    skip = False
    ran_here = verified_in(info, env, op)
    if env == "production" and needs_alias and d.rollback and not resync and not ran_here:
        prod = current if current is not None else applied
        newer = f", and is newer than production's v{prod}" if prod is not None and v > prod else ""
        return _refused(
            base,
            Refusal.NOT_A_ROLLBACK,
            [
                f"{d.name}: `rollback: true` but v{v} was never applied to production{newer}: a "
                "rollback returns production to a version it ran before (hint: remove "
                "`rollback: true` to promote it through staging and every gate, or name a "
                "version production ran; `mlops history` lists them)"
            ],
            sync,
        )
    # break-glass: a rollback to a version production ran before never waits for staging
    break_glass = d.rollback and ran_here
    if env == "production" and needs_alias and not resync and not break_glass:
        if staging_ok is None:
            # the version was verified in staging; staging's live state (a deploy in flight,
            # a dead holder's pending record) is staging's business, not production's
            staging_ok = verified_in(info, "staging", pending_operation(state.tags, "staging"))
        if not staging_ok:
            if not allow_skip_staging:
                return _refused(
                    base,
                    Refusal.STAGING_FIRST,
                    [
                        f"{d.name} v{v} was never verified in staging (never applied there, or "
                        "staging's apply did not finish); production refuses it (hint: apply "
                        "--env staging first, or pass --allow-skip-staging, which is recorded "
                        "on the version)"
                    ],
                    sync,
                )
            skip = True
    if needs_alias and verdict is not None and not verdict.passed:
        failed = "; ".join(f"{r.gate}: {r.detail}" for r in verdict.failures)
        return _refused(base, Refusal.GATES, [f"{d.name} v{v}: gates failed: {failed}"], sync)

    writes = [Write(Step.PENDING, v, f"tag {pending_tag(env)} (the apply in flight)")]
    if needs_alias:
        writes.append(Write(Step.ALIAS, v, f"alias {env}: {current or 'none'} → {v}"))
    writes += [
        Write(Step.STAGE, n, f"stage v{n}: {have} → {want}", stage=want) for n, have, want in fixes
    ]
    writes.append(Write(Step.RECORD, v, f"record the apply on v{v}"))
    if applied != v:
        writes.append(Write(Step.APPLIED, v, f"tag {applied_tag(env)}={v}"))
    writes.append(Write(Step.CLEAR, None, "verify, then clear the pending record"))
    if resync:
        kind = Kind.RESYNC
    else:
        kind = (Kind.ROLLBACK if rollback else Kind.PROMOTE) if needs_alias else Kind.REPAIR
    return Action(
        **base,  # type: ignore[arg-type]
        kind=kind,
        sync=sync,
        writes=tuple(writes),
        reasons=tuple(why),
        skip_staging=skip,
    )


def diff(
    desired: Iterable[Desired],
    observed: Observed,
    envs: Sequence[str] = ENVIRONMENTS,
    verdicts: Mapping[tuple[str, str], Verdict] | None = None,
    *,
    stages: bool = True,
    allow_skip_staging: bool = False,
) -> list[Action]:
    """Pure: one `Action` per model and environment, in spec order then `envs` order.

    `verdicts` (from `gates.evaluate`, keyed by (model, environment)) block alias moves whose
    gates failed; None means the gates were not evaluated (status). Envs are diffed in order,
    each seeing the previous one's planned alias move.
    """
    unknown_env = [e for e in envs if e not in STAGE_OF]
    if unknown_env:
        raise ApplyError(f"unknown environment {unknown_env[0]!r} (hint: staging or production)")
    actions: list[Action] = []
    for d in desired:
        state = observed.state(d.name)
        if state is None:
            reason = (
                f"unknown model {d.name!r}: not registered in MLflow (hint: check the name, "
                "or train and register it first)"
            )
            actions += [
                _refused(_fields(d, env), Refusal.MISSING, [reason], Sync.DRIFT) for env in envs
            ]
            continue
        aliases = dict(state.aliases)
        staging_ok: bool | None = None
        for env in envs:
            action = _diff_env(
                d,
                state,
                env,
                aliases,
                staging_ok,
                (verdicts or {}).get((d.name, env)),
                stages=stages,
                allow_skip_staging=allow_skip_staging,
            )
            actions.append(action)
            # the plan previews CD: staging's planned move verifies production's version only
            # when both environments want the same one (a refused staging move leaves
            # production to staging's records: lanes)
            if env == "staging" and action.kind != Kind.REFUSED:
                aliases["staging"] = d.at("staging")
                staging_ok = True if d.at("staging") == d.at("production") else None
    return actions


def refusal_error(actions: Iterable[Action]) -> MlopsError | None:
    """The error for the refused actions (None when none is): the worst class wins, every
    reason is listed with its file:line."""
    refused = [a for a in actions if a.kind == Kind.REFUSED]
    if not refused:
        return None
    seen: dict[str, None] = {}
    for a in refused:
        for reason in a.reasons:
            seen[f"{a.where}: {reason}" if a.where else reason] = None
    message = "\n".join(seen)
    kinds = {a.refusal for a in refused}
    if Refusal.INTERRUPTED in kinds:
        return InterruptedOperationError(message)
    if Refusal.NOT_A_ROLLBACK in kinds:
        return RollbackError(message)
    if Refusal.PROMPT in kinds or (
        # production refused because staging's move is refused by its gates: the gates are
        # the cause (exit 5), as `promote validate` says
        Refusal.STAGING_FIRST in kinds and Refusal.GATES not in kinds
    ):
        return ApplyError(message)
    return GateError(message)
