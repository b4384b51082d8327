"""Engine settings (`ML_PROMOTE_*`), kept apart from `MLSettings`: the engine owns them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PromotionSettings(BaseSettings):
    """Switches of the promotions engine."""

    model_config = SettingsConfigDict(env_prefix="ML_PROMOTE_", extra="ignore")

    stages: bool = Field(
        default=True,
        description="Mirror aliases to legacy stages (Staging/Production/Archived); "
        "turn off for registries that refuse stages.",
    )
    gates_file: Path = Field(default=Path("config/gates.yaml"), description="Reviewed gates.")
    workers: int = Field(
        default=4, ge=1, le=32, description="Models read and applied concurrently."
    )
    lease_seconds: float = Field(
        default=900, gt=0, description="How long an apply's lease lives if never released."
    )
    lease_settle: float = Field(
        default=0.2,
        ge=0,
        description="Seconds between writing the lease and reading it back (see records).",
    )
