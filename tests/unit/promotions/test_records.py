"""The registry records: apply-record keys, both formats read, stage rules, pending records and
the lease's parsing and ownership."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ml.promotions.records import (
    Lease,
    Operation,
    expected_stages,
    has_record,
    lease_owner,
    record_tag,
    records,
    stage_fixes,
)
from ml.registry import VersionInfo


def _version(tags: dict[str, str]) -> VersionInfo:
    return VersionInfo("credit-risk", 1, "READY", "Production", None, "s3://x", tags)


def test_the_key_names_environment_and_commit_in_characters_mlflow_accepts() -> None:
    assert record_tag("production", "3f" * 20) == f"promotion.production.{'3f' * 20}"
    assert record_tag("staging", "feature/x y") == "promotion.staging.feature-x-y"
    assert record_tag("staging", "") == "promotion.staging.unknown"
    assert len(record_tag("production", "a" * 300)) == len("promotion.production.") + 64


def test_records_of_both_formats_come_oldest_first_and_per_environment() -> None:
    info = _version(
        {
            "promotion.production": json.dumps({"time": "2030-01-02T00:00:00Z", "git_sha": "b"}),
            "promotion.production.c": json.dumps({"time": "2030-01-03T00:00:00Z"}),
            "promotion.production.a": json.dumps({"time": "2030-01-01T00:00:00Z"}),
            "promotion.staging.a": "not json",
            "promotion.productionish": "{}",
        }
    )
    assert [r["time"] for r in records(info, "production")] == [
        "2030-01-01T00:00:00Z",
        "2030-01-02T00:00:00Z",
        "2030-01-03T00:00:00Z",
    ]
    assert records(info, "staging") == [{"raw": "not json"}]
    assert has_record(info, "staging")
    assert not has_record(_version({"promotion.productionish": "{}"}), "production")
    # the model-level tags are never mistaken for version records
    assert not has_record(_version({"promotion.production.pending": "{}"}), "production")


@pytest.mark.parametrize(
    ("aliases", "stages", "wanted"),
    [
        ({"staging": 2, "production": 1}, {1: "Production", 2: "None"},
         {1: "Production", 2: "Staging"}),
        # one version for both: it keeps Production; a leftover Staging version is archived
        ({"staging": 1, "production": 1}, {1: "Production", 2: "Staging"},
         {1: "Production", 2: "Archived"}),
        ({}, {1: "Staging", 2: "None", 3: "Archived"}, {1: "Archived", 2: "None", 3: "Archived"}),
    ],
)  # fmt: skip
def test_expected_stages(aliases: dict, stages: dict, wanted: dict) -> None:
    assert expected_stages(aliases, stages) == wanted


def test_stage_fixes_stay_in_their_environment_and_put_the_target_first() -> None:
    stages = {1: "Production", 2: "Staging", 3: "None"}
    # production moves 1 → 3: the target first, then the old holder archived; staging untouched
    assert stage_fixes("production", {"staging": 2, "production": 3}, stages) == [
        (3, "None", "Production"),
        (1, "Production", "Archived"),
    ]
    assert stage_fixes("staging", {"staging": 2, "production": 3}, stages) == []
    # an interrupted production apply's moves are left to its rerun
    assert stage_fixes("staging", {"staging": 2, "production": 2}, stages, ["Production"]) == []


def test_an_operation_round_trips_and_describes_itself() -> None:
    op = Operation("deploy", 4, 3, "a" * 40, "r-9", "https://ci/run/1", "ci", "T")
    assert Operation.parse(op.to_json()) == op
    text = op.describe("production")
    assert text.startswith("deploy of release r-9 (v4, was v3) in production")
    assert "commit aaaaaaaaaaaa" in text
    assert Operation.parse("x" * 1000).raw == "x" * 200


def test_a_lease_lives_until_it_expires() -> None:
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    lease = Lease.parse(json.dumps({"owner": "o", "expires": later}))
    assert lease is not None
    assert lease.live()
    assert not lease.live(datetime.now(UTC) + timedelta(minutes=6))
    assert Lease.parse(None) is None
    assert Lease.parse("{broken") is None
    assert not Lease("o", None, "", "not a time").live()


def test_the_lease_owner_is_the_run_in_actions_else_user_at_host() -> None:
    assert lease_owner({"GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "o/r"}) == "o/r#run42"
    assert lease_owner({"ML_PROMOTE_LEASE_OWNER": "me"}) == "me"
    assert lease_owner({"USER": "ada"}).startswith("ada@")


def test_the_default_lease_owner_is_unique_per_process() -> None:
    import subprocess
    import sys

    from ml.promotions.records import holder_alive, lease_owner

    code = "from ml.promotions.records import lease_owner; print(lease_owner({'USER': 'u'}))"
    others = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    mine = lease_owner({"USER": "u"})
    assert len(others | {mine}) == 3  # two terminals on one machine are two owners
    assert mine.startswith("u@")
    assert holder_alive(mine) is True
    assert all(holder_alive(o) is False for o in others)  # those processes have exited
    assert holder_alive("org/repo#run42") is None  # a CI run: cannot be told from here
    assert lease_owner({"ML_PROMOTE_LEASE_OWNER": "x", "USER": "u"}) == "x"


def test_verified_in_ignores_the_record_of_an_apply_still_pending() -> None:
    import json

    from ml.promotions.records import Operation, verified_in
    from tests.fixtures.memory_registry import version

    mine = json.dumps({"git_sha": "new", "time": "T"})
    pending = Operation("apply", 2, 1, "new", None, None, "ci", "T")
    assert not verified_in(version("m", 2, **{"promotion.staging.new": mine}), "staging", pending)
    older = {"promotion.staging.old": json.dumps({"git_sha": "old"}), "promotion.staging.new": mine}
    assert verified_in(version("m", 2, **older), "staging", pending)
    assert verified_in(version("m", 2, **{"promotion.staging.new": mine}), "staging", None)
