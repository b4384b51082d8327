"""The AWS ECS API as a deploy uses it: services, task definitions, one-off tasks.

Each function is one ECS call on a boto3 ECS client (`ml.adapters.aws.client("ecs")`), with a
missing cluster or service turned into a `ConfigError` that names the terraform output to check.
What a deploy does with them (the revision that pins a release, reading a rollout's state) is
`ml.deploy.rollout`; the one-off migration task is `ml.deploy.migrate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml.errors import ConfigError


@dataclass(frozen=True)
class ServiceRef:
    """One ECS service."""

    cluster: str
    service: str

    def __str__(self) -> str:
        return f"{self.cluster}/{self.service}"


def describe_service(ecs: Any, ref: ServiceRef) -> dict[str, Any]:
    """The service document; a missing or inactive service is a configuration error."""
    try:
        found = ecs.describe_services(cluster=ref.cluster, services=[ref.service])
    except ecs.exceptions.ClusterNotFoundException as exc:
        raise ConfigError(
            f"ECS cluster {ref.cluster!r} not found (hint: the ECS_CLUSTER terraform output)"
        ) from exc
    services = found.get("services") or []
    if not services or services[0].get("status") != "ACTIVE":
        raise ConfigError(
            f"ECS service {ref.service!r} not found (or not ACTIVE) in cluster {ref.cluster!r} "
            "(hint: the ECS_SERVICE terraform output)"
        )
    return dict(services[0])


def current_task_definition(ecs: Any, ref: ServiceRef) -> str:
    """ARN of the task definition the service runs now."""
    return str(describe_service(ecs, ref)["taskDefinition"])


def describe_task_definition(
    ecs: Any, task_definition: str, *, with_tags: bool = False
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(the task definition, its tags) by ARN, or by family name for the latest ACTIVE revision.

    Tags are read only `with_tags` (one more permission the caller may lack otherwise).
    """
    if with_tags:
        described = ecs.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
    else:
        described = ecs.describe_task_definition(taskDefinition=task_definition)
    return dict(described["taskDefinition"]), list(described.get("tags") or [])


def register_task_definition(ecs: Any, spec: Mapping[str, Any]) -> str:
    """Register a new revision from `spec` (register_task_definition's arguments); its ARN.

    A spec with `tags` needs ecs:TagResource besides ecs:RegisterTaskDefinition.
    """
    return str(ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"])


def update_service(ecs: Any, ref: ServiceRef, task_definition: str) -> None:
    """Point the service at `task_definition`; ECS starts a new PRIMARY deployment."""
    ecs.update_service(cluster=ref.cluster, service=ref.service, taskDefinition=task_definition)


def run_task(ecs: Any, args: Mapping[str, Any]) -> tuple[str | None, list[Any]]:
    """Start one task (run_task's arguments): (its ARN or None, ECS's failures)."""
    started = ecs.run_task(**args)
    tasks = started.get("tasks") or []
    return (str(tasks[0]["taskArn"]) if tasks else None), list(started.get("failures") or [])


def describe_task(ecs: Any, cluster: str, task_arn: str) -> dict[str, Any]:
    """The task document (lastStatus, containers with their exit codes, stoppedReason)."""
    return dict(ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0])
