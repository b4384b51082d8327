"""CD's job graph and queue semantics, read from cd.yml, deploy.yml and rollback.yml.

What cd.yml's header promises, as checks over the parsed YAML (each `*_problems` function returns
one line per broken promise; the tests assert there are none, and the mutation tests at the end
show each check failing on the defect it guards, in a copy of the workflows):

- lanes: every job that deploys (a make target in DEPLOYING) holds its environment's
  job-level concurrency group, cancel-in-progress false, no `queue: max`; jobs deploying to the
  same environment share the group (CD's production and the break-glass); cd.yml has no
  workflow-level group (that would hold the whole run, staging included, during production's
  approval);
- graph: preflight → build (environment release) → staging → production, and build →
  mlflow-approval (production's reviewers) → mlflow (release),
  staging verifying (e2e, release-verify) inside its lane before production may start;
- build once: only the build job builds; no job that deploys builds or pushes an image, and
  production receives the release the build job recorded from its own digests;
- newest: staging's and the MLflow service's deploys run `mlops deploy --newest` (the
  replaced-pending semantics are safe only because a late job deploys the newest release, never
  an older one); production never does: it deploys its run's release, bound to the digest the
  build job sealed it with, or ends superseded;
- notifications never fail the job.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.workflows import ROOT, load, recipe

Doc = dict[str, Any]
Docs = dict[str, Doc]
DEPLOY_CALL = "./.github/workflows/deploy.yml"
# Make targets that change what an environment runs (or record that it was verified there).
DEPLOYING = {"deploy", "deploy-mlflow", "breakglass", "release-verify"}
# Make targets that build or push an image.
BUILDING = {"push-images", "images", "release", "docker-engine"}
BUILD_COMMANDS = re.compile(r"mlops images (build|push)|docker (build|push)|buildx")


def docs() -> Docs:
    return {name: load(name) for name in ("cd", "deploy", "rollback")}


def targets(job: Doc) -> list[str]:
    found = []
    for step in job.get("steps") or []:
        if match := re.match(r"make\s+([\w.-]+)", str(step.get("run", ""))):
            found.append(match.group(1))
    return found


def needs(job: Doc) -> set[str]:
    value = job.get("needs") or []
    return {value} if isinstance(value, str) else set(value)


def _with_input(value: Any, env: str) -> Any:
    """deploy.yml's job as a caller passing `environment: env` runs it."""
    if isinstance(value, dict):
        return {k: _with_input(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_input(v, env) for v in value]
    if isinstance(value, str):
        return value.replace("${{ inputs.environment }}", env)
    return value


def deploy_jobs(d: Docs) -> list[tuple[str, str, str, Doc]]:
    """(workflow, job, environment, job spec) of every job that deploys, with deploy.yml's job
    resolved once per caller (its environment and concurrency group come from the input)."""
    found = []
    for workflow in ("cd", "rollback"):
        for job_id, job in d[workflow]["jobs"].items():
            if job.get("uses") == DEPLOY_CALL:
                env = str(job["with"]["environment"])
                for called in d["deploy"]["jobs"].values():
                    found.append((workflow, job_id, env, _with_input(called, env)))
            elif set(targets(job)) & DEPLOYING:
                named = job.get("environment")
                named = named.get("name") if isinstance(named, dict) else named
                lane = "mlflow" if "deploy-mlflow" in targets(job) else str(named)
                found.append((workflow, job_id, lane, job))
    return found


# --- the checks -------------------------------------------------------------------------------


def lane_problems(d: Docs) -> list[str]:
    problems = []
    if "concurrency" in d["cd"]:
        problems.append("cd.yml has a workflow-level concurrency group (it holds the whole run)")
    groups: dict[str, set[str]] = {}
    for workflow, job_id, env, job in deploy_jobs(d):
        where = f"{workflow}/{job_id} ({env})"
        conc = job.get("concurrency")
        if not isinstance(conc, dict):
            problems.append(f"{where}: no job-level concurrency group")
            continue
        if conc.get("cancel-in-progress") is not False:
            problems.append(f"{where}: cancel-in-progress is not false")
        if conc.get("queue", "single") != "single":
            problems.append(f"{where}: queue {conc.get('queue')} (each pending job would ask)")
        group = str(conc.get("group"))
        if group != f"deploy-{env}":
            problems.append(f"{where}: group {group!r}, expected 'deploy-{env}'")
        groups.setdefault(env, set()).add(group)
    for workflow, doc in d.items():
        conc = doc.get("concurrency")
        if isinstance(conc, dict) and conc.get("cancel-in-progress") is not False:
            problems.append(f"{workflow}.yml: workflow-level group may cancel a run in progress")
    problems += [f"{env}: several groups {sorted(g)}" for env, g in groups.items() if len(g) > 1]
    if not {"staging", "production", "mlflow"} <= set(groups):
        problems.append(f"lanes found only for {sorted(groups)}")
    return problems


def graph_problems(d: Docs) -> list[str]:
    cd = d["cd"]["jobs"]
    problems = []
    expected = {
        "build": ({"preflight"}, "release"),
        "mlflow-approval": ({"build"}, "production"),
        "mlflow": ({"build", "mlflow-approval"}, "release"),
        "staging": ({"build"}, None),
        "production": ({"build", "staging"}, None),
    }
    for job_id, (wanted, env) in expected.items():
        job = cd.get(job_id)
        if job is None:
            problems.append(f"cd.yml has no job {job_id}")
            continue
        if needs(job) != wanted:
            problems.append(f"cd/{job_id} needs {sorted(needs(job))}, expected {sorted(wanted)}")
        if env is not None and job.get("environment") != env:
            problems.append(f"cd/{job_id} runs in {job.get('environment')}, expected {env}")
    for job_id, env, verify in (("staging", "staging", True), ("production", "production", False)):
        job = cd.get(job_id) or {}
        given = job.get("with") or {}
        if job.get("uses") != DEPLOY_CALL or given.get("environment") != env:
            problems.append(f"cd/{job_id} does not call deploy.yml for {env}")
        if given.get("verify") is not verify:
            problems.append(f"cd/{job_id}: verify is {given.get('verify')}, expected {verify}")
    (job,) = d["deploy"]["jobs"].values()
    if job.get("environment", {}).get("name") != "${{ inputs.environment }}":
        problems.append("deploy.yml's job does not name the environment (no approval)")
    steps = [s for s in job["steps"] if "run" in s]
    order = [make for s in steps for make in targets({"steps": [s]})]
    want = ["preflight", "deploy", "e2e-deployed", "release-verify"]
    if [t for t in order if t in want] != want:
        problems.append(f"deploy.yml runs {order}, expected {want} in that order")
    for step in steps:
        verifying = targets({"steps": [step]})[0] in ("e2e-deployed", "release-verify")
        if verifying and step.get("if") != "inputs.verify":
            problems.append(f"deploy.yml: {step['run']} is not limited to verify runs")
    return problems


def build_once_problems(d: Docs) -> list[str]:
    problems = []
    cd = d["cd"]["jobs"]
    builders = [j for j, job in cd.items() if set(targets(job)) & BUILDING]
    if builders != ["build"]:
        problems.append(f"jobs that build or push images: {builders}, expected ['build']")
    for workflow, job_id, env, job in deploy_jobs(d):
        for target in targets(job):
            if target in BUILDING or BUILD_COMMANDS.search(recipe(target)):
                problems.append(f"{workflow}/{job_id} ({env}) builds: make {target}")
        for step in job.get("steps") or []:
            if re.search(r"docker/(build-push|setup-buildx)", str(step.get("uses", ""))):
                problems.append(f"{workflow}/{job_id} ({env}) builds: {step['uses']}")
    build = cd.get("build", {})
    outputs = build.get("outputs") or {}
    steps = {s.get("id"): s for s in build.get("steps") or []}
    if steps.get("images", {}).get("run") != "make push-images":
        problems.append("cd/build: the images step is not `make push-images`")
    if steps.get("release", {}).get("run") != "make release":
        problems.append("cd/build: the release step is not `make release`")
    if outputs.get("release") != "${{ steps.release.outputs.release }}":
        problems.append("cd/build does not output the release it recorded")
    for job_id in ("staging", "production", "mlflow"):
        job = cd.get(job_id, {})
        given = (job.get("with") or {}).get("release") or next(
            (
                (s.get("env") or {}).get("RELEASE")
                for s in job.get("steps") or []
                if "deploy-mlflow" in targets({"steps": [s]})
            ),
            None,
        )
        if given != "${{ needs.build.outputs.release }}":
            problems.append(f"cd/{job_id} deploys {given!r}, not the build job's release")
    # The release is made of the digests the push wrote (same file), never of a tag.
    images = re.search(r"--output (\S+)", recipe("push-images"))
    used = re.search(r"--images (\S+)", recipe("release"))
    if not images or not used or images.group(1) != used.group(1):
        problems.append("`make release` does not read the digests `make push-images` wrote")
    (deploy,) = d["deploy"]["jobs"].values()
    deploy_step: Doc = next((s for s in deploy["steps"] if s.get("id") == "deploy"), {})
    if (deploy_step.get("env") or {}).get("RELEASE") != "${{ inputs.release }}":
        problems.append("deploy.yml does not deploy the release it was given")
    return problems


def newest_problems(d: Docs) -> list[str]:
    problems = []
    for workflow, job_id, env, job in deploy_jobs(d):
        for step in job.get("steps") or []:
            if {"deploy", "deploy-mlflow"} & set(targets({"steps": [step]})):
                if str((step.get("env") or {}).get("DEPLOY_NEWEST")) != "1":
                    problems.append(f"{workflow}/{job_id} ({env}): deploy without DEPLOY_NEWEST")
                checkout = next(
                    s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout")
                )
                if (checkout.get("with") or {}).get("fetch-depth") != 0:
                    problems.append(f"{workflow}/{job_id}: no history for --newest to order by")
    return problems


def notify_problems(d: Docs) -> list[str]:
    problems = []
    for workflow, doc in d.items():
        for job_id, job in doc["jobs"].items():
            for step in job.get("steps") or []:
                if "notify" in targets({"steps": [step]}):
                    if step.get("continue-on-error") is not True:
                        problems.append(f"{workflow}/{job_id}: {step['run']} may fail the job")
                    if not re.match(r"make notify EVENT=[\w.]+$", step["run"]):
                        problems.append(f"{workflow}/{job_id}: {step['run']} names no event")
    return problems


# --- the tests --------------------------------------------------------------------------------


def test_each_environment_has_one_lane_and_nothing_in_progress_is_cancelled() -> None:
    assert lane_problems(docs()) == []


def test_the_job_graph_verifies_in_staging_before_production() -> None:
    assert graph_problems(docs()) == []


def test_images_are_built_once_and_production_deploys_the_recorded_release() -> None:
    assert build_once_problems(docs()) == []


def _make_deploy(env_name: str) -> str:
    env = {**os.environ, "DEPLOY_NEWEST": "1", "RELEASE": "r1"}
    return subprocess.run(
        ["make", "-n", "--no-print-directory", "deploy", f"ENV={env_name}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip


def test_staging_takes_the_newest_release_production_exactly_its_runs() -> None:
    assert newest_problems(docs()) == []
    # `make deploy` turns DEPLOY_NEWEST into --newest for staging only; production is bound to
    # the digest the build job sealed the release with
    assert 'mlops deploy --env staging --release "$RELEASE" ${DEPLOY_NEWEST:+--newest}' in (
        _make_deploy("staging")
    )
    production = _make_deploy("production")
    assert "--newest" not in production
    assert '${RELEASE_DIGEST:+--digest "$RELEASE_DIGEST"}' in production
    (deploy,) = docs()["deploy"]["jobs"].values()
    step = next(s for s in deploy["steps"] if s.get("id") == "deploy")
    assert step["env"]["RELEASE_DIGEST"] == "${{ inputs.release-digest }}"
    with_ = docs()["cd"]["jobs"]["production"]["with"]
    assert with_["release-digest"] == "${{ needs.build.outputs.release-digest }}"
    build = docs()["cd"]["jobs"]["build"]
    runs = [str(s.get("run")) for s in build["steps"]]
    assert runs.index("make scan-release") < runs.index("make release")


def test_notifications_never_fail_the_job() -> None:
    assert notify_problems(docs()) == []
    # The recipe ignores the verb's exit status even when the verb cannot start at all.
    done = subprocess.run(
        ["make", "--no-print-directory", "notify", "EVENT=promotion.applied",
         "BIN=/nonexistent", "-o", "install"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Error 127 (ignored)" in done.stderr


def test_cds_header_states_the_queue_semantics() -> None:
    header = (ROOT / ".github" / "workflows" / "cd.yml").read_text().split("\nname:")[0]
    for phrase in (
        "One concurrency group per environment",
        "queue: single",
        "cancel-in-progress is false",
        "--newest",
        "never a step back",
        "production deploys its run's release",
        "superseded",
    ):
        assert phrase in header, phrase


# --- each check fails on the defect it guards (a mutated copy of the workflows) ---------------


def _mutated(change: Callable[[Docs], None]) -> Docs:
    d = copy.deepcopy(docs())
    change(d)
    return d


def _deploy_job(d: Docs) -> Doc:
    return next(iter(d["deploy"]["jobs"].values()))


MUTATIONS: list[tuple[str, Callable[[Docs], None], Callable[[Docs], list[str]], str]] = [
    (
        "workflow-level group in cd",
        lambda d: d["cd"].update(concurrency={"group": "cd", "cancel-in-progress": False}),
        lane_problems,
        "workflow-level concurrency",
    ),
    (
        "deploy may cancel a deploy in progress",
        lambda d: _deploy_job(d)["concurrency"].update({"cancel-in-progress": True}),
        lane_problems,
        "cancel-in-progress is not false",
    ),
    (
        "one group for both environments",
        lambda d: _deploy_job(d)["concurrency"].update(group="deploy"),
        lane_problems,
        "expected 'deploy-staging'",
    ),
    (
        "break-glass outside production's lane",
        lambda d: d["rollback"]["jobs"]["break-glass"]["concurrency"].update(group="breakglass"),
        lane_problems,
        "expected 'deploy-production'",
    ),
    (
        "queue: max",
        lambda d: _deploy_job(d)["concurrency"].update(queue="max"),
        lane_problems,
        "queue max",
    ),
    (
        "production before staging verified",
        lambda d: d["cd"]["jobs"]["production"].update(needs=["build"]),
        graph_problems,
        "cd/production needs ['build']",
    ),
    (
        "staging skips e2e",
        lambda d: d["cd"]["jobs"]["staging"]["with"].update(verify=False),
        graph_problems,
        "verify is False",
    ),
    (
        "production rebuilds",
        lambda d: _deploy_job(d)["steps"].insert(3, {"run": "make push-images"}),
        build_once_problems,
        "builds: make push-images",
    ),
    (
        "production deploys its own commit, not the release",
        lambda d: d["cd"]["jobs"]["production"]["with"].update(release="${{ github.sha }}"),
        build_once_problems,
        "not the build job's release",
    ),
    (
        "a deploy without --newest",
        lambda d: next(s for s in _deploy_job(d)["steps"] if s.get("id") == "deploy")["env"].pop(
            "DEPLOY_NEWEST"
        ),
        newest_problems,
        "without DEPLOY_NEWEST",
    ),
    (
        "a notification that can fail the job",
        lambda d: next(s for s in _deploy_job(d)["steps"] if "notify" in str(s.get("run"))).pop(
            "continue-on-error"
        ),
        notify_problems,
        "may fail the job",
    ),
]


@pytest.mark.parametrize(
    ("change", "check", "expected"),
    [m[1:] for m in MUTATIONS],
    ids=[m[0] for m in MUTATIONS],
)
def test_each_check_fails_on_the_defect_it_guards(
    change: Callable[[Docs], None], check: Callable[[Docs], list[str]], expected: str
) -> None:
    problems = check(_mutated(change))
    assert any(expected in p for p in problems), problems


def test_the_checks_read_the_files_on_disk(tmp_path: Path) -> None:
    """The same check against a mutated copy of the files (not only of the parsed data)."""
    from tests.fixtures import workflows as fixture

    target = tmp_path / ".github" / "workflows"
    target.mkdir(parents=True)
    for name in ("cd", "deploy", "rollback"):
        text = (fixture.WORKFLOWS / f"{name}.yml").read_text()
        if name == "deploy":
            text = text.replace("cancel-in-progress: false", "cancel-in-progress: true")
        (target / f"{name}.yml").write_text(text)
    original = fixture.WORKFLOWS
    try:
        fixture.WORKFLOWS = target
        assert any("cancel-in-progress is not false" in p for p in lane_problems(docs()))
    finally:
        fixture.WORKFLOWS = original
