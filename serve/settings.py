"""Settings of the `serve` deployable, read from `SERVE_` variables (and `MLFLOW_TRACKING_URI`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that mean "somebody forgot to set this"; refused outside development.
PLACEHOLDERS = frozenset({"changeme", "change-me", "changethis", "secret", "token", "xxx", ""})


class ServeSettings(BaseSettings):
    """What to serve, from where, and how the HTTP server runs.

    The registry is the source of truth: `models:/<name>/<model_version>` when a version is
    pinned (AWS tasks: the release's version), else `models:/<name>@<alias>`, polled for
    changes (compose, local); `model_path` is the fallback for a mounted MLflow model directory
    when no registry answers.
    """

    model_config = SettingsConfigDict(
        env_prefix="SERVE_", extra="ignore", populate_by_name=True, frozen=True
    )

    environment: Literal["development", "staging", "production"] = Field(
        default="development", description="Placeholders are refused outside development."
    )
    model_name: str = Field(default="credit-risk", description="Registered model name.")
    model_alias: str = Field(default="production", description="Alias to serve and follow.")
    model_version: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Pinned version: served instead of the alias, which is then never polled (what an "
            "ECS task definition sets, so a task serves exactly its release)."
        ),
    )
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "SERVE_TRACKING_URI"),
        description="MLflow tracking/registry URI; unset means MODEL_PATH only.",
    )
    poll_interval: float = Field(default=2.0, gt=0, description="Seconds between alias polls.")
    threshold: float = Field(default=0.5, ge=0, le=1, description="Decline at or above this PD.")
    max_batch: int = Field(default=1000, ge=1, description="Most records in one request.")
    max_body_bytes: int = Field(default=2_000_000, ge=1024, description="Largest request body.")
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token required on /predict when set."
    )
    model_path: Path | None = Field(
        default=None, description="Mounted MLflow model directory (MLmodel + metadata.json)."
    )
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes.")
    scoring_threads: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Threads that score requests of 48+ records off the event loop (one XGBoost thread "
            "each); default: this worker's share of the CPUs less the event loop's, at least 1."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Bind address.")
    port: int = Field(default=8000, ge=0, le=65535, description="Bind port.")
    git_commit: str = Field(default="unknown", description="Commit the image was built from.")
    image_tag: str = Field(default="unknown", description="Image tag of this deployment.")
    tcp_nodelay: bool = Field(
        default=True, description="Set TCP_NODELAY on accepted sockets (uvicorn#3149)."
    )
    log_predictions: bool = Field(default=True, description="One JSON log line per prediction.")
    registry_timeout: float = Field(
        default=5.0, gt=0, description="HTTP timeout of one registry call, seconds."
    )
    load_retry_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds before a version that failed to load is tried again.",
    )
    features_redis_url: str | None = Field(
        default=None,
        description=(
            "Redis of the online feature store (redis:// or rediss:// for TLS); set, it turns "
            "on POST /predict/by-id. Needs the `features` extra (redis-py)."
        ),
    )
    features_redis_auth_token: SecretStr | None = Field(
        default=None, description="Redis AUTH token (ElastiCache: from Secrets Manager)."
    )
    features_set: str | None = Field(
        default=None, description="Feature set (key namespace) to read; default: model_name."
    )
    features_timeout: float = Field(
        default=0.5, gt=0, description="Seconds one Redis call may take before by-id gives 503."
    )
    drain_seconds: int = Field(
        default=8,
        ge=1,
        description=(
            "On SIGTERM, how long in-flight requests may take to finish before the process exits "
            "anyway. Keep it below the orchestrator's grace period (docker stop: 10 s, ECS "
            "stopTimeout: 30 s by default)."
        ),
    )

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> ServeSettings:
        if self.environment == "development":
            return self
        if self.api_token is not None and (
            self.api_token.get_secret_value().strip().lower() in PLACEHOLDERS
        ):
            raise ValueError(
                f"SERVE_API_TOKEN is a placeholder; set a real secret in {self.environment}"
            )
        token = self.features_redis_auth_token
        if token is not None and token.get_secret_value().strip().lower() in PLACEHOLDERS:
            raise ValueError(
                "SERVE_FEATURES_REDIS_AUTH_TOKEN is a placeholder; set the real token in "
                f"{self.environment}"
            )
        if self.tracking_uri is None and self.model_path is None:
            raise ValueError(
                "set MLFLOW_TRACKING_URI or SERVE_MODEL_PATH: nothing to serve from in "
                f"{self.environment}"
            )
        return self

    def follows(self) -> str:
        """What this process serves from the registry, in words (/metadata, /health)."""
        if self.model_version is not None:
            return f"{self.model_name} version {self.model_version} (pinned)"
        return f"{self.model_name}@{self.model_alias}"

    def scoring_thread_count(self) -> int:
        """`scoring_threads`, or this worker's share of the CPUs the process may run on, less
        one for its event loop (2 CPUs, 1 worker: 1 thread, the best of 1, 2 and 3 measured in
        docs/performance.md)."""
        if self.scoring_threads is not None:
            return self.scoring_threads
        return max(1, len(os.sched_getaffinity(0)) // self.workers - 1)

    def secrets(self) -> set[str]:
        """Values that must never leave the process: the tracking URI's password, the API token."""
        from serve.redaction import uri_secrets

        found = uri_secrets(self.tracking_uri)
        if self.api_token is not None:
            found.add(self.api_token.get_secret_value())
        found |= uri_secrets(self.features_redis_url)
        if self.features_redis_auth_token is not None:
            found.add(self.features_redis_auth_token.get_secret_value())
        return found

    def redacted(self) -> dict[str, Any]:
        """The configuration as shown by /metadata: secrets and URI passwords hidden."""
        data = self.model_dump(mode="json")
        data["api_token"] = "**********" if self.api_token is not None else None
        if self.tracking_uri:
            data["tracking_uri"] = redact_uri(self.tracking_uri)
        if self.features_redis_url:
            data["features_redis_url"] = redact_uri(self.features_redis_url)
        data["features_redis_auth_token"] = (
            "**********" if self.features_redis_auth_token is not None else None
        )
        return data


def redact_uri(uri: str) -> str:
    """Hide the password (or token) of `scheme://user:password@host/...`."""
    parts = urlsplit(uri)
    if not parts.password and not (parts.username and "@" in parts.netloc):
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password else f"***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
