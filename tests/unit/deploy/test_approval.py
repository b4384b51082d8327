"""The approval page (job summary) and who approved (GitHub's run approvals API).

The API answer is GitHub's documented response shape, recorded in
tests/fixtures/github/run_approvals.json and served by a local HTTP server (GitHub cannot be
reached from here): the real `GitHubClient` makes the real request against it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ml.adapters.github import GitHubClient
from ml.deploy import approval
from ml.deploy import release as releases
from tests.unit.deploy.test_integrity import M, Registry, _scan, _world

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "github" / "run_approvals.json"


@pytest.fixture
def github_api() -> Iterator[tuple[str, list[str]]]:
    """A local server answering the approvals endpoint with the recorded response."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(f"{self.path} {self.headers.get('Authorization')}")
            ok = self.path == "/repos/lender/credit-risk/actions/runs/4242/approvals"
            body = RECORDED.read_bytes() if ok else b'{"message": "Not Found"}'
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def test_who_approved_is_recorded_in_the_release_and_shown_by_history(
    github_api: tuple[str, list[str]],
) -> None:
    url, seen = github_api
    reg, made = _world(1)
    client = GitHubClient("token-x", "lender/credit-risk", api=url)
    found = approval.fetch_approvals(client, "4242")
    assert seen == ["/repos/lender/credit-risk/actions/runs/4242/approvals Bearer token-x"]
    assert [(a["user"], a["state"], a["environments"]) for a in found] == [
        ("model-risk-approver", "approved", ["production"])
    ]
    releases.add_approvals(reg, M, made[0].id, found)
    releases.add_approvals(reg, M, made[0].id, found)  # a rerun records it once
    stored = releases.get(reg, M, made[0].id)
    assert len(stored.approvals) == 1
    lines = approval.approval_lines(reg.model_tags(M))
    assert len(lines) == 1
    assert "release r0: approved by model-risk-approver for production (run 4242)" in lines[0]
    assert '"Ship it: AUC 0.781 vs 0.776, scan clean"' in lines[0]
    # And the approvals are history, not content: the record still hashes to its digest
    assert releases.verify_chain(releases.list_all(reg, M)) == []


class _WithMetrics(Registry):
    def run_metrics(self, run_id: str) -> dict[str, float]:
        return {"roc_auc": 0.781, "brier": 0.14}


def test_the_approval_page_names_what_the_approval_ships(tmp_path: Path) -> None:
    from tests.fixtures.memory_registry import model, version

    reg = _WithMetrics(model(M, [version(M, 1)]))
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:" + "a" * 64
    rel = releases.build("r9", "9" * 40, image, None, {M: 1}, _scan(images=[image]))
    releases.create(reg, M, rel)
    gates = tmp_path / "gates.yaml"
    gates.write_text("defaults:\n  floors: {roc_auc: 0.75}\n")
    text = approval.summary_markdown(reg, M, "r9", gates)
    stored = releases.get(reg, M, "r9")
    for expected in (
        "## Release `r9` for production", f"commit: `{'9' * 40}`", f"serve image: `{image}`",
        f"record digest: `{stored.digest}`", f"| {M} | 1 | brier 0.1400<br>roc_auc 0.7810 "
        "(floor ≥ 0.75) |", "scan: passed, trivy 0.58.1, DB of 2026-12-05T06:00:00Z",
        "staging: **not verified**", "record integrity: intact",
    ):  # fmt: skip
        assert expected in text, text
