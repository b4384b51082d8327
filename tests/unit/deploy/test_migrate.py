"""`mlops db-upgrade`: the call shape of the one-off migration task.

moto registers task definitions but cannot run a task (`run_task` fails there), so ECS is a
recording stand-in here that answers like ECS: what is checked is what the deploy asks ECS to
run (the service's network and capacity, the new image's revision, the one-off switch) and how
it reads the outcome. That the task really migrates the schema on RDS only a real account
shows; `mlflow db upgrade` itself is MLflow's.
"""

from __future__ import annotations

from typing import Any

import pytest

from ml.adapters.ecs import ServiceRef
from ml.deploy.migrate import ONE_OFF_VARIABLE, db_upgrade
from ml.errors import DeployError

CLUSTER = "arn:aws:ecs:eu-west-1:123456789012:cluster/credit-risk-platform"
OLD = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/mlflow@sha256:" + "1" * 64
NEW = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/mlflow@sha256:" + "2" * 64
NETWORK = {
    "awsvpcConfiguration": {
        "subnets": ["subnet-private-a"],
        "securityGroups": ["sg-mlflow-tasks"],
        "assignPublicIp": "DISABLED",
    }
}


class Ecs:
    """Answers like ECS for one service; records every call."""

    def __init__(self, exit_code: int | None = 0, stops_after: int = 2) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.revisions = {1: OLD}
        self.exit_code, self.stops_after = exit_code, stops_after

    def _arn(self, revision: int) -> str:
        return f"arn:aws:ecs:eu-west-1:123456789012:task-definition/credit-risk-mlflow:{revision}"

    def describe_services(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("describe_services", kw))
        return {
            "services": [
                {
                    "status": "ACTIVE", "clusterArn": CLUSTER, "taskDefinition": self._arn(1),
                    "networkConfiguration": NETWORK,
                    "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}],
                    "platformVersion": "LATEST",
                }
            ]
        }  # fmt: skip

    def describe_task_definition(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("describe_task_definition", kw))
        name = kw["taskDefinition"]
        revision = int(name.rsplit(":", 1)[1]) if ":" in name else max(self.revisions)
        return {
            "taskDefinition": {
                "taskDefinitionArn": self._arn(revision), "family": "credit-risk-mlflow",
                "containerDefinitions": [{"name": "app", "image": self.revisions[revision]}],
            }
        }  # fmt: skip

    def register_task_definition(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("register_task_definition", kw))
        revision = max(self.revisions) + 1
        self.revisions[revision] = kw["containerDefinitions"][0]["image"]
        return {"taskDefinition": {"taskDefinitionArn": self._arn(revision)}}

    def run_task(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("run_task", kw))
        return {"tasks": [{"taskArn": f"{CLUSTER}/task/1"}], "failures": []}

    def describe_tasks(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("describe_tasks", kw))
        polls = sum(1 for c in self.calls if c[0] == "describe_tasks")
        stopped = polls >= self.stops_after
        return {
            "tasks": [
                {
                    "lastStatus": "STOPPED" if stopped else "RUNNING",
                    "stoppedReason": "Essential container in task exited",
                    "containers": [
                        {"name": "app", "exitCode": self.exit_code if stopped else None}
                    ],
                }
            ]
        }

    def called(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.calls if n == name]


REF = ServiceRef(CLUSTER, "credit-risk-mlflow")


def test_the_migration_runs_once_with_the_new_image_in_the_services_network() -> None:
    ecs = Ecs()
    done = db_upgrade(ecs, REF, NEW, poll_interval=0, sleep=lambda _: None)

    # The revision the rollout will reuse: the family's latest, with only the image replaced
    [registered] = ecs.called("register_task_definition")
    assert registered["containerDefinitions"][0]["image"] == NEW
    [run] = ecs.called("run_task")
    assert run["taskDefinition"] == done.task_definition
    assert run["taskDefinition"].endswith("credit-risk-mlflow:2")
    # in the service's private subnets and security groups, on its capacity
    assert run["networkConfiguration"] == NETWORK
    assert run["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]
    assert "launchType" not in run
    assert run["count"] == 1
    # with the switch the start script turns into `mlflow db upgrade`
    override = run["overrides"]["containerOverrides"][0]
    assert override["name"] == "app"
    assert override["environment"] == [{"name": ONE_OFF_VARIABLE, "value": "db-upgrade"}]
    # and it waited for the task to stop
    assert len(ecs.called("describe_tasks")) == 2
    assert done.task_arn == f"{CLUSTER}/task/1"


def test_an_image_the_service_runs_already_needs_no_migration() -> None:
    ecs = Ecs()
    done = db_upgrade(ecs, REF, OLD)
    assert done.skipped
    assert not ecs.called("run_task")
    assert not ecs.called("register_task_definition")


def test_a_failed_migration_stops_the_deploy_with_the_reason() -> None:
    ecs = Ecs(exit_code=1)
    with pytest.raises(DeployError, match=r"exit code 1.*nothing was deployed"):
        db_upgrade(ecs, REF, NEW, poll_interval=0, sleep=lambda _: None)


def test_a_migration_that_never_stops_is_reported_not_awaited_forever() -> None:
    ecs = Ecs(stops_after=10**6)
    ticks = iter(range(10**6))
    with pytest.raises(DeployError, match="still RUNNING after 30 s"):
        db_upgrade(
            ecs, REF, NEW, timeout=30, poll_interval=0, clock=lambda: next(ticks) * 10.0,
            sleep=lambda _: None,
        )  # fmt: skip
