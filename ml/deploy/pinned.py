"""Does the alias record what runs? In AWS a task serves the version its task definition pins,
and the environment's alias is the registry's record of it, moved after a verified deploy. An
alias moved by hand (the MLflow UI, a user with EDIT on the model) changes nothing that runs,
which is exactly why it must be reported: the registry then lies about production.

`status` calls `findings`: `disagreement` for the environment whose ECS service is configured in
the job (ECS_CLUSTER / ECS_SERVICE), and the release records' digest chain (a record rewritten
after its creation).
"""

from __future__ import annotations

from typing import Any

from ml.adapters import aws, ecs
from ml.adapters.ecs import ServiceRef
from ml.deploy import rollout
from ml.registry import Registry


def disagreement(
    registry: Registry,
    ecs_client: Any,
    service: ServiceRef,
    model: str,
    env: str,
    container: str | None = None,
) -> str | None:
    """A one-line finding when `env`'s alias of `model` is not the version the service's
    running task definition pins; None when they agree, or when the revision pins nothing
    (a service that still follows the alias)."""
    running = ecs.current_task_definition(ecs_client, service)
    image, pinned = rollout.running_pair(ecs_client, running, container)
    if pinned is None:
        return None
    state = registry.model_state(model)
    alias = state.aliases.get(env) if state else None
    if alias == pinned:
        return None
    return (
        f"{model}@{env} names version {alias}, but {service} runs {running} which pins version "
        f"{pinned} ({image}): the alias was moved outside a deploy (hint: `mlops deploy --env "
        f"{env} --release R` of the release that should run restores both)"
    )


def from_environment(registry: Registry) -> list[str]:
    """`disagreement` for the service the job's environment configures (ECS_CLUSTER,
    ECS_SERVICE, DEPLOY_ENVIRONMENT or production); nothing when no service is configured."""
    import os

    from ml.deploy.settings import DeploySettings

    settings = DeploySettings()
    if not (settings.ecs_cluster and settings.ecs_service):
        return []
    from botocore.exceptions import BotoCoreError, ClientError

    from ml.errors import ConfigError

    env = os.environ.get("DEPLOY_ENVIRONMENT", "production")
    ref = ServiceRef(settings.ecs_cluster, settings.ecs_service)
    try:
        client = aws.client("ecs", settings.aws_region)
        found = disagreement(registry, client, ref, settings.model_name, env, settings.container)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(
            f"cannot read the task definition {ref} runs ({exc}); the job needs AWS credentials "
            "with ecs:DescribeServices and ecs:DescribeTaskDefinition, or unset ECS_CLUSTER"
        ) from None
    return [found] if found else []


def findings(registry: Registry) -> list[str]:
    """What `mlops promote status` reports from the deploy side: an alias the running task
    definition does not pin, and release records that fail the digest chain."""
    from ml.deploy import release as releases
    from ml.deploy.settings import DeploySettings

    model = DeploySettings().model_name
    chain = releases.verify_chain(releases.list_all(registry, model))
    return from_environment(registry) + [f"release records: {p}" for p in chain]
