"""MLflow's run log and model format: what training writes into a run, and loading a logged model.

Training logs each candidate into its own run (`start_run` → `ActiveRun`: tags, parameters,
metrics, files, the training data as a dataset input, and the model in its flavour with a
signature); evaluation and serving's fallback load a model directory back. The tracking and
registry side (experiments, versions, aliases, downloads) is `ml.registry.Registry`, which also
points MLflow's fluent API at one registry for a block (`Registry.fluent()`): open runs inside it.

`mlflow` is imported inside the functions, never at module level: serving imports this module
only on its fallback path (a model without a native booster), and the CLI's fast path not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class Classifier(Protocol):
    """A loaded model that scores a frame (scikit-learn's interface)."""

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray: ...


class Pyfunc(Protocol):
    """A model loaded through MLflow's generic python_function flavour."""

    def predict(self, data: Any) -> Any: ...


@dataclass(frozen=True)
class Signature:
    """A model's input/output signature, inferred from an example and its output.

    `columns` is the input column name → MLflow type (`long`, `double`...), what the model
    contract is compared with; `native` is MLflow's own object, handed back to `log_*_model`.
    """

    columns: dict[str, str]
    native: Any


def infer_signature(example: pd.DataFrame, output: np.ndarray) -> Signature:
    """The signature MLflow infers from an input example and the model's output on it."""
    from mlflow.models import infer_signature as infer

    native = infer(example, output)
    return Signature({c["name"]: c["type"] for c in native.inputs.to_dict()}, native)


class ActiveRun:
    """The run `start_run` opened: everything logged here lands in it.

    Methods use MLflow's fluent calls, which write to the active run: call them inside the
    `with start_run(...)` block that returned this object.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set run tags."""
        import mlflow

        mlflow.set_tags(dict(tags))

    def log_params(self, params: Mapping[str, object]) -> None:
        """Log hyperparameters (MLflow keeps them as strings)."""
        import mlflow

        mlflow.log_params(dict(params))

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Log metrics (one step)."""
        import mlflow

        mlflow.log_metrics(dict(metrics))

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        """Write `data` as JSON/YAML (by `artifact_file`'s suffix) into the run's artefacts."""
        import mlflow

        mlflow.log_dict(dict(data), artifact_file)

    def log_file(self, path: Path, artifact_dir: str | None = None) -> None:
        """Copy a local file into the run's artefacts (under `artifact_dir`, else at the root)."""
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=artifact_dir)

    def log_dataset(
        self, frame: pd.DataFrame, *, source: str, target: str, name: str, digest: str | None
    ) -> None:
        """Log `frame` as the run's dataset input (context `training`), named by `source`."""
        import mlflow
        from mlflow.data.pandas_dataset import from_pandas

        dataset = from_pandas(frame, source=source, targets=target, name=name, digest=digest)
        mlflow.log_input(dataset, context="training")

    def log_model(
        self,
        model: Any,
        flavour: Literal["xgboost", "sklearn"],
        signature: Signature,
        example: pd.DataFrame,
        requirements: Sequence[str],
    ) -> str:
        """Log `model` as `model` in its flavour; returns its `models:/` URI.

        `xgboost`: the native booster format (`ubj`), loadable without scikit-learn or pickle.
        `sklearn`: a pipeline whose pyfunc scores with `predict_proba`.
        """
        import mlflow.sklearn
        import mlflow.xgboost

        common: dict[str, Any] = {
            "name": "model",
            "signature": signature.native,
            "input_example": example,
            "pip_requirements": list(requirements),
        }
        if flavour == "xgboost":
            info = mlflow.xgboost.log_model(model, model_format="ubj", **common)
        else:
            info = mlflow.sklearn.log_model(model, pyfunc_predict_fn="predict_proba", **common)
        return str(info.model_uri)


@contextmanager
def start_run(experiment_id: str, run_name: str) -> Iterator[ActiveRun]:
    """Open a run in `experiment_id` for the block (inside `Registry.fluent()`).

    The run ends FINISHED when the block ends, FAILED when it raises (MLflow's context manager).
    """
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        yield ActiveRun(run.info.run_id)


def load_classifier(model_dir: Path) -> Classifier:
    """A downloaded model directory, loaded in the flavour its MLmodel file names.

    XGBoost models come back as XGBoost's scikit-learn classifier, anything else through the
    scikit-learn flavour: both score with `predict_proba`.
    """
    import mlflow.sklearn
    import mlflow.xgboost
    import yaml

    flavors = (yaml.safe_load((model_dir / "MLmodel").read_text()) or {}).get("flavors") or {}
    if "xgboost" in flavors:
        return mlflow.xgboost.load_model(str(model_dir))
    return mlflow.sklearn.load_model(str(model_dir))


def load_pyfunc(model_dir: Path) -> Pyfunc:
    """A model directory loaded through MLflow's python_function flavour (needs pandas).

    Without MLflow's requirement check (`suppress_warnings`): it only logs, and it maps every
    installed distribution to its modules on first use, 0.4 s of CPU per thread that reaches it
    (the map is not guarded, so the gates' concurrent loads each build it), held against the
    GIL while a serving process reloads. The environment is pinned where it is built.
    """
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(model_dir), suppress_warnings=True)
