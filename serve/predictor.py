"""A model directory → a predictor: the native booster path shared by serving and batch scoring.

Reads an MLflow model directory (MLmodel, signature, input example) and builds the fastest exact
predictor for its flavor: the XGBoost booster through its C API (serve/xgboost_inplace.py), with a
numpy tree walk for a few records (serve/tree_ensemble.py). Only numpy, yaml and xgboost: batch
scoring (`mlops predict`, ml/batch.py) and the loadable gate import it without the web stack.
Why each path exists, with the measurements: docs/performance.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from serve.errors import ModelLoadError
from serve.schemas import INT_TYPES, Column
from serve.tree_ensemble import compile_ensemble
from serve.xgboost_inplace import checked_inplace


class Predictor(Protocol):
    """Scores a float32 matrix whose columns are in signature order."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class BoosterPredictor:
    """The native XGBoost booster, called through its C API (else `inplace_predict`). Up to
    SMALL_BATCH finite rows take the numpy tree walk instead. Safe to call from several threads
    at once: serving scores big requests on scoring threads (serve/scoring.py).

    `nthread=1` for serving: OpenMP threads busy-wait on every core for a tiny prediction, and
    the scoring threads give the parallelism. Batch scoring passes every core, and
    `tree_walk=False`: its chunks are large, and compiling the walk costs ~0.5 s at load.
    """

    SMALL_BATCH = 12  # where the walk and the C API cost the same (docs/performance.md)

    def __init__(self, path: Path | bytes, nthread: int = 1, tree_walk: bool = True) -> None:
        import xgboost as xgb

        booster = xgb.Booster()
        # bytes: the booster file as Spark broadcasts it to its workers (ml/spark/scoring.py).
        booster.load_model(bytearray(path) if isinstance(path, bytes) else str(path))
        booster.set_param({"nthread": nthread})
        self.booster = booster
        self.ensemble = compile_ensemble(booster) if tree_walk else None
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
        from ml.adapters.mlflow_models import load_pyfunc

        self.model = load_pyfunc(path)
        self.columns = columns

    def __call__(self, x: np.ndarray) -> np.ndarray:
        data: dict[str, Any] = {}
        for i, col in enumerate(self.columns):
            values = x[:, i]
            data[col.name] = values.astype(np.int64) if col.type in INT_TYPES else values
        out = np.asarray(self.model.predict(data), dtype=np.float64)
        return out[:, -1] if out.ndim == 2 else out


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """The MLmodel file of a model directory, as a mapping."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ModelLoadError(f"{model_dir.name} has no MLmodel file; not an MLflow model directory")
    data = yaml.safe_load(mlmodel.read_text())
    if not isinstance(data, dict):
        raise ModelLoadError("MLmodel is not a mapping")
    return data


def signature_of(mlmodel: dict[str, Any]) -> tuple[tuple[Column, ...], dict[str, Any]]:
    """(input columns in order, the signature as /metadata shows it)."""
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


def input_example(
    model_dir: Path, mlmodel: dict[str, Any], columns: tuple[Column, ...]
) -> list[dict[str, Any]]:
    """The logged input example as records, or one record of zeros when there is none."""
    info = mlmodel.get("saved_input_example_info") or {}
    path = model_dir / str(info.get("artifact_path", "input_example.json"))
    if path.is_file():
        raw = json.loads(path.read_text())
        if isinstance(raw, dict) and "columns" in raw and "data" in raw:
            return [dict(zip(raw["columns"], row, strict=True)) for row in raw["data"]]
        if isinstance(raw, dict) and "dataframe_split" in raw:
            split = raw["dataframe_split"]
            return [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):
            return [dict(r) for r in raw]
    return [{c.name: (0 if c.type in INT_TYPES else 0.0) for c in columns}]


def load_predictor(
    model_dir: Path,
    mlmodel: dict[str, Any],
    columns: tuple[Column, ...],
    nthread: int = 1,
    tree_walk: bool = True,
) -> tuple[Predictor, str]:
    """(predictor, flavor) for a model directory; ModelLoadError naming the failure.
    `nthread` and `tree_walk` as in `BoosterPredictor`: serving keeps the defaults."""
    flavors = mlmodel.get("flavors") or {}
    try:
        if "xgboost" in flavors:
            data = model_dir / str(flavors["xgboost"].get("data", "model.ubj"))
            if not data.is_file():
                raise ModelLoadError(f"the booster file {data.name} is missing from the artifacts")
            return BoosterPredictor(data, nthread=nthread, tree_walk=tree_walk), "xgboost"
        if "python_function" in flavors:
            return PyfuncPredictor(model_dir, columns), "python_function"
    except ModelLoadError:
        raise
    except Exception as exc:  # a corrupt file or an unknown type must not kill the old model
        raise ModelLoadError(
            f"cannot load the {sorted(flavors)} model: {type(exc).__name__}: {exc}"
        ) from exc
    raise ModelLoadError(f"no servable flavor in {sorted(flavors)}")
