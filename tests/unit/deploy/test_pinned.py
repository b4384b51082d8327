"""A revision pins the release's model version next to its image, and `status` reports an
alias that disagrees with what the running revision pins (moto, in-process: task definitions
and services are recorded there, which is all this needs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ml.adapters import ecs
from ml.adapters.ecs import ServiceRef
from ml.deploy import pinned, rollout
from tests.fixtures.aws_in_process import aws_in_process
from tests.fixtures.memory_registry import MemoryRegistry, model, version

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:"
REF = ServiceRef("c", "api")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with aws_in_process(monkeypatch):
        c = boto3.client("ecs", region_name="eu-west-1")
        c.create_cluster(clusterName="c")
        td = c.register_task_definition(
            family="api", containerDefinitions=[{
                "name": "serve", "image": IMAGE + "a" * 64, "memory": 512,
                "environment": [{"name": "SERVE_MODEL_ALIAS", "value": "production"}],
            }],
        )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
        c.create_service(cluster="c", serviceName="api", taskDefinition=td, desiredCount=0)
        yield c


def test_a_revision_pins_the_version_next_to_the_image(client: Any) -> None:
    new, fresh = rollout.register_from_latest(client, "api", IMAGE + "b" * 64, None, 7)
    assert fresh
    assert rollout.running_pair(client, new) == (IMAGE + "b" * 64, 7)
    env = client.describe_task_definition(taskDefinition=new)["taskDefinition"][
        "containerDefinitions"
    ][0]["environment"]
    assert {"name": "SERVE_MODEL_ALIAS", "value": "production"} in env  # the rest is kept
    # The same pair again reuses the revision; another version with the same image does not
    assert rollout.register_from_latest(client, "api", IMAGE + "b" * 64, None, 7) == (new, False)
    other, fresh = rollout.register_from_latest(client, "api", IMAGE + "b" * 64, None, 8)
    assert fresh
    assert rollout.running_pair(client, other) == (IMAGE + "b" * 64, 8)


def test_status_reports_an_alias_the_running_revision_does_not_pin(client: Any) -> None:
    registry = MemoryRegistry(model("m", [version("m", 7), version("m", 8)], {"production": 7}))
    # A revision that pins nothing (follows the alias): nothing to compare
    assert pinned.disagreement(registry, client, REF, "m", "production") is None  # type: ignore[arg-type]
    new, _ = rollout.register_from_latest(client, "api", IMAGE + "b" * 64, None, 7)
    ecs.update_service(client, REF, new)
    assert pinned.disagreement(registry, client, REF, "m", "production") is None  # type: ignore[arg-type]
    # When someone moves the alias by hand
    registry.set_alias("m", "production", 8)
    found = pinned.disagreement(registry, client, REF, "m", "production")  # type: ignore[arg-type]
    assert found is not None
    assert "m@production names version 8, but c/api runs" in found
    assert "which pins version 7" in found
