"""apply without MLflow: every crash point converges, the lease refuses a live holder, and
verification catches a writer that slipped in. (tests/integration repeats the essentials against
a real `mlflow server`.)"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ml.errors import ApplyError, LeaseError
from ml.promotions.apply import ApplyContext, ApplyOptions, apply_spec
from ml.promotions.reconcile import Desired, Observed, Sync, diff
from ml.promotions.records import LEASE_TAG, applied_tag, pending_tag
from ml.registry import ModelState
from tests.fixtures.memory_registry import CrashError, MemoryRegistry, model, version

M = "credit-risk"
CTX = ApplyContext(git_sha="c" * 40, actor="ci", pr="7", run_url=None, time="2030-01-01T00:00:00Z")
OPTS = ApplyOptions(owner="run-1", settle=0)
REC = {"promotion.staging.a": "{}", "promotion.production.a": "{}"}
APPLIED_1 = {applied_tag("staging"): "1", applied_tag("production"): "1"}


def _base() -> ModelState:
    return model(M, [version(M, 1, "Production", **REC), version(M, 2)],
                 {"staging": 1, "production": 1}, APPLIED_1)  # fmt: skip


def _apply(registry: MemoryRegistry, env: str, options: ApplyOptions = OPTS) -> None:
    apply_spec(registry, [Desired(M, 2)], env, CTX, options=options)  # type: ignore[arg-type]


def _clean() -> MemoryRegistry:
    registry = MemoryRegistry(_base())
    _apply(registry, "staging")
    _apply(registry, "production")
    return registry


def test_a_clean_apply_writes_in_order_and_leaves_no_pending_record_or_lease() -> None:
    registry = _clean()
    staging_writes = registry.writes[: registry.writes.index("delete model tag lease.staging") + 1]
    assert staging_writes == [
        "model tag lease.staging",  # staging's lane only
        "model tag promotion.staging.pending",  # before any alias write
        "alias staging=2",
        "stage v2=Staging",
        f"version tag v2 promotion.staging.{'c' * 40}",
        "model tag promotion.staging.version",
        "delete model tag promotion.staging.pending",  # after verification
        "delete model tag lease.staging",
    ]
    state = registry.states[M]
    assert state.aliases == {"staging": 2, "production": 2}
    assert {v: i.stage for v, i in state.versions.items()} == {1: "Archived", 2: "Production"}
    assert not [k for k in state.tags if k.startswith(LEASE_TAG)]
    record = json.loads(state.versions[2].tags[f"promotion.production.{'c' * 40}"])
    assert (record["previous"], record["git_sha"], record["pr"]) == (1, "c" * 40, "7")
    actions = diff([Desired(M, 2)], Observed({M: state}))
    assert [a.sync for a in actions] == [Sync.IN_SYNC, Sync.IN_SYNC]


CLEAN_WRITES = len(_clean().writes)


@pytest.mark.parametrize("crash_at", range(CLEAN_WRITES))
def test_every_crash_point_is_reported_and_a_rerun_converges(crash_at: int) -> None:
    # Given an apply of staging then production killed before its `crash_at`-th write
    registry = MemoryRegistry(_base(), crash_after=crash_at)

    def both() -> None:
        _apply(registry, "staging")
        _apply(registry, "production")

    with pytest.raises(CrashError):
        both()

    # Then status reports what is left: interrupted while a pending record stands, never drift
    state = registry.states[M]
    syncs = {a.env: a.sync for a in diff([Desired(M, 2)], Observed({M: state}))}
    for env in ("staging", "production"):
        if pending_tag(env) in state.tags:
            assert syncs[env] == Sync.INTERRUPTED
        assert syncs[env] != Sync.DRIFT, (crash_at, registry.writes)

    # And rerunning both applies (a new attempt of the same run) gives what a clean apply gives;
    # a lease the kill left behind (crash before its release, nothing else to do) is ours and
    # expires
    registry.crash_after = None
    _apply(registry, "staging")
    _apply(registry, "production")
    got = registry.states[M]
    for tag in [k for k in got.tags if k.startswith(LEASE_TAG)]:
        assert json.loads(got.tags.pop(tag))["owner"] == "run-1"
    assert got == _clean().states[M]


def test_production_refuses_while_staging_s_apply_is_interrupted() -> None:
    registry = MemoryRegistry(_base(), crash_after=3)  # lease, pending, alias written
    with pytest.raises(CrashError):
        _apply(registry, "staging")
    registry.crash_after = None
    with pytest.raises(ApplyError, match="never verified in staging"):
        _apply(registry, "production", ApplyOptions(owner="run-1", settle=0))


def _lease(owner: str, minutes: int) -> str:
    now = datetime.now(UTC)
    return json.dumps({"owner": owner, "run_url": "https://ci/run/9", "acquired": "T",
                       "expires": (now + timedelta(minutes=minutes)).isoformat()})  # fmt: skip


def test_a_live_lease_of_another_owner_refuses_before_any_write() -> None:
    base = _base()
    registry = MemoryRegistry(model(M, list(base.versions.values()), base.aliases,
                                    {**base.tags, LEASE_TAG: _lease("run-9", 10)}))  # fmt: skip
    with pytest.raises(LeaseError, match=r"leased by run-9 \(https://ci/run/9\)"):
        _apply(registry, "staging")
    assert registry.writes == []


def test_an_expired_lease_is_taken_over() -> None:
    base = _base()
    registry = MemoryRegistry(model(M, list(base.versions.values()), base.aliases,
                                    {**base.tags, LEASE_TAG: _lease("run-9", -1)}))  # fmt: skip
    _apply(registry, "staging")
    assert registry.states[M].aliases["staging"] == 2


class _Interloper(MemoryRegistry):
    """Another writer moves the staging alias back right after our alias write."""

    def set_alias(self, name: str, alias: str, number: int) -> None:
        super().set_alias(name, alias, number)
        super().set_alias(name, alias, 1)


def test_verification_catches_a_write_that_slipped_in_and_keeps_the_pending_record() -> None:
    registry = _Interloper(_base())
    with pytest.raises(ApplyError, match="verification after apply to staging failed"):
        _apply(registry, "staging")
    assert pending_tag("staging") in registry.states[M].tags
    assert LEASE_TAG not in registry.states[M].tags  # released on the way out


def test_a_second_apply_writes_nothing() -> None:
    registry = _clean()
    registry.writes.clear()
    _apply(registry, "staging")
    _apply(registry, "production")
    assert registry.writes == []


def test_a_staging_lease_held_by_a_dead_runner_does_not_block_production() -> None:
    # Given v2 applied to staging, then a staging runner that died holding staging's lease
    registry = MemoryRegistry(_base())
    _apply(registry, "staging")
    state = registry.states[M]
    registry.states[M] = replace(state, tags={**state.tags, "lease.staging": _lease("dead", 60)})
    # When production is applied by another owner
    _apply(registry, "production", ApplyOptions(owner="run-2", settle=0))
    # Then production moved, under its own lease only, and staging's lease is untouched
    assert registry.states[M].aliases["production"] == 2
    assert "model tag lease.production" in registry.writes
    assert json.loads(registry.states[M].tags["lease.staging"])["owner"] == "dead"


def test_a_live_lease_in_the_same_environment_still_refuses() -> None:
    base = _base()
    tags = {**base.tags, "lease.staging": _lease("run-9", 10)}
    registry = MemoryRegistry(model(M, list(base.versions.values()), base.aliases, tags))
    with pytest.raises(LeaseError, match=r"credit-risk in staging is leased by run-9.*unlock"):
        _apply(registry, "staging")
    assert registry.writes == []


def test_a_model_wide_lease_and_an_environment_lease_still_exclude_each_other() -> None:
    from ml.promotions.records import acquire_lease

    # Given an apply holding staging's lease
    base = _base()
    tags = {**base.tags, "lease.staging": _lease("run-9", 10)}
    registry = MemoryRegistry(model(M, list(base.versions.values()), base.aliases, tags))
    # Then an older writer's model-wide lease (both lanes) is refused, naming the holder
    with pytest.raises(LeaseError, match="leased by run-9"):
        acquire_lease(registry, M, "deploy-1", settle=0)  # type: ignore[arg-type]
    # while production's lane is free
    acquire_lease(registry, M, "deploy-1", settle=0, env="production")  # type: ignore[arg-type]


def test_a_rerun_after_a_local_crash_takes_over_the_dead_process_s_lease() -> None:
    import socket
    import subprocess
    import sys

    # Given staging's lease left by a local apply whose process is gone (SIGKILL)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    owner = f"ada@{socket.gethostname()}:{dead}:20300101T000000.000000Z"
    base = _base()
    tags = {**base.tags, "lease.staging": _lease(owner, 60)}
    registry = MemoryRegistry(model(M, list(base.versions.values()), base.aliases, tags))
    # When another process on this host applies
    _apply(registry, "staging", ApplyOptions(owner=f"ada@{socket.gethostname()}:1:x", settle=0))
    # Then it proceeds: a dead holder can never finish, its lease has lapsed
    assert registry.states[M].aliases["staging"] == 2
