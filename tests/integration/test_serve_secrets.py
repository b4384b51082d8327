"""A password planted in MLFLOW_TRACKING_URI (and an API token) never leaves the process, nor does
a stack trace, through a load failure and a registry outage; /health is degraded, in one line,
for the whole failed-load window. A real `mlflow server` and a real uvicorn process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest_serve import MlflowServer, log_tiny_version, mlflow_server, record, serve_process
from mlflow import MlflowClient

from ml.features import CONTRACT

pytestmark = pytest.mark.timeout(600)

PASSWORD = "pl4nted-Passw0rd"
TOKEN = "planted-api-token-7f3a"
RETRY_S = 4.0


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MlflowServer, str, str]]:
    root = tmp_path_factory.mktemp("secrets")
    with mlflow_server(root) as server:
        good = log_tiny_version(server.uri, seed=1, contract=CONTRACT)
        broken = log_tiny_version(server.uri, seed=2, contract=CONTRACT)
        # The broken version's booster is gone from the artifact store (MLmodel still says
        # model.ubj): what an interrupted upload or a bad lifecycle rule leaves behind.
        source = MlflowClient(server.uri).get_model_version("credit-risk", broken).source
        model_id = source.removeprefix("models:/")
        [booster] = (root / "artifacts").rglob(f"{model_id}/artifacts/model.ubj")
        booster.unlink()
        yield server, good, broken


def test_no_credential_or_stack_trace_leaves_and_health_says_why(
    registry: tuple[MlflowServer, str, str], tmp_path: Path
) -> None:
    server, good, broken = registry
    client = MlflowClient(server.uri, registry_uri=server.uri)
    client.set_registered_model_alias("credit-risk", "production", good)
    planted = server.uri.replace("http://", f"http://reader:{PASSWORD}@")
    env = {
        "MLFLOW_TRACKING_URI": planted,
        "SERVE_API_TOKEN": TOKEN,
        "SERVE_POLL_INTERVAL": "0.3",
        "SERVE_LOAD_RETRY_INTERVAL": str(RETRY_S),
        "SERVE_LOG_PREDICTIONS": "true",
    }
    log = tmp_path / "serve.log"
    seen: list[str] = []
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def get(url: str, path: str, **kwargs: object) -> httpx.Response:
        response = httpx.get(f"{url}{path}", **kwargs)  # type: ignore[arg-type]
        seen.append(f"{path} {response.status_code} {response.headers} {response.text}")
        return response

    def post(url: str, body: object, **kwargs: object) -> httpx.Response:
        response = httpx.post(f"{url}/predict", json=body, **kwargs)  # type: ignore[arg-type]
        seen.append(f"/predict {response.status_code} {response.headers} {response.text}")
        return response

    with serve_process(env, log) as url:
        # Given the good version served: every endpoint, good and bad requests.
        for path in ("/health", "/ready", "/metadata", "/metrics", "/openapi.json", "/docs", "/x"):
            get(url, path)
        assert post(url, {"records": [record(1)]}, headers=auth).status_code == 200
        assert post(url, {"records": [{**record(1), "AGE": 300}]}, headers=auth).status_code == 422
        assert post(url, {"records": [record(1)]}).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert post(url, {"records": []}, headers=wrong).status_code == 401
        metadata = get(url, "/metadata").json()
        assert metadata["config"]["tracking_uri"] == planted.replace(PASSWORD, "***")
        assert metadata["model"]["contract"]["source"] == "logged"

        # When the alias moves to the version whose booster is gone: degraded, in one line,
        # naming the version and the reason, for the whole retry window; v1 still answers.
        client.set_registered_model_alias("credit-risk", "production", broken)
        deadline = time.monotonic() + 20
        while get(url, "/health").json()["status"] == "ok":
            assert time.monotonic() < deadline, "health never said degraded"
            time.sleep(0.1)
        failed_at = time.monotonic()
        window: list[dict[str, object]] = []
        while time.monotonic() - failed_at < RETRY_S * 1.5:
            window.append(get(url, "/health").json())
            scored = post(url, {"records": [record(2)]}, headers=auth)
            assert scored.status_code == 200
            assert scored.headers["x-model-version"] == good
            time.sleep(0.2)
        assert {h["status"] for h in window} == {"degraded"}, window
        health = window[-1]
        assert health["model_version"] == good
        assert health["alias_version"] == broken
        reason = str(health["reason"])
        assert f"credit-risk@production is version {broken}, which cannot be served" in reason
        assert "model.ubj is missing" in reason
        assert f"serving version {good}" in reason
        assert "\n" not in reason
        assert "serve_model_reload_failures_total 2.0" in get(url, "/metrics").text

        # And when the registry goes away: degraded, still no credential.
        server.stop()
        try:
            deadline = time.monotonic() + 20
            while "registry unreachable" not in str(get(url, "/health").json()["reason"]):
                assert time.monotonic() < deadline, "health never named the outage"
                time.sleep(0.2)
            time.sleep(1)  # a few failed polls in the log
            get(url, "/health")
        finally:
            server.start()

    logged = log.read_text()
    assert "registry unreachable" in logged
    assert "cannot be served" in logged
    assert '"event":"prediction"' in logged
    for text, where in [*((s, "a response") for s in seen), (logged, "the log")]:
        assert PASSWORD not in text, f"password in {where}: {text[:400]}"
        assert TOKEN not in text, f"token in {where}: {text[:400]}"
        assert "Traceback" not in text, f"traceback in {where}: {text[:400]}"
        assert "Stack trace" not in text, f"native stack trace in {where}: {text[:400]}"
