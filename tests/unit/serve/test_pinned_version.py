"""A pinned version (`SERVE_MODEL_VERSION`, what an ECS task definition sets) wins over the
alias: the process serves that version, stops polling, and /metadata says it is pinned."""

from __future__ import annotations

import time
from pathlib import Path

import serve_test_helpers as helpers
from serve_test_helpers import make_client

from serve.settings import ServeSettings


def test_a_pinned_version_wins_over_the_alias_and_is_never_swapped(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    # Given two versions, the alias on v2, and a process pinned to v1
    uri = helpers.sqlite_store(tmp_path)
    v1 = helpers.log_tiny_version(uri, seed=1)
    v2 = helpers.log_tiny_version(uri, seed=2)
    registry = MlflowClient(uri, registry_uri=uri)
    registry.set_registered_model_alias("credit-risk", "production", v2)
    settings = ServeSettings(
        tracking_uri=uri, model_version=int(v1), poll_interval=0.05, log_predictions=False
    )
    for client in make_client(settings):
        body = {"records": [helpers.record(5)]}
        # Then it serves v1, and /metadata says pinned (no alias)
        assert client.post("/predict", json=body).headers["X-Model-Version"] == v1
        model = client.get("/metadata").json()["model"]
        assert (model["version"], model["pinned"], model["alias"]) == (v1, True, None)
        assert model["uri"] == f"models:/credit-risk/{v1}"
        assert client.get("/health").json()["status"] == "ok"
        # When the alias moves (a deploy recording what runs elsewhere), many poll periods pass
        registry.set_registered_model_alias("credit-risk", "production", v1)
        registry.set_registered_model_alias("credit-risk", "production", v2)
        time.sleep(0.5)
        # Then it still serves v1, loaded once, and the watcher no longer polls
        assert client.post("/predict", json=body).headers["X-Model-Version"] == v1
        assert "serve_model_reloads_total 1.0" in client.get("/metrics").text
        watcher = client.app.state.watcher  # type: ignore[attr-defined]
        assert watcher.pinned_and_served()
        assert watcher._thread is not None
        assert not watcher._thread.is_alive()


def test_a_pinned_version_that_does_not_exist_is_degraded_and_named(tmp_path: Path) -> None:
    uri = helpers.sqlite_store(tmp_path)
    helpers.log_tiny_version(uri, seed=1)
    settings = ServeSettings(
        tracking_uri=uri, model_version=9, poll_interval=0.05, log_predictions=False
    )
    for client in make_client(settings):
        deadline = time.monotonic() + 10
        while client.get("/health").json().get("reason") is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert "credit-risk version 9 (pinned) does not exist in the registry" in health["reason"]
        assert client.get("/ready").status_code == 503


def test_without_a_pin_metadata_says_not_pinned(client: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    assert client.get("/metadata").json()["model"]["pinned"] is False
