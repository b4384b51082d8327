"""The smoke test reads /ready and /metadata of a real HTTP server (a tiny one here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ml.deploy.smoke import Expected, smoke_health, smoke_serve
from ml.errors import ConfigError, SmokeTestError

ANSWERS: dict[str, tuple[int, Any]] = {}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS.get(self.path, (404, None))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _serving(version: str, commit: str, ready: int = 200) -> None:
    ANSWERS.clear()
    ANSWERS["/ready"] = (ready, {"ready": ready == 200})
    ANSWERS["/health"] = (200, {"status": "ok"})
    ANSWERS["/metadata"] = (
        200,
        {"model": {"name": "credit-risk", "version": version},
         "deployment": {"git_commit": commit}},
    )  # fmt: skip


EXPECTED = Expected("credit-risk", 3, "a" * 40)


def test_passes_when_version_and_commit_match(url: str) -> None:
    _serving("3", "a" * 40)
    smoke_serve(url, EXPECTED, timeout=0)


@pytest.mark.parametrize(
    ("version", "commit", "ready", "problem"),
    [
        ("3", "a" * 40, 503, "/ready answered 503"),
        ("2", "a" * 40, 200, "serves credit-risk v2, expected credit-risk v3"),
        ("3", "b" * 40, 200, "names git commit bbbb"),
    ],
    ids=["not-ready", "other-version", "other-image"],
)
def test_fails_naming_the_problem(
    url: str, version: str, commit: str, ready: int, problem: str
) -> None:
    _serving(version, commit, ready)
    with pytest.raises(SmokeTestError, match=problem):
        smoke_serve(url, EXPECTED, timeout=0.3, poll_interval=0.1)


def test_unreachable_and_bad_urls(url: str) -> None:
    with pytest.raises(SmokeTestError, match="unreachable"):
        smoke_serve("http://127.0.0.1:9", EXPECTED, timeout=0)
    with pytest.raises(ConfigError, match="http"):
        smoke_serve("ftp://x", EXPECTED, timeout=0)
    _serving("3", "a" * 40)
    smoke_health(url, timeout=0)
