"""Load a model (from the registry by alias, or a mounted directory) and hold the current one.

The current model is an immutable `LoadedModel`; a swap replaces the reference in one assignment,
so a request that already holds the old object finishes on it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from serve.errors import ModelLoadError, RegistryUnavailableError
from serve.request_parser import RequestParser
from serve.schemas import Column
from serve.tree_ensemble import compile_ensemble
from serve.xgboost_inplace import checked_inplace


class Predictor(Protocol):
    """Scores a float32 matrix whose columns are in signature order."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class BoosterPredictor:
    """The native XGBoost booster with one OpenMP thread (DESIGN.md), called through its C API
    (serve/xgboost_inplace.py, else `inplace_predict`). Up to SMALL_BATCH finite rows take the
    numpy tree walk instead (serve/tree_ensemble.py). Safe to call from several threads at once:
    big requests are scored on scoring threads (serve/scoring.py)."""

    # Measured on the champion (800 trees, depth 5), one core: the walk costs ~65 µs for one
    # record and ~20 µs per extra one, the C API path ~180 µs + ~9 µs per record; at 12 records
    # both take ~320 µs.
    SMALL_BATCH = 12

    def __init__(self, path: Path) -> None:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        # OpenMP threads busy-wait on both cores for a tiny prediction; one thread is faster.
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.ensemble = compile_ensemble(booster)
        self.inplace = checked_inplace(booster)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.ensemble is not None and len(x) <= self.SMALL_BATCH and np.isfinite(x).all():
            return self.ensemble.predict(x)
        if self.inplace is not None:
            return self.inplace(x)
        out = self.booster.inplace_predict(x, validate_features=False)
        out = np.asarray(out, dtype=np.float64)
        return out[:, -1] if out.ndim == 2 else out


class PyfuncPredictor:
    """Fallback for flavors without a native path (e.g. the scikit-learn baseline), where mlflow
    with pandas is installed (`mlops serve` in the dev environment). The serve image has neither;
    the gates' servable_flavors keeps such versions out of the environments it serves."""

    def __init__(self, path: Path, columns: tuple[Column, ...]) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(str(path))
        self.columns = columns

    def __call__(self, x: np.ndarray) -> np.ndarray:
        data: dict[str, Any] = {}
        for i, col in enumerate(self.columns):
            values = x[:, i]
            data[col.name] = values.astype(np.int64) if col.type in {"long", "integer"} else values
        out = np.asarray(self.model.predict(data), dtype=np.float64)
        return out[:, -1] if out.ndim == 2 else out


@dataclass(frozen=True)
class LoadedModel:
    """One loaded, warmed model version and everything /metadata tells about it."""

    name: str
    version: str
    alias: str | None
    source: str  # "registry" or "path"
    uri: str
    run_id: str | None
    flavor: str
    columns: tuple[Column, ...]
    signature: dict[str, Any]
    metrics: dict[str, float]
    predictor: Predictor
    parser: RequestParser
    loaded_at: float = field(default_factory=time.time)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities for a parsed float32 matrix (`parser.parse(body).matrix`)."""
        return self.predictor(matrix)


def _read_mlmodel(model_dir: Path) -> dict[str, Any]:
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ModelLoadError(f"{model_dir} has no MLmodel file; not an MLflow model directory")
    data = yaml.safe_load(mlmodel.read_text())
    if not isinstance(data, dict):
        raise ModelLoadError(f"{mlmodel} is not a mapping")
    return data


def _signature(mlmodel: dict[str, Any]) -> tuple[tuple[Column, ...], dict[str, Any]]:
    sig = mlmodel.get("signature") or {}
    try:
        inputs = json.loads(sig["inputs"])
        outputs = json.loads(sig["outputs"]) if sig.get("outputs") else None
        columns = tuple(Column(name=c["name"], type=c["type"]) for c in inputs)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"the model has no column signature to validate input: {exc}") from exc
    if not columns:
        raise ModelLoadError("the model signature has no input columns")
    return columns, {"inputs": inputs, "outputs": outputs}


def _input_example(
    model_dir: Path, mlmodel: dict[str, Any], columns: tuple[Column, ...]
) -> list[dict[str, Any]]:
    info = mlmodel.get("saved_input_example_info") or {}
    path = model_dir / str(info.get("artifact_path", "input_example.json"))
    names = [c.name for c in columns]
    if path.is_file():
        raw = json.loads(path.read_text())
        if isinstance(raw, dict) and "columns" in raw and "data" in raw:
            return [dict(zip(raw["columns"], row, strict=True)) for row in raw["data"]]
        if isinstance(raw, dict) and "dataframe_split" in raw:
            split = raw["dataframe_split"]
            return [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):
            return [dict(r) for r in raw]
    # No example: warm on zeros, typed per column.
    return [
        {
            n: (0 if c.type in {"long", "integer"} else 0.0)
            for n, c in zip(names, columns, strict=True)
        }
    ]


def load_model_dir(
    model_dir: Path,
    *,
    name: str,
    version: str,
    alias: str | None,
    source: str,
    uri: str,
    run_id: str | None,
    metrics: dict[str, float],
    max_batch: int,
) -> LoadedModel:
    """Load an MLflow model directory, build its request schema and warm it on its example."""
    mlmodel = _read_mlmodel(model_dir)
    columns, signature = _signature(mlmodel)
    flavors = mlmodel.get("flavors") or {}
    predictor: Predictor
    try:
        if "xgboost" in flavors:
            data = flavors["xgboost"].get("data", "model.ubj")
            predictor = BoosterPredictor(model_dir / data)
            flavor = "xgboost"
        elif "python_function" in flavors:
            predictor = PyfuncPredictor(model_dir, columns)
            flavor = "python_function"
        else:
            raise ModelLoadError(f"no servable flavor in {sorted(flavors)}")
        parser = RequestParser(columns, max_batch)
        # Through the request parser, as a request would go; no more records than one may send.
        example_records = _input_example(model_dir, mlmodel, columns)[:max_batch]
        example = parser.parse_records(example_records).matrix
    except ModelLoadError:
        raise
    except Exception as exc:  # a corrupt file or an unknown type must not kill the old model
        raise ModelLoadError(f"cannot load {uri}: {type(exc).__name__}: {exc}") from exc
    model = LoadedModel(
        name=name,
        version=version,
        alias=alias,
        source=source,
        uri=uri,
        run_id=run_id or mlmodel.get("run_id"),
        flavor=flavor,
        columns=columns,
        signature=signature,
        metrics=metrics,
        predictor=predictor,
        parser=parser,
    )
    try:
        out = model.predict(example)
    except Exception as exc:
        raise ModelLoadError(f"warm-up prediction of {uri} failed: {exc}") from exc
    if out.shape != (len(example),) or not np.all(np.isfinite(out)):
        raise ModelLoadError(f"warm-up prediction of {uri} returned {out!r}")
    return model


def load_from_path(model_path: Path, *, max_batch: int) -> LoadedModel:
    """Load a mounted model directory; `metadata.json` inside it or beside it names the version.

    metadata.json: {"name": "credit-risk", "version": "4", "metrics": {"roc_auc": 0.78}, ...}
    """
    model_dir = model_path.resolve()
    meta: dict[str, Any] = {}
    for candidate in (model_dir / "metadata.json", model_dir.parent / "metadata.json"):
        if candidate.is_file():
            try:
                meta = json.loads(candidate.read_text())
            except ValueError as exc:
                raise ModelLoadError(f"{candidate} is not valid JSON: {exc}") from exc
            break
    metrics = {k: float(v) for k, v in (meta.get("metrics") or {}).items() if _is_number(v)}
    return load_model_dir(
        model_dir,
        name=str(meta.get("name", model_dir.name)),
        version=str(meta.get("version", "path")),
        alias=None,
        source="path",
        uri=str(model_dir),
        run_id=meta.get("run_id"),
        metrics=metrics,
        max_batch=max_batch,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Registry:
    """The narrow slice of the MLflow registry that serving needs (mlflow-skinny only)."""

    def __init__(self, tracking_uri: str, timeout: float = 5.0) -> None:
        # Fail fast instead of MLflow's default of minutes of retries: the watcher retries anyway.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, timeout))))
        import mlflow
        from mlflow import MlflowClient

        # models:/ downloads resolve through the process-wide registry URI: make it this one.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def alias_version(self, name: str, alias: str) -> tuple[str, str | None]:
        """(version, run_id) the alias points at."""
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except Exception as exc:
            raise RegistryUnavailableError(
                f"registry {self.tracking_uri}: cannot resolve {name}@{alias}: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from exc
        return str(mv.version), mv.run_id

    def load(
        self, name: str, alias: str, version: str, run_id: str | None, max_batch: int
    ) -> LoadedModel:
        """Download `models:/name/version` and load it; the alias is recorded, not re-resolved."""
        import mlflow.artifacts

        metrics: dict[str, float] = {}
        if run_id:
            try:
                metrics = dict(self.client.get_run(run_id).data.metrics)
            except Exception:  # metrics are decoration; a missing run must not block serving
                metrics = {}
        uri = f"models:/{name}/{version}"
        with tempfile.TemporaryDirectory(prefix="serve-model-") as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            except Exception as exc:
                raise RegistryUnavailableError(f"cannot download {uri}: {exc}") from exc
            return load_model_dir(
                Path(local),
                name=name,
                version=version,
                alias=alias,
                source="registry",
                uri=f"models:/{name}@{alias}",
                run_id=run_id,
                metrics=metrics,
                max_batch=max_batch,
            )


class ModelStore:
    """Holds the current model; readers take the reference once per request."""

    def __init__(self) -> None:
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[LoadedModel], None]] = []

    @property
    def current(self) -> LoadedModel | None:
        """The model to use for one request (read once, then keep the local reference)."""
        return self._current

    def on_swap(self, listener: Callable[[LoadedModel], None]) -> None:
        """Call `listener(new_model)` after every swap (metrics, OpenAPI cache)."""
        self._listeners.append(listener)

    def swap(self, model: LoadedModel) -> LoadedModel | None:
        """Make `model` current in one reference assignment; returns the previous one."""
        with self._lock:
            previous, self._current = self._current, model
        for listener in self._listeners:
            listener(model)
        return previous
