"""Helpers for the serve tests: tiny XGBoost models with the real 23-feature signature, a real
`mlflow server` process and the app in a real uvicorn subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from ml.contract import CONTRACT_FILE, ModelContract
from ml.features import FEATURE_COLUMNS, FEATURES
from ml.registry import Registry
from tests.fixtures import services
from tests.fixtures.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def feature_frame(rows: int, seed: int) -> pd.DataFrame:
    """Plausible records with the training dtypes (int64 / float64)."""
    rng = np.random.default_rng(seed)
    data = {}
    for col in FEATURE_COLUMNS:
        if col.dtype == "int":
            codes = sorted(col.codes) if col.codes else list(range(18, 80))
            data[col.name] = rng.choice(codes, size=rows).astype(np.int64)
        else:
            data[col.name] = rng.uniform(0, 200_000, size=rows).astype(np.float64)
    return pd.DataFrame(data, columns=FEATURES)


def record(seed: int = 0) -> dict[str, int | float]:
    """One valid JSON record."""
    row = feature_frame(1, seed).iloc[0]
    return {
        c.name: (int(row[c.name]) if c.dtype == "int" else float(row[c.name]))
        for c in FEATURE_COLUMNS
    }


def fit_tiny(seed: int):  # type: ignore[no-untyped-def]
    """A 5-tree classifier on random data; different seeds give different models."""
    from xgboost import XGBClassifier

    x = feature_frame(300, seed)
    y = (x["PAY_0"] > 0).astype(int) ^ (np.random.default_rng(seed).random(300) < 0.2)
    model = XGBClassifier(n_estimators=5, max_depth=3, random_state=seed, n_jobs=1)
    model.fit(x, y)
    return model, x


def log_tiny_version(
    tracking_uri: str,
    name: str = "credit-risk",
    seed: int = 0,
    contract: ModelContract | None = None,
) -> str:
    """Log a tiny booster the way ml.train does (native ubj, signature, example, and `contract`
    as contract.json when given; without it, a version from before contracts); register it."""
    import mlflow
    from mlflow.models import infer_signature

    model, x = fit_tiny(seed)
    example = x.head(5)
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    # fluent(): MLflow's process-wide URIs point here for the block only, so no later test
    # (or server it starts) inherits this store.
    with Registry(tracking_uri).fluent():
        mlflow.set_experiment("serve-tests")
        with mlflow.start_run() as run:
            mlflow.log_metric("roc_auc", 0.5 + seed / 100)
            if contract is not None:
                mlflow.log_dict(contract.to_dict(), CONTRACT_FILE)
            info = mlflow.xgboost.log_model(
                model,
                name="model",
                signature=signature,
                input_example=example,
                model_format="ubj",
                registered_model_name=name,
                pip_requirements=["xgboost"],  # skips slow requirement inference
            )
    assert run.info.run_id
    return str(info.registered_model_version)


def sqlite_store(root: Path) -> str:
    """An embedded registry under `root` with the tests' experiment; its URI."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    Registry(uri).ensure_experiment("serve-tests", (root / "art").as_uri())
    return uri


def save_tiny_model_dir(path: Path, seed: int = 0) -> Path:
    """An MLflow model directory (MLmodel + model.ubj) as a volume mount would hold it."""
    import mlflow
    from mlflow.models import infer_signature

    model, x = fit_tiny(seed)
    example = x.head(5)
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    mlflow.xgboost.save_model(
        model,
        str(path),
        signature=signature,
        input_example=example,
        model_format="ubj",
        pip_requirements=["xgboost"],
    )
    return path


@dataclass
class MlflowServer:
    """A real `mlflow server` on 127.0.0.1; stop() and start() keep port and store."""

    root: Path
    port: int
    running: services.MlflowServer | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        backend = f"sqlite:///{self.root / 'db.sqlite'}"
        self.running = services.start_mlflow_server(backend, self.root, 180, port=self.port)

    def stop(self) -> None:
        if self.running is not None:
            services.stop_mlflow_server(self.running)
        self.running = None


@contextlib.contextmanager
def mlflow_server(root: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(root, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def serve_process(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[str]:
    """`python -m serve` in a subprocess; yields its base URL once /ready says 200."""
    with serve_subprocess(env, log_path, workers) as (url, _):
        yield url


@contextlib.contextmanager
def serve_subprocess(
    env: dict[str, str],
    log_path: Path,
    workers: int = 1,
    cwd: Path = ROOT,
    command: Sequence[str] = (sys.executable, "-m", "serve"),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serve_process`, yielding the process too (for tests that signal it); `cwd`: where it
    runs (a folder without config/ stands for the serve image); `command`: what starts it
    (`python -m serve`, as the image does, or the `mlops serve` verb), configured by SERVE_*."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_URI")}
    full_env = {
        **inherited,  # a server test names its registry in `env`, never by accident
        "SERVE_HOST": "127.0.0.1",
        "SERVE_PORT": str(port),
        "SERVE_WORKERS": str(workers),
        "SERVE_LOG_PREDICTIONS": "false",
        **env,
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"serve exited early:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"serve never became ready:\n{log_path.read_text()[-3000:]}")
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def make_client(settings: Any) -> Iterator[Any]:
    """A TestClient on create_app(settings), once /ready says 200 (or 30 s passed)."""
    from fastapi.testclient import TestClient

    from serve.app import create_app

    app = create_app(settings)
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client
