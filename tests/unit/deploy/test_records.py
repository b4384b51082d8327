"""The deploy record's JSON is the format docs/contracts.md#deploy-records gives; it reads back."""

from __future__ import annotations

import json

from ml.deploy.records import DeployRecord, Previous, deploy_tag, interrupted
from ml.promotions.records import pending_tag


def test_deploy_record_round_trips_in_the_contract_format() -> None:
    record = DeployRecord(
        release="r1",
        phase="rolling-out",
        previous=Previous({"credit-risk": 3}, "arn:...:task-definition/api:6", "r0"),
        time="2026-11-29T12:00:00Z",
        new_task_definition=None,
        run_url="https://github.com/o/r/actions/runs/1",
    )
    data = json.loads(record.to_json())
    assert data["previous"] == {
        "versions": {"credit-risk": 3}, "task_definition": "arn:...:task-definition/api:6",
        "release": "r0",
    }  # fmt: skip
    assert {"release", "phase", "previous", "run_url", "time"} <= set(data)
    assert DeployRecord.from_json(record.to_json()) == record
    assert not record.finished
    assert (deploy_tag("staging"), pending_tag("staging")) == (
        "deploy.staging", "promotion.staging.pending",
    )  # fmt: skip


def test_an_unfinished_deploy_is_reported_as_interrupted() -> None:
    record = DeployRecord(
        release="r2", phase="rolling-out", previous=Previous({"credit-risk": 1}, "td:2", "r1"),
        time="2026-11-29T12:00:00Z",
    )  # fmt: skip
    tags = {deploy_tag("staging"): record.to_json()}
    said = interrupted(tags, "staging")
    assert said is not None
    assert said.startswith("interrupted deploy of release r2 in staging (phase rolling-out")
    done = DeployRecord(**{**record.__dict__, "phase": "done"})
    assert interrupted({deploy_tag("staging"): done.to_json()}, "staging") is None
    assert interrupted({}, "production") is None
