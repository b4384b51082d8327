"""`mlops deploy`: one release to one environment, as one transaction.

    observe  → the environment's alias version(s), the service's task definition (image and
               pinned version), the last deploy record (an unfinished one is resumed: its
               `previous` is the state to restore, not what the interrupted run left behind)
    refuse   → nothing written: image not in ECR, release not verified in staging (production),
               withdrawn, superseded, no passing scan, tampered record, gates failed, lease held
    lease    → `lease` on every model the release names
    record   → `deploy.<env>` {phase started, previous} and `promotion.<env>.pending` {op deploy}
    revision → from the family's LATEST revision with the release's image digest AND its model
               version pinned (`SERVE_MODEL_VERSION`): a task serves exactly its release
    service  → update_service; bounded wait (circuit breaker, timeout, superseded)
    smoke    → mandatory: /ready 200, /metadata names the release's version and git SHA
    alias    → only now, as the registry's record of what runs: the promotions engine's check
               (done before the lease) + write (apply records, stage mirror)
    done     → `deploy.<env>` phase done, pending cleared, lease released

On any failure: ECS goes back to the previous revision first (it pins the previous version and
needs no registry), the revert is waited for and smoke-tested, THEN the registry records are
written, best effort (a registry outage never stops a revert; the unfinished record lets the
next run converge). Exit 9 (`DeployError`) names the failed step; when the revert itself fails
or cannot be verified, exit 10 (`RevertError`) says what a human must do. SIGINT/SIGTERM (a
cancelled job) stops the deploy without a revert, exit 16 (`DeployInterruptedError`): every task
still serves the previous release or the new one, never a mix, the alias has not moved, and the
next run of any release resumes. A deploy killed outright (SIGKILL) leaves the same state.

Over 500 lines on purpose: the steps, their revert and the records they write share one observed
state and are read as one sequence; the ECS, ECR, smoke and alias work each live in their own
module (ml.deploy.rollout and the ECS adapter, ecr, smoke, alias).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ml.adapters import actions, ecs
from ml.adapters.ecs import ServiceRef
from ml.deploy import alias, records, rollout
from ml.deploy import release as releases
from ml.deploy.ecr import ensure_in_ecr
from ml.deploy.records import DeployRecord, Previous
from ml.deploy.release import Release
from ml.deploy.rollout import RolloutError, RolloutObserver
from ml.deploy.smoke import Expected, smoke_health, smoke_serve
from ml.errors import DeployError, DeployInterruptedError, ReleaseError, RevertError
from ml.promotions.records import now_iso
from ml.registry import Registry

Progress = Callable[[str], None]
Kind = Literal["serve", "mlflow"]


@dataclass(frozen=True)
class Target:
    """Where a release goes: environment label, service, smoke URL and which image it runs."""

    env: str  # staging | production | mlflow (the platform's MLflow service)
    service: ServiceRef
    url: str
    kind: Kind = "serve"
    container: str | None = None


@dataclass(frozen=True)
class Options:
    """How a deploy behaves; the defaults are the production ones."""

    stages: bool = True
    gates: Any = None  # GatesFile | None (imported lazily by the CLI)
    allow_skip_staging: bool = False
    rollout_timeout: float = 900.0
    poll_interval: float = 10.0
    smoke_timeout: float = 180.0
    smoke_poll: float = 2.0
    # The restored state gets longer: its tasks restart after the failed ones are stopped.
    revert_smoke_timeout: float = 300.0
    lease_ttl: float = 3600.0
    lease_settle: float = 0.2
    owner: str = "unknown"
    observer: RolloutObserver = rollout.observe
    breakglass: dict[str, Any] | None = None
    # Production's extra refusals (superseded, scan, record integrity), each raising with
    # nothing written; the CLI builds them from its settings.
    production_checks: tuple[Callable[[Release], None], ...] = ()


@dataclass
class Outcome:
    """What a deploy did."""

    release: str
    env: str
    noop: bool
    task_definition: str
    previous: Previous
    changes: list[str] = field(default_factory=list)


class _StepError(Exception):
    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {cause}")
        self.step = step
        self.cause = cause


def _image(rel: Release, kind: Kind) -> str:
    image = rel.serve_image if kind == "serve" else rel.mlflow_image
    if not image:
        raise ReleaseError(f"release {rel.id} names no {kind} image")
    return image


def _ctx(rel: Release, run_url: str | None, actor: str | None) -> Any:
    from ml.promotions.apply import ApplyContext

    return ApplyContext.from_env(git_sha_=rel.git_sha, actor=actor, run_url=run_url)


class Deployment:
    """One run of the transaction; holds the clients and writes the records as it goes."""

    def __init__(
        self,
        registry: Registry,
        ecs_client: Any,
        ecr_client: Any,
        model: str,
        target: Target,
        options: Options,
        *,
        run_url: str | None = None,
        actor: str | None = None,
        progress: Progress = lambda _msg: None,
    ) -> None:
        self.registry = registry
        self.ecs = ecs_client
        self.ecr = ecr_client
        self.model = model
        self.target = target
        self.opts = options
        self.run_url = run_url
        self.actor = actor or actions.actor()
        self.say = progress
        self.record: DeployRecord | None = None

    # --- records -------------------------------------------------------------------------

    def _write(self, **changes: Any) -> None:
        assert self.record is not None
        self.record = replace(self.record, time=now_iso(), **changes)
        records.write_deploy(self.registry, self.model, self.target.env, self.record)

    def _pending(
        self, rel: Release, op: str, to: dict[str, int | None], frm: dict[str, int | None]
    ) -> None:
        """`promotion.<env>.pending` (the engine's schema) on every model before its alias moves."""
        from ml.promotions.records import begin_operation

        if self.target.kind != "serve":
            return
        for name in sorted(to):
            version = to[name]
            if version is None:
                continue  # a revert that removes the alias: nothing to announce a version of
            begin_operation(
                self.registry, name, self.target.env, op, version=version,
                previous=frm.get(name), git_sha=rel.git_sha, release=rel.id,
                run_url=self.run_url, actor=self.actor,
            )  # fmt: skip

    def _clear_pending(self, names: list[str]) -> None:
        from ml.promotions.records import end_operation, pending_operation

        if self.target.kind != "serve":
            return
        for name in names:
            state = self.registry.model_state(name)
            if state is not None and pending_operation(state.tags, self.target.env):
                end_operation(self.registry, name, self.target.env)

    # --- the transaction -----------------------------------------------------------------

    def run(self, rel: Release) -> Outcome:
        """Deploy `rel` (see the module docstring for the steps and the exit codes).

        Returns the `Outcome` on success; raises `DeployError` (reverted and verified),
        `RevertError` (not), `DeployInterruptedError` (SIGINT/SIGTERM: left for a later run to
        resume), or a refusal before anything was written.
        """
        with _signals_interrupt():
            try:
                return self._run(rel)
            except DeployInterrupted as sig:  # before the first write, or during a revert
                t = self.target
                raise DeployInterruptedError(
                    f"deploy of release {rel.id} to {t.env} interrupted by {sig.signal_name} "
                    f"(phase {self.record.phase if self.record else 'none: nothing written'}); "
                    f"rerun `mlops deploy --env {t.env} --release {rel.id}` to converge"
                ) from None

    def _run(self, rel: Release) -> Outcome:
        t, kind = self.target, self.target.kind
        image = _image(rel, kind)
        if kind == "serve" and self.model not in rel.models:
            raise ReleaseError(
                f"release {rel.id} names no version of the served model {self.model} "
                f"(it names {sorted(rel.models)}; hint: SERVE_MODEL_NAME)"
            )
        names = sorted(rel.models) if kind == "serve" else []
        pin = rel.models[self.model] if kind == "serve" else None
        state = self.registry.model_state(self.model)
        last = records.read_deploy(state.tags if state else {}, t.env)

        # Refusals: nothing written yet.
        if kind == "serve" and t.env == "production":
            releases.refuse_withdrawn(rel, t.env)
            if not self.opts.allow_skip_staging:
                staging = records.read_deploy(state.tags if state else {}, "staging")
                releases.require_verified(rel, "staging", staging)
            if self.opts.breakglass is None:  # break-glass returns to a release it already ran
                for check in self.opts.production_checks:
                    check(rel)
        ensure_in_ecr(self.ecr, image)
        running = ecs.current_task_definition(self.ecs, t.service)
        running_image, running_pin = rollout.running_pair(self.ecs, running, t.container)
        current = alias.observe(self.registry, names, t.env)
        wanted = {n: rel.models[n] for n in names}

        if kind == "mlflow" and running_image == image and (last is None or last.finished):
            self.say(f"{t.service} already runs {image}: digest unchanged, nothing to deploy")
            return Outcome(rel.id, t.env, True, running, Previous({}, running))
        done = last is not None and last.release == rel.id and last.phase == "done"
        same_pair = running_image == image and running_pin == pin
        if done and last is not None and current == wanted and same_pair:
            self.say(f"release {rel.id} already deployed and verified in {t.env}: no-op")
            return Outcome(rel.id, t.env, True, running, last.previous)

        if last is not None and (not last.finished or last.phase == "revert-failed"):
            # The state before that run is the last one known good: restore to it, not to
            # whatever the interrupted (or unreverted) run left behind.
            previous = last.previous
            verb = "resuming" if last.release == rel.id else "taking over from"
            self.say(
                f"{verb} the interrupted deploy of {last.release} in {t.env} (phase "
                f"{last.phase}); previous state: {previous.versions} {previous.task_definition}"
            )
        else:
            before = None
            if last is not None:
                before = last.release if last.phase == "done" else last.previous.release
            previous = Previous(current, running, before)

        ctx = _ctx(rel, self.run_url, self.actor)
        steps = []
        if kind == "serve":
            steps = alias.check(
                self.registry, wanted, t.env, gates=self.opts.gates, stages=self.opts.stages,
                allow_skip_staging=self.opts.allow_skip_staging,
                rollback=self.opts.breakglass is not None,
            )  # fmt: skip

        from ml.promotions.records import leased

        # One lane per environment: a staging deploy never holds production's lease.
        with leased(
            self.registry, names, self.opts.owner, run_url=self.run_url,
            seconds=self.opts.lease_ttl, settle=self.opts.lease_settle, env=t.env,
        ):  # fmt: skip
            self.record = DeployRecord(
                release=rel.id, phase="started", previous=previous, new_task_definition=None,
                run_url=self.run_url, time=now_iso(), actor=self.actor,
                service=str(t.service), image=image,
                allow_skip_staging=self.opts.allow_skip_staging, breakglass=self.opts.breakglass,
            )  # fmt: skip
            records.write_deploy(self.registry, self.model, t.env, self.record)
            self._pending(rel, "deploy", dict(wanted), previous.versions)
            return self._forward(rel, image, pin, steps, ctx, previous)

    def _forward(
        self,
        rel: Release,
        image: str,
        pin: int | None,
        steps: list[Any],
        ctx: Any,
        previous: Previous,
    ) -> Outcome:
        t = self.target
        changes: list[str] = []
        step = "register-task-definition"
        try:
            family = rollout.family_of(previous.task_definition)
            new, fresh = rollout.register_from_latest(self.ecs, family, image, t.container, pin)
            changes.append(f"task definition {new} ({'registered' if fresh else 'reused'})")
            self._write(phase="task-registered", new_task_definition=new)
            step = "update-service"
            if ecs.current_task_definition(self.ecs, t.service) != new:
                ecs.update_service(self.ecs, t.service, new)
                changes.append(f"service {t.service} → {new}")
            self._write(phase="rolling-out")
            step = "rollout"
            seen = rollout.wait_for_rollout(
                self.ecs, t.service, new, timeout=self.opts.rollout_timeout,
                poll_interval=self.opts.poll_interval, observer=self.opts.observer,
            )  # fmt: skip
            self.say(f"rollout of {new}: {seen.detail}")
            self._write(phase="smoke")
            step = "smoke"
            self._smoke(rel.models.get(self.model), rel.git_sha, self.opts.smoke_timeout)
            if t.kind == "serve":
                # The alias records what runs: it moves only once the release runs and answers.
                step = "move-alias"
                self._write(phase="moving-alias")
                changes += alias.write(
                    self.registry, steps, ctx, self.opts.owner, stages=self.opts.stages
                )
        except DeployInterrupted as sig:
            self._interrupted(rel, step, sig)
            raise AssertionError("unreachable: _interrupted always raises") from sig
        except (Exception, KeyboardInterrupt) as exc:
            self._revert(rel, previous, _StepError(step, exc))
            raise AssertionError("unreachable: _revert always raises") from exc
        self._write(phase="done")
        self._clear_pending(sorted(rel.models) if t.kind == "serve" else [])
        if t.kind == "serve" and t.env == "production":
            releases.mark_production_verified(self.registry, self.model, rel, self.run_url)
        self.say(f"deployed release {rel.id} to {t.env}: " + "; ".join(changes))
        return Outcome(rel.id, t.env, False, new, previous, changes)

    def _smoke(self, version: int | None, git_sha: str | None, timeout: float) -> None:
        t = self.target
        if t.kind == "mlflow":
            smoke_health(t.url, timeout=timeout, poll_interval=self.opts.smoke_poll)
            # /health answers without the database; a registry read (REST search through the
            # new tasks) proves they reach it with the current password.
            self.registry.model_state(self.model)
            return
        if version is None:
            raise DeployError(f"no {self.model} version to smoke-test (alias unset)")
        smoke_serve(
            t.url, Expected(self.model, version, git_sha), timeout=timeout,
            poll_interval=self.opts.smoke_poll,
        )  # fmt: skip

    def _interrupted(self, rel: Release, step: str, sig: DeployInterrupted) -> None:
        """SIGINT/SIGTERM: no revert (it takes minutes; GitHub kills the job 10 s after its
        SIGINT). ECS goes on with whatever it was doing; every task still serves one release's
        pair (the revisions are pinned), the alias has not moved, and the unfinished record makes
        the next run of any release resume from the state before this one."""
        t = self.target
        # No registry write here: the phase already recorded says where it stopped, and every
        # call spends the 10 s GitHub allows (the lease release on the way out is the one kept).
        note = f"interrupted by {sig.signal_name} at step {step}"
        raise DeployInterruptedError(
            f"deploy of release {rel.id} to {t.env} {note}; the alias was not moved, ECS keeps "
            f"the revision it was given (every task serves the previous release or {rel.id}). "
            f"Rerun `mlops deploy --env {t.env} --release {rel.id}` to resume (a deploy of "
            f"another release takes over and restores what ran before)"
        ) from None

    def _revert(self, rel: Release, previous: Previous, failure: _StepError) -> None:
        """ECS back to the previous revision first (it needs no registry), verify it, then the
        records, best effort: a registry outage never stops a revert."""
        t = self.target
        cause = failure.cause
        if isinstance(cause, RolloutError) and cause.rollout.kind == "circuit-breaker":
            what = f"ECS circuit-breaker rollback: {cause}"
        else:
            what = str(cause) or type(cause).__name__
        head = f"deploy of release {rel.id} to {t.env} failed at step {failure.step}: {what}"
        self.say(head + "; reverting")
        names = sorted(rel.models) if t.kind == "serve" else []
        problems: list[str] = []
        done: list[str] = []
        superseded = isinstance(cause, RolloutError) and cause.rollout.kind == "superseded"
        if superseded:
            problems.append(
                f"the service was changed by someone else ({cause}); left as they set it"
            )
        else:
            try:
                if ecs.current_task_definition(self.ecs, t.service) != previous.task_definition:
                    ecs.update_service(self.ecs, t.service, previous.task_definition)
                    done.append(f"service {t.service} → {previous.task_definition}")
                rollout.wait_for_rollout(
                    self.ecs, t.service, previous.task_definition,
                    timeout=self.opts.rollout_timeout, poll_interval=self.opts.poll_interval,
                    observer=self.opts.observer,
                )  # fmt: skip
            except Exception as exc:
                problems.append(f"task definition revert to {previous.task_definition}: {exc}")
        if not problems:
            problems += self._verify_revert(previous)
        unrecorded = self._record_revert(rel, previous, failure, what, problems, done, names)
        if problems:
            raise RevertError(
                f"{head}; REVERT NOT VERIFIED: {'; '.join(problems)}. A human must: check "
                f"{t.service} runs {previous.task_definition} and the {t.env} alias names "
                f"{previous.versions}, fix what differs, then rerun `mlops deploy` (it resumes "
                f"from the record deploy.{t.env})" + unrecorded
            ) from cause
        reverted = "; ".join(done) or "nothing had moved yet"
        raise DeployError(
            f"{head}; REVERTED ({reverted}) and verified: {t.env} serves "
            f"{previous.versions or previous.task_definition} again" + unrecorded
        ) from cause

    def _record_revert(
        self,
        rel: Release,
        previous: Previous,
        failure: _StepError,
        what: str,
        problems: list[str],
        done: list[str],
        names: list[str],
    ) -> str:
        """The registry side of a revert, after ECS: the alias back (only when the failure was
        in its move), the deploy record, the pending record. Stops at the first registry error
        (the registry is down: each further call would only wait for its own timeout) and says
        what was left; the unfinished record then makes the next run converge."""
        t = self.target
        try:
            if t.kind == "serve" and failure.step == "move-alias":
                self._pending(rel, "revert", previous.versions, dict(rel.models))
                done += alias.move(
                    self.registry, previous.versions, t.env, _ctx(rel, self.run_url, self.actor),
                    self.opts.owner, gates=None, stages=self.opts.stages, allow_skip_staging=True,
                    rollback=True,
                )  # fmt: skip
            if problems:
                error = (what + " | " + "; ".join(problems))[:900]
                self._write(phase="revert-failed", failed_step=failure.step, error=error)
            else:
                self._write(phase="reverted", failed_step=failure.step, error=what[:500])
                self._clear_pending(names)
        except Exception as exc:
            self.say(f"registry records of the revert not written: {exc}")
            return (
                f". The registry records were not updated ({type(exc).__name__}: "
                f"{str(exc)[:200]}): deploy.{t.env} still says the deploy is unfinished, and "
                "the next `mlops deploy` resumes from it"
            )
        return ""

    def _verify_revert(self, previous: Previous) -> list[str]:
        """Smoke-test the restored state; the problems found (empty: verified). The version to
        expect is the one the previous revision pins (else the alias it followed); the git SHA
        is the previous release's when the registry can say it (best effort)."""
        version = None
        if self.target.kind == "serve":
            try:
                version = rollout.running_pair(
                    self.ecs, previous.task_definition, self.target.container
                )[1]
            except Exception:
                version = None
            if version is None:
                version = previous.versions.get(self.model)
            if version is None:
                return [
                    f"{self.target.env} had no {self.model} alias before: nothing to smoke-test"
                ]
        sha = None
        if previous.release:
            try:
                sha = releases.get(self.registry, self.model, previous.release).git_sha
            except Exception:  # the registry may be the reason for the revert
                sha = None
        try:
            self._smoke(version, sha, self.opts.revert_smoke_timeout)
        except Exception as exc:
            return [f"smoke test of the restored state failed: {exc}"]
        return []


class DeployInterrupted(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM during a deploy (BaseException, so no
    `except Exception` on the way swallows it)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM into `DeployInterrupted`; ignore the ones after it (GitHub
    sends SIGINT, then SIGTERM 7.5 s later: the first one starts the wrap-up)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in wanted}

    def handler(signum: int, _frame: Any) -> None:
        for s in wanted:
            signal.signal(s, signal.SIG_IGN)
        raise DeployInterrupted(signal.Signals(signum).name)

    for s in wanted:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


@dataclass(frozen=True)
class BreakGlass:
    """What a break-glass rollback did, and what the PR that records it must say."""

    outcome: Outcome
    from_release: str | None
    to_release: Release
    pr_commands: list[str]


def break_glass(run: Deployment, *, reason: str | None) -> BreakGlass:
    """Move production back to the previous verified release now (alias + task definition,
    the same transaction), withdraw the release it leaves, and say which PR records it."""
    registry, model, target = run.registry, run.model, run.target
    run_url, actor = run.run_url, run.actor
    if target.env != "production" or target.kind != "serve":
        raise ReleaseError("break-glass rolls back the production API only (--env production)")
    state = registry.model_state(model)
    last = records.read_deploy(state.tags if state else {}, "production")
    current = last.release if last else None
    to = releases.previous_verified(registry, model, current)
    why = {"from": current, "to": to.id, "reason": reason, "run_url": run_url, "actor": actor}
    run.opts = replace(run.opts, breakglass=why, allow_skip_staging=False)
    outcome = run.run(to)
    if current and current != to.id:
        releases.withdraw(
            registry, model, current, "production",
            {"time": now_iso(), "reason": reason, "run_url": run_url, "actor": actor,
             "to": to.id},
        )  # fmt: skip
    note = f"break-glass: production back to release {to.id} from {current or 'unknown'}"
    if reason:
        note += f" ({reason})"
    commands = [
        f'mlops rollback {name} --to {version} --pr --reason "{note}"'
        for name, version in sorted(to.models.items())
    ]
    return BreakGlass(outcome, current, to, commands)
