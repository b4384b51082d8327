"""The reviewed training configuration (`config/train.yaml`), parsed strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml.errors import ConfigError


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
    """Read and validate the training config, naming the file in any error."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"training config not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
