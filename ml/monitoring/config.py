"""The reviewed monitoring thresholds (`config/monitoring.yaml`), parsed strictly.

Thresholds are reviewed like the promotion gates: changing one is a pull request. The same file
feeds the drift job, the data gate and, through the figures the job pushes, the alert rules (the
rules compare a pushed value with its pushed threshold, so there is one number to change).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ml.config_file import load_yaml, validate

DEFAULT_CONFIG = Path("config/monitoring.yaml")

NumericalMethod = Literal["wasserstein", "ks", "psi", "kl_div", "jensenshannon", "ed", "hellinger"]
CategoricalMethod = Literal["jensenshannon", "chisquare", "psi", "kl_div", "hellinger", "TVD"]


class Thresholds(BaseModel):
    """When one comparison (production logs or a new training set) is a breach."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    numerical_method: NumericalMethod = "wasserstein"
    categorical_method: CategoricalMethod = "jensenshannon"
    feature_threshold: float = Field(default=0.1, gt=0)
    feature_thresholds: dict[str, float] = Field(default_factory=dict)
    max_drift_share: float = Field(default=0.2, ge=0, le=1)
    max_score_psi: float = Field(default=0.2, gt=0)
    max_approval_shift: float = Field(default=0.1, ge=0, le=1)
    max_missing_share: float = Field(default=0.0, ge=0, le=1)
    max_out_of_range_share: float = Field(default=0.0, ge=0, le=1)
    min_rows: int = Field(default=500, ge=1)

    def threshold_for(self, feature: str) -> float:
        """The drift threshold of one feature (its override, else the default)."""
        return self.feature_thresholds.get(feature, self.feature_threshold)


class LogsConfig(BaseModel):
    """How much of a prediction log may be unreadable before the job refuses it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_malformed_share: float = Field(default=0.01, ge=0, le=1)


class Sampling(BaseModel):
    """Statistical tests run on a deterministic sample of at most `max_rows` rows per side.

    Counts (rows, approval rate, missing and out-of-range values) always use every row.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_rows: int = Field(default=100_000, ge=1_000)
    seed: int = 0


class MonitoringConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval_threshold: float = Field(default=0.5, ge=0, le=1)
    drift: Thresholds = Field(default_factory=Thresholds)
    data_check: Thresholds = Field(default_factory=Thresholds)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    sampling: Sampling = Field(default_factory=Sampling)


def load_monitoring_config(path: Path = DEFAULT_CONFIG) -> MonitoringConfig:
    """Read and validate the thresholds (an empty file: every default); a `ConfigError` names
    the file, the line and the key otherwise."""
    root = load_yaml(
        path,
        missing=(
            f"monitoring config not found: {path} (pass --config or run from the repository root)"
        ),
    )
    return validate(
        MonitoringConfig, root or {}, path, hint="see the comments in config/monitoring.yaml"
    )
