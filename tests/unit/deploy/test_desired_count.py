"""`mlops deploy` never sends a task count: Application Auto Scaling owns the service's
desiredCount (infra/terraform/modules/ecs_service), and a deploy that set one would undo the
scaling the traffic asked for (scale in a busy service to what terraform started it with).

Two checks: the calls a deploy and its revert make (`ml.deploy.rollout` over `ml.adapters.ecs`,
moto in-process, every botocore call recorded) carry no desiredCount and leave the scaled count
as it was; and no code in the package sends one to ECS at all (read from the source, so a new
call site cannot slip by).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ml.adapters import ecs
from ml.adapters.ecs import ServiceRef
from ml.deploy import rollout
from tests.fixtures.aws_in_process import aws_in_process
from tests.fixtures.iam.calls import BotocoreRecorder

ROOT = Path(__file__).resolve().parents[3]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:"
REF = ServiceRef("c", "api")
SCALED = 5  # what autoscaling set, not what terraform created the service with


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with aws_in_process(monkeypatch):
        yield


def _service(client: Any) -> str:
    client.create_cluster(clusterName="c")
    td = client.register_task_definition(
        family="api",
        containerDefinitions=[{"name": "serve", "image": IMAGE + "a" * 64, "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    client.create_service(cluster="c", serviceName="api", taskDefinition=td, desiredCount=2)
    # Autoscaling scaled the service out (Application Auto Scaling calls UpdateService so)
    client.update_service(cluster="c", service="api", desiredCount=SCALED)
    return str(td)


def test_a_deploy_and_its_revert_send_no_desired_count(aws: None) -> None:
    setup = boto3.client("ecs", region_name="eu-west-1")
    previous = _service(setup)
    # When a release is rolled out and then reverted, with every botocore call recorded
    with BotocoreRecorder() as recorder:
        client = boto3.client("ecs", region_name="eu-west-1")
        new, fresh = rollout.register_from_latest(client, "api", IMAGE + "b" * 64, None, 7)
        ecs.update_service(client, REF, new)
        rollout.observe(client, REF, new)
        ecs.update_service(client, REF, previous)
    # Then the updates name the revision only, and the scaled count is untouched
    assert fresh
    updates = [c for c in recorder.calls if c.operation == "UpdateService"]
    assert len(updates) == 2
    assert all(set(c.params) == {"cluster", "service", "taskDefinition"} for c in updates)
    assert not [c for c in recorder.calls if c.operation == "CreateService"]
    assert not [c for c in recorder.calls if "desiredCount" in c.params]
    (service,) = setup.describe_services(cluster="c", services=["api"])["services"]
    assert service["desiredCount"] == SCALED


def _sends_desired_count(tree: ast.AST) -> list[int]:
    """Lines where a call passes desiredCount, or a dict literal holds it (a **spec)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(k.arg == "desiredCount" for k in node.keywords):
            lines.append(node.lineno)
        if isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == "desiredCount" for k in node.keys
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            key = node.slice
            if isinstance(key, ast.Constant) and key.value == "desiredCount":
                lines.append(node.lineno)
    return lines


def test_no_code_in_the_package_sends_a_desired_count() -> None:
    sources = sorted((ROOT / "ml").rglob("*.py"))
    assert len(sources) > 50
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sources
        if (lines := _sends_desired_count(ast.parse(path.read_text(), filename=str(path))))
    }
    assert found == {}


def test_the_source_check_finds_a_desired_count() -> None:
    # The check can fail: each way of sending one is found
    code = (
        "ecs.update_service(cluster='c', service='s', desiredCount=2)\n"
        "spec = {'desiredCount': 3}\n"
        "spec['desiredCount'] = 4\n"
    )
    assert _sends_desired_count(ast.parse(code)) == [1, 2, 3]
