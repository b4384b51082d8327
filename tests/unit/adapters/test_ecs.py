"""The ECS adapter against moto (in-process): a missing cluster or service is a configuration
error naming the terraform output to check; task definitions keep their tags; an update points
the service at the new revision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ml.adapters import ecs
from ml.adapters.ecs import ServiceRef
from ml.errors import ConfigError
from tests.fixtures.aws_in_process import aws_in_process

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:" + "a" * 64


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with aws_in_process(monkeypatch):
        c = boto3.client("ecs", region_name="eu-west-1")
        c.create_cluster(clusterName="c")
        yield c


def _spec(image: str) -> dict[str, Any]:
    return {
        "family": "api",
        "containerDefinitions": [{"name": "serve", "image": image, "memory": 512}],
        "tags": [{"key": "team", "value": "risk"}],
    }


def test_a_missing_cluster_or_service_names_the_output_to_check(client: Any) -> None:
    with pytest.raises(ConfigError, match="ECS_CLUSTER"):
        ecs.describe_service(client, ServiceRef("nope", "api"))
    with pytest.raises(ConfigError, match="ECS_SERVICE"):
        ecs.describe_service(client, ServiceRef("c", "nope"))


def test_register_describe_and_update(client: Any) -> None:
    # Given a service on a first revision
    first = ecs.register_task_definition(client, _spec(IMAGE))
    client.create_service(cluster="c", serviceName="api", taskDefinition=first, desiredCount=0)
    ref = ServiceRef("c", "api")
    assert ecs.current_task_definition(client, ref) == first
    # When a second revision is registered and the service updated
    second = ecs.register_task_definition(client, _spec(IMAGE[:-1] + "b"))
    ecs.update_service(client, ref, second)
    # Then the service runs it, the family name reads the latest revision, tags come on request
    assert ecs.current_task_definition(client, ref) == second
    latest, tags = ecs.describe_task_definition(client, "api", with_tags=True)
    assert latest["taskDefinitionArn"] == second
    assert tags == [{"key": "team", "value": "risk"}]
    assert ecs.describe_task_definition(client, first)[1] == []
