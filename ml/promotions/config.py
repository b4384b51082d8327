"""Engine settings (`ML_PROMOTE_*`), kept apart from `MLSettings`: the engine owns them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from ml.promotions.gates import VerdictCache


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
        default=900,
        gt=0,
        description="How long an apply's lease (per model and environment) lives if never "
        "released: a dead holder blocks its own environment at most this long (or until "
        "`mlops promote unlock`). It covers an apply's bounded waits: gates (canary), writes "
        "and verification take minutes at most.",
    )
    lease_settle: float = Field(
        default=0.2,
        ge=0,
        description="Seconds between writing the lease and reading it back (see records).",
    )
    verdict_cache: Path | None = Field(
        default=Path(".mlops/verdicts"),
        description="Folder where gate verdicts persist across validate, plan and apply "
        "(keyed by candidate, production, gates and replay data); empty: memory only.",
    )

    def cache(self) -> VerdictCache:
        """The verdict cache these settings name."""
        from ml.promotions.gates import VerdictCache

        folder = self.verdict_cache
        return VerdictCache(folder if folder is not None and str(folder) not in ("", ".") else None)
