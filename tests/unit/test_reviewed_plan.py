"""The reviewed terraform plan (ml/reviewed_plan.py): its name, and the only run it is taken from.

GitHub cannot be reached from here: a small HTTP server on 127.0.0.1 answers the four REST
endpoints the lookup reads (commits -> pulls, artefacts by name, a workflow run, a file's
contents), with the JSON shapes GitHub documents. That boundary is the one thing replaced; the
git side (tree and blob ids) is a real repository.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from typer.testing import CliRunner

from ml.adapters.github import GitHubClient
from ml.cli import app
from ml.errors import ConfigError, GitHubError
from ml.reviewed_plan import (
    PLAN_WORKFLOW,
    MainCommit,
    find_reviewed_plan,
    main_commit,
    plan_artifact_name,
    terraform_tree,
)
from tests.fixtures.local_http import serving


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with infra/terraform and terraform.yml; a PR branch changing infra/terraform."""
    root = tmp_path / "repo"
    (root / "infra" / "terraform").mkdir(parents=True)
    (root / ".github" / "workflows").mkdir(parents=True)
    _git(root.parent, "init", "-q", "-b", "main", str(root))
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    (root / "infra" / "terraform" / "main.tf").write_text('locals { size = "small" }\n')
    (root / PLAN_WORKFLOW).write_text("name: terraform\n")
    (root / "README.md").write_text("v1\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "main")
    _git(root, "checkout", "-q", "-b", "pr")
    (root / "infra" / "terraform" / "main.tf").write_text('locals { size = "large" }\n')
    _git(root, "commit", "-q", "-am", "bigger")
    _git(root, "checkout", "-q", "main")
    return root


def test_plan_and_apply_compute_the_same_name_for_the_same_infra(repo: Path) -> None:
    # Given the plan made on the PR's merge with main (what pull_request runs check out)
    _git(repo, "checkout", "-q", "-b", "merge-ref", "main")
    _git(repo, "merge", "-q", "--no-ff", "pr", "-m", "refs/pull/1/merge")
    planned = plan_artifact_name("staging", terraform_tree(repo))
    # When the PR is merged into main by merge commit or squash
    _git(repo, "checkout", "-q", "-b", "squashed", "main")
    _git(repo, "merge", "-q", "--squash", "pr")
    _git(repo, "commit", "-q", "-m", "squash")
    squashed = plan_artifact_name("staging", terraform_tree(repo))
    # And a later change outside infra/terraform
    (repo / "README.md").write_text("v2\n")
    _git(repo, "commit", "-q", "-am", "docs")
    # Then the apply computes the name of that plan
    assert squashed == planned
    assert plan_artifact_name("staging", terraform_tree(repo)) == planned
    assert planned.startswith("tfplan-staging-")
    # But any change to infra/terraform the plan did not see names another plan
    (repo / "infra" / "terraform" / "main.tf").write_text('locals { size = "huge" }\n')
    _git(repo, "commit", "-q", "-am", "unreviewed")
    assert plan_artifact_name("staging", terraform_tree(repo)) != planned


@pytest.mark.parametrize(
    ("root", "tree", "message"),
    [("qa", "a" * 40, "use one of platform"), ("staging", "main", "not a git tree id")],
)
def test_a_bad_plan_name_is_refused(root: str, tree: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_artifact_name(root, tree)


# --- the fake GitHub ----------------------------------------------------------------------------

MAIN = "c" * 40  # the merge commit on main the apply runs for
HEAD = "a" * 40  # the merged pull request's head
OTHER = "b" * 40  # another pull request's head
MAIN_BLOB = "1" * 40  # terraform.yml on main
NAME = "tfplan-platform-" + "e" * 40


class _GitHub(BaseHTTPRequestHandler):
    """The REST endpoints the lookup reads, answered from `state` (GitHub's JSON shapes)."""

    state: ClassVar[dict[str, Any]] = {}
    status: ClassVar[int] = 200
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.seen.append(url.path)
        prefix, body = "/repos/acme/cr", None
        path = url.path.removeprefix(prefix)
        if path.startswith("/commits/") and path.endswith("/pulls"):
            body = self.state["pulls"].get(path.split("/")[2], [])
        elif path == "/actions/artifacts":
            name = parse_qs(url.query)["name"][0]
            body = {"artifacts": [a for a in self.state["artifacts"] if a["name"] == name]}
        elif path.startswith("/actions/runs/"):
            body = self.state["runs"].get(int(path.rsplit("/", 1)[1]))
        elif path.startswith("/contents/"):
            ref = parse_qs(url.query)["ref"][0]
            blob = self.state["blobs"].get((unquote(path.removeprefix("/contents/")), ref))
            body = {"type": "file", "sha": blob} if blob else None
        code = self.status if body is not None else 404
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(raw)


def _pull(number: int, head: str, merge: str, *, merged: bool = True) -> dict[str, Any]:
    return {
        "number": number, "merged_at": "2030-01-01T15:00:00Z" if merged else None,
        "merge_commit_sha": merge, "base": {"ref": "main"}, "head": {"sha": head},
    }  # fmt: skip


def _artifact(
    aid: int, run: int, created: str, head: str = HEAD, *, fork: bool = False
) -> dict[str, Any]:
    return {
        "id": aid, "name": NAME, "expired": False, "created_at": created,
        "workflow_run": {"id": run, "repository_id": 1, "head_repository_id": 2 if fork else 1,
                         "head_sha": head},
    }  # fmt: skip


def _run(head: str = HEAD, path: str = PLAN_WORKFLOW, event: str = "pull_request") -> Any:
    return {"path": path, "event": event, "head_sha": head, "html_url": "https://gh/acme/cr/r"}


@pytest.fixture
def api() -> Iterator[GitHubClient]:
    """The merged PR #7 (head HEAD) planned in run 100; older and forged artefacts around it."""
    _GitHub.status = 200
    _GitHub.seen = []
    _GitHub.state = {
        "pulls": {MAIN: [_pull(7, HEAD, MAIN)]},
        "artifacts": [
            _artifact(10, 100, "2030-01-01T10:00:00Z"),  # the reviewed plan
            _artifact(9, 99, "2030-01-01T09:00:00Z"),  # an older plan of the same head
        ],
        "runs": {100: _run(), 99: _run()},
        "blobs": {(PLAN_WORKFLOW, HEAD): MAIN_BLOB},
    }
    with serving(_GitHub) as base:
        yield GitHubClient("t0ken", "acme/cr", base)


MAIN_COMMIT = MainCommit(MAIN, MAIN_BLOB)


def _forge(artifact: dict[str, Any], run: dict[str, Any]) -> None:
    """A newer artefact under the same name, as a second pull request's run could upload."""
    _GitHub.state["artifacts"].append(artifact)
    _GitHub.state["runs"][artifact["workflow_run"]["id"]] = run


def test_the_apply_takes_the_plan_of_the_merged_pull_requests_head(api: GitHubClient) -> None:
    # Given a newer artefact of the same name from another pull request's run (another head)
    _forge(_artifact(20, 200, "2030-01-01T12:00:00Z", OTHER), _run(OTHER))
    # When the apply of main's merge commit looks for its plan
    plan = find_reviewed_plan(api, NAME, MAIN_COMMIT)
    # Then it takes the newest plan of the merged pull request's head, never the forged one
    assert (plan.artifact_id, plan.run_id, plan.pull_request) == (10, 100, 7)
    assert plan.head_sha == HEAD
    assert "/repos/acme/cr/commits/" + MAIN + "/pulls" in _GitHub.seen


@pytest.mark.parametrize(
    ("forged", "reason"),
    [
        # Same name, another pull request's run (another head SHA)
        (
            (_artifact(20, 200, "2030-01-01T12:00:00Z", OTHER), _run(OTHER)),
            f"artefact 20 of run 200 was made at {OTHER[:12]}, not at the head {HEAD[:12]} of #7",
        ),
        # Same name and head, uploaded by another workflow
        (
            (_artifact(21, 201, "2030-01-01T12:00:00Z"), _run(path=".github/workflows/ci.yml")),
            "artefact 21 of run 201 is .github/workflows/ci.yml on pull_request",
        ),
        # Same name and head, a push run
        (
            (_artifact(22, 202, "2030-01-01T12:00:00Z"), _run(event="push")),
            f"artefact 22 of run 202 is {PLAN_WORKFLOW} on push",
        ),
        # A fork's run
        (
            (_artifact(23, 203, "2030-01-01T12:00:00Z", fork=True), _run()),
            "artefact 23 of run 203 is a fork's",
        ),
        # The listing says HEAD, the run itself says otherwise
        (
            (_artifact(24, 204, "2030-01-01T12:00:00Z"), _run(OTHER)),
            f"artefact 24 of run 204: the run's head is {OTHER[:12]}",
        ),
    ],
)
def test_a_forged_plan_artefact_is_refused_with_the_reason(
    api: GitHubClient, forged: tuple[dict[str, Any], dict[str, Any]], reason: str
) -> None:
    # Given only a forged artefact under the reviewed plan's name
    _GitHub.state["artifacts"] = []
    _forge(*forged)
    # When the apply looks for its plan, then nothing is taken, and the message says why
    with pytest.raises(ConfigError) as exc:
        find_reviewed_plan(api, NAME, MAIN_COMMIT)
    message = str(exc.value)
    assert reason in message
    assert f"no reviewed plan {NAME} from #7" in message
    assert "nothing was applied" in message


def test_a_plan_made_by_a_modified_workflow_file_is_refused(api: GitHubClient) -> None:
    # Given the merged pull request's head carried a terraform.yml main does not have
    _GitHub.state["blobs"][(PLAN_WORKFLOW, HEAD)] = "2" * 40
    # When the apply looks for its plan, then the run's plans are refused, naming both blobs
    with pytest.raises(ConfigError) as exc:
        find_reviewed_plan(api, NAME, MAIN_COMMIT)
    message = str(exc.value)
    assert f"artefact 10 of run 100 ran {PLAN_WORKFLOW} blob {'2' * 12}, main has {'1' * 12}" in (
        message
    )
    assert "nothing was applied" in message


@pytest.mark.parametrize(
    ("pulls", "found"),
    [
        ([], ""),  # a push straight to main
        ([_pull(8, HEAD, MAIN, merged=False)], "#8 (not merged"),  # an open PR containing it
        ([_pull(9, HEAD, "d" * 40)], f"merge commit {'d' * 12}"),  # merged as another commit
    ],
)
def test_a_commit_that_is_not_a_pull_requests_merge_applies_nothing(
    api: GitHubClient, pulls: list[dict[str, Any]], found: str
) -> None:
    _GitHub.state["pulls"] = {MAIN: pulls}
    with pytest.raises(ConfigError) as exc:
        find_reviewed_plan(api, NAME, MAIN_COMMIT)
    message = str(exc.value)
    assert f"commit {MAIN[:12]} on main is not the merge of a pull request" in message
    assert found in message
    assert "Nothing was applied" in message
    # And no artefact was even listed
    assert not [p for p in _GitHub.seen if p.endswith("/actions/artifacts")]


def test_without_read_permissions_the_lookup_says_which(api: GitHubClient) -> None:
    _GitHub.status = 403
    with pytest.raises(GitHubError, match="permissions: pull-requests: read"):
        find_reviewed_plan(api, NAME, MAIN_COMMIT)


def test_reviewed_plan_cli_names_the_plan_and_finds_it(
    repo: Path, api: GitHubClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    outputs = tmp_path / "github_output"
    name = f"tfplan-platform-{terraform_tree(repo)}"
    here = main_commit(repo)
    assert here.workflow_blob == _git(repo, "hash-object", PLAN_WORKFLOW)
    # The fake GitHub knows this checkout as PR #7's merge commit, with main's workflow file
    _GitHub.state["pulls"] = {here.sha: [_pull(7, HEAD, here.sha)]}
    _GitHub.state["blobs"] = {(PLAN_WORKFLOW, HEAD): here.workflow_blob}
    _GitHub.state["artifacts"] = [{**a, "name": name} for a in _GitHub.state["artifacts"]]
    env = {"GITHUB_OUTPUT": str(outputs), "GITHUB_TOKEN": "", "GH_TOKEN": ""}
    # The plan job: the name, as a step output
    result = CliRunner().invoke(app, ["reviewed-plan", "--root", "platform"], env=env)
    assert result.exit_code == 0, result.output
    assert name in result.output
    assert f"name={name}" in outputs.read_text()
    # The apply: without a token it says what it needs
    result = CliRunner().invoke(app, ["reviewed-plan", "--root", "platform", "--find"], env=env)
    assert result.exit_code == 2
    assert "set GITHUB_TOKEN" in result.output
    # With one: the artefact and the run it comes from, as step outputs
    env.update(GITHUB_TOKEN="t0ken", GITHUB_REPOSITORY="acme/cr", GITHUB_API_URL=api.api)
    result = CliRunner().invoke(app, ["reviewed-plan", "--root", "platform", "--find"], env=env)
    assert result.exit_code == 0, result.output
    assert "pull request #7" in result.output
    written = outputs.read_text()
    assert "artifact_id=10" in written
    assert "run_id=100" in written
    # And a modified workflow file on the head is refused: exit 2, nothing written
    _GitHub.state["blobs"] = {(PLAN_WORKFLOW, HEAD): "2" * 40}
    result = CliRunner().invoke(app, ["reviewed-plan", "--root", "platform", "--find"], env=env)
    assert result.exit_code == 2
    assert "a workflow file main does not have" in result.output
