"""Every job that talks to the registry or a deployed service runs where that endpoint is
reachable; every other job stays on GitHub's runners.

Whether a job talks to the registry is derived from what it runs, not from a list of jobs: a
step's `make` target (its dry-run recipe) runs an `mlops` verb whose code opens the tracking URI
(the verb, or a helper of ml/cli it calls, reads `tracking_uri` / `resolved_tracking_uri` or
builds a `Registry`), and the step's environment carries the registry's URI from
`vars.MLFLOW_TRACKING_URI` (without it a verb uses the embedded local store). A step talks to a
deployed service when its recipe reads a variable the step sets from `vars.SERVICE_URL`.

Where the endpoint is reachable comes from config/platform.yaml `runners` and the platform's
terraform settings: MLflow's load balancer is internal unless envs/platform.tfvars sets
mlflow_public_endpoint, and then only the in-VPC CodeBuild runners reach it. That GitHub really
routes `codebuild-<project>-...` jobs to the project's builds only a real repository shows
(infra/terraform/modules/codebuild_runner/tests checks the webhook's plan).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ml.platform.config import PlatformConfig, load_platform
from tests.fixtures.workflows import all_workflows, load, recipe

ROOT = Path(__file__).resolve().parents[3]
PLATFORM_TFVARS = ROOT / "infra" / "terraform" / "envs" / "platform.tfvars"
PLATFORM_VARIABLES = ROOT / "infra" / "terraform" / "platform" / "variables.tf"
REGISTRY_URI = "vars.MLFLOW_TRACKING_URI"
SERVICE_URL = "vars.SERVICE_URL"
# What an `mlops` verb's code does when it opens the registry.
OPENS_REGISTRY = {"tracking_uri", "resolved_tracking_uri"}


# --- What a verb does -------------------------------------------------------------------------


@cache
def verbs() -> dict[tuple[str, ...], Callable[..., Any]]:
    """Every `mlops` command path (("promote", "validate"), ("deploy",)...) to its function."""
    from ml.cli import app

    out: dict[tuple[str, ...], Callable[..., Any]] = {}

    def walk(typer_app: Any, prefix: tuple[str, ...]) -> None:
        for command in typer_app.registered_commands:
            name = command.name or command.callback.__name__.replace("_", "-")
            out[(*prefix, name)] = inspect.unwrap(command.callback)
        for group in typer_app.registered_groups:
            walk(group.typer_instance, (*prefix, group.name))

    walk(app, ())
    return out


def _opens_registry(func: Callable[..., Any], seen: set[Callable[..., Any]]) -> bool:
    """The function's code, or a function of ml.cli it calls, opens the tracking URI."""
    seen.add(func)
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    # Verbs import lazily (`from ml.cli.deploy import _registry` inside the function).
    names = dict(func.__globals__)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ml.cli"):
            module = importlib.import_module(node.module or "")
            names |= {a.asname or a.name: getattr(module, a.name, None) for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in OPENS_REGISTRY:
            return True
        if isinstance(node, ast.Name) and node.id == "Registry":
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called = names.get(node.func.id)
            if (
                inspect.isfunction(called)
                and called.__module__.startswith("ml.cli")
                and called not in seen
                and _opens_registry(called, seen)
            ):
                return True
    return False


@cache
def verb_opens_registry(path: tuple[str, ...]) -> bool:
    """`mlops <path>` opens MLFLOW_TRACKING_URI."""
    return _opens_registry(verbs()[path], set())


def mlops_calls(text: str) -> list[tuple[str, ...]]:
    """The `mlops` command paths a recipe runs."""
    known = verbs()
    found = []
    for match in re.finditer(r"(?:^|[\s/])mlops((?:\s+[a-z][\w-]*){1,2})", text, re.M):
        words = tuple(match.group(1).split())
        for n in (2, 1):
            if words[:n] in known:
                found.append(words[:n])
                break
    return found


# --- What a job does --------------------------------------------------------------------------


@dataclass(frozen=True)
class Talk:
    """One step that reaches an endpoint, and why."""

    endpoint: str  # "registry" or "service"
    reason: str


def _env_names_from(env: dict[str, Any], source: str) -> set[str]:
    return {k for k, v in env.items() if source in str(v)}


def talks(workflow: dict[str, Any], job: dict[str, Any]) -> list[Talk]:
    """What the job's steps reach, derived from their make targets and environments."""
    found: list[Talk] = []
    for step in job.get("steps") or []:
        run = str(step.get("run", ""))
        env = {**(workflow.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
        for target in re.findall(r"(?:^|&&|;)\s*make\s+([\w.-]+)", run):
            text = recipe(target)
            if _env_names_from(env, REGISTRY_URI):
                for path in mlops_calls(text):
                    if verb_opens_registry(path):
                        found.append(Talk("registry", f"make {target} runs mlops {' '.join(path)}"))
            for name in _env_names_from(env, SERVICE_URL):
                if re.search(rf"\${name}\b|\$\{{{name}\}}", text):
                    found.append(Talk("service", f"make {target} reads {name} (SERVICE_URL)"))
    return found


def workflow_jobs(docs: dict[str, dict[str, Any]]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for name, doc in docs.items():
        for job_id, job in doc["jobs"].items():
            if "uses" not in job:  # a reusable workflow's own jobs are checked in its file
                yield name, job_id, job


# --- Where an endpoint is reachable ----------------------------------------------------------


def registry_is_public(tfvars: str) -> bool:
    """envs/platform.tfvars sets mlflow_public_endpoint = true (not commented out)."""
    return bool(re.search(r"^\s*mlflow_public_endpoint\s*=\s*true\b", tfvars, re.M))


def problems(docs: dict[str, dict[str, Any]], config: PlatformConfig, tfvars: str) -> list[str]:
    """Jobs that run where their endpoint is unreachable, or off GitHub's runners for nothing."""
    runners = config.runners
    in_vpc = runners.runs_on() if runners.registry == "in-vpc" else None
    public = registry_is_public(tfvars)
    out = []
    for name, job_id, job in workflow_jobs(docs):
        runs_on = str(job.get("runs-on"))
        reached = talks(docs[name], job)
        where = f"{name}.yml job {job_id}"
        if reached:
            why = "; ".join(sorted({t.reason for t in reached}))
            if runs_on == in_vpc:
                continue
            if runners.registry == "public" and public and runs_on == runners.public_runs_on:
                continue
            reason = (
                "MLflow is private (envs/platform.tfvars: no mlflow_public_endpoint) and only "
                "the in-VPC runners reach it"
                if not public
                else f"config/platform.yaml runners say {runners.runs_on()}"
            )
            out.append(
                f"{where} talks to the registry or a service ({why}) but runs on {runs_on}: "
                f"{reason}; set runs-on: {runners.runs_on()}"
            )
        elif runs_on != "ubuntu-latest":
            out.append(f"{where} reaches no registry or service: runs-on: ubuntu-latest")
    return out


def real_workflows() -> dict[str, dict[str, Any]]:
    return {name: load(name) for name in all_workflows()}


# --- The contract -----------------------------------------------------------------------------


def test_every_job_runs_where_what_it_talks_to_is_reachable() -> None:
    found = problems(real_workflows(), load_platform(), PLATFORM_TFVARS.read_text())
    assert not found, "\n".join(found)


def test_the_registry_jobs_are_found_from_what_they_run() -> None:
    # The derivation finds the jobs a reader knows talk to the registry (so an empty result
    # cannot pass the contract above), and no job that only lints or builds.
    docs = real_workflows()
    reaching = {(n, j) for n, j, job in workflow_jobs(docs) if talks(docs[n], job)}
    for expected in [
        ("ci", "promotions"),
        ("cd", "build"),
        ("cd", "mlflow"),
        ("deploy", "deploy"),
        ("retrain", "train"),
        ("rollback", "break-glass"),
        ("nightly", "drift"),
    ]:
        assert expected in reaching, sorted(reaching)
    for quiet in [("ci", "lint"), ("ci", "unit"), ("ci", "images"), ("terraform", "check")]:
        assert quiet not in reaching


def test_a_registry_job_on_a_hosted_runner_with_a_private_registry_fails() -> None:
    # Given CI's promotions job moved back to a GitHub-hosted runner, MLflow private
    docs = real_workflows()
    docs["ci"]["jobs"]["promotions"]["runs-on"] = "ubuntu-latest"

    found = problems(docs, load_platform(), PLATFORM_TFVARS.read_text())

    assert len(found) == 1, found
    assert "ci.yml job promotions" in found[0]
    assert "mlops promote validate" in found[0]
    assert "MLflow is private" in found[0]
    assert "codebuild-credit-risk-gha-runner-${{ github.run_id }}" in found[0]


def test_a_service_job_on_a_hosted_runner_fails() -> None:
    docs = real_workflows()
    docs["deploy"]["jobs"]["deploy"]["runs-on"] = "ubuntu-latest"
    found = problems(docs, load_platform(), PLATFORM_TFVARS.read_text())
    assert len(found) == 1, found
    assert "SERVICE_URL" in found[0]


def test_public_runners_need_the_public_endpoint() -> None:
    # Given an adopter who chose hosted runners (runners.registry: public)
    config = load_platform()
    public = config.model_copy(
        update={"runners": config.runners.model_copy(update={"registry": "public"})}
    )
    docs = real_workflows()
    for _, _, job in workflow_jobs(docs):
        if str(job["runs-on"]).startswith("codebuild-"):
            job["runs-on"] = "ubuntu-latest"

    # Then with MLflow still private every registry job is unreachable...
    assert problems(docs, public, PLATFORM_TFVARS.read_text())
    # ...and with the public endpoint set they all reach it
    opened = PLATFORM_TFVARS.read_text() + "\nmlflow_public_endpoint = true\n"
    assert problems(docs, public, opened) == []


def test_a_job_that_reaches_nothing_does_not_take_a_runner_in_the_vpc() -> None:
    docs = real_workflows()
    docs["ci"]["jobs"]["lint"]["runs-on"] = load_platform().runners.runs_on()
    found = problems(docs, load_platform(), PLATFORM_TFVARS.read_text())
    assert found == ["ci.yml job lint reaches no registry or service: runs-on: ubuntu-latest"]


def test_terraform_names_the_project_the_workflows_ask_for() -> None:
    # platform/variables.tf's default of codebuild_runner_project is the label's project
    text = PLATFORM_VARIABLES.read_text()
    block = text[text.index('variable "codebuild_runner_project"') :]
    default = re.search(r'default\s*=\s*"([^"]+)"', block)
    assert default, block[:400]
    assert default.group(1) == load_platform().runners.codebuild_project


@pytest.mark.parametrize("path", sorted(verbs()), ids=lambda p: " ".join(p))
def test_every_verb_is_classified(path: tuple[str, ...]) -> None:
    # The AST walk reads every verb's source: a verb it cannot read would hide a registry job.
    assert isinstance(verb_opens_registry(path), bool)
