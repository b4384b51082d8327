"""The reviewed training configuration (`config/train.yaml`), parsed strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ml.config_file import load_yaml, validate


class Candidates(BaseModel):
    """Hyperparameters per candidate, passed to the estimator as they are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    xgboost: dict[str, Any] = Field(default_factory=dict)
    logreg: dict[str, Any] = Field(default_factory=dict)


class SparkTraining(BaseModel):
    """Where the Spark backend fits (ml/spark/training.py).

    `master` is a Spark master URL (`local[2]` in tests); empty means the session spark-submit
    configured (an EMR Serverless job). `num_workers` is the number of XGBoost workers, one Spark
    task each: at most the executors' task slots, or the fit waits for slots that never come.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    master: str = "local[2]"
    num_workers: int = Field(default=2, ge=1, le=1024)


TrainingBackend = Literal["local", "spark"]


class TrainConfig(BaseModel):
    """Seed, holdout size, per-candidate hyperparameters and where the booster is fit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 42
    test_size: float = Field(default=0.2, gt=0.05, lt=0.5)
    candidates: Candidates = Field(default_factory=Candidates)
    # `local`: scikit-learn's XGBClassifier in this process; `spark`: SparkXGBClassifier on the
    # `spark` cluster. The logistic baseline always fits locally (it is the small comparison).
    backend: TrainingBackend = "local"
    spark: SparkTraining = Field(default_factory=SparkTraining)


def load_train_config(path: Path) -> TrainConfig:
    """Read and validate the training config (an empty file: every default); a `ConfigError`
    names the file, the line and the key otherwise."""
    root = load_yaml(
        path,
        missing=(
            f"training config not found: {path} (hint: run from the repository root or set "
            "ML_TRAIN_CONFIG)"
        ),
    )
    return validate(TrainConfig, root or {}, path, hint="see the comments in config/train.yaml")
