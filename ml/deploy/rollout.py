"""An ECS rollout of a release: the task-definition revision that pins it, and its observer.

Why each piece is shaped the way it is:

- **A revision pins the release**: the container runs the release's image digest with
  `SERVE_MODEL_VERSION` set to its model version (serve then ignores the alias), so every task
  of a revision answers exactly one release's (git SHA, version) pair, during a rollout too.
- **A revision is built from the family's latest ACTIVE revision**, not from the revision the
  service runs: terraform registers new revisions when it changes environment variables, CPU,
  memory or roles, and a deploy that copied the running revision would silently undo them.
  If the latest revision already runs the wanted image it is reused, so a rerun after a crash
  lands on exactly the revision a clean deploy would have registered.
- **The rollout is observed, not awaited with boto3's `services_stable` waiter**: the waiter
  knows nothing of the deployment circuit breaker and its fixed 40 x 15 s budget is the wrong
  one for a pipeline. `classify` is a pure function over `describe_services` output, so every
  state a real account produces (done, in progress, circuit-breaker rollback, superseded) is
  tested on recorded documents; the observer is injectable because moto never finishes a
  rollout unless desiredCount is 0.
- **Check order**: the deployment that runs *our* revision is examined first. ECS's circuit
  breaker puts the service back on the previous revision, so "the service names another
  revision" alone would read a rollback as somebody else's deploy.

The ECS calls themselves are `ml.adapters.ecs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ml.adapters import ecs as ecs_api
from ml.adapters.ecs import ServiceRef
from ml.errors import ConfigError

# Keys of describe_task_definition's output that register_task_definition accepts.
_REGISTER_KEYS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)

# The serve setting that pins a task to one model version (serve/settings.py).
PIN_VARIABLE = "SERVE_MODEL_VERSION"

RolloutKind = Literal["stable", "in-progress", "circuit-breaker", "failed", "superseded"]


@dataclass(frozen=True)
class Rollout:
    """One observation of the rollout of a task definition: what ECS says, in one word."""

    kind: RolloutKind
    detail: str = ""


class RolloutObserver(Protocol):
    """Reads the rollout state of `task_definition` on a service (injectable for tests)."""

    def __call__(self, ecs: Any, ref: ServiceRef, task_definition: str) -> Rollout: ...


class RolloutError(Exception):
    """The rollout did not become stable; `rollout.kind` says how (timeout = in-progress)."""

    def __init__(self, rollout: Rollout, message: str) -> None:
        super().__init__(message)
        self.rollout = rollout


def family_of(task_definition_arn: str) -> str:
    """`arn:...:task-definition/credit-risk-serve:7` → `credit-risk-serve`."""
    return task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def container_of(task_def: dict[str, Any], container: str | None) -> dict[str, Any]:
    """The definition of `container` (default: the first) in a task definition."""
    containers = task_def["containerDefinitions"]
    names = [c["name"] for c in containers]
    target = container or names[0]
    for c in containers:
        if c["name"] == target:
            return dict(c)
    raise ConfigError(
        f"container {target!r} not in task definition {task_def.get('taskDefinitionArn')} "
        f"(containers: {names}; hint: DEPLOY_CONTAINER)"
    )


def container_image(ecs: Any, task_definition: str, container: str | None = None) -> str:
    """The image `container` (default: the first) of a task definition runs."""
    return running_pair(ecs, task_definition, container)[0]


def _pinned(container: dict[str, Any]) -> int | None:
    for item in container.get("environment") or []:
        if item.get("name") == PIN_VARIABLE and str(item.get("value", "")).isdigit():
            return int(item["value"])
    return None


def running_pair(
    ecs: Any, task_definition: str, container: str | None = None
) -> tuple[str, int | None]:
    """(image, pinned model version or None) of `container` (default: the first)."""
    described, _ = ecs_api.describe_task_definition(ecs, task_definition)
    found = container_of(described, container)
    return str(found["image"]), _pinned(found)


def _with_pin(container: dict[str, Any], image: str, version: int | None) -> dict[str, Any]:
    if version is None:
        return {**container, "image": image}
    env = [e for e in container.get("environment") or [] if e.get("name") != PIN_VARIABLE]
    env.append({"name": PIN_VARIABLE, "value": str(version)})
    return {**container, "image": image, "environment": env}


def register_from_latest(
    ecs: Any, family: str, image: str, container: str | None = None, version: int | None = None
) -> tuple[str, bool]:
    """A revision of `family` that runs `image` (pinned to model `version` when given): the
    latest one if it already does, else a copy of the latest ACTIVE revision with only that
    container's image and `SERVE_MODEL_VERSION` replaced.

    Returns:
        (task definition ARN, True when a new revision was registered).
    """
    # A family name without revision resolves to its latest ACTIVE revision.
    task_def, tags = ecs_api.describe_task_definition(ecs, family, with_tags=True)
    target = container_of(task_def, container)
    if target["image"] == image and (version is None or _pinned(target) == version):
        return str(task_def["taskDefinitionArn"]), False
    spec = {key: task_def[key] for key in _REGISTER_KEYS if task_def.get(key) not in (None, [])}
    spec["containerDefinitions"] = [
        _with_pin(c, image, version) if c["name"] == target["name"] else c
        for c in task_def["containerDefinitions"]
    ]
    if tags:
        spec["tags"] = tags  # needs ecs:TagResource on the deploy role
    return ecs_api.register_task_definition(ecs, spec), True


def classify(service: dict[str, Any], task_definition: str) -> Rollout:
    """What `describe_services` says about the rollout of `task_definition`, in one word.

    Order matters: our own deployment first (a circuit-breaker rollback keeps it, marked FAILED,
    while the service already names the previous revision), then "superseded".
    """
    deployments = list(service.get("deployments") or [])
    ours = [d for d in deployments if d.get("taskDefinition") == task_definition]
    for d in ours:
        if d.get("rolloutState") == "FAILED":
            reason = str(d.get("rolloutStateReason") or "")
            rolled_back = service.get("taskDefinition") != task_definition
            if "circuit breaker" in reason.lower() or rolled_back:
                where = f"; ECS rolled the service back to {service.get('taskDefinition')}"
                return Rollout(
                    "circuit-breaker",
                    f"ECS deployment circuit breaker failed {task_definition}: "
                    f"{reason or 'no reason given'}" + (where if rolled_back else ""),
                )
            return Rollout("failed", f"ECS marked the deployment FAILED: {reason}")
    if service.get("taskDefinition") != task_definition:
        return Rollout(
            "superseded",
            f"the service now runs {service.get('taskDefinition')}: another deployment "
            "replaced ours",
        )
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    # moto keeps the old deployment record after update_service and only renames the service's
    # task definition; real ECS creates the PRIMARY deployment of ours inside update_service.
    # Either way, once the service names our revision and no record names another one as ours,
    # the PRIMARY deployment is the one to read.
    if primary is None or (ours and primary not in ours):
        return Rollout("in-progress", "our deployment is not PRIMARY yet")
    running, desired = primary.get("runningCount"), primary.get("desiredCount", 0)
    detail = (
        f"{running}/{desired} tasks running, {len(deployments)} deployment(s), "
        f"rolloutState {primary.get('rolloutState')}"
    )
    if len(deployments) > 1:
        return Rollout("in-progress", detail + " (old tasks still draining)")
    state = primary.get("rolloutState")
    # rolloutState is authoritative where ECS reports it (rolling updates); without it, all
    # desired tasks running in the only deployment is the steady state.
    if state == "COMPLETED" or desired == 0 or (state is None and running == desired):
        return Rollout("stable", detail)
    return Rollout("in-progress", detail)


def observe(ecs: Any, ref: ServiceRef, task_definition: str) -> Rollout:
    """The default observer: one `describe_services` call, classified."""
    return classify(ecs_api.describe_service(ecs, ref), task_definition)


def wait_for_rollout(
    ecs: Any,
    ref: ServiceRef,
    task_definition: str,
    *,
    timeout: float,
    poll_interval: float,
    observer: RolloutObserver = observe,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Rollout:
    """Poll until the rollout of `task_definition` is stable; raise `RolloutError` otherwise.

    Bounded by `timeout`; a circuit-breaker rollback, a FAILED rollout or a newer deployment end
    the wait at once.
    """
    deadline = clock() + timeout
    while True:
        seen = observer(ecs, ref, task_definition)
        if seen.kind == "stable":
            return seen
        if seen.kind != "in-progress":
            raise RolloutError(seen, seen.detail)
        if clock() >= deadline:
            raise RolloutError(
                seen,
                f"rollout of {task_definition} on {ref} not stable after {timeout:.0f} s "
                f"({seen.detail})",
            )
        sleep(min(poll_interval, max(0.0, deadline - clock())))
