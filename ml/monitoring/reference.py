"""The reference sample: what a version saw in training, logged with it and read back by checks.

Training logs `reference/reference.parquet` in every candidate's run: the training split's
features and the model's own score on them (column `score`). The registered version points at its
run, so `mlops monitor drift` compares production with what *that* version saw, and the score's
distribution is the version's own, not a neighbour's.

Reading uses an explicit tracking URI (no process-wide MLflow state).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ml.errors import DataError, RegistryError
from ml.monitoring.contract import feature_specs

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ml.adapters.mlflow_models import ActiveRun

REFERENCE_DIR = "reference"
REFERENCE_FILE = "reference.parquet"
REFERENCE_PATH = f"{REFERENCE_DIR}/{REFERENCE_FILE}"
SCORE = "score"


def build_reference(features: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """The contract's features in contract order, plus the model's `score` on each row."""
    names = [spec.name for spec in feature_specs()]
    frame = features[names].reset_index(drop=True).copy()
    frame[SCORE] = scores.astype("float64")
    return frame


def log_reference(run: ActiveRun, features: pd.DataFrame, scores: np.ndarray) -> None:
    """Log the reference sample as `reference/reference.parquet` in `run`.

    Called by training inside each candidate's run (whichever wins, its version has one).
    """
    frame = build_reference(features, scores)
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        path = Path(tmp) / REFERENCE_FILE
        frame.to_parquet(path, index=False)
        run.log_file(path, REFERENCE_DIR)


def redact(uri: str) -> str:
    """A URI with any password replaced, fit for a message."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def load_reference(tracking_uri: str, model: str, version: int) -> pd.DataFrame:
    """The reference sample logged with `model` version `version`.

    Raises:
        RegistryError: the version does not exist, or the registry cannot be read.
        DataError: the version's run has no reference (trained before references were logged).
    """
    import pandas as pd

    from ml.registry import Registry

    registry = Registry(tracking_uri)
    info = registry.get_version(model, version)
    if info is None:
        raise RegistryError(
            f"{model} version {version} is not in the registry at {redact(tracking_uri)}: "
            "check --version / --model and MLFLOW_TRACKING_URI"
        )
    if not info.run_id:
        raise DataError(f"{model} version {version} has no training run, so no reference sample")
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        path = registry.download_run_file(info.run_id, REFERENCE_PATH, Path(tmp))
        if path is None:
            raise DataError(
                f"{model} version {version} (run {info.run_id}) has no {REFERENCE_PATH}; "
                "it was trained before reference samples were logged: retrain it, or pass "
                "--reference PATH"
            )
        return pd.read_parquet(path)


def read_frame(location: str) -> pd.DataFrame:
    """A CSV (plain or gzip) or parquet file from a path, https:// URL or s3:// URI.

    Raises:
        DataError: missing, unreadable, or neither CSV nor parquet.
    """
    import pandas as pd

    from ml.data import check_gzip, fetch

    with tempfile.TemporaryDirectory(prefix="frame-") as tmp:
        path = fetch(location, Path(tmp))
        check_gzip(path, location)  # pandas would say only "EOFError" for a cut-short file
        try:
            with path.open("rb") as fh:
                magic = fh.read(4)
            if magic == b"PAR1":
                return pd.read_parquet(path)
            return pd.read_csv(path, compression="infer" if magic[:2] != b"\x1f\x8b" else "gzip")
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise DataError(
                f"cannot read {location}: {exc} (expected a CSV, gzip CSV or parquet file)"
            ) from None
