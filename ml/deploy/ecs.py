"""Roll an ECS service to a new image, verify it, and roll back when it does not come up.

The steps, in order, and why each is where it is:

1. **The image must exist in ECR** before ECS is touched: a task definition that names a missing
   image only fails minutes later, inside ECS, after the old tasks have started draining.
2. **A new task definition revision** is copied from the one the service runs now, with only the
   container image replaced: CPU, memory, roles, secrets and logging stay as terraform made them.
3. **update_service**, then **wait with a bounded timeout** by polling `describe_services`: the
   PRIMARY deployment is done when its rolloutState is COMPLETED, or when its runningCount equals
   its desiredCount and it is the only deployment left. A desiredCount of 0 is stable at once
   (nothing to start). A rolloutState of FAILED (the circuit breaker) fails at once. boto3's
   `services_stable` waiter is not used: it has no notion of rollout failure and its fixed
   40 x 15 s budget is the wrong one for a pipeline (and on moto it never returns).
4. **Smoke test**: `/health` answers 200 and `/metadata` names the expected model version.
5. **On any failure after step 2**, the service is pointed back at the previous task definition
   and the error says so; the caller exits non-zero.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ml.errors import MlopsError

log = logging.getLogger(__name__)

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


class DeployError(MlopsError):
    """A deployment was refused or failed; the message says what happened to the service."""

    exit_code = 7


class ImageMissingError(DeployError):
    """The image tag is not in ECR; nothing was changed in ECS."""


class RolloutError(DeployError):
    """The new deployment did not become stable in time, or ECS marked it FAILED."""


class SupersededError(DeployError):
    """Another deployment replaced ours while we waited; rolling back would undo theirs."""


class SmokeTestError(DeployError):
    """The service answered, but not as the expected model version (or not at all)."""


@dataclass(frozen=True)
class ImageRef:
    """An ECR image URI split into its parts: `<registry>/<repository>:<tag>`."""

    registry: str
    repository: str
    tag: str

    @property
    def uri(self) -> str:
        """The full image URI as ECS wants it."""
        return f"{self.registry}/{self.repository}:{self.tag}"

    @classmethod
    def parse(cls, uri: str) -> ImageRef:
        """Split `123.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve:<sha>`.

        Raises:
            DeployError: the URI has no registry host or no tag (a tag-less deploy is not
                reproducible: `latest` moves).
        """
        registry, sep, rest = uri.partition("/")
        repository, colon, tag = rest.rpartition(":")
        if not sep or not colon or not repository or not tag or "@" in uri:
            raise DeployError(
                f"bad image URI {uri!r} (hint: <registry>/<repository>:<tag>, e.g. "
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve:<git sha>)"
            )
        return cls(registry=registry, repository=repository, tag=tag)


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy where, and how long to wait for it."""

    cluster: str
    service: str
    image: ImageRef
    container: str | None = None  # default: the task definition's first container
    base_url: str | None = None  # smoke test target; None skips the smoke test
    expected_version: str | None = None
    rollout_timeout: float = 600.0
    poll_interval: float = 10.0
    smoke_timeout: float = 120.0


@dataclass
class DeployResult:
    """What happened: the revisions involved and, after a failure, the rollback."""

    previous_task_definition: str
    new_task_definition: str
    rolled_back: bool = False
    notes: list[str] = field(default_factory=list)


def ensure_image(ecr: Any, image: ImageRef) -> str:
    """Return the image digest; raise `ImageMissingError` if the tag is not in the repository."""
    try:
        found = ecr.describe_images(
            repositoryName=image.repository, imageIds=[{"imageTag": image.tag}]
        )
    except ecr.exceptions.ImageNotFoundException as exc:
        raise ImageMissingError(
            f"image {image.uri} is not in ECR; refusing to deploy (ECS left unchanged). "
            "Hint: the build-and-push job must run first for this commit."
        ) from exc
    except ecr.exceptions.RepositoryNotFoundException as exc:
        raise ImageMissingError(
            f"ECR repository {image.repository!r} does not exist; refusing to deploy "
            "(hint: terraform apply creates it; check ecr_repository_url)."
        ) from exc
    details = found.get("imageDetails") or []
    if not details:
        raise ImageMissingError(f"image {image.uri} is not in ECR; refusing to deploy.")
    return str(details[0].get("imageDigest", ""))


def current_task_definition(ecs: Any, cluster: str, service: str) -> str:
    """ARN of the task definition the service runs now."""
    found = ecs.describe_services(cluster=cluster, services=[service])
    services = found.get("services") or []
    if not services or services[0].get("status") != "ACTIVE":
        raise DeployError(
            f"ECS service {service!r} not found (or not ACTIVE) in cluster {cluster!r} "
            "(hint: terraform outputs ecs_cluster_name and ecs_service_name)."
        )
    return str(services[0]["taskDefinition"])


def register_revision(ecs: Any, base_arn: str, image: str, container: str | None = None) -> str:
    """Register a copy of `base_arn` with `container`'s image replaced; return the new ARN."""
    described = ecs.describe_task_definition(taskDefinition=base_arn, include=["TAGS"])
    task_def = described["taskDefinition"]
    spec = {key: task_def[key] for key in _REGISTER_KEYS if task_def.get(key) not in (None, [])}
    containers = spec["containerDefinitions"]
    names = [c["name"] for c in containers]
    target = container or names[0]
    if target not in names:
        raise DeployError(f"container {target!r} not in task definition {base_arn} ({names})")
    spec["containerDefinitions"] = [
        {**c, "image": image} if c["name"] == target else c for c in containers
    ]
    if described.get("tags"):
        spec["tags"] = described["tags"]
    return str(ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"])


def update_service(ecs: Any, cluster: str, service: str, task_definition: str) -> None:
    """Point the service at `task_definition`; ECS starts a new PRIMARY deployment."""
    ecs.update_service(cluster=cluster, service=service, taskDefinition=task_definition)


def rollout_state(ecs: Any, cluster: str, service: str, task_definition: str) -> str:
    """One poll: "stable", "failed", "superseded" or "in-progress" for `task_definition`.

    "superseded" means the service now names another revision: someone deployed over us.
    """
    found = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    if found.get("taskDefinition") != task_definition:
        return "superseded"
    deployments = found.get("deployments") or []
    # Real ECS creates the new PRIMARY deployment inside update_service; moto keeps the old
    # deployment record (with the old taskDefinition) and updates only the service. Once the
    # service names our revision, the PRIMARY deployment is the one rolling it out.
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        return "in-progress"
    state = primary.get("rolloutState")
    if state == "FAILED":
        return "failed"
    if state == "COMPLETED" or primary.get("desiredCount", 0) == 0:
        return "stable"
    if primary.get("runningCount") == primary.get("desiredCount") and len(deployments) == 1:
        return "stable"
    return "in-progress"


def wait_for_rollout(
    ecs: Any,
    cluster: str,
    service: str,
    task_definition: str,
    *,
    timeout: float,
    poll_interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until the deployment of `task_definition` is stable; raise `RolloutError` otherwise."""
    deadline = clock() + timeout
    while True:
        state = rollout_state(ecs, cluster, service, task_definition)
        if state == "stable":
            return
        if state == "failed":
            raise RolloutError(f"ECS marked the deployment of {task_definition} FAILED")
        if state == "superseded":
            raise SupersededError(
                f"service {service} no longer runs {task_definition}: another deployment "
                "replaced it (not rolling back over it)"
            )
        if clock() >= deadline:
            raise RolloutError(
                f"deployment of {task_definition} not stable after {timeout:.0f} s "
                "(PRIMARY runningCount never reached desiredCount)"
            )
        sleep(min(poll_interval, max(0.0, deadline - clock())))


def _get_json(url: str, timeout: float) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code, None
    try:
        return status, json.loads(body or b"null")
    except json.JSONDecodeError:
        return status, None


def smoke_test(
    base_url: str,
    expected_version: str | None,
    *,
    timeout: float = 120.0,
    poll_interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Retry until `/health` is 200 and `/metadata` names `expected_version`; return metadata.

    Retries because a load balancer keeps sending some requests to old tasks while it drains
    them; the deadline bounds it.
    """
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise SmokeTestError(f"smoke test base URL must be http(s): {base_url!r}")
    deadline = clock() + timeout
    last = "no answer yet"
    while True:
        try:
            status, health = _get_json(f"{base}/health", timeout=10)
            if status != 200:
                last = f"/health answered {status}: {health}"
            else:
                status, meta = _get_json(f"{base}/metadata", timeout=10)
                served = str(((meta or {}).get("model") or {}).get("version"))
                if status != 200:
                    last = f"/metadata answered {status}"
                elif expected_version is not None and served != str(expected_version):
                    last = f"/metadata serves model version {served}, expected {expected_version}"
                else:
                    return dict(meta or {})
        except (OSError, urllib.error.URLError) as exc:
            last = f"{base} unreachable: {exc}"
        if clock() >= deadline:
            raise SmokeTestError(f"smoke test failed after {timeout:.0f} s: {last}")
        sleep(poll_interval)


def deploy(ecs: Any, ecr: Any, request: DeployRequest) -> DeployResult:
    """Deploy `request.image` to the service, verify it, roll back on failure.

    Raises:
        ImageMissingError: before anything in ECS changes.
        DeployError: after a failed rollout or smoke test; the message says whether the rollback
            to the previous task definition went through.
    """
    digest = ensure_image(ecr, request.image)
    log.info("image %s present (%s)", request.image.uri, digest)
    previous = current_task_definition(ecs, request.cluster, request.service)
    new = register_revision(ecs, previous, request.image.uri, request.container)
    result = DeployResult(previous_task_definition=previous, new_task_definition=new)
    log.info("registered %s (from %s); updating %s", new, previous, request.service)
    try:
        update_service(ecs, request.cluster, request.service, new)
        wait_for_rollout(
            ecs,
            request.cluster,
            request.service,
            new,
            timeout=request.rollout_timeout,
            poll_interval=request.poll_interval,
        )
        if request.base_url:
            smoke_test(request.base_url, request.expected_version, timeout=request.smoke_timeout)
    except SupersededError:
        raise
    except DeployError as exc:
        result.rolled_back = True
        raise rollback_after(ecs, request, previous, exc) from exc
    return result


def rollback_after(
    ecs: Any, request: DeployRequest, previous: str, cause: Exception
) -> DeployError:
    """Point the service back at `previous`; return the error to raise (it says both things)."""
    try:
        update_service(ecs, request.cluster, request.service, previous)
    except Exception as exc:  # the original failure must still be reported
        return DeployError(
            f"DEPLOY FAILED: {cause}; ROLLBACK ALSO FAILED ({exc}): service {request.service} "
            f"may run the new revision; point it at {previous} by hand"
        )
    return DeployError(
        f"DEPLOY FAILED: {cause}; ROLLED BACK service {request.service} to {previous}"
    )
