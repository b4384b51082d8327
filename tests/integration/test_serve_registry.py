"""The service in a real uvicorn process against a real `mlflow server`: hot swap, rollback and
registry outage, with a client sending requests without pause the whole time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest_serve import (
    MlflowServer,
    log_tiny_version,
    mlflow_server,
    record,
    serve_process,
)
from mlflow import MlflowClient

pytestmark = pytest.mark.timeout(600)


class Hammer:
    """A thread posting /predict back to back, recording (time, status, version) of each."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.results: list[tuple[float, int, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = {"records": [record(1)]}
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    r = client.post("/predict", json=body)
                    self.results.append(
                        (time.monotonic(), r.status_code, r.headers.get("x-model-version", ""))
                    )
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def since(self, t: float) -> list[tuple[float, int, str]]:
        return [r for r in list(self.results) if r[0] >= t]

    def wait_for_version(self, version: str, since: float, within: float) -> float:
        """Seconds until every response after some point says `version`."""
        deadline = since + within
        while time.monotonic() < deadline:
            recent = self.since(since)
            if recent and recent[-1][2] == version:
                return recent[-1][0] - since
            time.sleep(0.05)
        pytest.fail(
            f"not on version {version} within {within}s: {Counter(r[2] for r in self.since(since))}"
        )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MlflowServer, list[str]]]:
    root = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(root) as server:
        versions = [log_tiny_version(server.uri, seed=s) for s in (1, 2)]
        yield server, versions


def test_hot_swap_rollback_and_registry_outage(
    registry: tuple[MlflowServer, list[str]], tmp_path: Path
) -> None:
    server, (v1, v2) = registry
    client = MlflowClient(server.uri, registry_uri=server.uri)
    client.set_registered_model_alias("credit-risk", "production", v1)
    env = {"MLFLOW_TRACKING_URI": server.uri, "SERVE_POLL_INTERVAL": "0.5"}

    with serve_process(env, tmp_path / "serve.log") as url, Hammer(url) as hammer:
        time.sleep(1)
        assert {r[2] for r in hammer.results} == {v1}

        # Given v1 served, when the alias moves to v2, then within 5 s every response says v2.
        moved = time.monotonic()
        client.set_registered_model_alias("credit-risk", "production", v2)
        took = hammer.wait_for_version(v2, moved, within=5)
        time.sleep(1)
        settled = hammer.since(moved + took)
        assert {r[2] for r in settled} == {v2}, "flapped back after the swap"

        # Rollback: alias back to v1, no restart.
        rolled = time.monotonic()
        client.set_registered_model_alias("credit-risk", "production", v1)
        hammer.wait_for_version(v1, rolled, within=5)

        # Registry outage: predictions go on, /health says degraded with the reason.
        server.stop()
        down = time.monotonic()
        deadline = down + 15
        while httpx.get(f"{url}/health").json()["status"] != "degraded":
            assert time.monotonic() < deadline, "health never said degraded"
            time.sleep(0.2)
        health = httpx.get(f"{url}/health").json()
        assert "registry" in health["reason"]
        assert health["model_version"] == v1
        time.sleep(1)
        assert {r[1] for r in hammer.since(down)} == {200}

        # Registry back on the same port and store: healthy again.
        server.start()
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/health").json()["status"] != "ok":
            assert time.monotonic() < deadline, "health never recovered"
            time.sleep(0.2)
        metrics = httpx.get(f"{url}/metrics").text

    assert hammer.errors == []
    statuses = Counter(r[1] for r in hammer.results)
    assert set(statuses) == {200}, statuses
    assert len(hammer.results) > 100
    assert "serve_model_reloads_total 3.0" in metrics
