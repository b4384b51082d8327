"""history and rollback against a real git repository and a SQLite registry."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.promotions.apply import ApplyContext, apply_spec
from ml.promotions.spec import load_spec
from ml.registry import Registry
from tests.fixtures.models import register_tiny, write_spec

NAME = "credit-risk"


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
    assert result.exit_code == 8
    assert "gh" in result.output
