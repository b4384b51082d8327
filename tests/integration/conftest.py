"""Fixtures of the integration tests (helpers for the serve tests are in conftest_serve.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty embedded MLflow store in tmp, made the process's (MLFLOW_TRACKING_URI, ML_HOME),
    with the repository as the working directory (config/, data/)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("ML_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(ROOT)
    return uri
