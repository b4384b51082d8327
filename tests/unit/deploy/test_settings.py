"""One list of configuration names: a missing one is named, all at once."""

from __future__ import annotations

import pytest

from ml.deploy.settings import DeploySettings
from ml.errors import ConfigError


def test_missing_names_are_listed_together(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ECS_CLUSTER", "ECS_SERVICE", "SERVICE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ECS_SERVICE", "api")
    with pytest.raises(ConfigError, match="missing configuration: ECS_CLUSTER, SERVICE_URL"):
        DeploySettings().require("ecs_cluster", "ecs_service", "service_url")


def test_names_are_the_github_configuration_names(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "ECS_CLUSTER": "c", "ECS_SERVICE": "s", "SERVICE_URL": "https://api",
        "ECR_SERVE_REPOSITORY_URL": "r/serve", "ECR_MLFLOW_REPOSITORY_URL": "r/mlflow",
        "MLFLOW_ECS_CLUSTER": "p", "MLFLOW_ECS_SERVICE": "mlflow", "AWS_REGION": "eu-west-1",
        "DEPLOY_ROLLOUT_TIMEOUT": "5",
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = DeploySettings()
    assert (s.ecs_cluster, s.ecs_service, s.service_url) == ("c", "s", "https://api")
    assert (s.mlflow_ecs_cluster, s.mlflow_ecs_service, s.aws_region) == (
        "p", "mlflow", "eu-west-1",
    )  # fmt: skip
    assert (s.ecr_serve_repository_url, s.rollout_timeout) == ("r/serve", 5.0)


def test_every_github_name_the_deploy_reads_is_in_the_one_list() -> None:
    # config/platform.yaml is what bootstrap sets and preflight demands: a name the deploy reads
    # but that list lacks would be missing on a real repository.
    from pathlib import Path

    import yaml
    from pydantic import AliasChoices

    root = Path(__file__).resolve().parents[3]
    text = (root / "config" / "platform.yaml").read_text()
    listed = {
        line.split("name:", 1)[1].strip()
        for line in text.splitlines()
        if line.strip().startswith("- name:")
    }
    assert yaml.safe_load(text)  # the file parses
    read = set()
    for field, info in DeploySettings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and field not in ("model_name",):
            read.add(str(alias.choices[0]))
    assert read == {
        "AWS_REGION", "MLFLOW_TRACKING_URI", "ECR_SERVE_REPOSITORY_URL",
        "ECR_MLFLOW_REPOSITORY_URL", "ECS_CLUSTER", "ECS_SERVICE", "SERVICE_URL",
        "MLFLOW_ECS_CLUSTER", "MLFLOW_ECS_SERVICE",
    }  # fmt: skip
    assert read <= listed, sorted(read - listed)
