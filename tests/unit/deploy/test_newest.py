"""`mlops deploy --newest`: which release a queued CD job deploys (ml.deploy.release.newest).

CD's deploy jobs queue per environment; a job may start after a newer merge's job. These rows
pin what it deploys then: the newest release the environment may take, ordered by main's
first-parent history, never a step back. The registry is the in-memory stand-in (records are
model tags); `_history` runs real git in a temporary repository.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.cli.deploy import _history
from ml.deploy import records
from ml.deploy import release as releases
from ml.deploy.records import DeployRecord, Previous
from ml.errors import ConfigError
from tests.fixtures.memory_registry import MemoryRegistry, model, version

M = "credit-risk"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:" + "a" * 64
MLFLOW = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-mlflow@sha256:" + "b" * 64
# main's first-parent history, newest first: c3 (newest) ... c1 (oldest)
HISTORY = ["c3" * 20, "c2" * 20, "c1" * 20]


def _release(
    rid: str, sha: str, *, staging: bool = False, withdrawn: bool = False
) -> releases.Release:
    rel = releases.build(rid, sha, IMAGE, MLFLOW, {M: 1})
    if staging:
        rel = rel.model_copy(
            update={"verified": {"staging": releases.Verification(time="t", checks=["e2e"])}}
        )
    if withdrawn:
        rel = rel.model_copy(update={"withdrawn": {"production": {"reason": "bad"}}})
    return rel


def _registry(
    *rels: releases.Release, running: dict[str, str] | None = None, phase: str = "done"
) -> MemoryRegistry:
    tags = {releases.release_tag(r.id): r.to_json() for r in rels}
    for env, rid in (running or {}).items():
        record = DeployRecord(rid, phase, Previous({M: 1}, "td:1"), "t")
        tags[records.deploy_tag(env)] = record.to_json()
    return MemoryRegistry(model(M, [version(M, 1)], {}, tags))


def test_staging_takes_a_newer_release_a_later_merge_created() -> None:
    # Given r1 (older commit) and r2 (newer commit), neither verified yet
    r1, r2 = _release("r1", HISTORY[2]), _release("r2", HISTORY[1])
    registry = _registry(r1, r2)
    # When r1's staging job starts after r2's merge made its release
    chosen = releases.newest(registry, M, "staging", r1, HISTORY)
    # Then staging takes r2: a late job never moves staging back to an older commit
    assert chosen.id == "r2"


def test_production_takes_the_newest_release_staging_verified() -> None:
    # Given r1 verified in staging, r2 verified, r3 created but not verified yet
    r1 = _release("r1", HISTORY[2], staging=True)
    r2 = _release("r2", HISTORY[1], staging=True)
    r3 = _release("r3", HISTORY[0])
    registry = _registry(r1, r2, r3)
    # When the approval of r1's production job is given (it waited while r2 and r3 merged)
    chosen = releases.newest(registry, M, "production", r1, HISTORY)
    # Then production takes r2: the newest verified; r3 must pass staging first
    assert chosen.id == "r2"


def test_production_never_takes_a_withdrawn_release() -> None:
    r1 = _release("r1", HISTORY[2], staging=True)
    r2 = _release("r2", HISTORY[1], staging=True, withdrawn=True)
    assert releases.newest(_registry(r1, r2), M, "production", r1, HISTORY).id == "r1"


def test_what_runs_now_wins_when_it_is_newer_so_the_deploy_is_a_no_op() -> None:
    # Given production runs r2 (deployed with --allow-skip-staging: never verified in staging)
    r1 = _release("r1", HISTORY[2], staging=True)
    r2 = _release("r2", HISTORY[1])
    registry = _registry(r1, r2, running={"production": "r2"})
    # When an older run's production job asks for r1
    chosen = releases.newest(registry, M, "production", r1, HISTORY)
    # Then it keeps r2 (a no-op), not a step back to r1
    assert chosen.id == "r2"


def test_a_newer_release_whose_deploy_was_reverted_is_not_retried_by_an_older_job() -> None:
    # Given r2's staging deploy failed its smoke test and was reverted
    r1, r2 = _release("r1", HISTORY[2]), _release("r2", HISTORY[1])
    registry = _registry(r1, r2, running={"staging": "r2"}, phase="reverted")
    # When r1's staging job starts late, it deploys r1 (r2 is not tried again behind its back)
    assert releases.newest(registry, M, "staging", r1, HISTORY).id == "r1"
    # but a job that asks for r2 itself still deploys it (a rerun after a fix elsewhere)
    assert releases.newest(registry, M, "staging", r2, HISTORY).id == "r2"


def test_the_given_release_stays_when_nothing_is_newer_or_the_order_is_unknown() -> None:
    r1, r2 = _release("r1", HISTORY[1], staging=True), _release("r2", "f" * 40, staging=True)
    registry = _registry(r1, r2)
    # r2's commit is not on main: nothing says it is newer
    assert releases.newest(registry, M, "production", r1, HISTORY).id == "r1"
    # the given release's own commit is not on main: it is deployed as asked
    assert releases.newest(registry, M, "production", r2, HISTORY).id == "r2"


def test_the_mlflow_service_takes_only_a_release_with_an_mlflow_image() -> None:
    r1 = _release("r1", HISTORY[2])
    r2 = releases.build("r2", HISTORY[1], IMAGE, None, {M: 1})
    assert releases.newest(_registry(r1, r2), M, "mlflow", r1, HISTORY).id == "r1"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_history_is_mains_first_parent_order_newest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given main with two merges of a feature branch each
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "root")
    for n in (1, 2):
        _git(repo, "checkout", "-q", "-b", f"f{n}")
        _git(repo, "commit", "-q", "--allow-empty", "-m", f"feature {n}")
        _git(repo, "checkout", "-q", "main")
        _git(repo, "merge", "-q", "--no-ff", f"f{n}", "-m", f"merge {n}")
    merges = _git(repo, "log", "--first-parent", "--format=%H").split()
    # When the history is read as --newest reads it
    monkeypatch.chdir(repo)
    history = _history("main")
    # Then it lists main's commits newest first, without the feature branches' own commits
    assert history == merges
    assert len(history) == 3


def test_history_of_a_missing_ref_says_to_fetch_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="fetch-depth: 0"):
        _history("origin/main")


def test_newest_and_previous_verified_are_refused_together() -> None:
    result = CliRunner().invoke(
        app,
        ["deploy", "--env", "production", "--previous-verified", "--newest"],
        env={"ECS_CLUSTER": "c", "ECS_SERVICE": "s", "SERVICE_URL": "http://127.0.0.1:9"},
    )
    assert result.exit_code == 2
    assert "--newest goes forward" in result.output
