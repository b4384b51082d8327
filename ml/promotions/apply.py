"""`apply --env`: execute the reconciler's actions for one environment, then verify them.

Order: observe all → evaluate gates for the models whose alias moves → diff; any refused action
stops everything before a write. Then, under the lease of every model to write in this
environment (`lease.<env>`: the other environment's lane is never blocked), diff again against
the lease's read-back (a full read of every model taken after the leases were written: the
state may have moved while we waited) and run each action's writes, models concurrently:
`promotion.<env>.pending` (this apply, its commit and the previous version) BEFORE the alias,
then the alias, the stage mirror, the version's apply record and `promotion.<env>.version`.
Verification reads every written model once (one batch) and diffs each again: only when the
diff is empty (and the pending record and the lease are still this apply's) is its pending
record deleted. A crash anywhere leaves the pending record, which `status` reports as an
interrupted apply and a rerun finishes (every write is idempotent).

Round trips over REST, per environment: two searches to observe, one to check no lease is
held, two to read the leases back, two to verify, whatever the number of models; per model
only the writes (lease, pending, alias, stage, record, applied, clear, release).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ml.adapters import actions, git
from ml.errors import ApplyError
from ml.promotions.gates.cache import VerdictCache
from ml.promotions.gates.config import GatesFile
from ml.promotions.gates.verdicts import gated_diff
from ml.promotions.reconcile import (
    Action,
    Desired,
    Kind,
    Observed,
    Step,
    diff,
    observe,
    refusal_error,
)
from ml.promotions.records import (
    LEASE_TAG,
    Lease,
    applied_tag,
    apply_record,
    begin_operation,
    end_operation,
    lease_owner,
    lease_tag,
    leased,
    now_iso,
    pending_operation,
    pending_tag,
    record_tag,
)
from ml.registry import ModelState, Registry


@dataclass(frozen=True)
class ApplyContext:
    """Who and what is applying; from GitHub Actions' variables unless overridden."""

    git_sha: str
    actor: str
    pr: str | None
    run_url: str | None
    time: str

    @classmethod
    def from_env(
        cls,
        *,
        git_sha_: str | None = None,
        actor: str | None = None,
        pr: str | None = None,
        run_url: str | None = None,
        time: str | None = None,
    ) -> ApplyContext:
        """GITHUB_SHA, GITHUB_ACTOR, PR_NUMBER and the run URL, each overridable."""
        import os

        return cls(
            git_sha=git_sha_ or git.sha(),
            actor=actor or actions.actor(),
            pr=pr or os.environ.get("PR_NUMBER") or None,
            run_url=run_url or actions.run_url(),
            time=time or now_iso(),
        )


@dataclass(frozen=True)
class ApplyOptions:
    """Switches of one apply (defaults: `PromotionSettings`)."""

    stages: bool = True
    allow_skip_staging: bool = False
    workers: int = 4
    owner: str | None = None  # lease owner; default `lease_owner()`
    lease_seconds: float = 900
    settle: float = 0.2  # seconds between writing the lease and reading it back
    cache: VerdictCache | None = None  # verdicts across calls (default: memory, this apply)


def decide(
    registry: Registry,
    desired: Sequence[Desired],
    observed: Observed,
    env: str,
    gates: GatesFile | None,
    options: ApplyOptions,
    cache: VerdictCache | None = None,
) -> list[Action]:
    """Diff for one environment with gate verdicts for the models whose alias moves; raise the
    refusal (nothing written) when any action is refused. `cache`: see `gates.VerdictCache`."""
    actions = gated_diff(
        registry,
        desired,
        observed,
        (env,),
        gates,
        stages=options.stages,
        allow_skip_staging=options.allow_skip_staging,
        workers=options.workers,
        cache=cache if cache is not None else options.cache,
    )
    error = refusal_error(actions)
    if error is not None:
        raise error
    return actions


def _record(action: Action, ctx: ApplyContext) -> str:
    return apply_record(
        env=action.env,
        version=action.desired,
        previous=action.previous,
        git_sha=ctx.git_sha,
        pr=ctx.pr,
        actor=ctx.actor,
        run_url=ctx.run_url,
        time=ctx.time,
        rollback=action.rollback,
        allow_skip_staging=action.skip_staging,
        resync=action.resync,
    )


def verify(
    registry: Registry,
    action: Action,
    ctx: ApplyContext,
    owner: str,
    options: ApplyOptions,
    state: ModelState | None = None,
    *,
    read: bool = True,
) -> None:
    """Diff a read of the model taken after the writes again: nothing may be left to write,
    the pending record must be this apply's and the lease ours. MLflow gives no transaction;
    trust only a fresh read: `state` is one (apply's batch read after every write), else
    (`read`) the model is read here."""
    name, env, v = action.model, action.env, action.desired
    if read and state is None:
        state = registry.model_state(name)
    if state is None:
        raise ApplyError(f"{name} vanished during apply")
    problems = []
    # this environment's lease, or the model-wide one an older writer (a deploy) takes
    lease = Lease.parse(state.tags.get(lease_tag(env)))
    wide = Lease.parse(state.tags.get(LEASE_TAG))
    if (lease is None or lease.owner != owner) and (wide is None or wide.owner != owner):
        problems.append(f"the lease is now {lease.holder() if lease else 'gone'}")
    op = pending_operation(state.tags, env)
    if op is None or op.git_sha != ctx.git_sha or op.version != v:
        problems.append(f"{pending_tag(env)} was rewritten by another writer")
    info = state.versions.get(v)
    if info is None or record_tag(env, ctx.git_sha) not in info.tags:
        problems.append(f"the apply record {record_tag(env, ctx.git_sha)} is missing")
    tags = {k: val for k, val in state.tags.items() if k != pending_tag(env)}
    desired = Desired(name, v, action.waiver, pins=((env, v),))
    again = diff(
        [desired],
        Observed({name: replace(state, tags=tags)}),
        (env,),
        stages=options.stages,
        allow_skip_staging=True,
    )[0]
    if again.kind != Kind.NOOP:
        left = [w.detail for w in again.writes if w.step not in (Step.PENDING, Step.CLEAR)]
        problems += left or list(again.reasons)
    if problems:
        raise ApplyError(
            f"{name}: verification after apply to {env} failed: "
            + "; ".join(problems)
            + f" (the pending record stays; rerun `mlops promote apply --env {env}`)"
        )


def execute(
    registry: Registry,
    action: Action,
    ctx: ApplyContext,
    owner: str,
    options: ApplyOptions,
    *,
    until_clear: bool = False,
) -> None:
    """Run one action's writes in order; the last step verifies before clearing.
    `until_clear`: stop before that step (apply verifies every model in one read, then clears)."""
    name, env, v = action.model, action.env, action.desired
    for write in action.writes:
        if until_clear and write.step == Step.CLEAR:
            return
        if write.step == Step.PENDING:
            begin_operation(
                registry,
                name,
                env,
                "apply",
                version=v,
                previous=action.previous,
                git_sha=ctx.git_sha,
                actor=ctx.actor,
                run_url=ctx.run_url,
                time=ctx.time,
            )
        elif write.step == Step.ALIAS:
            registry.set_alias(name, env, v)
        elif write.step == Step.STAGE:
            assert write.version is not None
            assert write.stage is not None
            registry.transition_stage(name, write.version, write.stage)
        elif write.step == Step.RECORD:
            registry.set_version_tag(name, v, record_tag(env, ctx.git_sha), _record(action, ctx))
        elif write.step == Step.APPLIED:
            registry.set_model_tag(name, applied_tag(env), str(v))
        elif write.step == Step.CLEAR:
            verify(registry, action, ctx, owner, options)
            end_operation(registry, name, env)


def apply_spec(
    registry: Registry,
    desired: Sequence[Desired],
    env: str,
    ctx: ApplyContext,
    *,
    gates: GatesFile | None = None,
    options: ApplyOptions | None = None,
) -> list[Action]:
    """Make the registry match `desired` in `env`; return the actions (executed ones included).

    Nothing is written unless every model passes its checks. Models with writes are leased for
    the duration (`records.leased`), then written concurrently (`options.workers`); a write error
    is raised after the other models finish, and a rerun converges.
    """
    options = options or ApplyOptions()
    owner = options.owner or lease_owner()
    names = [d.name for d in desired]
    cache = options.cache or VerdictCache()  # the second look under the lease reuses verdicts
    actions = decide(
        registry, desired, observe(registry, names, options.workers), env, gates, options, cache
    )
    todo = [d for d, a in zip(desired, actions, strict=True) if a.writes]
    if not todo:
        return actions
    with leased(
        registry,
        [d.name for d in todo],
        owner,
        run_url=ctx.run_url,
        seconds=options.lease_seconds,
        settle=options.settle,
        env=env,
        workers=options.workers,
    ) as held:
        # the leases' read-back is a full read of every model taken under the lease
        now = decide(registry, todo, Observed(held.states), env, gates, options, cache)
        writing = {a.model: a for a in now if a.writes}
        errors: dict[str, BaseException] = {}

        def each(call: Callable[[Action], None], actions: list[Action]) -> list[Action]:
            """`call` on every action, models concurrently; the ones that raised nothing."""

            def one(action: Action) -> None:
                try:
                    call(action)
                except Exception as exc:  # raised after the other models finish
                    errors[action.model] = exc

            if options.workers <= 1 or len(actions) <= 1:
                for action in actions:
                    one(action)
            else:
                with ThreadPoolExecutor(max_workers=min(options.workers, len(actions))) as pool:
                    list(pool.map(one, actions))
            return [a for a in actions if a.model not in errors]

        written = each(
            lambda a: execute(registry, a, ctx, owner, options, until_clear=True),
            list(writing.values()),
        )
        if written:
            after = registry.read_models([a.model for a in written], workers=options.workers)
            held.seen(after)
            verified = each(
                lambda a: verify(registry, a, ctx, owner, options, after.get(a.model), read=False),
                written,
            )
            each(lambda a: end_operation(registry, a.model, env), verified)
        failed = [errors[name] for name in writing if name in errors]
        if failed:
            raise failed[0]
    done = {a.model: a for a in now}
    return [done.get(a.model, a) for a in actions]
