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

from ml.deploy import ecs as ecs_service
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
    ref: ecs_service.ServiceRef,
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
    service = ecs_service.describe_service(ecs, ref)
    running = str(service["taskDefinition"])
    if ecs_service.container_image(ecs, running, container) == image:
        return Migration(None, running, skipped=True)
    family = ecs_service.family_of(running)
    task_definition, _ = ecs_service.register_from_latest(ecs, family, image, container)
    described = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    name = str(ecs_service._container(described, container)["name"])
    started = ecs.run_task(**_run_args(service, task_definition, name))
    if started.get("failures") or not started.get("tasks"):
        raise DeployError(
            f"mlflow db upgrade: ECS did not start the task ({started.get('failures')}); "
            "nothing was deployed"
        )
    task_arn = str(started["tasks"][0]["taskArn"])
    deadline = clock() + timeout
    while True:
        task = ecs.describe_tasks(cluster=service["clusterArn"], tasks=[task_arn])["tasks"][0]
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
