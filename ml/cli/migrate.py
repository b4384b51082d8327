"""`mlops db-upgrade`: the registry's database schema, before a new MLflow image rolls out."""

from __future__ import annotations

from typing import Annotated

import typer

from ml.cli.base import console, mlops_command
from ml.errors import ConfigError


@mlops_command
def db_upgrade(
    release_id: Annotated[
        str, typer.Option("--release", help="Release whose mlflow image migrates the schema.")
    ],
    timeout: Annotated[
        float, typer.Option("--timeout", help="Longest wait for the task to stop, s.")
    ] = 900.0,
) -> None:
    """Run `mlflow db upgrade` as a one-off ECS task of the MLflow service with RELEASE's
    mlflow image (skipped when the service already runs it). Exit 0 when the schema is current;
    non-zero with the task's exit code and reason otherwise (nothing deployed)."""
    from ml.adapters.ecs import ServiceRef
    from ml.cli.deploy import _clients, _registry
    from ml.deploy import release as releases
    from ml.deploy.migrate import db_upgrade as run_db_upgrade
    from ml.deploy.settings import DeploySettings

    settings = DeploySettings()
    settings.require("mlflow_ecs_cluster", "mlflow_ecs_service", "tracking_uri")
    rel = releases.get(_registry(), settings.model_name, release_id)
    if not rel.mlflow_image:
        raise ConfigError(f"release {rel.id} names no mlflow image; nothing was run")
    ref = ServiceRef(str(settings.mlflow_ecs_cluster), str(settings.mlflow_ecs_service))
    ecs_client, _ = _clients(settings.aws_region)
    done = run_db_upgrade(ecs_client, ref, rel.mlflow_image, settings.container, timeout=timeout)
    if done.skipped:
        console.print(f"{ref} already runs {rel.mlflow_image}: schema current, nothing run")
    else:
        console.print(f"mlflow db upgrade done (task {done.task_arn}, {done.task_definition})")
