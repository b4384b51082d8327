"""`apply --env`: make the registry match the spec for one environment.

MLflow has no compare-and-set, so each model is read, written (alias, then stage mirror, then the
audit tag last) and read again to verify. Every write is skipped when the registry already holds
it, so a second run makes no write calls and a rerun after a crash finishes the missing writes.
The audit record of each apply is its own version tag (`ml.promotions.records`).
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ml.errors import ApplyError, GateError, RegistryError
from ml.gitinfo import git_sha
from ml.promotions.gates import GatesFile, check_model
from ml.promotions.records import has_record, record_tag
from ml.promotions.spec import LoadedSpec
from ml.registry import ModelState, Registry, VersionInfo

STAGE_OF = {"staging": "Staging", "production": "Production"}
Progress = Callable[[str], None]


def model_tag(env: str) -> str:
    """Registered-model tag holding the version last applied to `env` (what status expects)."""
    return f"promotion.{env}.version"


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
        env = os.environ
        url = None
        if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
            server = env.get("GITHUB_SERVER_URL", "https://github.com")
            url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(
            git_sha=git_sha_ or git_sha(),
            actor=actor or env.get("GITHUB_ACTOR") or user,
            pr=pr or env.get("PR_NUMBER") or None,
            run_url=run_url or url,
            time=time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


@dataclass
class ModelResult:
    """What apply did to one model."""

    model: str
    environment: str
    version: int
    changes: list[str] = field(default_factory=list)


def _stage_ok(state: ModelState, version: int, env: str) -> tuple[bool, list[int]]:
    """Whether the stage mirror holds, and which other versions sit in the target stage."""
    want = STAGE_OF[env]
    info = state.versions[version]
    others = [
        v.version for v in state.versions.values() if v.stage == want and v.version != version
    ]
    if env == "staging" and info.stage == "Production":
        return True, others  # never demote the production version to Staging
    return info.stage == want and not others, others


@dataclass(frozen=True)
class PendingWrite:
    """One model in one environment, read and checked; what `write` still has to do."""

    name: str
    version: int
    env: str
    state: ModelState
    rollback: bool
    skipped_staging: bool

    @property
    def info(self) -> VersionInfo:
        """The target version as read."""
        return self.state.versions[self.version]


def check(
    registry: Registry,
    name: str,
    version: int,
    env: str,
    *,
    stages: bool = True,
    allow_skip_staging: bool = False,
    rollback: bool = False,
    gates: GatesFile | None = None,
) -> PendingWrite | None:
    """Read one model and decide; None when the registry already matches. Raises on refusal.

    Writes nothing, so `apply_spec` can check every model before it writes any.
    """
    state = registry.model_state(name)
    if state is None:
        raise ApplyError(f"{name}: not a registered model (hint: check the name in the spec)")
    if state.tags.get("mlflow.prompt.is_prompt", "").lower() == "true":
        raise ApplyError(f"{name} is a prompt, not a model (hint: remove it from the spec)")
    info = state.versions.get(version)
    if info is None:
        raise GateError(f"{name} v{version} does not exist (registered: {sorted(state.versions)})")
    if info.status != "READY":
        raise GateError(f"{name} v{version} is {info.status}, not READY")
    alias_ok = state.aliases.get(env) == version
    stage_ok = _stage_ok(state, version, env)[0] if stages else True
    # Any earlier record will do: requiring this commit's would rewrite every unchanged model on
    # each merge. A promotion that moves something writes its own record (see `write`).
    tag_ok = has_record(info, env)
    if alias_ok and stage_ok and tag_ok and state.tags.get(model_tag(env)) == str(version):
        return None

    if gates is not None and not alias_ok:
        failed = [
            r
            for r in check_model(
                registry, name, version, gates.for_model(name), rollback=rollback, state=state
            )
            if not r.passed
        ]
        if failed:
            raise GateError(
                f"{name} v{version}: gates failed: "
                + "; ".join(f"{r.gate}: {r.detail}" for r in failed)
            )
    skipped = False
    if env == "production":
        in_staging = state.aliases.get("staging") == version or has_record(info, "staging")
        if not in_staging and not alias_ok:
            if not allow_skip_staging:
                raise ApplyError(
                    f"{name} v{version} was never applied to staging; production refuses it "
                    "(hint: apply --env staging first, or pass --allow-skip-staging, which is "
                    "recorded on the version)"
                )
            skipped = True
    return PendingWrite(name, version, env, state, rollback, skipped)


def write(
    registry: Registry, step: PendingWrite, ctx: ApplyContext, *, stages: bool = True
) -> list[str]:
    """Make the registry hold `step`: alias, stage mirror, then the audit tags; verify."""
    name, version, env, state, info = step.name, step.version, step.env, step.state, step.info
    changes: list[str] = []
    stage_ok, others = _stage_ok(state, version, env) if stages else (True, [])
    previous = state.aliases.get(env)
    # The record names the version git last moved away from (model tag), not the alias a crash or
    # an out-of-band edit may have left: a rerun then writes what a clean apply writes.
    last = state.tags.get(model_tag(env), "")
    recorded_previous = int(last) if last.isdigit() else previous
    if previous != version:
        registry.set_alias(name, env, version)
        changes.append(f"alias {env}: {previous or 'none'} → {version}")
    if not stage_ok:
        want = STAGE_OF[env]
        if info.stage != want and not (env == "staging" and info.stage == "Production"):
            registry.transition_stage(name, version, want, archive_existing=True)
            changes.append(f"stage v{version}: {info.stage} → {want}")
            if others:
                changes.append(f"stage {others}: {want} → Archived")
        else:
            for other in others:
                registry.transition_stage(name, other, "Archived", archive_existing=False)
                changes.append(f"stage v{other}: {want} → Archived")
    record_key = record_tag(env, ctx.git_sha)
    # Nothing moved, yet `check` found no record or the model tag behind: write this commit's
    # record unless an interrupted run of this same apply already did.
    if changes or record_key not in info.tags:
        record = {
            "environment": env,
            "version": version,
            "git_sha": ctx.git_sha,
            "pr": ctx.pr,
            "actor": ctx.actor,
            "run_url": ctx.run_url,
            "time": ctx.time,
            "previous": recorded_previous,
            "rollback": step.rollback,
            "allow_skip_staging": step.skipped_staging,
        }
        registry.set_version_tag(name, version, record_key, json.dumps(record, sort_keys=True))
        changes.append(f"tag v{version} {record_key}")
    if state.tags.get(model_tag(env)) != str(version):
        registry.set_model_tag(name, model_tag(env), str(version))
        changes.append(f"tag {name} {model_tag(env)}={version}")
    verify(registry, name, version, env, record_key, stages=stages)
    return changes


def verify(
    registry: Registry, name: str, version: int, env: str, record_key: str, *, stages: bool
) -> None:
    """Read back what apply wrote; MLflow gives no transaction, so trust only a fresh read.

    One call: the version's own record carries its aliases, stage and tags. Archiving the other
    holders of the stage happens in the same transaction as the stage write, which raised if it
    failed.
    """
    info = registry.get_version(name, version)
    if info is None:
        raise RegistryError(f"{name} v{version} vanished during apply")
    problems = []
    if env not in info.aliases:
        problems.append(f"alias {env} is not on v{version}")
    keeps_production = env == "staging" and info.stage == "Production"
    if stages and info.stage != STAGE_OF[env] and not keeps_production:
        problems.append(f"stage of v{version} is {info.stage}")
    if record_key not in info.tags:
        problems.append(f"tag {record_key} missing")
    if problems:
        raise ApplyError(f"{name}: verification after apply failed: " + "; ".join(problems))


def apply_spec(
    registry: Registry,
    loaded: LoadedSpec,
    env: str,
    ctx: ApplyContext,
    *,
    stages: bool = True,
    allow_skip_staging: bool = False,
    gates: GatesFile | None = None,
    progress: Progress = lambda _msg: None,
    workers: int = 1,
) -> list[ModelResult]:
    """Apply every model of the spec to `env`: check them all, then write; each converges alone.

    Nothing is written unless every model passes its checks, so a spec with one bad entry leaves
    the registry as it was. With `workers` > 1 models are read and written concurrently (a
    registry round trip costs 20-40 ms, most of it waiting); a write error is raised after the
    other models finish, and a rerun converges (each model is read → written → verified).
    """
    if env not in STAGE_OF:
        raise ApplyError(f"unknown environment {env!r} (hint: staging or production)")
    names = list(loaded.spec.models)

    def located(name: str, exc: Exception) -> Exception:
        return type(exc)(f"{loaded.where(name)}: {exc}")

    def checked(name: str) -> PendingWrite | None:
        entry = loaded.spec.models[name]
        try:
            return check(
                registry,
                name,
                entry.version,
                env,
                stages=stages,
                allow_skip_staging=allow_skip_staging,
                rollback=entry.rollback,
                gates=gates,
            )
        except (GateError, ApplyError) as exc:
            raise located(name, exc) from exc

    def written(step: PendingWrite | None, name: str) -> ModelResult:
        version = loaded.spec.models[name].version
        if step is None:
            return ModelResult(name, env, version)
        progress(f"{name}: {env} → v{version}")
        try:
            return ModelResult(name, env, version, write(registry, step, ctx, stages=stages))
        except ApplyError as exc:
            raise located(name, exc) from exc

    if workers <= 1 or len(names) == 1:
        steps = [checked(name) for name in names]
        return [written(step, name) for step, name in zip(steps, names, strict=True)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        steps = list(pool.map(checked, names))
        return list(pool.map(written, steps, names))
