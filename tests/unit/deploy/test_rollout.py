"""`classify`: one row per state `describe_services` shows during a rollout (no AWS needed)."""

from __future__ import annotations

from typing import Any

import pytest

from ml.deploy.rollout import Rollout, classify, family_of, wait_for_rollout

OLD = "arn:aws:ecs:eu-west-1:123456789012:task-definition/credit-risk-serve:6"
NEW = "arn:aws:ecs:eu-west-1:123456789012:task-definition/credit-risk-serve:7"
OTHER = "arn:aws:ecs:eu-west-1:123456789012:task-definition/credit-risk-serve:8"


def dep(td: str, status: str, state: str | None, running: int, desired: int, reason: str = ""):  # type: ignore[no-untyped-def]
    d: dict[str, Any] = {
        "taskDefinition": td, "status": status, "runningCount": running,
        "desiredCount": desired, "rolloutStateReason": reason,
    }  # fmt: skip
    if state is not None:
        d["rolloutState"] = state
    return d


IP, DONE = "IN_PROGRESS", "COMPLETED"
CB = "ECS deployment circuit breaker: tasks failed to start."
CASES = [
    # (name, service taskDefinition, deployments, expected kind)
    ("completed", NEW, [dep(NEW, "PRIMARY", DONE, 2, 2)], "stable"),
    ("starting", NEW, [dep(NEW, "PRIMARY", IP, 0, 2), dep(OLD, "ACTIVE", DONE, 2, 2)],
     "in-progress"),
    ("old draining", NEW, [dep(NEW, "PRIMARY", IP, 2, 2), dep(OLD, "ACTIVE", DONE, 1, 0)],
     "in-progress"),
    ("running, not COMPLETED yet", NEW, [dep(NEW, "PRIMARY", IP, 2, 2)], "in-progress"),
    ("no rolloutState (old API), steady", NEW, [dep(NEW, "PRIMARY", None, 2, 2)], "stable"),
    ("desiredCount 0", NEW, [dep(NEW, "PRIMARY", IP, 0, 0)], "stable"),
    # moto: the service names ours, the only deployment record still names the old revision
    ("moto, desiredCount 0", NEW, [dep(OLD, "PRIMARY", DONE, 0, 0)], "stable"),
    ("moto, desiredCount 1", NEW, [dep(OLD, "PRIMARY", IP, 0, 1)], "in-progress"),
    # the circuit breaker rolled back: ours FAILED, the service names the old revision again
    ("circuit breaker", OLD, [
        dep(OLD, "PRIMARY", IP, 0, 2, "ECS deployment ecs-svc/2 in progress."),
        dep(NEW, "ACTIVE", "FAILED", 0, 0, CB),
    ], "circuit-breaker"),
    ("failed, no rollback", NEW, [dep(NEW, "PRIMARY", "FAILED", 0, 2, "no start")], "failed"),
    ("superseded", OTHER, [dep(OTHER, "PRIMARY", IP, 0, 2), dep(NEW, "ACTIVE", IP, 1, 2)],
     "superseded"),
    ("no PRIMARY yet", NEW, [], "in-progress"),
]  # fmt: skip


@pytest.mark.parametrize(("service_td", "deployments", "kind"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_classify(service_td: str, deployments: list[dict[str, Any]], kind: str) -> None:
    seen = classify({"taskDefinition": service_td, "deployments": deployments}, NEW)
    assert seen.kind == kind, seen.detail


def test_circuit_breaker_is_not_reported_as_superseded() -> None:
    # The check order of the old code: "service names another revision" first → "superseded".
    doc = {"taskDefinition": OLD, "deployments": CASES[8][2]}
    seen = classify(doc, NEW)
    assert "circuit breaker" in seen.detail
    assert "rolled the service back" in seen.detail
    assert "superseded" not in seen.detail


def test_family_of_an_arn() -> None:
    assert family_of(NEW) == "credit-risk-serve"


def test_wait_is_bounded_by_its_timeout() -> None:
    now = [0.0]

    def observer(*_: Any) -> Rollout:
        return Rollout("in-progress", "0/1")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(Exception, match="not stable after 30 s"):
        wait_for_rollout(None, None, NEW, timeout=30, poll_interval=10, observer=observer,  # type: ignore[arg-type]
                         clock=lambda: now[0], sleep=sleep)  # fmt: skip
    assert now[0] == 30


def test_wait_stops_at_once_on_a_circuit_breaker() -> None:
    calls = []

    def observer(*_: Any) -> Rollout:
        calls.append(1)
        return Rollout("circuit-breaker", "rolled back")

    with pytest.raises(Exception, match="rolled back"):
        wait_for_rollout(None, None, NEW, timeout=300, poll_interval=1, observer=observer,  # type: ignore[arg-type]
                         sleep=lambda _s: None)  # fmt: skip
    assert calls == [1]
