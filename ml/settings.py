"""Settings of the `ml` deployable (CLI, training, promotions), read from `ML_` variables.

The one embedded default lives here: with no MLFLOW_TRACKING_URI every verb (`mlops serve`
included) uses the SQLite store under ML_HOME (`resolved_tracking_uri`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA = "data/uci_credit_card.csv.gz"
# sha256 of the uncompressed CSV (data/PROVENANCE.md); ingest refuses anything else.
DEFAULT_DATA_SHA256 = "0311596a909804e7727c39c89659d1e7d4b0a0509a2c5e6019aa680ed0500847"


class MLSettings(BaseSettings):
    """Where the registry is, what the model is called and which data and config train it.

    With no `MLFLOW_TRACKING_URI`, everything stays inside the project: a SQLite store and an
    artifact folder under `.mlops/` (git-ignored), so a fresh clone needs no server.
    """

    model_config = SettingsConfigDict(env_prefix="ML_", extra="ignore")

    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "ML_TRACKING_URI"),
        description="MLflow tracking and registry URI; default: SQLite under `home`.",
    )
    home: Path = Field(default=Path(".mlops"), description="Local store for the embedded default.")
    model_name: str = Field(default="credit-risk", description="Registered model name.")
    experiment: str = Field(default="credit-risk", description="MLflow experiment for training.")
    data_source: str = Field(default=DEFAULT_DATA, description="Path, https:// URL or s3:// URI.")
    data_sha256: str | None = Field(
        default=DEFAULT_DATA_SHA256, description="Expected sha256 of the uncompressed CSV."
    )
    artifact_root: str | None = Field(
        default=None,
        description="Artifact root for new experiments on a direct database store "
        "(default: `home`/artifacts); a tracking server decides its own.",
    )
    train_config: Path = Field(
        default=Path("config/train.yaml"), description="Reviewed hyperparameters and split."
    )
    governance_config: Path = Field(
        default=Path("config/governance.yaml"),
        description="Reviewed protected attributes, reference groups and reason texts.",
    )

    def resolved_tracking_uri(self) -> str:
        """The tracking URI to use: the configured one, or the embedded SQLite store."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home.resolve() / 'mlflow.db').as_posix()}"

    def artifact_location(self) -> str | None:
        """Artifact root for new experiments, or None to let a tracking server choose."""
        if self.artifact_root:
            return self.artifact_root
        if self.resolved_tracking_uri().startswith(("http://", "https://", "databricks")):
            return None
        # A direct database store would otherwise put artifacts in ./mlruns of whatever cwd.
        return (self.home.resolve() / "artifacts").as_uri()
