"""scripts/pr_comment.py against a local stand-in for the GitHub REST API (a real HTTP server)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))

import pr_comment  # noqa: E402


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

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def api() -> Iterator[str]:
    FakeGitHub.files, FakeGitHub.comments, FakeGitHub.calls = [], [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    FakeGitHub.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield FakeGitHub.base
    server.shutdown()


def _env(api: str, tmp_path: Path) -> dict[str, str]:
    return {
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_API_URL": api,
        "PR_NUMBER": "7",
        "GITHUB_RUN_ID": "99",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


ARGS = ["--marker", "promotion-plan", "--title", "Promotion plan", "--if-changed",
        "promotions.yaml", "--if-changed", "config/gates.yaml"]  # fmt: skip


def test_creates_then_updates_one_sticky_comment(api: str, tmp_path: Path) -> None:
    # Given a PR that edits promotions.yaml and a plan
    FakeGitHub.files = ["promotions.yaml", "README.md"]
    plan = tmp_path / "plan.md"
    plan.write_text("credit-risk: staging v1 -> v2")
    env = _env(api, tmp_path)
    # When the script runs twice (two pushes)
    first = pr_comment.run([*ARGS, "--body-file", str(plan)], env)
    plan.write_text("credit-risk: staging v1 -> v3")
    second = pr_comment.run([*ARGS, "--body-file", str(plan)], env)
    # Then there is one comment, with the marker and the newest plan, and a job summary
    assert first.startswith("created")
    assert second.startswith("updated")
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
    assert pr_comment.run([*ARGS, "--body-file", str(plan)], _env(api, tmp_path)).startswith(
        "created"
    )


def test_no_comment_when_promotions_and_gates_are_untouched(api: str, tmp_path: Path) -> None:
    FakeGitHub.files = ["serve/app.py"]
    plan = tmp_path / "plan.md"
    plan.write_text("nothing")
    outcome = pr_comment.run([*ARGS, "--body-file", str(plan)], _env(api, tmp_path))
    assert "no comment" in outcome
    assert FakeGitHub.comments == []
    assert not (tmp_path / "summary.md").exists()


def test_missing_token_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(pr_comment.CommentError, match="GITHUB_TOKEN"):
        pr_comment.run(["--marker", "m", "--body-file", "x"], {"PR_NUMBER": "1"})


def test_an_oversized_body_is_cut_below_githubs_limit() -> None:
    body = pr_comment.build_body("m", "t", "x" * 100_000, "https://example/run")
    assert len(body) <= 65_536
    assert "cut" in body


def test_touches_matches_files_and_directories() -> None:
    assert pr_comment.touches(["config/gates.yaml"], ["config/"])
    assert not pr_comment.touches(["config/gates.yaml.bak"], ["config/gates.yaml"])
