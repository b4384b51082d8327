"""ml/sticky_comment.py and ml/adapters/github.py: `mlops pr comment` against a local
stand-in for the GitHub REST API (a real HTTP server: the GitHub API is the boundary that cannot
run here), and the step-output helpers of ml/adapters/actions.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from ml import sticky_comment
from ml.adapters import actions
from ml.cli import app
from ml.errors import GitHubError
from tests.fixtures.local_http import serving


class FakeGitHub(BaseHTTPRequestHandler):
    """Just enough of the API: PR files, issue comments (list, create, update)."""

    files: ClassVar[list[str]] = []
    comments: ClassVar[list[dict[str, Any]]] = []
    calls: ClassVar[list[tuple[str, str]]] = []
    base = ""

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path))
        assert self.headers["Authorization"] == "Bearer t0ken"
        if "/pulls/7/files" in self.path:
            self._send(200, [{"filename": f} for f in self.files])
        elif "/issues/7/comments" in self.path:
            self._send(200, self.comments)
        else:
            self._send(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        self.calls.append(("POST", self.path))
        cid = len(self.comments) + 1
        url = f"{self.base}/repos/o/r/issues/comments/{cid}"
        self.comments.append({"id": cid, "url": url, "body": self._body()["body"]})
        self._send(201, self.comments[-1])

    def do_PATCH(self) -> None:
        self.calls.append(("PATCH", self.path))
        cid = int(self.path.rsplit("/", 1)[1])
        self.comments[cid - 1]["body"] = self._body()["body"]
        self._send(200, self.comments[cid - 1])


@pytest.fixture
def api() -> Iterator[str]:
    FakeGitHub.files, FakeGitHub.comments, FakeGitHub.calls = [], [], []
    with serving(FakeGitHub) as base:
        FakeGitHub.base = base
        yield base


def _env(api: str, tmp_path: Path) -> dict[str, str]:
    return {
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_API_URL": api,
        "PR_NUMBER": "7",
        "GITHUB_RUN_ID": "99",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


ARGS = ["pr", "comment", "--marker", "promotion-plan", "--title", "Promotion plan",
        "--if-changed", "promotions.yaml", "--if-changed", "config/gates.yaml"]  # fmt: skip


def _comment(env: dict[str, str], body: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*ARGS, "--body-file", str(body)], env=env)
    return result.exit_code, " ".join(result.output.split())


def test_creates_then_updates_one_sticky_comment(api: str, tmp_path: Path) -> None:
    # Given a PR that edits promotions.yaml and a plan
    FakeGitHub.files = ["promotions.yaml", "README.md"]
    plan = tmp_path / "plan.md"
    plan.write_text("credit-risk: staging v1 -> v2")
    env = _env(api, tmp_path)
    # When `mlops pr comment` runs twice (two pushes)
    first = _comment(env, plan)
    plan.write_text("credit-risk: staging v1 -> v3")
    second = _comment(env, plan)
    # Then there is one comment, with the marker and the newest plan, and a job summary
    assert first == (0, "created the sticky comment on PR #7")
    assert second == (0, "updated the sticky comment on PR #7")
    assert len(FakeGitHub.comments) == 1
    body = FakeGitHub.comments[0]["body"]
    assert body.startswith("<!-- sticky:promotion-plan -->")
    assert "v1 -> v3" in body
    assert "actions/runs/99" in body
    assert "v1 -> v3" in (tmp_path / "summary.md").read_text()


def test_gates_change_counts(api: str, tmp_path: Path) -> None:
    FakeGitHub.files = ["config/gates.yaml"]
    plan = tmp_path / "plan.md"
    plan.write_text("gates changed")
    assert _comment(_env(api, tmp_path), plan)[1].startswith("created")


def test_no_comment_when_promotions_and_gates_are_untouched(api: str, tmp_path: Path) -> None:
    FakeGitHub.files = ["serve/app.py"]
    plan = tmp_path / "plan.md"
    plan.write_text("nothing")
    code, out = _comment(_env(api, tmp_path), plan)
    assert code == 0
    assert "no comment" in out
    assert FakeGitHub.comments == []
    assert not (tmp_path / "summary.md").exists()


def test_missing_token_and_api_errors_are_one_line_with_exit_12(api: str, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("x")
    code, out = _comment({"PR_NUMBER": "1", "GITHUB_TOKEN": "", "GITHUB_REPOSITORY": ""}, plan)
    assert code == 12
    assert "GITHUB_TOKEN and GITHUB_REPOSITORY must be set" in out
    env = {**_env(api, tmp_path), "PR_NUMBER": "8"}  # the stand-in answers 404 for PR 8
    FakeGitHub.files = ["promotions.yaml"]
    code, out = _comment(env, plan)
    assert code == 12
    assert "HTTP 404" in out


def test_an_oversized_body_is_cut_below_githubs_limit() -> None:
    body = sticky_comment.comment_body("m", "t", "x" * 100_000, "https://example/run")
    assert len(body) <= 65_536
    assert "cut" in body


def test_touches_matches_files_and_directories() -> None:
    assert sticky_comment.touches(["config/gates.yaml"], ["config/"])
    assert not sticky_comment.touches(["config/gates.yaml.bak"], ["config/gates.yaml"])


def test_step_outputs_summary_and_run_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    actions.write_outputs(version="4", notes="a\nb")
    actions.append_summary("### hi")
    lines = out.read_text().splitlines()
    assert lines[0] == "version=4"
    assert lines[1].startswith("notes<<EOF_")
    assert lines[2:4] == ["a", "b"]
    assert lines[4] == lines[1].split("<<")[1]
    assert summary.read_text() == "### hi\n"
    env = {"GITHUB_RUN_ID": "5", "GITHUB_REPOSITORY": "o/r"}
    assert actions.run_url(env) == "https://github.com/o/r/actions/runs/5"
    assert actions.run_url({}) is None


def test_pr_number_from_the_event(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 31}}))
    assert actions.pr_number({"GITHUB_EVENT_PATH": str(event)}) == 31
    with pytest.raises(GitHubError, match="no pull request"):
        actions.pr_number({})


def test_a_comment_body_masks_credentials() -> None:
    from ml.sticky_comment import comment_body

    body = comment_body(
        "plan",
        "Plan",
        "registry http://ci:s3cret-pw@mlflow:5000 said no\nAuthorization: Bearer xyz",
    )

    assert "s3cret-pw" not in body
    assert "xyz" not in body
    assert "http://ci:***@mlflow:5000" in body
