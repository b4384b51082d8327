"""The GitOps contract of .github/workflows, read from the YAML itself.

Least privilege is checked per job: a permission is allowed only where a step uses it
(id-token only next to configure-aws-credentials or in a call of the deploy workflow,
pull-requests: write only where a PR comment is made with GITHUB_TOKEN, actions: read only where
preflight reads the environments or a reviewed terraform plan is found and downloaded). Bot
branches and pull requests are pushed with a GitHub App token, so those jobs keep GITHUB_TOKEN
read-only (test_platform_contract.py checks the token). CD's graph and queue semantics are in
test_cd_contract.py, terraform's plan → apply in test_terraform_contract.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.workflows import WORKFLOWS, all_workflows, jobs, load, recipe

ROOT = Path(__file__).resolve().parents[3]
ACTIONS = ROOT / ".github" / "actions"
MINE = ["ci", "cd", "deploy", "retrain", "rollback", "nightly"]
SHA_RE = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
AWS_ACTION = "aws-actions/configure-aws-credentials@"
# Make targets that comment on a pull request with GITHUB_TOKEN.
PR_WRITERS = {"plan-comment", "tf-plan-comment"}
# Make targets that push a branch and open a pull request: with an app token, never GITHUB_TOKEN.
APP_TOKEN_PUSHERS = {"promotion-pr", "rollback-pr"}


def make_targets(job: dict[str, Any]) -> set[str]:
    targets = set()
    for step in job.get("steps") or []:
        if match := re.match(r"make\s+([\w.-]+)", str(step.get("run", ""))):
            targets.add(match.group(1))
    return targets


def uses(job: dict[str, Any]) -> list[str]:
    found = [str(s["uses"]) for s in job.get("steps") or [] if "uses" in s]
    if "uses" in job:
        found.append(str(job["uses"]))
    return found


def test_my_workflows_exist() -> None:
    for name in MINE:
        assert (WORKFLOWS / f"{name}.yml").exists(), name


@pytest.mark.parametrize("name", all_workflows())
def test_top_level_permissions_are_empty(name: str) -> None:
    assert load(name)["permissions"] == {}


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_every_job_declares_its_permissions(workflow: str, job_id: str, job: dict) -> None:
    assert "permissions" in job, f"{workflow}/{job_id} inherits permissions"


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_id_token_only_where_a_role_is_assumed(workflow: str, job_id: str, job: dict) -> None:
    perms = job.get("permissions") or {}
    assumes = any(u.startswith(AWS_ACTION) for u in uses(job))
    calls_deploy = job.get("uses") == "./.github/workflows/deploy.yml"
    if perms.get("id-token") == "write":
        assert assumes or calls_deploy, f"{workflow}/{job_id}: id-token without a role"
    if assumes:
        assert perms.get("id-token") == "write", f"{workflow}/{job_id}: OIDC needs id-token"


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_pr_and_contents_write_only_where_used(workflow: str, job_id: str, job: dict) -> None:
    perms = job.get("permissions") or {}
    targets = make_targets(job)
    if perms.get("pull-requests") == "write":
        assert targets & PR_WRITERS, f"{workflow}/{job_id}: pull-requests: write unused"
    if targets & PR_WRITERS:
        assert perms.get("pull-requests") == "write", f"{workflow}/{job_id} comments"
    assert perms.get("contents") != "write", f"{workflow}/{job_id}: contents: write"
    if targets & APP_TOKEN_PUSHERS:
        assert perms == {"contents": "read"}, f"{workflow}/{job_id} pushes with the app token"
    if "actions" in perms:
        assert perms["actions"] == "read", f"{workflow}/{job_id}"
        downloads = any(u.startswith("actions/download-artifact@") for u in uses(job))
        # deploy.yml's production job reads the run's approvals (release-approvals); its caller
        # must grant what the called job uses
        calls_deploy = job.get("uses") == "./.github/workflows/deploy.yml"
        allowed = {"preflight", "tf-plan-find", "release-approvals"}
        assert allowed & targets or downloads or calls_deploy, (
            f"{workflow}/{job_id}: actions permission unused"
        )
    allowed = {"actions", "contents", "id-token", "pull-requests"}
    assert set(perms) <= allowed, f"{workflow}/{job_id}: unexpected {set(perms) - allowed}"


def _all_uses() -> list[tuple[str, str]]:
    found = [(f"{w}/{j}", u) for w, j, job in jobs() for u in uses(job)]
    for action in sorted(ACTIONS.glob("*/action.yml")):
        doc = yaml.safe_load(action.read_text())
        found += [(str(action), s["uses"]) for s in doc["runs"]["steps"] if "uses" in s]
    return found


@pytest.mark.parametrize(("where", "ref"), _all_uses())
def test_every_uses_is_local_or_pinned_to_a_full_sha(where: str, ref: str) -> None:
    assert ref.startswith("./") or SHA_RE.match(ref), f"{where}: {ref} is not pinned to a SHA"


def test_pinned_actions_carry_a_version_comment() -> None:
    for path in [*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml")]:
        for line in path.read_text().splitlines():
            if re.search(r"uses:\s+[\w-]+/[\w./-]+@[0-9a-f]{40}", line):
                assert re.search(r"# v\d", line), f"{path.name}: {line.strip()}"


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_checkout_never_persists_credentials(workflow: str, job_id: str, job: dict) -> None:
    for step in job.get("steps") or []:
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False


def test_expressions_reach_shell_only_through_env() -> None:
    for name in all_workflows():
        for job_id, job in load(name)["jobs"].items():
            for step in job.get("steps") or []:
                assert "${{" not in str(step.get("run", "")), f"{name}/{job_id}: {step['run']}"


def test_every_run_step_is_one_make_target_or_script() -> None:
    one = re.compile(r"^(make [\w.-]+( [A-Z_]+=\S+)*|python3? scripts/[\w-]+\.py.*)$")
    for name in all_workflows():
        for job_id, job in load(name)["jobs"].items():
            for step in job.get("steps") or []:
                if "run" in step:
                    run = str(step["run"]).strip()
                    assert "\n" not in run, f"{name}/{job_id}: {run!r}"
                    assert one.match(run), f"{name}/{job_id}: {run!r}"


def test_cd_runs_on_merges_to_main_that_change_what_it_ships() -> None:
    cd = load("cd")
    assert cd["on"]["push"]["branches"] == ["main"]
    paths = cd["on"]["push"]["paths"]
    for path in ("promotions.yaml", "ml/**", "serve/**", "Dockerfile", "uv.lock"):
        assert path in paths, path
    # Every path filter names something that exists (no deleted script lingers).
    for path in paths:
        assert list(ROOT.glob(path.replace("/**", "/*") if "**" in path else path)), path


def test_ci_status_job_needs_every_other_job_and_always_runs() -> None:
    ci = load("ci")["jobs"]
    status = ci["status"]
    assert set(status["needs"]) == set(ci) - {"status"}
    assert status["if"] == "always()"
    assert make_targets(status) == {"ci-status"}


def test_ci_status_is_given_the_result_of_every_job_that_guards_promotions() -> None:
    # The guard jobs make's ci-status demands, each reported by ci.yml with its own result
    guards = re.search(r"^CI_GUARD_JOBS := (.+)$", (ROOT / "mk" / "workflows.mk").read_text(), re.M)
    assert guards is not None
    ci = load("ci")["jobs"]
    step = next(s for s in ci["status"]["steps"] if "GUARD_RESULTS" in s.get("env", {}))
    reported = step["env"]["GUARD_RESULTS"]
    for job in guards.group(1).split():
        assert job in ci, f"ci-status guards {job}, which ci.yml does not have"
        assert f"{job}=${{{{ needs.{job}.result }}}}" in reported
    # The guards are what stands between a pull request and an unchecked promotion
    assert {"preflight", "promotions"} <= set(guards.group(1).split())
    assert "promote-validate" in make_targets(ci["promotions"])


def test_ci_runs_the_whole_pr_gate() -> None:
    targets = set().union(*(make_targets(j) for j in load("ci")["jobs"].values()))
    expected = {"lint", "typecheck", "unit", "promote-validate", "promote-plan", "plan-comment"}
    assert expected | {"images", "scan", "compose-test", "tf-check", "workflow-lint"} <= targets
    assert {"preflight", "scan-images"} <= targets


def test_retrain_never_merges_and_rollback_opens_a_pr() -> None:
    for name in ("retrain", "rollback"):
        text = (WORKFLOWS / f"{name}.yml").read_text()
        assert "gh pr merge" not in text
        assert "--auto" not in text
        assert "workflow_dispatch" in load(name)["on"]
    for path in ("ml/adapters/github.py", "ml/promotions/promotion_pr.py"):  # `mlops pr open`
        script = (ROOT / path).read_text()
        assert '"merge"' not in script
        assert "--auto" not in script
    assert set(load("retrain")["on"]["workflow_dispatch"]["inputs"]) == {
        "model-type",
        "params",
        "data-uri",
        "data-sha256",
        "data-reference",
    }


def test_nightly_checks_registry_drift_on_a_schedule() -> None:
    nightly = load("nightly")
    assert nightly["on"]["schedule"]
    assert make_targets(nightly["jobs"]["drift"]) == {"promote-status"}
    # It fails while git is ahead of the registry too (a break-glass not recorded yet):
    # tests/unit/workflows/test_nightly.py shows why plain `status` would pass then.
    (step,) = [s for s in nightly["jobs"]["drift"]["steps"] if "run" in s]
    assert step["run"] == "make promote-status FAIL_ON_PENDING=1"
    drift = nightly["jobs"]["prediction-drift"]
    assert drift["if"] == "vars.DRIFT_LOGS != ''"
    assert drift["environment"] == "monitoring"
    assert make_targets(drift) == {"monitor-drift"}


def test_retrain_gates_the_data_before_training_and_announces_the_pr() -> None:
    jobs = load("retrain")["jobs"]
    runs = [s["run"] for s in jobs["train"]["steps"] if "run" in s]
    assert runs.index("make retrain-data-check") < runs.index("make retrain")
    assert "mlops data check" in recipe("retrain-data-check")
    assert "--notify" in recipe("retrain-data-check")
    steps = jobs["promotion-pr"]["steps"]
    pr = next(s for s in steps if s.get("run") == "make promotion-pr")
    notify = steps[steps.index(pr) + 1]
    assert notify["run"] == "make notify EVENT=retrain.registered"
    assert notify["env"]["PR_URL"] == f"${{{{ steps.{pr['id']}.outputs.pr_url }}}}"
    assert jobs["promotion-pr"]["env"]["MODEL_VERSION"] == "${{ needs.train.outputs.version }}"


def test_an_unchanged_pipeline_registers_nothing_and_opens_no_pr() -> None:
    # `mlops data register` writes the `version` output only when it registered one (a run whose
    # `dvc repro` changed nothing says which version holds the data and exits 0): the job's
    # version comes from that step, and neither the report nor the PR runs without one.
    jobs = load("retrain")["jobs"]
    train = jobs["train"]
    (register,) = [s for s in train["steps"] if s.get("run") == "make dvc-register"]
    assert "mlops data register" in recipe("dvc-register")
    assert f"steps.{register['id']}.outputs.version" in train["outputs"]["version"]
    (report,) = [s for s in train["steps"] if s.get("run") == "make evaluation-report"]
    assert f"steps.{register['id']}.outputs.version != ''" in report["if"]
    assert f"steps.{register['id']}.outputs.version" in report["env"]["MODEL_VERSION"]
    assert jobs["promotion-pr"]["if"] == "needs.train.outputs.version != ''"


def test_rollback_has_a_pr_path_and_a_break_glass_path() -> None:
    rollback = load("rollback")
    assert rollback["on"]["workflow_dispatch"]["inputs"]["mode"]["options"] == ["pr", "now"]
    jobs = rollback["jobs"]
    assert jobs["rollback-pr"]["if"] == "inputs.mode == 'pr'"
    glass = jobs["break-glass"]
    assert glass["if"] == "inputs.mode == 'now'"
    assert glass["environment"]["name"] == "production"  # the one approval
    assert make_targets(glass) >= {"preflight", "breakglass"}
    assert "--previous-verified" in recipe("breakglass")
    # The PR that records it, from the deploy's step outputs, in a job without AWS or the
    # registry-writing identity.
    pr = jobs["break-glass-pr"]
    assert pr["needs"] == "break-glass"
    assert make_targets(pr) == {"preflight", "rollback-pr"}  # preflight: the bot environment
    outputs = glass["outputs"]
    assert outputs["rollback-model"] == "${{ steps.breakglass.outputs.rollback_model }}"
    assert outputs["rollback-to"] == "${{ steps.breakglass.outputs.rollback_to }}"
    assert pr["env"]["ROLLBACK_MODEL"] == "${{ needs.break-glass.outputs.rollback-model }}"
    assert pr["env"]["ROLLBACK_TO"] == "${{ needs.break-glass.outputs.rollback-to }}"
    assert "MLFLOW_DEPLOYER" not in yaml.safe_dump(pr)
    assert "id-token" not in pr["permissions"]


def test_codeowners_guard_promotions_and_gates() -> None:
    lines = (ROOT / ".github" / "CODEOWNERS").read_text().splitlines()
    owners = {ln.split()[0]: ln.split()[1:] for ln in lines if ln.strip() and ln[0] != "#"}
    for path in ("/promotions.yaml", "/config/gates.yaml"):
        assert any(o.endswith("/model-approvers") for o in owners[path])
