"""history and rollback against a real git repository and a registry (SQLite, `mlflow server`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.cli import app
from ml.promotions.apply import ApplyContext, ApplyOptions
from ml.promotions.apply import apply_spec as _apply_spec
from ml.promotions.reconcile import desired_from
from ml.promotions.records import is_rollback
from ml.promotions.rollback import previous_production
from ml.promotions.spec import LoadedSpec, load_spec
from ml.registry import Registry
from tests.fixtures.models import CountingClient, register_tiny, write_spec
from tests.fixtures.services import MlflowServer

NAME = "credit-risk"


def apply_spec(registry: Registry, loaded: LoadedSpec, env: str, ctx: ApplyContext) -> None:
    _apply_spec(registry, desired_from(loaded), env, ctx, options=ApplyOptions(settle=0))


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def repo_and_registry(tmp_path: Path) -> tuple[Path, str]:
    """A git repo whose promotions.yaml went v1 → v2, each applied to both environments."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Ada")
    _git(repo, "config", "user.email", "ada@example.com")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register_tiny(uri, NAME, artifact_root=tmp_path / "art")
    register_tiny(uri, NAME, artifact_root=tmp_path / "art")
    spec = repo / "promotions.yaml"
    registry = Registry(uri)
    for version, (subject, when) in {1: ("first (#11)", "T1"), 2: ("retrain (#12)", "T2")}.items():
        write_spec(spec, {NAME: version})
        _git(repo, "add", "promotions.yaml")
        _git(repo, "commit", "-q", "-m", subject)
        ctx = ApplyContext("sha", "bot", str(10 + version), None, when)
        for env in ("staging", "production"):
            apply_spec(registry, load_spec(spec), env, ctx)
    return spec, uri


def test_rollback_commit_and_history(repo_and_registry: tuple[Path, str]) -> None:
    spec, uri = repo_and_registry
    env = {"MLFLOW_TRACKING_URI": uri}

    # When rolling back with --commit
    result = CliRunner().invoke(app, ["rollback", NAME, "--file", str(spec), "--commit"], env=env)

    # Then the file names v1 with an explicit marker, on a new branch, in a new commit
    assert result.exit_code == 0, result.output
    entry = load_spec(spec).spec.models[NAME]
    assert (entry.version, entry.rollback) == (1, True)
    assert "production v2 → v1" in (entry.note or "")
    assert _git(spec.parent, "branch", "--show-current").strip() == f"rollback/{NAME}-v1"
    assert "# test spec" in spec.read_text()

    # And history shows the timeline joined with the registry tags
    result = CliRunner().invoke(app, ["history", NAME, "--file", str(spec), "--json"], env=env)
    assert result.exit_code == 0, result.output
    events = json.loads(result.output)
    moves = [(e["from_version"], e["to_version"], e["rollback"]) for e in events]
    assert moves == [(None, 1, False), (1, 2, False), (2, 1, True)]
    assert events[1]["pr"] == "12"
    assert events[1]["production"]["actor"] == "bot"
    text = CliRunner().invoke(app, ["history", NAME, "--file", str(spec)], env=env).output
    assert "ROLLBACK" in text


def test_rollback_pr_without_gh_is_a_clear_error(
    repo_and_registry: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, uri = repo_and_registry
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd: None if cmd == "gh" else real_which(cmd))
    result = CliRunner().invoke(
        app, ["rollback", NAME, "--file", str(spec), "--pr"], env={"MLFLOW_TRACKING_URI": uri}
    )
    assert result.exit_code == 12  # GitHubError
    assert "gh" in result.output


# Each step's apply to both environments; git dates one day earlier keep the log's order exact
# (`git log --follow` orders commits of the same second arbitrarily).
APPLIED = [
    {"staging": f"2030-01-0{day}T09:00:00Z", "production": f"2030-01-0{day}T15:00:00Z"}
    for day in (2, 3, 4)
]


def _commit(repo: Path, day: int, *args: str) -> None:
    date = f"2030-01-0{day}T08:00:00Z"
    subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
    )


def _land(repo: Path, day: int, branch: str, subject: str, edit: Callable[[], object]) -> str:
    """Edit promotions.yaml on `branch` and merge it with a merge commit, as a reviewed PR lands.

    Returns the merge commit: CD applies it, while git log (so history) shows the commit that
    changed the file.
    """
    _git(repo, "checkout", "-q", "-b", branch)
    edit()
    _commit(repo, day, "commit", "-qam", subject)
    _git(repo, "checkout", "-q", "main")
    _commit(repo, day, "merge", "-q", "--no-ff", branch, "-m", f"Merge pull request: {subject}")
    return _git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def promoted_twice(mlflow_pg_server: MlflowServer, tmp_path: Path) -> tuple[Path, str, list[str]]:
    """v1, v2, then a rollback to v1, each landed and applied to both environments.

    Returns the spec, the model and each step's apply commit. v1 lands as a plain commit on main
    (a squash merge), v2 and the rollback through merge commits.
    """
    name = f"m-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        register_tiny(mlflow_pg_server.uri, name)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Ada")
    _git(repo, "config", "user.email", "ada@example.com")
    spec = repo / "promotions.yaml"
    registry = Registry(mlflow_pg_server.uri)
    shas: list[str] = []

    def apply_both(step: int) -> None:
        for env in ("staging", "production"):
            ctx = ApplyContext(shas[step], "ci", str(step + 1), None, APPLIED[step][env])
            apply_spec(registry, load_spec(spec), env, ctx)

    def rollback() -> None:
        result = CliRunner().invoke(
            app,
            ["rollback", name, "--file", str(spec)],
            env={"MLFLOW_TRACKING_URI": registry.tracking_uri},
        )
        assert result.exit_code == 0, result.output

    write_spec(spec, {name: 1})
    _git(repo, "add", "promotions.yaml")
    _commit(repo, 1, "commit", "-qm", "promote v1 (#1)")
    shas.append(_git(repo, "rev-parse", "HEAD").strip())
    apply_both(0)
    shas.append(_land(repo, 2, "v2", "promote v2 (#2)", lambda: write_spec(spec, {name: 2})))
    apply_both(1)
    shas.append(_land(repo, 3, "back", "roll back to v1 (#3)", rollback))
    apply_both(2)
    return spec, name, shas


def test_history_gives_each_promotion_its_own_apply(
    mlflow_pg_server: MlflowServer, promoted_twice: tuple[Path, str, list[str]]
) -> None:
    spec, name, shas = promoted_twice
    env = {"MLFLOW_TRACKING_URI": mlflow_pg_server.uri}

    # When the history is read
    result = CliRunner().invoke(app, ["history", name, "--file", str(spec), "--json"], env=env)

    # Then each of the three events carries the apply of its own commit, v1's twice as well
    assert result.exit_code == 0, result.output
    events = json.loads(result.output)
    assert [(e["from_version"], e["to_version"], e["rollback"]) for e in events] == [
        (None, 1, False),
        (1, 2, False),
        (2, 1, True),
    ]
    for env_name in ("staging", "production"):
        records = [e[env_name] for e in events]
        assert [r["time"] for r in records] == [a[env_name] for a in APPLIED]
        assert [r["git_sha"] for r in records] == shas
    assert [e["pr"] for e in events] == ["1", "2", "3"]

    # And the text timeline shows three distinct production times, in order
    text = CliRunner().invoke(app, ["history", name, "--file", str(spec)], env=env).output
    shown = re.findall(r"\| production (\S+) by ci", " ".join(text.split()))  # undo wrapping
    assert shown == [a["production"] for a in APPLIED]


def test_the_single_tag_older_applies_wrote_is_still_read(
    mlflow_pg_server: MlflowServer, promoted_twice: tuple[Path, str, list[str]]
) -> None:
    # Given the tags applies wrote before per-apply records: per version and environment, one
    # `promotion.<env>` holding the latest apply
    spec, name, shas = promoted_twice
    uri = mlflow_pg_server.uri
    client = MlflowClient(uri, registry_uri=uri)
    registry = Registry(uri)
    state = registry.model_state(name)
    assert state is not None
    for info in state.versions.values():
        for env in ("staging", "production"):
            keys = [key for key in info.tags if key.startswith(f"promotion.{env}.")]
            latest = max((info.tags[key] for key in keys), key=lambda raw: json.loads(raw)["time"])
            for key in keys:
                client.delete_model_version_tag(name, str(info.version), key)
            client.set_model_version_tag(name, str(info.version), f"promotion.{env}", latest)

    # When the history is read
    result = CliRunner().invoke(
        app, ["history", name, "--file", str(spec), "--json"], env={"MLFLOW_TRACKING_URI": uri}
    )

    # Then each tag sits on the change its commit applied; v1's first promotion, whose record
    # the rollback overwrote, shows none rather than the rollback's time
    assert result.exit_code == 0, result.output
    production = [e["production"] for e in json.loads(result.output)]
    assert [r and r["time"] for r in production] == [None, *(a["production"] for a in APPLIED[1:])]

    # And the engine still counts those tags as applied: no write, the same rollback target
    state = registry.model_state(name)
    counting = CountingClient(registry.client)
    registry.client = counting  # type: ignore[assignment]
    for env in ("staging", "production"):
        apply_spec(registry, load_spec(spec), env, ApplyContext(shas[2], "ci", "3", None, "T4"))
    assert counting.writes == []
    assert previous_production(state, 1, spec, name) == 2
    assert is_rollback(state, 2)
