"""`mlflow db upgrade` of the registry's database, as a one-off ECS task, before a new MLflow
image rolls out.

A new MLflow may need a newer schema; the server's tasks must not race each other to migrate it
at start, and a failed migration must stop the deploy before any task runs the new image. So the
migration is one task of the MLflow family's revision for the new image (the same revision the
rollout then reuses), in the service's subnets and security groups, with
`MLFLOW_ONE_OFF=db-upgrade`: the task's start script (infra/terraform/modules/mlflow) builds the
backend URI from the secrets ECS injects and runs `mlflow db upgrade` instead of the server.
The deploy waits for the task to stop and needs its exit code 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ml.adapters import ecs as ecs_api
from ml.adapters.ecs import ServiceRef
from ml.deploy import rollout
from ml.errors import DeployError

ONE_OFF_VARIABLE = "MLFLOW_ONE_OFF"
STARTED_BY = "mlops-db-upgrade"


@dataclass(frozen=True)
class Migration:
    """One run: the task, the revision it ran and whether anything ran at all."""

    task_arn: str | None
    task_definition: str
    skipped: bool = False


def _run_args(service: dict[str, Any], task_definition: str, container: str) -> dict[str, Any]:
    """run_task's arguments: the service's network and capacity, the one-off switch."""
    args: dict[str, Any] = {
        "cluster": service["clusterArn"],
        "taskDefinition": task_definition,
        "count": 1,
        "startedBy": STARTED_BY,
        "networkConfiguration": service["networkConfiguration"],
        "overrides": {
            "containerOverrides": [
                {
                    "name": container,
                    "environment": [{"name": ONE_OFF_VARIABLE, "value": "db-upgrade"}],
                }
            ]
        },
        "propagateTags": "TASK_DEFINITION",
    }
    if service.get("capacityProviderStrategy"):
        args["capacityProviderStrategy"] = service["capacityProviderStrategy"]
    else:
        args["launchType"] = service.get("launchType") or "FARGATE"
    if service.get("platformVersion"):
        args["platformVersion"] = service["platformVersion"]
    return args


def db_upgrade(
    ecs: Any,
    ref: ServiceRef,
    image: str,
    container: str | None = None,
    *,
    timeout: float = 900.0,
    poll_interval: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Migration:
    """Run `mlflow db upgrade` with `image` as a one-off task of the service's family.

    Skipped when the service already runs `image` (its schema is that image's). `DeployError`
    when the task cannot start, does not stop within `timeout`, or exits non-zero: then nothing
    of the service changed.
    """
    service = ecs_api.describe_service(ecs, ref)
    running = str(service["taskDefinition"])
    if rollout.container_image(ecs, running, container) == image:
        return Migration(None, running, skipped=True)
    family = rollout.family_of(running)
    task_definition, _ = rollout.register_from_latest(ecs, family, image, container)
    described, _ = ecs_api.describe_task_definition(ecs, task_definition)
    name = str(rollout.container_of(described, container)["name"])
    task_arn, failures = ecs_api.run_task(ecs, _run_args(service, task_definition, name))
    if failures or task_arn is None:
        raise DeployError(
            f"mlflow db upgrade: ECS did not start the task ({failures}); nothing was deployed"
        )
    deadline = clock() + timeout
    while True:
        task = ecs_api.describe_task(ecs, service["clusterArn"], task_arn)
        if task.get("lastStatus") == "STOPPED":
            break
        if clock() >= deadline:
            raise DeployError(
                f"mlflow db upgrade: task {task_arn} still {task.get('lastStatus')} after "
                f"{timeout:.0f} s (its logs are in the MLflow log group); nothing was deployed"
            )
        sleep(poll_interval)
    exit_codes = {c.get("name"): c.get("exitCode") for c in task.get("containers", [])}
    if exit_codes.get(name) != 0:
        raise DeployError(
            f"mlflow db upgrade: task {task_arn} stopped with exit code {exit_codes.get(name)} "
            f"({task.get('stoppedReason', 'no reason given')}; its logs are in the MLflow log "
            "group); nothing was deployed"
        )
    return Migration(task_arn, task_definition)
