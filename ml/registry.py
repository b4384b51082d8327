"""The one place that talks to MLflow's tracking and model registry.

Everything else in `ml` works on the small value types here, so tests can drive the engine against
a real store and the rest of the code never handles MLflow entities or REST errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException

from ml.errors import RegistryError

_READY_TIMEOUT_S = 120


@dataclass(frozen=True)
class VersionInfo:
    """What the engine needs to know about one registered version."""

    name: str
    version: int
    status: str
    stage: str
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created_ms: int = 0


def _version_info(mv: ModelVersion) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=int(mv.version),
        status=str(mv.status),
        stage=str(mv.current_stage or "None"),
        run_id=mv.run_id or None,
        source=str(mv.source),
        tags=dict(mv.tags or {}),
        aliases=tuple(mv.aliases or ()),
        created_ms=int(mv.creation_timestamp or 0),
    )


def _not_found(exc: MlflowException) -> bool:
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


@contextmanager
def registry_errors(what: str) -> Iterator[None]:
    """Turn MLflow and connection failures into a `RegistryError` naming the operation."""
    try:
        yield
    except RegistryError:
        raise
    except (MlflowException, RestException, OSError) as exc:
        raise RegistryError(f"{what}: {exc}") from exc


@dataclass(frozen=True)
class ModelState:
    """A registered model in one read: its aliases, model-level tags and every version."""

    name: str
    aliases: dict[str, int]
    tags: dict[str, str]
    versions: dict[int, VersionInfo]

    def holder(self, alias: str) -> VersionInfo | None:
        """The version an alias points at, or None when the alias is unset or dangling."""
        number = self.aliases.get(alias)
        return None if number is None else self.versions.get(number)


class Registry:
    """A narrow adapter over `MlflowClient` for one tracking/registry URI."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        # A finished run's metrics and a version's MLmodel never change: read each once.
        self._metrics_cache: dict[str, dict[str, float]] = {}
        self._mlmodel_cache: dict[tuple[str, int], dict[str, Any]] = {}

    def ensure_experiment(self, name: str, artifact_location: str | None) -> str:
        """Return the experiment id, creating the experiment on first use."""
        with registry_errors(f"experiment {name}"):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                return str(experiment.experiment_id)
            return str(self.client.create_experiment(name, artifact_location=artifact_location))

    def register(
        self, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str
    ) -> VersionInfo:
        """Register `model_uri` as a new version of `name` and wait until it is READY."""
        with registry_errors(f"register {name}"):
            try:
                self.client.get_registered_model(name)
            except MlflowException as exc:
                if not _not_found(exc):
                    raise
                self.client.create_registered_model(
                    name, description="Probability of default; promoted via promotions.yaml."
                )
            # A logged model (`models:/m-...`) must be named by id too, or a tracking server
            # refuses the source (MLflow 3 checks that model_id contains it).
            model_id = (
                model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else None
            )
            mv = self.client.create_model_version(
                name,
                source=model_uri,
                run_id=run_id,
                tags=tags,
                description=description,
                model_id=model_id,
            )
            deadline = time.monotonic() + _READY_TIMEOUT_S
            while str(mv.status) == "PENDING_REGISTRATION" and time.monotonic() < deadline:
                time.sleep(0.5)
                mv = self.client.get_model_version(name, mv.version)
            if str(mv.status) != "READY":
                raise RegistryError(f"{name} version {mv.version} is {mv.status}, not READY")
            return _version_info(mv)

    def get_version(self, name: str, version: int) -> VersionInfo | None:
        """One version, or None when it does not exist."""
        with registry_errors(f"get {name} v{version}"):
            try:
                return _version_info(self.client.get_model_version(name, str(version)))
            except MlflowException as exc:
                if _not_found(exc):
                    return None
                raise

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of a model, oldest first; empty when the model is not registered."""
        with registry_errors(f"list versions of {name}"):
            found = self.client.search_model_versions(f"name = '{name}'")
            return sorted((_version_info(mv) for mv in found), key=lambda v: v.version)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """Metrics logged on a training run."""
        with registry_errors(f"run {run_id}"):
            return dict(self.client.get_run(run_id).data.metrics)

    def run_metrics_cached(self, run_id: str) -> dict[str, float]:
        """`run_metrics`, cached per adapter: a finished run's metrics do not change."""
        cache = self._metrics_cache
        if run_id not in cache:
            cache[run_id] = self.run_metrics(run_id)
        return cache[run_id]

    def model_state(self, name: str) -> ModelState | None:
        """Aliases, tags and versions of `name` in two REST calls; None when not registered."""
        with registry_errors(f"read {name}"):
            try:
                rm = self.client.get_registered_model(name)
            except MlflowException as exc:
                if _not_found(exc):
                    return None
                raise
            found = self.client.search_model_versions(f"name = '{name}'")
            return ModelState(
                name=name,
                aliases={k: int(v) for k, v in (rm.aliases or {}).items()},
                tags=dict(rm.tags or {}),
                versions={int(mv.version): _version_info(mv) for mv in found},
            )

    def _direct(self) -> Any:
        """MlflowClient's registry client, for calls made right after `model_state`.

        `MlflowClient` re-reads the registered model before every registry write to refuse
        prompts (`_raise_if_prompt`): one hidden GET per write. The engine has just read the model
        (and refuses prompts itself), so it writes through the registry client and halves the
        round trips of an apply. Private API of MLflow 3.x; pinned in pyproject.
        """
        return self.client._get_registry_client()

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point `alias` at `version` (moves it off any other version)."""
        with registry_errors(f"set alias {name}@{alias} -> v{version}"):
            self._direct().set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove `alias` from the model."""
        with registry_errors(f"delete alias {name}@{alias}"):
            self.client.delete_registered_model_alias(name, alias)

    def get_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        """The version `alias` points at, or None when unset."""
        with registry_errors(f"get {name}@{alias}"):
            try:
                return _version_info(self.client.get_model_version_by_alias(name, alias))
            except MlflowException as exc:
                if _not_found(exc) or exc.error_code == "INVALID_PARAMETER_VALUE":
                    return None
                raise

    def transition_stage(self, name: str, version: int, stage: str, archive_existing: bool) -> None:
        """Legacy stage mirror; `archive_existing` archives the others in that stage."""
        with registry_errors(f"stage {name} v{version} -> {stage}"):
            self._direct().transition_model_version_stage(
                name, str(version), stage, archive_existing_versions=archive_existing
            )

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set one tag on a version."""
        with registry_errors(f"tag {name} v{version} {key}"):
            self._direct().set_model_version_tag(name, str(version), key, value)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        """Set one tag on the registered model."""
        with registry_errors(f"tag {name} {key}"):
            self._direct().set_registered_model_tag(name, key, value)

    def mlmodel(self, name: str, version: int) -> dict[str, Any]:
        """A version's MLmodel file (flavors, signature), read once: artifacts are immutable.

        Two REST calls: the download URI, then the one file.
        """
        import tempfile

        import mlflow.artifacts
        import yaml

        key = (name, version)
        if key not in self._mlmodel_cache:
            with registry_errors(f"MLmodel of {name} v{version}"):
                root = self._direct().get_model_version_download_uri(name, str(version))
                with tempfile.TemporaryDirectory(prefix="mlmodel-") as tmp:
                    path = mlflow.artifacts.download_artifacts(
                        artifact_uri=f"{str(root).rstrip('/')}/MLmodel",
                        dst_path=tmp,
                        tracking_uri=self.tracking_uri,
                    )
                    with open(path, encoding="utf-8") as fh:
                        self._mlmodel_cache[key] = yaml.safe_load(fh) or {}
        return self._mlmodel_cache[key]

    def flavors(self, name: str, version: int) -> list[str]:
        """The flavors a version was logged in (e.g. xgboost, python_function)."""
        return sorted(self.mlmodel(name, version).get("flavors") or {})

    def signature_inputs(self, name: str, version: int) -> dict[str, str] | None:
        """Input column name → type of a version's logged signature; None when it has none."""
        inputs = (self.mlmodel(name, version).get("signature") or {}).get("inputs")
        if not inputs:
            return None
        cols = json.loads(inputs)
        return {str(c.get("name", i)): str(c.get("type")) for i, c in enumerate(cols)}

    # ------------------------------------------------------------------------------------------
    # Serving and batch scoring (issue 15): what loading a version needs. The alias lookup is
    # `get_by_alias`, a run's metrics `run_metrics`. Every call names its URIs explicitly, so
    # nothing here depends on MLflow's process-wide tracking or registry URI.

    def download_version(self, name: str, version: int, dst: Path) -> Path:
        """Download a version's model directory (MLmodel, booster, input example) into `dst`."""
        import mlflow.artifacts

        with registry_errors(f"download {name} v{version}"):
            root = self.client.get_model_version_download_uri(name, str(version))
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=str(root), dst_path=str(dst), tracking_uri=self.tracking_uri
            )
        return Path(local)

    def download_run_file(self, run_id: str, path: str, dst: Path) -> Path | None:
        """One file at the root of a run's artifacts, or None when the run has no such file
        (e.g. `contract.json` of a version logged before contracts existed)."""
        import mlflow.artifacts

        with registry_errors(f"run {run_id} artifact {path}"):
            if path not in {a.path for a in self.client.list_artifacts(run_id)}:
                return None
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(dst), tracking_uri=self.tracking_uri
            )
        return Path(local)
