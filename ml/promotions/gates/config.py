"""`config/gates.yaml`: the reviewed gates file, parsed into frozen models.

Defaults plus per-model overrides (a per-model key replaces the default's; inside `canary:` key
by key). Read strictly, as every config file is (`ml.config_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import ErrorDetails

from ml.config_file import load_yaml, validate
from ml.errors import ConfigError, SpecError
from ml.governance.fairness import GovernanceGates


class CanaryGates(BaseModel):
    """`canary:`: the candidate against production on a replay set (ml/promotions/canary.py).

    A per-model `canary:` overrides the defaults' key by key; `enabled: false` turns it off.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    replay: Literal["holdout", "logs"] = "holdout"
    logs: str | None = Field(
        default=None, description="serve's prediction log: file, folder or s3:// prefix"
    )
    window: str | None = Field(default=None, description="only the last 24h, 7d, ... of logs")
    max_rows: int = Field(default=20_000, ge=100)
    min_rows: int = Field(default=1_000, ge=1)
    seed: int = 0
    threshold: float | None = Field(default=None, ge=0, le=1)
    max_score_psi: float = Field(default=0.1, ge=0)
    max_approval_delta: float = Field(default=0.01, ge=0, le=1)
    max_flip_share: float = Field(default=0.02, ge=0, le=1)

    @model_validator(mode="after")
    def _logs_named(self) -> CanaryGates:
        if self.replay == "logs" and not self.logs:
            raise ValueError("replay: logs needs `logs:` (a file, a folder or s3://bucket/prefix)")
        if self.window is not None:
            from ml.monitoring.logs import parse_duration

            try:
                parse_duration(self.window)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None  # reported with the file and line
        return self


class ModelGates(BaseModel):
    """Gates for one model (or the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_tags: tuple[str, ...] | None = None
    floors: dict[str, float] | None = None
    ceilings: dict[str, float] | None = None
    max_regression: dict[str, float] | None = None
    allow_schema_change: bool | None = None
    servable_flavors: tuple[str, ...] | None = None
    canary: CanaryGates | None = None
    governance: GovernanceGates | None = None  # ml/governance/gates.py
    soak: str | None = Field(
        default=None,
        description="Minimum time a version runs verified in staging before production takes "
        "it (24h, 90m, 7d); checked against the staging apply record.",
    )

    @field_validator("soak")
    @classmethod
    def _soak_is_duration(cls, soak: str | None) -> str | None:
        if soak is not None:
            from ml.monitoring.logs import parse_duration

            try:
                parse_duration(soak)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return soak


class GatesFile(BaseModel):
    """`config/gates.yaml`: defaults plus per-model overrides (a per-model key replaces it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    defaults: ModelGates = ModelGates()
    models: dict[str, ModelGates] = {}

    def for_model(self, name: str) -> ModelGates:
        """Effective gates: per-model keys override the defaults key by key (inside `canary:`
        too, so a model can change one bound and keep the rest)."""
        override = self.models.get(name, ModelGates())
        merged = self.defaults.model_dump() | override.model_dump(exclude_none=True)
        if self.defaults.canary is not None and override.canary is not None:
            merged["canary"] = self.defaults.canary.model_dump() | override.canary.model_dump(
                exclude_unset=True
            )
        return ModelGates.model_validate(merged)


def load_gates(path: Path) -> GatesFile:
    """Parse the gates file; `SpecError` (a `ConfigError`) naming file:line otherwise."""
    root = load_yaml(
        path,
        missing=f"{path}:1: gates file not found (hint: run from the repo root or pass --gates)",
        error=SpecError,
    )
    return validate(GatesFile, root or {}, path, hint=_keys_hint, error=SpecError)


def _keys_hint(err: ErrorDetails) -> str:
    """The keys allowed where the error is: a canary's, governance's or a model's."""
    fields = CanaryGates.model_fields if "canary" in err["loc"] else ModelGates.model_fields
    if "governance" in err["loc"]:
        fields = GovernanceGates.model_fields
    return f"keys are {', '.join(fields)}"
