"""Fixtures for the serve unit tests: a tiny model directory and apps built on it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from serve.settings import ServeSettings


def _helpers() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "integration" / "conftest_serve.py"
    name = "serve_test_helpers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


helpers = _helpers()
make_client = helpers.make_client


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mounted-volume layout: models/production/ (MLflow model) + models/metadata.json."""
    root = tmp_path_factory.mktemp("models")
    path = helpers.save_tiny_model_dir(root / "production", seed=1)
    (root / "metadata.json").write_text(
        '{"name": "credit-risk", "version": "7", "metrics": {"roc_auc": 0.78}}'
    )
    return path


@pytest.fixture(autouse=True)
def _no_inherited_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Module fixtures elsewhere export MLFLOW_TRACKING_URI (mlflow.set_tracking_uri does);
    these tests choose their registry explicitly."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def record() -> dict[str, int | float]:
    return helpers.record(3)


@pytest.fixture
def client(model_dir: Path) -> Iterator[TestClient]:
    yield from make_client(ServeSettings(model_path=model_dir, log_predictions=False))


@pytest.fixture
def auth_client(model_dir: Path) -> Iterator[TestClient]:
    yield from make_client(
        ServeSettings(model_path=model_dir, api_token="s3cret-token-value", log_predictions=False)
    )
