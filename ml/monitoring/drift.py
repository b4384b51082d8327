"""The two jobs on the engine: prediction drift over serving logs, and the training-data gate.

Each job reads its inputs, runs `engine.compare`, and writes two files into its output folder
before anything else can fail: the Evidently HTML report and the JSON summary. Side effects that
report on the job (Pushgateway, notifications) are the caller's choice and never change its
verdict; the CLI turns a breach into exit 15 (`MonitoringBreach`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.errors import ConfigError, DataError
from ml.monitoring.config import MonitoringConfig
from ml.monitoring.engine import Comparison, compare
from ml.monitoring.logs import MODEL, VERSION, Window, read_predictions

if TYPE_CHECKING:
    import pandas as pd

DRIFT_SUMMARY = "drift-summary.json"
DRIFT_REPORT = "drift-report.html"
DATA_CHECK_SUMMARY = "data-check-summary.json"
DATA_CHECK_REPORT = "data-check-report.html"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DriftRequest:
    """What `mlops monitor drift` was asked to compare."""

    logs: str
    tracking_uri: str
    out_dir: Path
    config: MonitoringConfig
    window: Window = field(default_factory=Window)
    model: str | None = None
    version: str | None = None
    reference: str | None = None  # a file instead of the version's logged reference


def _pick(frame: pd.DataFrame, column: str, wanted: str | None, what: str) -> tuple[str, dict]:
    counts = {str(k): int(v) for k, v in frame[column].value_counts().items() if v}
    if wanted is None:
        return max(counts, key=lambda k: counts[k]), counts
    if wanted not in counts:
        seen = ", ".join(f"{k} ({v} records)" for k, v in sorted(counts.items())) or "none"
        raise DataError(f"no predictions of {what} {wanted} in the logs; seen: {seen}")
    return wanted, counts


def _only(frame: pd.DataFrame, column: str, value: str) -> pd.DataFrame:
    """Rows whose `column` is `value`; the frame itself (no copy) when that is every row."""
    mask = frame[column] == value
    return frame if bool(mask.all()) else frame[mask]


def _reference_for(request: DriftRequest, model: str, version: str) -> pd.DataFrame:
    from ml.monitoring.reference import load_reference, read_frame

    if request.reference is not None:
        return read_frame(request.reference)
    if not version.isdigit():
        raise DataError(
            f"logged model version {version!r} is not a registry version (served from "
            "SERVE_MODEL_PATH?): pass --reference PATH"
        )
    return load_reference(request.tracking_uri, model, int(version))


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write the summary JSON (sorted keys, so two runs diff cleanly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def run_drift(request: DriftRequest) -> Comparison:
    """Compare the logged predictions of one version with its reference; write report + summary.

    The version is `request.version`, else the one that served the most records in the window
    (the summary lists every version seen).

    Raises:
        DataError: no readable predictions, too many malformed lines, too few rows, no reference.
        RegistryError: the version is not in the registry, or the registry cannot be read.
    """
    frame, stats = read_predictions(
        request.logs, request.window, request.config.logs.max_malformed_share
    )
    model, models = _pick(frame, MODEL, request.model, "model")
    frame = _only(frame, MODEL, model)
    version, versions = _pick(frame, VERSION, request.version, "version")
    current = _only(frame, VERSION, version)
    reference = _reference_for(request, model, version)
    comparison = compare(
        current,
        reference,
        thresholds=request.config.drift,
        config=request.config,
        report=request.out_dir / DRIFT_REPORT,
        kind="drift",
    )
    summary = comparison.summary
    summary["model"] = model
    summary["version"] = version
    summary["versions_seen"] = versions
    summary["models_seen"] = models
    summary["window"] = {
        "start": _iso(request.window.start),
        "end": _iso(request.window.end),
        "first": _iso(float(current["ts"].min())),
        "last": _iso(float(current["ts"].max())),
    }
    summary["logs"] = {"location": request.logs, **stats.as_dict()}
    summary["reference_source"] = request.reference or f"models:/{model}/{version}"
    write_summary(request.out_dir / DRIFT_SUMMARY, summary)
    return comparison


def _load_side(location: str, tracking_uri: str) -> pd.DataFrame:
    """A file (path, https://, s3://) or a version's reference (`models:/NAME/N`, `@ALIAS`)."""
    from ml.monitoring.reference import load_reference, read_frame

    if not location.startswith("models:/"):
        return read_frame(location)
    spec = location.removeprefix("models:/")
    from ml.registry import Registry

    if "@" in spec:
        name, alias = spec.split("@", 1)
        info = Registry(tracking_uri).get_by_alias(name, alias)
        if info is None:
            raise DataError(f"{location}: alias {alias!r} of {name} is not set")
        return load_reference(tracking_uri, name, info.version)
    name, _, number = spec.partition("/")
    if not number.isdigit():
        raise ConfigError(f"{location}: use models:/NAME/VERSION or models:/NAME@ALIAS")
    return load_reference(tracking_uri, name, int(number))


def run_data_check(
    current: str, reference: str, *, tracking_uri: str, out_dir: Path, config: MonitoringConfig
) -> Comparison:
    """The gate before training: a new data set against a reference, same engine and report.

    Raises:
        DataError: a side is unreadable, lacks features, or has too few rows.
        RegistryError: a `models:/` reference is not in the registry.
    """
    current_frame = _load_side(current, tracking_uri)
    reference_frame = _load_side(reference, tracking_uri)
    comparison = compare(
        current_frame,
        reference_frame,
        thresholds=config.data_check,
        config=config,
        report=out_dir / DATA_CHECK_REPORT,
        kind="data_check",
    )
    summary = comparison.summary
    summary["current_source"] = current
    summary["reference_source"] = reference
    write_summary(out_dir / DATA_CHECK_SUMMARY, summary)
    return comparison
