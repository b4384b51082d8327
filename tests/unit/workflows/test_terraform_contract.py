"""terraform.yml: reviewed plan = applied plan, read from the workflow and the make recipes.

- pull request: a plan per root with that root's plan role, no lock, uploaded (plan, text,
  sha256) under the name `mlops reviewed-plan` computes, then the sticky comment;
- push to main: `plans` finds each root's artefact (same name, computed from the merged commit),
  then apply platform → staging → production, each in its own protected environment with its
  terraform role, downloading THAT artefact into the folder `make tf-apply-plan` applies from;
- nothing that runs on main plans: no job of the push path runs a target whose recipe calls
  `terraform plan`, and the apply target applies the saved file after checking its checksum.

The `*_problems` functions return one line per broken promise; the mutation tests show each
failing on the defect it guards.
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from ml.platform.config import ROOTS
from tests.fixtures.workflows import ROOT, load, recipe

Doc = dict[str, Any]
CHECKOUT = "actions/checkout@"
UPLOAD = "actions/upload-artifact@"
DOWNLOAD = "actions/download-artifact@"
AWS = "aws-actions/configure-aws-credentials@"
TERRAFORM_PLAN = re.compile(r"terraform\s+(-chdir=\S+\s+)?plan\b")


def make_of(step: Doc) -> tuple[str, str] | None:
    """(target, the rest of the command line) of a `make TARGET ...` step."""
    match = re.match(r"make\s+([\w.-]+)\s*(.*)$", str(step.get("run", "")))
    return (match.group(1), match.group(2)) if match else None


def dry_run(target: str, *args: str) -> str:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target, *args, "TF_STATE_BUCKET=example"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def plan_dir() -> str:
    """Where `make tf-plan` writes the plan, its text and its checksum."""
    out = dry_run("tf-plan", "ROOT=staging")
    match = re.search(r"mkdir -p (\S+)", out)
    assert match, out
    return match.group(1)


def _uses(step: Doc, action: str) -> bool:
    return str(step.get("uses", "")).startswith(action)


# --- the checks -------------------------------------------------------------------------------


def plan_problems(doc: Doc) -> list[str]:
    problems = []
    job = doc["jobs"]["plan"]
    if "environment" in job:
        problems.append("the PR plan job runs in an environment (plan roles trust pull_request)")
    roles = {i["root"]: i["role"] for i in job["strategy"]["matrix"]["include"]}
    if set(roles) != set(ROOTS):
        problems.append(f"planned roots {sorted(roles)}, expected {sorted(ROOTS)}")
    for root, role in roles.items():
        if role != f"${{{{ vars.AWS_PLAN_ROLE_ARN_{root.upper()} }}}}":
            problems.append(f"{root} is planned with {role}")
    steps = job["steps"]
    made = [make_of(s) for s in steps]
    names = [m[0] if m else None for m in made]
    want = ["tf-plan", "tf-plan-name", "tf-plan-comment"]
    if [n for n in names if n in want] != want:
        problems.append(f"plan job runs {names}, expected {want} in that order")
        return problems
    plan = made[names.index("tf-plan")]
    if plan is None or "TF_PLAN_ARGS=-lock=false" not in plan[1]:
        problems.append("the PR plan takes the lock (plan roles cannot write it)")
    name_step = steps[names.index("tf-plan-name")]
    upload = next((s for s in steps if _uses(s, UPLOAD)), None)
    if upload is None:
        problems.append("the plan is not uploaded")
        return problems
    given = upload.get("with") or {}
    if given.get("name") != f"${{{{ steps.{name_step.get('id')}.outputs.name }}}}":
        problems.append(f"the artefact is named {given.get('name')!r}, not by tf-plan-name")
    if str(given.get("path", "")).rstrip("/") != plan_dir():
        problems.append(f"uploads {given.get('path')!r}, the plan is in {plan_dir()}")
    if given.get("if-no-files-found") != "error":
        problems.append("a missing plan would upload nothing, silently")
    if steps.index(upload) > names.index("tf-plan-comment"):
        problems.append("the plan is uploaded after the comment")
    return problems


def apply_problems(doc: Doc) -> list[str]:
    problems = []
    jobs = doc["jobs"]
    plans = jobs.get("plans") or {}
    finds = {m[1].split("=", 1)[1]: s for s in plans.get("steps") or [] if (m := make_of(s))
             and m[0] == "tf-plan-find"}  # fmt: skip
    if set(finds) != set(ROOTS):
        problems.append(f"plans finds {sorted(finds)}, expected {sorted(ROOTS)}")
    previous = None
    for root in ROOTS:
        job = jobs.get(f"apply-{root}")
        if job is None:
            problems.append(f"no apply-{root}")
            continue
        where = f"apply-{root}"
        want_needs = {"plans"} | ({previous} if previous else set())
        got = job.get("needs")
        got = {got} if isinstance(got, str) else set(got or [])
        if got != want_needs:
            problems.append(f"{where} needs {sorted(got)}, expected {sorted(want_needs)}")
        if job.get("environment") != f"infrastructure-{root}":
            problems.append(f"{where} runs in {job.get('environment')}")
        steps = job["steps"]
        downloads = [s for s in steps if _uses(s, DOWNLOAD)]
        applies = [s for s in steps if make_of(s) == ("tf-apply-plan", f"ROOT={root}")]
        if len(downloads) != 1 or len(applies) != 1:
            problems.append(f"{where}: {len(downloads)} downloads, {len(applies)} applies")
            continue
        given = downloads[0].get("with") or {}
        step_id = finds.get(root, {}).get("id")
        outputs = plans.get("outputs") or {}
        for key, output in (("artifact-ids", "artifact_id"), ("run-id", "run_id")):
            ref = str(given.get(key, ""))
            match = re.fullmatch(r"\$\{\{ needs\.plans\.outputs\.([\w-]+) \}\}", ref)
            source = outputs.get(match.group(1)) if match else None
            if source != f"${{{{ steps.{step_id}.outputs.{output} }}}}":
                problems.append(f"{where}: {key} {ref!r} is not plans' {root} {output}")
        if str(given.get("path", "")).rstrip("/") != plan_dir():
            problems.append(f"{where}: downloads into {given.get('path')!r}, not {plan_dir()}")
        if steps.index(downloads[0]) > steps.index(applies[0]):
            problems.append(f"{where}: applies before it downloads")
        aws = [s for s in steps if _uses(s, AWS)]
        if [(s.get("with") or {}).get("role-to-assume") for s in aws] != [
            "${{ vars.AWS_TERRAFORM_ROLE_ARN }}"
        ]:
            problems.append(f"{where}: not exactly its environment's terraform role")
        previous = where
    return problems


def never_plans_on_main_problems(doc: Doc) -> list[str]:
    problems = []
    for job_id, job in doc["jobs"].items():
        if job_id == "plan":
            continue  # the pull request's
        for step in job.get("steps") or []:
            made = make_of(step)
            if made is None:
                continue
            target, args = made
            text = dry_run(target, *[a for a in args.split() if "=" in a])
            if TERRAFORM_PLAN.search(text) or "TF_PLAN_ARGS" in args:
                problems.append(f"{job_id}: make {target} runs terraform plan")
    return problems


# --- the tests --------------------------------------------------------------------------------


def test_a_pull_request_plans_every_root_and_uploads_the_reviewed_plan() -> None:
    assert plan_problems(load("terraform")) == []


def test_main_applies_the_artefact_the_pull_request_uploaded_in_order() -> None:
    assert apply_problems(load("terraform")) == []


def test_nothing_on_main_runs_terraform_plan() -> None:
    assert never_plans_on_main_problems(load("terraform")) == []
    # The apply target applies the saved file after checking its checksum, and says what to do
    # with a stale plan.
    text = dry_run("tf-apply-plan", "ROOT=production")
    assert not TERRAFORM_PLAN.search(text)
    assert "sha256sum --status -c production.tfplan.sha256" in text
    assert re.search(
        r"terraform -chdir=\S+ apply -input=false -no-color \S+production\.tfplan", text
    )
    assert "stale" in text
    assert "re-run the plan and review it again" in text


def test_plan_and_apply_name_the_artefact_the_same_way() -> None:
    assert "mlops reviewed-plan --root" in recipe("tf-plan-name")
    find = dry_run("tf-plan-find", "ROOT=platform")
    assert 'mlops reviewed-plan --root "platform" --find' in find
    jobs = load("terraform")["jobs"]
    assert jobs["plans"]["permissions"] == {
        "contents": "read",
        "actions": "read",
        "pull-requests": "read",
    }
    assert jobs["plans"]["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert jobs["plans"]["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"


def test_pull_requests_never_see_an_apply_identity() -> None:
    doc = load("terraform")
    plan = doc["jobs"]["plan"]
    assert "secrets" not in yaml_text(plan)
    assert "AWS_TERRAFORM_ROLE_ARN" not in yaml_text(plan)
    assert plan["if"].replace("\n", " ").split() == [
        "github.event_name", "==", "'pull_request'", "&&",
        "github.event.pull_request.head.repo.full_name", "==", "github.repository",
    ]  # fmt: skip


def test_path_filters_name_files_that_exist() -> None:
    on = load("terraform")["on"]
    for event in ("pull_request", "push"):
        for path in on[event]["paths"]:
            pattern = path.replace("/**", "/*") if "**" in path else path
            assert list(ROOT.glob(pattern)), f"{event}: {path} matches nothing"


def yaml_text(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value)


# --- each check fails on the defect it guards ------------------------------------------------


def _mutated(change: Callable[[Doc], None]) -> Doc:
    doc = copy.deepcopy(load("terraform"))
    change(doc)
    return doc


def _step(doc: Doc, job: str, start: str) -> Doc:
    return next(
        s for s in doc["jobs"][job]["steps"] if str(s.get("run", s.get("uses"))).startswith(start)
    )


MUTATIONS: list[tuple[str, Callable[[Doc], None], Callable[[Doc], list[str]], str]] = [
    (
        "a plan that takes the lock",
        lambda d: _step(d, "plan", "make tf-plan ").update(run='make tf-plan ROOT="$TF_ROOT_NAME"'),
        plan_problems,
        "takes the lock",
    ),
    (
        "the artefact named by hand",
        lambda d: _step(d, "plan", UPLOAD)["with"].update(name="tfplan"),
        plan_problems,
        "not by tf-plan-name",
    ),
    (
        "production planned with staging's role",
        lambda d: d["jobs"]["plan"]["strategy"]["matrix"]["include"][2].update(
            role="${{ vars.AWS_PLAN_ROLE_ARN_STAGING }}"
        ),
        plan_problems,
        "production is planned with",
    ),
    (
        "apply re-plans instead of downloading",
        lambda d: d["jobs"]["apply-staging"]["steps"].__setitem__(
            2, {"name": "plan", "run": "make tf-plan ROOT=staging"}
        ),
        never_plans_on_main_problems,
        "apply-staging: make tf-plan runs terraform plan",
    ),
    (
        "apply downloads another root's plan",
        lambda d: _step(d, "apply-production", DOWNLOAD)["with"].update(
            {"artifact-ids": "${{ needs.plans.outputs.staging-artifact }}"}
        ),
        apply_problems,
        "is not plans' production artifact_id",
    ),
    (
        "production applied before staging",
        lambda d: d["jobs"]["apply-production"].update(needs=["plans"]),
        apply_problems,
        "apply-production needs ['plans']",
    ),
    (
        "one environment for every apply",
        lambda d: d["jobs"]["apply-staging"].update(environment="infrastructure"),
        apply_problems,
        "apply-staging runs in infrastructure",
    ),
]


@pytest.mark.parametrize(
    ("change", "check", "expected"),
    [m[1:] for m in MUTATIONS],
    ids=[m[0] for m in MUTATIONS],
)
def test_each_check_fails_on_the_defect_it_guards(
    change: Callable[[Doc], None], check: Callable[[Doc], list[str]], expected: str
) -> None:
    problems = check(_mutated(change))
    assert any(expected in p for p in problems), problems
