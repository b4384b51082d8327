"""The deploy configuration names, read once from the environment (one list:
docs/contracts.md#configuration-names).

The names are the GitHub configuration names the workflows map into a step's `env:` (repository
variables such as `ECR_SERVE_REPOSITORY_URL`, environment variables such as `ECS_CLUSTER` and
`SERVICE_URL`), so the README, the workflows and this class cannot drift apart. Tunables that are
not GitHub configuration take the `DEPLOY_` prefix. A verb asks for the names it needs with
`require`, which reports every missing one at once instead of failing on the first.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.errors import ConfigError


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class DeploySettings(BaseSettings):
    """Where the service runs, where its images live and how long a deploy may wait."""

    model_config = SettingsConfigDict(env_prefix="DEPLOY_", extra="ignore", populate_by_name=True)

    aws_region: str | None = Field(default=None, validation_alias=_env("AWS_REGION"))
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "ML_TRACKING_URI"),
        description="The one registry; also the MLflow service's smoke-test URL.",
    )
    model_name: str = Field(
        default="credit-risk",
        validation_alias=AliasChoices("SERVE_MODEL_NAME", "ML_MODEL_NAME"),
        description="The served model; it carries the release and deploy records.",
    )
    ecr_serve_repository_url: str | None = Field(
        default=None, validation_alias=_env("ECR_SERVE_REPOSITORY_URL")
    )
    ecr_mlflow_repository_url: str | None = Field(
        default=None, validation_alias=_env("ECR_MLFLOW_REPOSITORY_URL")
    )
    ecs_cluster: str | None = Field(default=None, validation_alias=_env("ECS_CLUSTER"))
    ecs_service: str | None = Field(default=None, validation_alias=_env("ECS_SERVICE"))
    service_url: str | None = Field(
        default=None,
        validation_alias=_env("SERVICE_URL"),
        description="Base URL of the environment's API: the mandatory smoke test's target.",
    )
    mlflow_ecs_cluster: str | None = Field(
        default=None, validation_alias=_env("MLFLOW_ECS_CLUSTER")
    )
    mlflow_ecs_service: str | None = Field(
        default=None, validation_alias=_env("MLFLOW_ECS_SERVICE")
    )
    container: str | None = Field(
        default=None, description="Container to update (default: the task's first container)."
    )
    rollout_timeout: float = Field(default=900.0, gt=0, description="Rollout wait, seconds.")
    poll_interval: float = Field(default=10.0, gt=0, description="Between rollout polls, s.")
    smoke_timeout: float = Field(default=180.0, gt=0, description="Smoke-test retries, s.")
    revert_smoke_timeout: float = Field(
        default=300.0, gt=0, description="Smoke test of a restored state after a failure, s."
    )
    scan_max_age_hours: float = Field(
        default=168.0,
        gt=0,
        description="Production refuses a release whose newest scan is older than this, h.",
    )
    lease_ttl: float = Field(
        default=3600.0, gt=0, description="Seconds a deploy lease lives if never released."
    )

    def require(self, *fields: str) -> None:
        """Raise one `ConfigError` naming every unset configuration name among `fields`."""
        missing = [_name_of(f) for f in fields if not getattr(self, f)]
        if missing:
            raise ConfigError(
                "missing configuration: "
                + ", ".join(missing)
                + " (hint: set them as GitHub variables of the environment and map them into "
                "the step's env:, see docs/deploy.md; nothing was changed)"
            )


def _name_of(field: str) -> str:
    """The environment variable a field is read from (what the user must set)."""
    info = DeploySettings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"DEPLOY_{field.upper()}"
