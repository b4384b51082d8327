"""Where terraform.yml's apply on main finds the plan a pull request reviewed, bound to it.

terraform.yml plans each root on a pull request and uploads the plan under a name that says
what it was made from: `tfplan-<root>-<git tree id of infra/terraform>`. A name is no proof:
any pull_request run of this repository executes that pull request's own workflow files, and
the name is predictable, so a second, unreviewed pull request could upload a plan under it.
The apply therefore takes an artefact only from the run that belongs to the merge being applied:

1. the pull request merged into main as this commit (GitHub's commits -> pulls API:
   `GET /repos/{o}/{r}/commits/{sha}/pulls`, the entry whose merge_commit_sha is this commit);
2. a `pull_request` run of .github/workflows/terraform.yml in this repository (not a fork)
   whose head SHA is that pull request's head, i.e. the code its reviewers approved;
3. whose workflow file (path, and its git blob at that head) is the one main has now, so the
   plan was made by the workflow that is on main, not by one the pull request carried.

Anything else is refused, with what was found and why. terraform itself refuses a plan whose
state moved on ("stale"); the checksum next to the plan refuses a file changed in transit
(`make tf-apply-plan`).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.adapters import git
from ml.adapters.github import GitHubClient
from ml.errors import ConfigError, GitHubError
from ml.platform.config import ROOTS

PLAN_WORKFLOW = ".github/workflows/terraform.yml"
TERRAFORM_DIR = "infra/terraform"
_TREE_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SHA_RE = _TREE_RE


def plan_artifact_name(root: str, tree: str) -> str:
    """The artefact name of the plan of `root` made from infra/terraform tree `tree`."""
    if root not in ROOTS:
        raise ConfigError(f"--root {root!r}: use one of {', '.join(ROOTS)}")
    if not _TREE_RE.match(tree):
        raise ConfigError(f"{tree[:80]!r} is not a git tree id")
    return f"tfplan-{root}-{tree}"


def terraform_tree(cwd: Path | None = None) -> str:
    """The git tree id of infra/terraform at HEAD: what a plan of this checkout is made from."""
    return git.rev_parse(f"HEAD:{TERRAFORM_DIR}", cwd)


@dataclass(frozen=True)
class MainCommit:
    """The commit on main being applied, and the blob of the plan workflow in it."""

    sha: str
    workflow_blob: str


def main_commit(cwd: Path | None = None) -> MainCommit:
    """HEAD (the apply job's checkout of the pushed commit) and its terraform.yml blob."""
    return MainCommit(git.rev_parse("HEAD", cwd), git.rev_parse(f"HEAD:{PLAN_WORKFLOW}", cwd))


@dataclass(frozen=True)
class ReviewedPlan:
    """The artefact the merged pull request's plan run uploaded, and where it came from."""

    name: str
    artifact_id: int
    run_id: int
    run_url: str
    head_sha: str
    created_at: str
    pull_request: int


def _merged_pull_request(github: GitHubClient, main: MainCommit, branch: str) -> dict[str, Any]:
    """The pull request merged into `branch` as `main.sha`; GitHubError/ConfigError otherwise."""
    status, pulls = github.read(f"/commits/{main.sha}/pulls?per_page=100")
    if status != 200 or not isinstance(pulls, list):
        raise GitHubError(
            f"cannot list the pull requests of commit {main.sha[:12]} (HTTP {status}); the job "
            "needs `permissions: pull-requests: read`"
        )
    seen = []
    for pull in pulls:
        base = (pull.get("base") or {}).get("ref")
        if (
            pull.get("merged_at")
            and pull.get("merge_commit_sha") == main.sha
            and base == branch
            and (pull.get("head") or {}).get("sha")
        ):
            return dict(pull)
        seen.append(
            f"#{pull.get('number')} ({'merged' if pull.get('merged_at') else 'not merged'}, "
            f"into {base}, merge commit {str(pull.get('merge_commit_sha') or '-')[:12]})"
        )
    found = f" (GitHub lists {', '.join(seen)})" if seen else ""
    raise ConfigError(
        f"commit {main.sha[:12]} on {branch} is not the merge of a pull request{found}: a plan "
        "is applied only from the pull request that was merged as this commit. Nothing was "
        f"applied; change infra/terraform through a pull request into {branch}"
    )


def find_reviewed_plan(
    github: GitHubClient, name: str, main: MainCommit, branch: str = "main"
) -> ReviewedPlan:
    """The newest unexpired artefact `name` of the merged pull request's terraform.yml run.

    Binds the artefact to the merge (module docstring): the pull request merged as `main.sha`,
    a pull_request run of terraform.yml of this repository at that pull request's head, with
    the workflow file main has. Raises ConfigError naming every artefact of that name that was
    refused and why, and what to do.
    """
    if not (_SHA_RE.match(main.sha) and _SHA_RE.match(main.workflow_blob)):
        raise ConfigError(f"{main.sha[:80]!r} / {main.workflow_blob[:80]!r}: not git object ids")
    pull = _merged_pull_request(github, main, branch)
    number, head = int(pull.get("number") or 0), str(pull["head"]["sha"])
    quoted = urllib.parse.quote(name, safe="")
    status, doc = github.read(f"/actions/artifacts?name={quoted}&per_page=100")
    if status != 200 or not isinstance(doc, dict):
        raise GitHubError(
            f"cannot list the artefacts named {name} (HTTP {status}); the job needs "
            "`permissions: actions: read`"
        )
    artifacts = [a for a in doc.get("artifacts") or [] if not a.get("expired")]
    artifacts.sort(key=lambda a: str(a.get("created_at") or ""), reverse=True)
    refused: list[str] = []
    head_blob: str | None = None
    for artifact in artifacts:
        run = artifact.get("workflow_run") or {}
        run_id = int(run.get("id") or 0)
        what = f"artefact {artifact.get('id')} of run {run_id}"
        if run.get("head_repository_id") != run.get("repository_id"):
            refused.append(f"{what} is a fork's")
            continue
        if run.get("head_sha") != head:
            refused.append(
                f"{what} was made at {str(run.get('head_sha') or '?')[:12]}, not at the head "
                f"{head[:12]} of #{number}"
            )
            continue
        status, detail = github.read(f"/actions/runs/{run_id}")
        if status != 200 or not isinstance(detail, dict):
            refused.append(f"{what}: the run is unreadable (HTTP {status})")
            continue
        path = str(detail.get("path") or "").split("@", 1)[0]
        if path != PLAN_WORKFLOW or detail.get("event") != "pull_request":
            refused.append(f"{what} is {path or '?'} on {detail.get('event') or '?'}")
            continue
        if detail.get("head_sha") != head:
            refused.append(f"{what}: the run's head is {str(detail.get('head_sha'))[:12]}")
            continue
        if head_blob is None:
            head_blob = _workflow_blob(github, head)
        if head_blob != main.workflow_blob:
            refused.append(
                f"{what} ran {PLAN_WORKFLOW} blob {head_blob[:12]}, main has "
                f"{main.workflow_blob[:12]} (a workflow file main does not have)"
            )
            continue
        return ReviewedPlan(
            name=name,
            artifact_id=int(artifact["id"]),
            run_id=run_id,
            run_url=str(detail.get("html_url") or ""),
            head_sha=head,
            created_at=str(artifact.get("created_at") or ""),
            pull_request=number,
        )
    why = f" (refused: {'; '.join(refused)})" if refused else ""
    raise ConfigError(
        f"no reviewed plan {name} from #{number} (head {head[:12]}){why}: nothing was applied. "
        f"Only a pull request run of {PLAN_WORKFLOW} at the merged head, with the workflow "
        "file main has, counts. Re-run the plan jobs of that pull request's terraform run (if "
        "its plan expired), review the plan comment, then re-run this job. If main's "
        "infra/terraform or terraform.yml differs from what that pull request planned (merged "
        "without an up-to-date branch), the next pull request changing infra/ plans it"
    )


def _workflow_blob(github: GitHubClient, ref: str) -> str:
    """The git blob id of terraform.yml at `ref` (contents API)."""
    path = urllib.parse.quote(PLAN_WORKFLOW)
    status, doc = github.read(f"/contents/{path}?ref={ref}")
    if status == 404:
        return "(none)"
    if status != 200 or not isinstance(doc, dict) or not doc.get("sha"):
        raise GitHubError(
            f"cannot read {PLAN_WORKFLOW} at {ref[:12]} (HTTP {status}); the job needs "
            "`permissions: contents: read`"
        )
    return str(doc["sha"])
