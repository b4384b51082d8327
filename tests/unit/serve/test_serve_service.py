"""Readiness, health, MODEL_PATH fallback, metadata redaction, metrics, settings, hot swap."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import serve_test_helpers as helpers
from fastapi.testclient import TestClient
from pydantic import ValidationError
from serve_test_helpers import make_client

from ml.errors import RegistryError
from serve.app import create_app
from serve.deps import get_settings
from serve.settings import ServeSettings, redact_uri


def test_ready_is_503_until_a_model_is_loaded(model_dir: Path) -> None:
    app = create_app(ServeSettings(model_path=model_dir), start_watcher=False)
    with TestClient(app) as client:
        ready = client.get("/ready")
        predict = client.post("/predict", json={"records": [helpers.record(0)]})
        health = client.get("/health")

        assert ready.status_code == 503
        assert ready.json() == {"ready": False, "model_version": None}
        assert predict.status_code == 503
        assert predict.headers["X-Model-Version"] == "none"
        assert health.json()["status"] == "degraded"

        app.state.watcher.poll_once()

        assert client.get("/ready").status_code == 200


def test_model_path_fallback_reads_metadata_json(client: TestClient) -> None:
    meta = client.get("/metadata").json()

    assert meta["model"]["version"] == "7"
    assert meta["model"]["name"] == "credit-risk"
    assert meta["model"]["source"] == "path"
    assert meta["model"]["flavor"] == "xgboost"
    assert meta["model"]["metrics"] == {"roc_auc": 0.78}
    assert [c["name"] for c in meta["model"]["signature"]["inputs"]][:2] == ["LIMIT_BAL", "SEX"]
    assert client.get("/health").json() == {
        "status": "ok", "reason": None, "model_version": "7", "source": "path",
        "alias_version": None, "feature_store": None, "feature_snapshot": None,
    }  # fmt: skip


def test_unreachable_registry_falls_back_to_model_path_and_says_degraded(model_dir: Path) -> None:
    settings = ServeSettings(
        model_path=model_dir,
        tracking_uri="http://127.0.0.1:9",  # nothing listens on the discard port
        log_predictions=False,
    )
    for client in make_client(settings):
        health = client.get("/health").json()

        assert health["status"] == "degraded"
        assert "registry" in health["reason"]
        assert client.post("/predict", json={"records": [helpers.record(0)]}).status_code == 200


def test_metadata_redacts_credentials(model_dir: Path) -> None:
    settings = ServeSettings(
        model_path=model_dir,
        api_token="very-secret-token",
        git_commit="abc123",
        image_tag="serve:abc123",
        log_predictions=False,
    )
    for client in make_client(settings):
        # the token is not needed for /metadata; override settings to show the dependency works
        client.app.dependency_overrides[get_settings] = lambda: settings.model_copy(  # type: ignore[attr-defined]
            update={"tracking_uri": "postgresql://mlflow:hunter2@db:5432/mlflow"}
        )
        text = client.get("/metadata").text
        meta = client.get("/metadata").json()

        assert "very-secret-token" not in text
        assert "hunter2" not in text
        assert meta["config"]["api_token"] == "**********"
        assert meta["config"]["tracking_uri"] == "postgresql://mlflow:***@db:5432/mlflow"
        assert meta["deployment"]["git_commit"] == "abc123"
        assert meta["deployment"]["image_tag"] == "serve:abc123"
        assert meta["deployment"]["started_at"]


def test_metrics_expose_requests_decisions_model_and_reloads(
    client: TestClient, record: dict[str, Any]
) -> None:
    client.post("/predict", json={"records": [record, record]})
    client.post("/predict", json={"records": []})

    text = client.get("/metrics").text

    assert 'serve_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'serve_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert "serve_request_latency_seconds_bucket" in text
    assert "serve_predictions_total{decision=" in text
    assert 'serve_model_info{alias="",name="credit-risk",source="path",version="7"} 1.0' in text
    assert "serve_model_reloads_total 1.0" in text
    assert "serve_model_reload_failures_total 0.0" in text


@pytest.mark.parametrize("token", ["changeme", "", "secret"])
def test_placeholders_are_refused_outside_development(model_dir: Path, token: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        ServeSettings(environment="production", model_path=model_dir, api_token=token)
    ServeSettings(environment="development", model_path=model_dir, api_token=token)


def test_settings_read_serve_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVE_MODEL_ALIAS", "staging")
    monkeypatch.setenv("SERVE_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")

    settings = ServeSettings()

    assert (settings.model_alias, settings.poll_interval) == ("staging", 0.5)
    assert settings.tracking_uri == "http://mlflow:5000"


def test_redact_uri_leaves_plain_uris() -> None:
    assert redact_uri("http://mlflow:5000") == "http://mlflow:5000"
    assert redact_uri("https://u:p@h/x") == "https://u:***@h/x"


def test_alias_move_swaps_and_rollback_needs_no_restart(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = helpers.sqlite_store(tmp_path)
    v1 = helpers.log_tiny_version(uri, seed=1)
    v2 = helpers.log_tiny_version(uri, seed=2)
    registry = MlflowClient(uri, registry_uri=uri)
    registry.set_registered_model_alias("credit-risk", "production", v1)
    settings = ServeSettings(tracking_uri=uri, poll_interval=0.1, log_predictions=False)
    for client in make_client(settings):
        body = {"records": [helpers.record(5)]}
        assert client.post("/predict", json=body).headers["X-Model-Version"] == v1

        registry.set_registered_model_alias("credit-risk", "production", v2)
        deadline = time.monotonic() + 10
        while client.post("/predict", json=body).headers["X-Model-Version"] != v2:
            assert time.monotonic() < deadline, "never swapped to v2"
            time.sleep(0.05)

        registry.set_registered_model_alias("credit-risk", "production", v1)
        while client.post("/predict", json=body).headers["X-Model-Version"] != v1:
            assert time.monotonic() < deadline + 10, "never rolled back to v1"
            time.sleep(0.05)
        assert "serve_model_reloads_total 3.0" in client.get("/metrics").text
        assert client.get("/metadata").json()["model"]["alias"] == "production"


def test_a_version_that_failed_to_load_is_tried_again_later(model_dir: Path) -> None:
    # The registry is a stand-in here (the real one is in tests/integration): its first download
    # of version 7 fails like a timeout, the next succeeds.
    settings = ServeSettings(
        tracking_uri="http://127.0.0.1:9", load_retry_interval=0.3, log_predictions=False
    )
    app = create_app(settings, start_watcher=False)
    flaky = FlakyRegistry(model_dir, fail_downloads=1)
    app.state.watcher._registry = flaky
    with TestClient(app) as client:
        app.state.watcher.poll_once()
        assert client.get("/ready").status_code == 503
        health = client.get("/health").json()
        assert "credit-risk@production is version 7, which cannot be served" in health["reason"]
        assert health["alias_version"] == "7"

        app.state.watcher.poll_once()  # within the retry interval: no new download
        assert flaky.downloads == 1
        assert client.get("/health").json()["status"] == "degraded"

        time.sleep(0.35)
        app.state.watcher.poll_once()
        assert flaky.downloads == 2
        assert client.get("/ready").json() == {"ready": True, "model_version": "7"}
        assert client.get("/health").json()["status"] == "ok"


def test_scoring_threads_default_to_this_workers_share_of_the_cpus_less_its_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1, 2, 3})

    assert ServeSettings(model_path=Path("m"), workers=1).scoring_thread_count() == 3
    assert ServeSettings(model_path=Path("m"), workers=2).scoring_thread_count() == 1
    assert ServeSettings(model_path=Path("m"), workers=8).scoring_thread_count() == 1
    assert ServeSettings(model_path=Path("m"), scoring_threads=3).scoring_thread_count() == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1})
    assert ServeSettings(model_path=Path("m")).scoring_thread_count() == 1


def test_a_swap_freezes_the_heap_it_found(model_dir: Path) -> None:
    import gc

    settings = ServeSettings(model_path=model_dir, log_predictions=False)
    app = create_app(settings, start_watcher=False)
    gc.unfreeze()
    try:
        app.state.watcher.poll_once()  # loads the mounted model and swaps it in

        assert app.state.store.current is not None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


class FlakyRegistry:
    """Stands in for ml.registry.Registry: the alias names version 7, the version's files are
    `model_dir`, and the first `fail_downloads` downloads fail like a timeout."""

    def __init__(self, model_dir: Path, fail_downloads: int = 0, version: int = 7) -> None:
        self.model_dir = model_dir
        self.fail_downloads = fail_downloads
        self.version = version
        self.downloads = 0

    def get_by_alias(self, name: str, alias: str) -> Any:
        return replace_version(self.version)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return {}

    def download_version(self, name: str, version: int, dst: Path) -> Path:
        import shutil

        self.downloads += 1
        if self.downloads <= self.fail_downloads:
            raise RegistryError("download of the artifacts timed out")
        return Path(shutil.copytree(self.model_dir, dst))

    def download_run_file(self, run_id: str, path: str, dst: Path) -> Path | None:
        return None


def replace_version(version: int) -> Any:
    from ml.registry import VersionInfo

    return VersionInfo("credit-risk", version, "READY", "None", "run-1", "models:/m-1")
