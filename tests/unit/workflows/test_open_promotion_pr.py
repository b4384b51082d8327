"""scripts/open_promotion_pr.py: config merge, the promotions.yaml edit, the report and the PR.

The PR test runs the real git flow against a local bare repository as `origin`, with a stand-in
`gh` on PATH (the GitHub CLI is the process boundary that cannot run here).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ml.promotions.spec import load_spec
from tests.fixtures.models import register_tiny

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))

import open_promotion_pr as opp  # noqa: E402

SPEC = """\
# Desired registry state (header comment must survive the edit).
models:
  credit-risk:          # registered model name in MLflow
    version: 1          # promoted on merge
    note: "first"
    rollback: true
"""


def test_flat_params_apply_to_the_chosen_model() -> None:
    base = {"seed": 42, "candidates": {"xgboost": {"max_depth": 5, "n_estimators": 800}}}
    merged = opp.merged_train_config(base, {"max_depth": 3}, "xgboost")
    assert merged["candidates"]["xgboost"] == {"max_depth": 3, "n_estimators": 800}
    assert base["candidates"]["xgboost"]["max_depth"] == 5  # the input is not mutated


def test_params_keyed_by_candidate() -> None:
    merged = opp.merged_train_config({}, {"logreg": {"C": 0.1}}, None)
    assert merged["candidates"] == {"logreg": {"C": 0.1}}


def test_flat_params_without_a_model_type_are_refused() -> None:
    with pytest.raises(opp.PromotionPrError, match="model type"):
        opp.merged_train_config({}, {"max_depth": 3}, None)


def test_set_version_keeps_comments_and_drops_the_rollback_waiver(tmp_path: Path) -> None:
    spec = tmp_path / "promotions.yaml"
    spec.write_text(SPEC)
    opp.set_version(spec, "credit-risk", 4, "retrain v4")
    text = spec.read_text()
    assert "# Desired registry state" in text
    assert "# registered model name in MLflow" in text
    entry = load_spec(spec).spec.models["credit-risk"]
    assert entry.version == 4
    assert entry.note == "retrain v4"
    assert entry.rollback is False


def test_comparison_marks_better_and_worse() -> None:
    cmp = opp.Comparison(
        "credit-risk", 2, 1, {"roc_auc": 0.79, "brier": 0.14}, {"roc_auc": 0.78, "brier": 0.13}
    )
    table = cmp.markdown()
    assert "| roc_auc | 0.7900 | 0.7800 | +0.0100 (better) |" in table
    assert "| brier | 0.1400 | 0.1300 | +0.0100 (worse) |" in table


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An embedded MLflow store with v1 in production and v2 better on ROC-AUC (built once)."""
    base = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    art = base / "artifacts"
    metrics = {"roc_auc": 0.776, "pr_auc": 0.54, "ks": 0.41, "brier": 0.135, "log_loss": 0.43}
    register_tiny(uri, "credit-risk", metrics=metrics, artifact_root=art)
    register_tiny(uri, "credit-risk", metrics={**metrics, "roc_auc": 0.781}, artifact_root=art)
    from ml.registry import Registry

    Registry(uri).set_alias("credit-risk", "production", 1)
    return uri


@pytest.fixture
def registry_env(registry_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ML_TRACKING_URI", registry_uri)
    monkeypatch.setenv("ML_MODEL_NAME", "credit-risk")
    return registry_uri


def test_report_compares_with_production(
    registry_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    text = opp.report(2)
    assert "candidate v2 | production v1" in text
    assert "| roc_auc | 0.7810 | 0.7760 | +0.0050 (better) |" in text
    assert "roc_auc" in (tmp_path / "summary.md").read_text()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_open_pushes_a_branch_and_opens_a_pr_without_merging(
    registry_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a clone of a repository whose promotions.yaml names v1, and a stand-in gh
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    _git(tmp_path, "init", "--bare", "-b", "main", str(origin))
    _git(tmp_path, "clone", str(origin), str(work))
    (work / "promotions.yaml").write_text(SPEC)
    _git(work, "add", "promotions.yaml")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-m", "init")
    _git(work, "push", "origin", "HEAD:main")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh_log = tmp_path / "gh.log"
    gh = bin_dir / "gh"
    gh.write_text(
        f'#!/bin/sh\nprintf "%s\\n---\\n" "$*" >> {gh_log}\n'
        'if [ "$1" = pr ]; then echo https://github.com/o/r/pull/12; fi\n'
    )
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(work)
    # When the promotion PR for v2 is opened
    url = opp.open_pr(2, Path("promotions.yaml"))
    # Then the branch is on origin with promotions.yaml at v2, and gh opened (not merged) a PR
    assert url == "https://github.com/o/r/pull/12"
    pushed = _git(origin, "show", "promote/credit-risk-v2:promotions.yaml")
    assert "version: 2" in pushed
    assert "AUC 0.7810 vs 0.7760" in pushed
    assert _git(origin, "show", "main:promotions.yaml").count("version: 1") == 1
    log = gh_log.read_text()
    assert "auth setup-git" in log
    assert "pr create --head promote/credit-risk-v2" in log
    assert "| roc_auc | 0.7810 | 0.7760 | +0.0050 (better) |" in log
    assert "merge" not in log.split("pr create", 1)[0]
