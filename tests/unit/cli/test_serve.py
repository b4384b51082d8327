"""`mlops serve` without a registry configured serves from the embedded store."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.cli.serve import embedded_registry_env


def test_no_registry_configured_exports_the_embedded_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_TRACKING_URI", raising=False)
    env: dict[str, str] = {}
    uri = embedded_registry_env(env)
    assert uri == f"sqlite:///{(tmp_path / 'home' / 'mlflow.db').as_posix()}"
    assert env == {"MLFLOW_TRACKING_URI": uri}


@pytest.mark.parametrize("key", ["MLFLOW_TRACKING_URI", "SERVE_TRACKING_URI", "SERVE_MODEL_PATH"])
def test_a_configured_source_is_left_alone(key: str) -> None:
    env = {key: "x"}
    assert embedded_registry_env(env) is None
    assert env == {key: "x"}
