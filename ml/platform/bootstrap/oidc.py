"""The roles' OIDC trust against config/platform.yaml: every subject a role trusts (terraform
outputs role_subjects, aws_deploy_role_subjects) must name this repository and an environment
the list creates, on a branch it allows; checked before the first GitHub write."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ml.errors import ConfigError
from ml.platform.bootstrap.recorder import Log
from ml.platform.config import ROOTS, PlatformConfig

PULL_REQUEST_CONTEXT = "pull_request:ref:refs/pull/*/merge"
_ENV_CONTEXT = re.compile(r"^environment:([^:]+):ref:refs/heads/(.+)$")


def role_subjects(outputs: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(role, OIDC subject) of every GitHub role terraform made: the platform's `role_subjects`
    map and each environment root's `aws_deploy_role_subjects`."""
    found: list[tuple[str, str]] = []
    platform = (outputs.get("platform", {}).get("role_subjects") or {}).get("value") or {}
    for role, subjects in sorted(platform.items()):
        found += [(str(role), str(s)) for s in subjects or []]
    for root in ROOTS[1:]:
        deploy = (outputs.get(root, {}).get("aws_deploy_role_subjects") or {}).get("value")
        found += [(f"deploy-{root}", str(s)) for s in deploy or []]
    return found


def subject_problems(
    config: PlatformConfig, outputs: Mapping[str, Mapping[str, Any]], repo: str
) -> list[str]:
    """Roles whose trust the GitHub side cannot satisfy, one line each (empty: they agree).

    A subject must name this repository and either an environment of config/platform.yaml on a
    branch that environment deploys from, or the pull-request form (the plan roles). A role
    trusting an environment the list lacks could never be assumed: bootstrap would not create
    the environment, so no job could name it.
    """
    problems: list[str] = []
    prefix = f"repo:{repo}:"
    for role, subject in role_subjects(outputs):
        if not subject.startswith(prefix):
            problems.append(
                f"role {role} trusts {subject}: not repository {repo} "
                "(terraform variable github_repository)"
            )
            continue
        context = subject[len(prefix) :]
        if context == PULL_REQUEST_CONTEXT:
            continue
        match = _ENV_CONTEXT.match(context)
        if match is None:
            problems.append(
                f"role {role} trusts {subject}: neither an environment on a branch nor "
                "a pull request (the subject template is repo, context, ref)"
            )
            continue
        env, branch = match.groups()
        if env not in config.environments:
            problems.append(
                f"role {role} trusts environment {env}, which config/platform.yaml does not "
                "list: add it there (bootstrap creates the environments it lists)"
            )
        elif branch not in config.environments[env].branches:
            problems.append(
                f"role {role} trusts environment {env} on {branch}, but {env} deploys from "
                f"{list(config.environments[env].branches)} only"
            )
    return problems


def check_subjects(
    config: PlatformConfig,
    outputs: Mapping[str, Mapping[str, Any]],
    repo: str,
    dry_run: bool,
    log: Log,
) -> None:
    """A real run stops before its first GitHub write when a role's trust cannot be met."""
    problems = subject_problems(config, outputs, repo)
    if not problems:
        if role_subjects(outputs):
            log("OIDC subjects of every role match the environments of config/platform.yaml")
        return
    message = "the roles' OIDC trust does not match config/platform.yaml:\n" + "\n".join(
        f"  - {p}" for p in problems
    )
    if dry_run:
        log("a real run would stop here: " + message)
        return
    raise ConfigError(message + "\nnothing was changed on GitHub")
