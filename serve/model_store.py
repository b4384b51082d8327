"""Load a model version (from the registry by alias, or a mounted directory) with its contract,
and hold the current one.

The current model is an immutable `LoadedModel`; a swap replaces the reference in one assignment,
so a request that already holds the old object finishes on it. Registry access goes through the
one MLflow adapter, `ml.registry.Registry`.
"""

from __future__ import annotations

import functools
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.contract import CONTRACT_FILE, ModelContract, probe_rows
from ml.errors import ContractError, RegistryError
from ml.scoring import ScoringKernel
from ml.version_contract import contract_for
from serve.errors import ModelLoadError, RegistryUnavailableError
from serve.predictor import Predictor, input_example, load_predictor, read_mlmodel, signature_of
from serve.request_parser import RequestParser
from serve.schemas import Column

if TYPE_CHECKING:
    from ml.governance.config import Governance
    from ml.registry import Registry


@dataclass(frozen=True)
class LoadedModel:
    """One loaded, warmed model version and everything /metadata tells about it."""

    name: str
    version: str
    alias: str | None
    source: str  # "registry" or "path"
    uri: str
    run_id: str | None
    flavor: str
    columns: tuple[Column, ...]
    signature: dict[str, Any]
    metrics: dict[str, float]
    predictor: Predictor
    parser: RequestParser
    contract: ModelContract
    contract_source: str  # "logged" (its own contract.json) or "built-in" (logged before them)
    # The reviewed reason texts and protected columns logged with the version (its
    # contract.json); None for a version logged before they travelled with it.
    governance: Governance | None = None
    loaded_at: float = field(default_factory=time.time)

    @functools.cached_property
    def kernel(self) -> ScoringKernel:
        """The scoring kernel (ml/scoring.py) batch scoring and Spark score this version with."""
        return ScoringKernel(self.contract, self.predictor)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities for a parsed matrix (`parser.parse(body).matrix`, whose contract the
        parser enforced): the kernel's `predict`."""
        return self.kernel.predict(matrix)


def load_model_dir(
    model_dir: Path,
    *,
    contract_file: Path | None,
    name: str,
    version: str,
    alias: str | None,
    source: str,
    uri: str,
    run_id: str | None,
    metrics: dict[str, float],
    max_batch: int,
) -> LoadedModel:
    """Load an MLflow model directory and its contract, build its request schema, and warm it on
    its input example and the contract's probe rows (every edge of every bound).

    Raises:
        ModelLoadError: a missing or corrupt file, a contract that does not fit the signature,
            an example out of contract, or a prediction that is not a finite probability.
    """
    mlmodel = read_mlmodel(model_dir)
    columns, signature = signature_of(mlmodel)
    try:
        contract, contract_source = contract_for(contract_file, {c.name: c.type for c in columns})
    except ContractError as exc:
        raise ModelLoadError(str(exc)) from exc
    from ml.errors import ConfigError
    from ml.governance.reasons import logged_governance

    try:
        governance = logged_governance(contract_file)
    except ConfigError as exc:
        raise ModelLoadError(str(exc)) from exc
    predictor, flavor = load_predictor(model_dir, mlmodel, columns)
    try:
        parser = RequestParser(columns, max_batch, contract)
        # Through the request parser, as a request would go; no more records than one may send.
        example = parser.parse_records(input_example(model_dir, mlmodel, columns)[:max_batch])
    except Exception as exc:  # an example out of contract, an unknown column type
        raise ModelLoadError(f"the input example does not parse: {exc}") from exc
    model = LoadedModel(
        name=name,
        version=version,
        alias=alias,
        source=source,
        uri=uri,
        run_id=run_id or mlmodel.get("run_id"),
        flavor=flavor,
        columns=columns,
        signature=signature,
        metrics=metrics,
        predictor=predictor,
        parser=parser,
        contract=contract,
        contract_source=contract_source,
        governance=governance,
    )
    warm_up(model, example.matrix)
    return model


def warm_up(model: LoadedModel, example: np.ndarray) -> None:
    """Score the example and the probe rows; each must be a finite probability."""
    for label, matrix in (
        ("the input example", example),
        ("the contract's probe rows", probe_rows(model.contract).astype(np.float32)),
    ):
        try:
            out = model.predict(matrix)
        except Exception as exc:
            raise ModelLoadError(f"scoring {label} failed: {type(exc).__name__}: {exc}") from exc
        if out.shape != (len(matrix),) or not np.all((out >= 0) & (out <= 1)):
            raise ModelLoadError(f"scoring {label} gave {out!r:.120}, not probabilities")


def load_from_path(model_path: Path, *, max_batch: int) -> LoadedModel:
    """Load a mounted model directory; `metadata.json` and `contract.json` inside it or beside
    it name the version and its contract.

    metadata.json: {"name": "credit-risk", "version": "4", "metrics": {"roc_auc": 0.78}, ...}
    """
    model_dir = model_path.resolve()
    meta: dict[str, Any] = {}
    metadata = _beside(model_dir, "metadata.json")
    if metadata is not None:
        try:
            meta = json.loads(metadata.read_text())
        except ValueError as exc:
            raise ModelLoadError(f"{metadata.name} is not valid JSON: {exc}") from exc
    metrics = {k: float(v) for k, v in (meta.get("metrics") or {}).items() if _is_number(v)}
    return load_model_dir(
        model_dir,
        contract_file=_beside(model_dir, CONTRACT_FILE),
        name=str(meta.get("name", model_dir.name)),
        version=str(meta.get("version", "path")),
        alias=None,
        source="path",
        uri=str(model_dir),
        run_id=meta.get("run_id"),
        metrics=metrics,
        max_batch=max_batch,
    )


def _beside(model_dir: Path, name: str) -> Path | None:
    for candidate in (model_dir / name, model_dir.parent / name):
        if candidate.is_file():
            return candidate
    return None


def load_from_registry(
    registry: Registry,
    name: str,
    alias: str | None,
    version: str,
    run_id: str | None,
    max_batch: int,
) -> LoadedModel:
    """Download version `version` and its run's contract, and load them; the alias is recorded,
    not re-resolved (None: the version was pinned, not reached through an alias).

    Raises:
        RegistryUnavailableError: a download failed (the watcher retries later).
        ModelLoadError: the artifacts are there but cannot be served.
    """
    metrics: dict[str, float] = {}
    if run_id:
        try:
            metrics = registry.run_metrics(run_id)
        except RegistryError:  # metrics are decoration; a missing run must not block serving
            metrics = {}
    with tempfile.TemporaryDirectory(prefix="serve-model-") as tmp:
        try:
            local = registry.download_version(name, int(version), Path(tmp) / "model")
            contract_file = (
                registry.download_run_file(run_id, CONTRACT_FILE, Path(tmp) / "run")
                if run_id
                else None
            )
        except RegistryError as exc:
            raise RegistryUnavailableError(str(exc)) from exc
        return load_model_dir(
            local,
            contract_file=contract_file,
            name=name,
            version=version,
            alias=alias,
            source="registry",
            uri=f"models:/{name}@{alias}" if alias is not None else f"models:/{name}/{version}",
            run_id=run_id,
            metrics=metrics,
            max_batch=max_batch,
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ModelStore:
    """Holds the current model; readers take the reference once per request."""

    def __init__(self) -> None:
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> LoadedModel | None:
        """The model to use for one request (read once, then keep the local reference)."""
        return self._current

    def swap(self, model: LoadedModel) -> LoadedModel | None:
        """Make `model` current in one reference assignment; returns the previous one."""
        with self._lock:
            previous, self._current = self._current, model
        return previous
