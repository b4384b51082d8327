"""`mlops preflight`: is every name a job needs set in its scope, and are the GitHub
environments as protected as config/platform.yaml says? Values never leave this module: only
presence is reported."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ml.adapters.github import GitHubClient
from ml.platform.config import Kind, PlatformConfig, Requirement, describe_source


def present(kind: Kind, value: str | None) -> bool:
    """Is a name set? Secrets reach a job as their value or as `${{ secrets.X != '' }}`."""
    if value is None or not value.strip():
        return False
    return not (kind == "secret" and value.strip() == "false")


def protection_problems(config: PlatformConfig, github: GitHubClient) -> list[str]:
    """Environments that are missing or less protected than config/platform.yaml says."""
    problems: list[str] = []
    for name, env in config.environments.items():
        quoted = urllib.parse.quote(name, safe="")
        status, doc = github.read(f"/environments/{quoted}")
        if status == 404:
            problems.append(f"environment {name} does not exist (mlops bootstrap creates it)")
            continue
        if status != 200 or not isinstance(doc, dict):
            problems.append(
                f"environment {name}: cannot read it (HTTP {status}); the job needs "
                "`permissions: actions: read`"
            )
            continue
        rules = doc.get("protection_rules") or []
        reviewers = [
            r
            for rule in rules
            if rule.get("type") == "required_reviewers"
            for r in rule.get("reviewers") or []
        ]
        if env.reviewers and not reviewers:
            problems.append(
                f"environment {name} has no required reviewers: its approval would be "
                f"advisory (expected: {', '.join(env.reviewers)})"
            )
        policy = doc.get("deployment_branch_policy") or {}
        if not policy.get("custom_branch_policies"):
            problems.append(
                f"environment {name} can be deployed from any branch: restrict it to "
                f"{', '.join(env.branches)}"
            )
            continue
        status, listed = github.read(f"/environments/{quoted}/deployment-branch-policies")
        branches = sorted(
            p.get("name", "")
            for p in (listed or {}).get("branch_policies", [])
            if p.get("type", "branch") == "branch"
        )
        if status != 200 or branches != sorted(env.branches):
            problems.append(
                f"environment {name} deploys from {branches or 'no branch'}, "
                f"expected {list(env.branches)} only"
            )
    return problems


@dataclass
class PreflightReport:
    """What preflight found: each requirement with present/missing, and protection problems."""

    checked: list[tuple[Requirement, bool]]
    protection: list[str] | None  # None: not checked (no token)

    @property
    def problems(self) -> list[str]:
        """Every problem, one line each."""
        missing = [
            f"{r.kind} {r.name} ({r.scope}) is not set: {r.entry.description} "
            f"[source: {describe_source(r.entry, r.scope)}]"
            for r, ok in self.checked
            if not ok
        ]
        return missing + (self.protection or [])


def preflight(
    config: PlatformConfig,
    scope: str,
    workflows: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    github: GitHubClient | None = None,
) -> PreflightReport:
    """Check every name `workflows` need in `scope` against the job's environment variables.

    Values never leave this function: only presence is reported.
    """
    env = os.environ if environ is None else environ
    checked = [(r, present(r.kind, env.get(r.name))) for r in config.required(scope, workflows)]
    protection = protection_problems(config, github) if github else None
    return PreflightReport(checked, protection)
