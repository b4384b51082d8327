"""The promotion PR a retrain opens, and the comparison behind it and `mlops evaluate --report`.

The PR test runs the real git flow against a local bare repository as `origin`, with a stand-in
`gh` on PATH (the GitHub CLI is the process boundary that cannot run here).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.promotions.promotion_pr import Comparison
from ml.promotions.spec import edit_entry, load_spec
from ml.registry import Registry
from tests.fixtures.models import register_tiny

SPEC = """\
# Desired registry state (header comment must survive the edit).
models:
  credit-risk:          # registered model name in MLflow
    version: 1          # promoted on merge
    note: "first"
    rollback: true
"""


def test_the_edit_keeps_comments_and_drops_the_rollback_waiver(tmp_path: Path) -> None:
    spec = tmp_path / "promotions.yaml"
    spec.write_text(SPEC)
    edit_entry(spec, "credit-risk", version=4, note="retrain v4", rollback=False)
    text = spec.read_text()
    assert "# Desired registry state" in text
    assert "# registered model name in MLflow" in text
    entry = load_spec(spec).spec.models["credit-risk"]
    assert (entry.version, entry.note, entry.rollback) == (4, "retrain v4", False)


def test_comparison_marks_better_and_worse() -> None:
    cmp = Comparison(
        "credit-risk", 2, 1, {"roc_auc": 0.79, "brier": 0.14}, {"roc_auc": 0.78, "brier": 0.13}
    )
    table = cmp.markdown()
    assert "| roc_auc | 0.7900 | 0.7800 | +0.0100 (better) |" in table
    assert "| brier | 0.1400 | 0.1300 | +0.0100 (worse) |" in table
    assert cmp.note() == "retrain v2; AUC 0.7900 vs 0.7800"


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An embedded MLflow store with v1 in production and v2 better on ROC-AUC (built once)."""
    base = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    art = base / "artifacts"
    metrics = {"roc_auc": 0.776, "pr_auc": 0.54, "ks": 0.41, "brier": 0.135, "log_loss": 0.43}
    register_tiny(uri, "credit-risk", metrics=metrics, artifact_root=art)
    register_tiny(uri, "credit-risk", metrics={**metrics, "roc_auc": 0.781}, artifact_root=art)
    Registry(uri).set_alias("credit-risk", "production", 1)
    return uri


def test_evaluate_report_compares_with_production(registry_uri: str, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    out = tmp_path / "evaluation.md"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--report", "--version", "2", "--output", str(out)],
        env={"MLFLOW_TRACKING_URI": registry_uri, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 0, result.output
    assert "candidate v2 | production v1" in result.output
    assert "| roc_auc | 0.7810 | 0.7760 | +0.0050 (better) |" in out.read_text()
    assert "roc_auc" in summary.read_text()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _origin_and_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repository whose main holds promotions.yaml at v1, and a clone of it."""
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    _git(tmp_path, "init", "--bare", "-b", "main", str(origin))
    _git(tmp_path, "clone", str(origin), str(work))
    (work / "promotions.yaml").write_text(SPEC)
    _git(work, "add", "promotions.yaml")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-m", "init")
    _git(work, "push", "origin", "HEAD:main")
    return origin, work


def _stand_in_gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """`gh` on PATH as a shell script (the GitHub CLI is the boundary that cannot run here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text("#!/bin/sh\n" + script)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


IDENTITY = {
    f"GIT_{who}_{what}": value
    for who in ("AUTHOR", "COMMITTER")
    for what, value in (("NAME", "airflow"), ("EMAIL", "airflow@example.invalid"))
}


def test_pr_open_pushes_a_branch_and_opens_a_pr_without_merging(
    registry_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a clone of a repository whose promotions.yaml names v1, and a stand-in gh
    origin, work = _origin_and_checkout(tmp_path)
    gh_log = tmp_path / "gh.log"
    _stand_in_gh(
        tmp_path,
        monkeypatch,
        f'printf "%s\\n---\\n" "$*" >> {gh_log}\n'
        'if [ "$1" = pr ]; then echo https://github.com/o/r/pull/12; fi\n',
    )
    monkeypatch.chdir(work)
    outputs = tmp_path / "outputs"

    # When the promotion PR for v2 is opened (as the retrain workflow does, in Actions)
    result = CliRunner().invoke(
        app,
        ["pr", "open", "--version", "2"],
        env={
            "MLFLOW_TRACKING_URI": registry_uri,
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(outputs),
        },
    )

    # Then the branch is on origin with promotions.yaml at v2, and gh opened (not merged) a PR
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "https://github.com/o/r/pull/12"
    # and every side effect is reported (stderr), the checkout back on main, unchanged
    assert "created branch promote/credit-risk-v2 from main with commit " in result.stderr
    assert "switched the checkout back to main" in result.stderr
    assert "pushed promote/credit-risk-v2 to origin" in result.stderr
    assert _git(work, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert "version: 1" in (work / "promotions.yaml").read_text()
    assert "pr_url=https://github.com/o/r/pull/12" in outputs.read_text()
    pushed = _git(origin, "show", "promote/credit-risk-v2:promotions.yaml")
    assert "version: 2" in pushed
    assert "AUC 0.7810 vs 0.7760" in pushed
    assert "rollback" not in pushed.split("models:")[1]
    author = _git(origin, "log", "-1", "--format=%an", "promote/credit-risk-v2")
    assert author == "github-actions[bot]"
    assert _git(origin, "show", "main:promotions.yaml").count("version: 1") == 1
    log = gh_log.read_text()
    assert "auth setup-git" in log
    assert "pr create --head promote/credit-risk-v2" in log
    assert "| roc_auc | 0.7810 | 0.7760 | +0.0050 (better) |" in log
    assert "merge" not in log.split("pr create", 1)[0]


def test_pr_open_without_gh_is_a_clear_error(
    registry_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no gh (nor git) here
    result = CliRunner().invoke(
        app,
        ["pr", "open", "--version", "2", "--file", str(tmp_path / "promotions.yaml")],
        env={"MLFLOW_TRACKING_URI": registry_uri},
    )
    assert result.exit_code in (2, 12), result.output


@pytest.mark.parametrize(
    "broken",
    ["no gh", "no origin", "uncommitted change", "branch exists"],
)
def test_pr_open_checks_gh_remote_and_a_clean_tree_before_any_side_effect(
    registry_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    # Given a checkout with one precondition broken
    _, work = _origin_and_checkout(tmp_path)
    if broken == "no gh":
        bin_dir = tmp_path / "nogh"
        bin_dir.mkdir()
        git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
        (bin_dir / "git").symlink_to(git)
        monkeypatch.setenv("PATH", str(bin_dir))
    else:
        _stand_in_gh(tmp_path, monkeypatch, "echo https://github.com/o/r/pull/1\n")
    if broken == "no origin":
        _git(work, "remote", "remove", "origin")
    if broken == "uncommitted change":
        (work / "promotions.yaml").write_text(SPEC + "# local edit\n")
    if broken == "branch exists":
        _git(work, "branch", "promote/credit-risk-v2")
    before = (work / "promotions.yaml").read_text()
    branches = _git(work, "branch", "--list")
    monkeypatch.chdir(work)

    # When the PR is opened
    result = CliRunner().invoke(
        app, ["pr", "open", "--version", "2"], env={"MLFLOW_TRACKING_URI": registry_uri, **IDENTITY}
    )

    # Then exit 12 with one line naming the problem, and nothing changed: file, branch, HEAD
    assert result.exit_code == 12, result.output
    assert {"no gh": "`gh`", "no origin": "no `origin` remote",
            "uncommitted change": "uncommitted changes (promotions.yaml)",
            "branch exists": "exists already"}[broken] in result.output  # fmt: skip
    assert (work / "promotions.yaml").read_text() == before
    assert _git(work, "branch", "--list") == branches
    assert _git(work, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_pr_open_in_a_clone_leaves_the_checkout_alone(
    registry_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a checkout whose `origin` is a bare repository, and a stand-in gh (GitHub cannot be
    # reached here: the stand-in records its arguments and prints a PR URL)
    origin, work = _origin_and_checkout(tmp_path)
    _stand_in_gh(tmp_path, monkeypatch, "echo https://github.com/o/r/pull/13\n")
    monkeypatch.chdir(work)

    # When the PR is opened with --clone origin (an Airflow worker's long-lived checkout)
    result = CliRunner().invoke(
        app,
        ["pr", "open", "--version", "2", "--clone", "origin", "--json"],
        env={"MLFLOW_TRACKING_URI": registry_uri, **IDENTITY},
    )

    # Then the branch is on origin, the JSON names it, and the checkout is still on main, clean
    assert result.exit_code == 0, result.output
    assert '"branch": "promote/credit-risk-v2"' in result.output
    assert '"url": "https://github.com/o/r/pull/13"' in result.output
    assert "version: 2" in _git(origin, "show", "promote/credit-risk-v2:promotions.yaml")
    assert _git(work, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert _git(work, "status", "--porcelain") == ""
    assert "version: 1" in (work / "promotions.yaml").read_text()


def test_pr_open_with_clone_refuses_an_absolute_file(registry_uri: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["pr", "open", "--version", "2", "--clone", str(tmp_path), "--file", "/x/promotions.yaml"],
        env={"MLFLOW_TRACKING_URI": registry_uri},
    )
    assert result.exit_code == 2, result.output
    assert "path inside the repository" in result.output


def test_a_retried_pr_open_in_a_clone_reuses_the_pushed_branch(
    registry_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stand-in gh that fails once (after the branch was pushed), then works
    origin, work = _origin_and_checkout(tmp_path)
    flag = tmp_path / "gh-failed-once"
    _stand_in_gh(
        tmp_path,
        monkeypatch,
        f'if [ ! -e {flag} ]; then touch {flag}; echo "HTTP 502" >&2; exit 1; fi\n'
        "echo https://github.com/o/r/pull/14\n",
    )
    monkeypatch.chdir(work)
    args = ["pr", "open", "--version", "2", "--clone", "origin"]
    env = {"MLFLOW_TRACKING_URI": registry_uri, **IDENTITY}

    # When the first attempt fails at `gh` and the step is retried
    first = CliRunner().invoke(app, args, env=env)
    pushed = _git(origin, "rev-parse", "promote/credit-risk-v2")
    second = CliRunner().invoke(app, args, env=env)

    # Then the retry opens the PR for the branch already pushed, without a second commit
    assert first.exit_code == 12, first.output
    assert second.exit_code == 0, second.output
    assert second.stdout.strip() == "https://github.com/o/r/pull/14"
    assert _git(origin, "rev-parse", "promote/credit-risk-v2") == pushed

    # and a branch of that name holding another version is refused, not overwritten
    _git(origin, "branch", "promote/credit-risk-v1", "promote/credit-risk-v2")
    clash = CliRunner().invoke(app, ["pr", "open", "--version", "1", "--clone", "origin"], env=env)
    assert clash.exit_code == 12, clash.output
    assert "exists on the remote with other content" in clash.output
