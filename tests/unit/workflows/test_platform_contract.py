"""The workflows against config/platform.yaml: names, scopes, credentials, bot PRs, preflight.

- Each workflow reads exactly the `vars.X` / `secrets.X` the list says it reads.
- An environment's name is read only in jobs of that environment; the alias-moving identity
  (MLFLOW_DEPLOYER_*) only in staging/production jobs; no job a pull request triggers sees a
  `write` secret; MLflow credentials reach a step only as MLFLOW_TRACKING_USERNAME/PASSWORD.
- Every step that opens a pull request uses a GitHub App installation token minted in its job
  (a PR opened with GITHUB_TOKEN starts no workflow), never GITHUB_TOKEN / github.token.
- `make preflight ENV=E WORKFLOW=W` steps expose every name the list requires, secrets as
  presence only; CI has a preflight job that `status` needs, and so has CD.

Every workflow reads exactly its names (PENDING is empty: a workflow added there is checked by
a strict xfail, so one that is migrated while still marked fails too).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ml.platform.config import REPOSITORY, load_platform
from ml.platform.workflows import declared_reads, workflow_reads
from tests.fixtures.workflows import WORKFLOWS, jobs, load, recipe
from tests.fixtures.workflows import all_workflows as workflows

ROOT = Path(__file__).resolve().parents[3]
CONFIG = load_platform(ROOT / "config" / "platform.yaml")
PENDING: set[str] = set()
PR_EVENTS = {"pull_request", "pull_request_target", "merge_group"}
APP_TOKEN_ACTION = "actions/create-github-app-token@"
SECRET_RE = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
NAME_RE = re.compile(r"\b(?:vars|secrets)\.([A-Za-z_][A-Za-z0-9_]*)")
# What opening a pull request looks like in a step's make recipe.
OPENS_PR = re.compile(
    r"gh pr create|mlops pr open|mlops rollback\b.*--pr\b|open_promotion_pr\.py open"
)
ENTRIES = {e.name: (kind, e) for kind, e in CONFIG.entries()}
# Every scope holding a name (one name may have an entry per environment, each its own value).
SCOPES: dict[str, set[str]] = {}
for _kind, _entry in CONFIG.entries():
    SCOPES.setdefault(_entry.name, set()).update(_entry.scopes)


def events(doc: dict[str, Any]) -> set[str]:
    on = doc["on"]
    return {on} if isinstance(on, str) else set(on)


def job_environment(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def make_target(step: dict[str, Any]) -> str | None:
    match = re.match(r"make\s+([\w.-]+)", str(step.get("run", "")))
    return match.group(1) if match else None


def callers_environments(workflow: str) -> set[str]:
    """Environments passed by the jobs that call reusable `workflow` (inputs.environment)."""
    found = set()
    for _, _, job in jobs():
        if job.get("uses") == f"./.github/workflows/{workflow}.yml":
            found.add(str((job.get("with") or {}).get("environment")))
    return found


def effective_environments(workflow: str, job: dict[str, Any]) -> set[str]:
    env = job_environment(job)
    if env is None:
        return set()
    if "inputs.environment" in str(env):
        return callers_environments(workflow)
    return {env}


# --- names ------------------------------------------------------------------------------------


def _marks(workflow: str) -> list[Any]:
    if workflow in PENDING:
        return [pytest.mark.xfail(strict=True, reason=f"{workflow}.yml not migrated yet")]
    return []


@pytest.mark.parametrize("workflow", [pytest.param(w, marks=_marks(w)) for w in workflows()])
def test_each_workflow_reads_exactly_what_the_list_says(workflow: str) -> None:
    actual = workflow_reads(WORKFLOWS)[workflow]
    declared = declared_reads(CONFIG, workflow)
    assert sorted(actual - declared) == [], "read but not listed for this workflow"
    assert sorted(declared - actual) == [], "listed for this workflow but not read"


def test_every_workflow_of_the_list_exists() -> None:
    assert set(CONFIG.workflows()) <= set(workflows())


def test_the_migrated_workflows_read_only_listed_names() -> None:
    """Independent of PENDING: no migrated workflow reads a name the list does not know."""
    for workflow, reads in workflow_reads(WORKFLOWS).items():
        if workflow in PENDING:
            continue
        assert {n for _, n in reads} <= set(ENTRIES), workflow


# --- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_environment_names_are_read_only_in_jobs_of_that_environment(
    workflow: str, job_id: str, job: dict[str, Any]
) -> None:
    if workflow in PENDING:
        pytest.skip(f"{workflow}.yml not migrated yet")
    envs = effective_environments(workflow, job)
    for name in NAME_RE.findall(yaml.safe_dump(job)):
        scopes = SCOPES[name]
        if REPOSITORY in scopes:
            continue
        where = f"{workflow}/{job_id} reads {name} (scopes {sorted(scopes)}) in {envs}"
        assert envs, where
        assert envs <= scopes, where


# The registry-writing identities: `release` (CD on main) records the release and the MLflow
# service's deploy; staging and production move their aliases. All three are main-only
# environments, and each holds its own MLflow user: production's exists only in production.
REGISTRY_WRITERS = {"release": "releaser", "staging": "staging-deployer", "production": "deployer"}


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_only_main_only_cd_jobs_see_the_registry_writing_identity(
    workflow: str, job_id: str, job: dict[str, Any]
) -> None:
    text = yaml.safe_dump(job)
    if "MLFLOW_DEPLOYER_" in text:
        envs = effective_environments(workflow, job)
        assert envs, f"{workflow}/{job_id} has no environment"
        assert envs <= set(REGISTRY_WRITERS), f"{workflow}/{job_id}: {envs}"


def test_each_registry_writing_environment_has_its_own_mlflow_user() -> None:
    for name in ("MLFLOW_DEPLOYER_USERNAME", "MLFLOW_DEPLOYER_PASSWORD"):
        users = {
            scope: e.source.user
            for _, e in CONFIG.entries()
            if e.name == name
            for scope in e.scopes
        }
        assert users == REGISTRY_WRITERS, name
    usernames = [CONFIG.mlflow_users[u].username for u in REGISTRY_WRITERS.values()]
    assert len(set(usernames)) == len(usernames)
    for scope in REGISTRY_WRITERS:
        assert CONFIG.environments[scope].branches == ("main",)
    # The production writer is a secret of production and of nothing else
    production = {
        scope
        for _, e in CONFIG.entries()
        if e.source.what == "mlflow-user" and e.source.user == "deployer"
        for scope in e.scopes
    }
    assert production == {"production"}


# --- the GitHub App's private key ---------------------------------------------------------------

APP_KEY = "PROMOTION_APP_PRIVATE_KEY"


def _main_only(env: str) -> bool:
    return env in CONFIG.environments and CONFIG.environments[env].branches == ("main",)


def test_the_app_key_lives_only_in_main_only_environments() -> None:
    scopes = SCOPES[APP_KEY]
    assert REPOSITORY not in scopes
    assert scopes
    assert all(_main_only(s) for s in scopes), scopes


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_the_app_key_is_readable_by_no_job_without_a_main_only_environment(
    workflow: str, job_id: str, job: dict[str, Any]
) -> None:
    """A job reads an environment secret only when it runs in that environment, and an
    environment whose deployment branch policy is main only runs no job of another ref."""
    text = yaml.safe_dump(job)
    reads = f"secrets.{APP_KEY}" in text
    # A reusable workflow called with `secrets: inherit` gets every secret its caller can read.
    inherits = job.get("secrets") == "inherit"
    if not (reads or inherits):
        return
    envs = effective_environments(workflow, job)
    if inherits and not reads:
        # The called workflow's jobs are checked themselves; they must not read the key either
        # unless they run in a main-only environment holding it.
        return
    assert envs, f"{workflow}/{job_id} reads {APP_KEY} without an environment"
    assert all(_main_only(e) for e in envs), f"{workflow}/{job_id}: {envs}"
    assert envs <= SCOPES[APP_KEY], f"{workflow}/{job_id}: {envs} do not hold {APP_KEY}"


def test_every_app_token_is_minted_in_the_bot_environment() -> None:
    minted = [
        (w, j)
        for w, j, job in jobs()
        if any(str(s.get("uses", "")).startswith(APP_TOKEN_ACTION) for s in job.get("steps") or [])
    ]
    assert minted
    for workflow, job_id in minted:
        job = load(workflow)["jobs"][job_id]
        assert job_environment(job) == "bot", f"{workflow}/{job_id}"


# --- what a pull request's job can read ------------------------------------------------------

ADOPTING = ROOT / "docs" / "adopting.md"
PR_SECRETS_HEADING = "**What a pull request's job can read.**"


def documented_pr_secrets() -> set[str]:
    """The secret names docs/adopting.md lists as readable by a pull request's job."""
    text = ADOPTING.read_text()
    assert PR_SECRETS_HEADING in text, f"{ADOPTING} lost its paragraph {PR_SECRETS_HEADING}"
    paragraph = text.split(PR_SECRETS_HEADING, 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", paragraph)) - {"GITHUB_TOKEN"}


def test_every_repository_secret_is_the_documented_list_of_what_a_pull_request_reads() -> None:
    repository = {e.name for kind, e in CONFIG.entries() if kind == "secret" and (
        REPOSITORY in e.scopes)}  # fmt: skip
    assert documented_pr_secrets() == repository
    # None of them can change state
    assert not {e.name for _, e in CONFIG.entries() if e.write} & repository


@pytest.mark.parametrize("workflow", workflows())
def test_no_job_a_pull_request_triggers_sees_a_write_secret(workflow: str) -> None:
    doc = load(workflow)
    if not events(doc) & PR_EVENTS:
        return
    write = {e.name for kind, e in CONFIG.entries() if kind == "secret" and e.write}
    text = (WORKFLOWS / f"{workflow}.yml").read_text()
    used = set(SECRET_RE.findall(text))
    assert not used & write, f"{workflow}.yml runs on pull requests and reads {used & write}"
    assert "secrets: inherit" not in text


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_mlflow_credentials_reach_only_the_steps_that_use_them(
    workflow: str, job_id: str, job: dict[str, Any]
) -> None:
    """A secret with `maps_to` appears only in a step's env, under that name (or as presence)."""
    mapped = {e.name: e.maps_to for _, e in CONFIG.entries() if e.maps_to}
    outside_steps = yaml.safe_dump({k: v for k, v in job.items() if k != "steps"})
    for name in mapped:
        assert f"secrets.{name}" not in outside_steps, f"{workflow}/{job_id}: {name} job-wide"
    for step in job.get("steps") or []:
        assert not set(SECRET_RE.findall(yaml.safe_dump(step.get("with") or {}))) & set(mapped)
        for key, value in (step.get("env") or {}).items():
            for name in SECRET_RE.findall(str(value)):
                if name not in mapped:
                    continue
                presence = str(value).replace(" ", "") == f"${{{{secrets.{name}!=''}}}}"
                assert presence or key == mapped[name], f"{workflow}/{job_id}: {key}: {value}"


# --- pull requests opened by bots -------------------------------------------------------------


def pr_opening_steps() -> list[tuple[str, str, dict[str, Any], int]]:
    found = []
    for workflow, job_id, job in jobs():
        for index, step in enumerate(job.get("steps") or []):
            target = make_target(step)
            # A recipe line continued with a backslash is one shell command; an error message
            # that tells a person what to run is not the recipe running it.
            lines = recipe(target).replace("\\\n", " ") if target else ""
            lines = "\n".join(line for line in lines.splitlines() if "::error" not in line)
            if target and OPENS_PR.search(lines):
                found.append((workflow, job_id, job, index))
    return found


def test_retrain_and_rollback_open_pull_requests() -> None:
    assert {(w, j) for w, j, _, _ in pr_opening_steps()} >= {
        ("retrain", "promotion-pr"),
        ("rollback", "rollback-pr"),
        ("rollback", "break-glass-pr"),
    }


@pytest.mark.parametrize(
    ("workflow", "job_id", "job", "index"),
    pr_opening_steps(),
    ids=[f"{w}/{j}" for w, j, _, _ in pr_opening_steps()],
)
def test_every_pr_opening_step_uses_an_app_token_minted_in_its_job(
    workflow: str, job_id: str, job: dict[str, Any], index: int
) -> None:
    steps = job["steps"]
    step = steps[index]
    minted = {
        s["id"]: s
        for s in steps[:index]
        if str(s.get("uses", "")).startswith(APP_TOKEN_ACTION) and "id" in s
    }
    assert minted, f"{workflow}/{job_id}: no {APP_TOKEN_ACTION} step before the PR step"
    token = str((step.get("env") or {}).get("GH_TOKEN", ""))
    assert token.replace(" ", "") in {f"${{{{steps.{i}.outputs.token}}}}" for i in minted}
    for where in (step, job.get("env") or {}):
        text = yaml.safe_dump(where)
        assert "github.token" not in text
        assert "secrets.GITHUB_TOKEN" not in text
    # The app's token does the writing: the job's GITHUB_TOKEN stays read-only.
    perms = job.get("permissions") or {}
    assert all(v in ("read", "none") for v in perms.values()), f"{workflow}/{job_id}: {perms}"
    for app in minted.values():
        given = app.get("with") or {}
        assert given.get("client-id") == "${{ vars.PROMOTION_APP_ID }}"
        assert given.get("private-key") == "${{ secrets.PROMOTION_APP_PRIVATE_KEY }}"
        # Narrowed to what a bot PR needs.
        assert {k for k in given if k.startswith("permission-")} == {
            "permission-contents",
            "permission-pull-requests",
        }


# --- preflight --------------------------------------------------------------------------------

# ENV is a scope, or (in a reusable workflow whose environment is an input) a shell variable
# such as "$DEPLOY_ENV": then every environment the callers pass is checked.
PREFLIGHT_RE = re.compile(r'^make preflight ENV=("?\$\w+"?|[\w-]+) WORKFLOW=([\w-]+)$')


def preflight_steps() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    return [
        (w, j, job, step)
        for w, j, job in jobs()
        for step in job.get("steps") or []
        if PREFLIGHT_RE.match(str(step.get("run", "")))
    ]


@pytest.mark.parametrize(
    ("workflow", "job_id", "job", "step"),
    preflight_steps(),
    ids=[f"{w}/{j}" for w, j, _, _ in preflight_steps()],
)
def test_a_preflight_step_exposes_every_name_it_checks(
    workflow: str, job_id: str, job: dict[str, Any], step: dict[str, Any]
) -> None:
    match = PREFLIGHT_RE.match(step["run"])
    assert match
    given, checked = match.groups()
    assert checked == workflow
    if given.strip('"').startswith("$"):
        scopes = effective_environments(workflow, job)
        assert scopes, f"{workflow}/{job_id}: ENV={given} but the job has no environment"
    else:
        env_scope = job_environment(job) or REPOSITORY
        assert given == env_scope, f"{workflow}/{job_id}: ENV={given} in a job of {env_scope}"
        scopes = {given}
    env = {k: str(v).replace(" ", "") for k, v in (step.get("env") or {}).items()}
    for scope in scopes:
        for req in CONFIG.required(scope, [workflow]):
            if req.kind == "variable":
                assert env.get(req.name) == f"${{{{vars.{req.name}}}}}", req.name
            else:  # presence only: the value never reaches the preflight process
                assert env.get(req.name) == f"${{{{secrets.{req.name}!=''}}}}", req.name


def test_cd_stops_with_the_list_before_it_builds_or_deploys() -> None:
    cd = load("cd")["jobs"]
    steps = [s for s in cd["preflight"]["steps"] if "run" in s]
    assert [s["run"] for s in steps] == ["make preflight ENV=repository WORKFLOW=cd"]
    assert cd["preflight"]["permissions"] == {"contents": "read", "actions": "read"}
    assert cd["build"]["needs"] == "preflight"
    # Each environment's own names are checked in its job, first (they are not visible before).
    for workflow, job_id, env in (
        ("cd", "build", "release"),
        ("deploy", "deploy", '"$DEPLOY_ENV"'),
    ):
        runs = [s["run"] for s in load(workflow)["jobs"][job_id]["steps"] if "run" in s]
        assert runs[0] == f"make preflight ENV={env} WORKFLOW={workflow}", (workflow, runs)


def test_ci_has_a_preflight_job_the_status_and_registry_jobs_need() -> None:
    ci = load("ci")["jobs"]
    steps = [s for s in ci["preflight"]["steps"] if "run" in s]
    assert [s["run"] for s in steps] == ["make preflight ENV=repository WORKFLOW=ci"]
    assert ci["preflight"]["permissions"] == {"contents": "read", "actions": "read"}
    assert steps[0]["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert "preflight" in ci["status"]["needs"]
    assert ci["promotions"]["needs"] == "preflight"


DOWNLOAD_ARTIFACT = "actions/download-artifact@"


def test_actions_read_only_where_preflight_or_the_reviewed_plan_needs_it() -> None:
    """actions: read is for reading the environments' protection (preflight), for finding and
    downloading a pull request run's plan artefact (terraform.yml), and for reading who approved
    a run's production deployment (release-approvals); nowhere else. A job calling a reusable
    workflow grants what the called jobs use (they are checked themselves)."""
    for workflow, job_id, job in jobs():
        perms = job.get("permissions") or {}
        if "actions" not in perms:
            continue
        assert perms["actions"] == "read"
        if "uses" in job:
            continue
        steps = job["steps"]
        preflight = any(PREFLIGHT_RE.match(str(s.get("run", ""))) for s in steps)
        finds = any(make_target(s) == "tf-plan-find" for s in steps)
        downloads = any(str(s.get("uses", "")).startswith(DOWNLOAD_ARTIFACT) for s in steps)
        approvals = any(make_target(s) == "release-approvals" for s in steps)
        assert preflight or finds or downloads or approvals, f"{workflow}/{job_id}"


# --- branch protection's required check, images ----------------------------------------------


def test_the_required_check_is_ci_status_and_no_other_job_has_its_name() -> None:
    (check,) = CONFIG.branch_protection.required_checks
    named = [(w, j) for w, j, job in jobs() if str(job.get("name", j)) == check]
    assert named == [("ci", "status")]


def test_ci_scans_the_images_it_builds() -> None:
    images = load("ci")["jobs"]["images"]
    runs = [s["run"] for s in images["steps"] if "run" in s]
    assert runs.index("make scan-images") > runs.index("make images")
    assert "make scan" in runs
    assert "scripts/scan_images.sh" in recipe("scan-images")
    script = (ROOT / "scripts" / "scan_images.sh").read_text()
    assert '"$TRIVY" image' in script
    assert "--ignore-unfixed" in script
