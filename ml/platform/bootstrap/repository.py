"""Step `github`: the repository's settings through `gh api`: workflow token read-only, the
OIDC subject template, the environments with reviewers and a main-only deployment branch
policy, branch protection on main, and every variable and secret of config/platform.yaml whose
value comes from terraform or a person."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from ml.adapters.github import Gh
from ml.errors import ConfigError, NotFoundError
from ml.platform.bootstrap.codeowners import TeamRef
from ml.platform.bootstrap.recorder import Call, Recorder, Secret
from ml.platform.bootstrap.values import Values
from ml.platform.config import REPOSITORY, PlatformConfig

# The GitHub App "GitHub Actions": pinning the required check to it means no other app (or a
# commit status from anyone with a token) can satisfy `status`.
GITHUB_ACTIONS_APP_ID = 15368


class GitHub:
    """`gh api` and `gh secret set` as bootstrap uses them: every call recorded; a dry run only
    records (no `gh` needed)."""

    def __init__(self, repo: str, recorder: Recorder, gh: Gh | None = None) -> None:
        self.repo = repo
        self.recorder = recorder
        self.gh = gh

    @classmethod
    def for_run(cls, repo: str, recorder: Recorder) -> GitHub:
        """A backend that executes through the gh CLI (must be installed) unless dry-run."""
        return cls(repo, recorder, None if recorder.dry_run else Gh.installed(repo))

    def api(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        note: str = "",
        placeholder: Any = None,
    ) -> Any:
        """One REST call; the parsed JSON answer (dry run: `placeholder`); NotFoundError on 404."""
        self.recorder.record(Call("github", method, path, body, note=note))
        if self.gh is None:
            return placeholder
        return self.gh.api(method, path, body)

    def set_secret(self, name: str, secret: Secret, environment: str | None) -> None:
        """`gh secret set NAME --repo R [--env E]`, value on stdin (never in argv or logs)."""
        target = f"{name} --repo {self.repo}" + (f" --env {environment}" if environment else "")
        self.recorder.record(Call("github", "SECRET", target, secret=secret))
        if self.gh is None:
            return
        if secret.value is None:
            raise ConfigError(f"no value for secret {name} ({secret.source})")
        self.gh.set_secret(name, secret.value, environment)


def github(
    config: PlatformConfig,
    gh: GitHub,
    teams: Mapping[str, TeamRef],
    values: Values,
) -> None:
    """Settings, environments, branch protection, then every terraform/human/bucket value."""
    repo = f"/repos/{gh.repo}"
    gh.api(
        "PUT",
        f"{repo}/actions/permissions/workflow",
        {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": False},
        note="GITHUB_TOKEN read-only unless a job asks for more",
    )
    gh.api(
        "PUT",
        f"{repo}/actions/oidc/customization/sub",
        {"use_default": False, "include_claim_keys": list(config.oidc_subject_claims)},
        note="sub = repo:OWNER/NAME:environment:ENV:ref:refs/heads/main",
    )
    ids: dict[str, Any] = {}
    for key in sorted({k for env in config.environments.values() for k in env.reviewers}):
        team = teams[key]
        found = gh.api("GET", team.lookup, placeholder={"id": f"<id of {team.handle}>"})
        ids[key] = found["id"]
    for name, env in config.environments.items():
        quoted = urllib.parse.quote(name, safe="")
        body: dict[str, Any] = {
            "wait_timer": 0,
            "reviewers": [{"type": teams[k].kind, "id": ids[k]} for k in env.reviewers] or None,
            "deployment_branch_policy": {
                "protected_branches": False,
                "custom_branch_policies": True,
            },
        }
        if env.reviewers:
            body["prevent_self_review"] = True
        gh.api("PUT", f"{repo}/environments/{quoted}", body, note=env.description)
        policies = f"{repo}/environments/{quoted}/deployment-branch-policies"
        listed = gh.api("GET", policies, placeholder={"branch_policies": []}) or {}
        existing = {p["name"]: p["id"] for p in listed.get("branch_policies", [])}
        for branch in env.branches:
            if branch not in existing:
                gh.api("POST", policies, {"name": branch, "type": "branch"})
        for other, policy_id in existing.items():
            if other not in env.branches:
                gh.api("DELETE", f"{policies}/{policy_id}", note=f"{name} deploys from main only")
    bp = config.branch_protection
    gh.api(
        "PUT",
        f"{repo}/branches/{bp.branch}/protection",
        {
            "required_status_checks": {
                "strict": True,
                "checks": [
                    {"context": c, "app_id": GITHUB_ACTIONS_APP_ID} for c in bp.required_checks
                ],
            },
            "enforce_admins": True,
            "required_pull_request_reviews": {
                "dismiss_stale_reviews": True,
                "require_code_owner_reviews": bp.require_code_owner_reviews,
                "required_approving_review_count": bp.required_approving_reviews,
            },
            "restrictions": None,
            "required_conversation_resolution": True,
            "allow_force_pushes": False,
            "allow_deletions": False,
        },
        note="merges need `status` (ci) and a code owner's review",
    )
    set_values(config, gh, values)


def set_values(config: PlatformConfig, gh: GitHub, values: Values) -> None:
    """Every variable and every terraform/human secret, in each of its scopes.

    MLflow users' secrets belong to the mlflow-users step, which makes their passwords.
    """
    for kind, entry in config.entries():
        if entry.source.what == "mlflow-user":
            continue
        for scope in entry.scopes:
            value, where = values.of(config, entry, scope)
            if value is None:
                label = f"{kind} {entry.name} ({scope}): {where}"
                if entry.optional:
                    gh.recorder.log(f"skipped optional {label}")
                    continue
                values.missing.append(label)
                if not values.dry_run:
                    continue
            environment = None if scope == REPOSITORY else scope
            if kind == "secret":
                gh.set_secret(entry.name, Secret(where, value), environment)
            else:
                shown = value if value is not None else f"<{where}>"
                _set_variable(gh, entry.name, shown, environment)


def _set_variable(gh: GitHub, name: str, value: str, environment: str | None) -> None:
    """Update the variable, or create it when GitHub says it does not exist."""
    base = f"/repos/{gh.repo}" + (
        f"/environments/{urllib.parse.quote(environment, safe='')}" if environment else "/actions"
    )
    body = {"name": name, "value": value}
    try:
        gh.api("PATCH", f"{base}/variables/{name}", body, note="POST if it does not exist")
    except NotFoundError:
        gh.api("POST", f"{base}/variables", body)
