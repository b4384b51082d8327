"""The reviewed training configuration (`config/train.yaml`), parsed strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml.errors import ConfigError


class Candidates(BaseModel):
    """Hyperparameters per candidate, passed to the estimator as they are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    xgboost: dict[str, Any] = Field(default_factory=dict)
    logreg: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(BaseModel):
    """Seed, holdout size and per-candidate hyperparameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 42
    test_size: float = Field(default=0.2, gt=0.05, lt=0.5)
    candidates: Candidates = Field(default_factory=Candidates)


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
