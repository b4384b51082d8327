"""One comparison engine for the drift job and the data gate: current data against a reference.

Evidently (pinned in pyproject) computes the per-feature drift scores, the score's PSI and the
data-quality summary, and renders the HTML report. Counts that must be exact on every row
(missing values, values outside the contract, the approval rate) are plain numpy over all rows;
Evidently's statistical tests run on a deterministic sample of at most `sampling.max_rows` rows
per side, so a million logged predictions take seconds, not minutes (docs/monitoring.md).

`compare` is pure apart from writing the report: it returns a `Comparison` whose `summary` is the
JSON the CLI writes and whose `breaches` name each crossed threshold and the features behind it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.errors import DataError
from ml.monitoring.config import MonitoringConfig, Thresholds
from ml.monitoring.contract import FeatureSpec, feature_specs

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SCORE = "score"
APPROVED = "approved"
SUMMARY_SCHEMA = 1


@dataclass(frozen=True)
class Breach:
    """One crossed threshold: which check, the value, the limit, and the features behind it."""

    check: str
    value: float
    threshold: float
    features: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: `drift_share 0.30 > 0.20 (PAY_0, AGE, ...)`."""
        named = f" ({', '.join(self.features)})" if self.features else ""
        return f"{self.check} {self.value:.4g} > {self.threshold:.4g}{named}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "check": self.check,
            "value": self.value,
            "threshold": self.threshold,
            "features": list(self.features),
        }


@dataclass(frozen=True)
class Comparison:
    """What the engine found: the JSON summary and the breaches (empty means pass)."""

    summary: dict[str, Any]
    breaches: tuple[Breach, ...] = field(default_factory=tuple)

    @property
    def breached(self) -> bool:
        """True when any threshold was crossed."""
        return bool(self.breaches)


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()


def _quality(frame: pd.DataFrame, specs: tuple[FeatureSpec, ...]) -> dict[str, dict[str, Any]]:
    """Missing and out-of-contract counts per feature, over every row."""
    import numpy as np

    out: dict[str, dict[str, Any]] = {}
    rows = len(frame)
    for spec in specs:
        values = frame[spec.name].to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values)
        present = values[~missing]
        if spec.codes is not None:
            bad = ~np.isin(present, np.fromiter(spec.codes, dtype=np.float64))
        else:
            bad = np.zeros(present.shape, dtype=bool)
            if spec.minimum is not None:
                bad |= present < spec.minimum
            if spec.maximum is not None:
                bad |= present > spec.maximum
        out[spec.name] = {
            "missing": int(missing.sum()),
            "missing_share": float(missing.sum() / rows) if rows else 0.0,
            "out_of_range": int(bad.sum()),
            "out_of_range_share": float(bad.sum() / rows) if rows else 0.0,
            "allowed": spec.allowed(),
        }
    return out


def _typed(frame: pd.DataFrame, specs: tuple[FeatureSpec, ...], columns: list[str]) -> pd.DataFrame:
    """Numbers as float64; codes as Python ints (None when missing), as Evidently labels them."""
    import numpy as np
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    categorical = {s.name for s in specs if s.categorical}
    for name in columns:
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        if name in categorical:
            missing = np.isnan(values)
            codes = np.where(missing, 0, values).astype(np.int64).astype(object)
            codes[missing] = None
            out[name] = codes
        else:
            out[name] = values
    return out


def _evidently(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    specs: tuple[FeatureSpec, ...],
    thresholds: Thresholds,
    with_score: bool,
    report: Path | None,
) -> dict[str, float]:
    """Run the Evidently report; return drift scores by column (features, and `score` as PSI)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import (
        DuplicatedRowCount,
        MissingValueCount,
        OutListValueCount,
        OutRangeValueCount,
        RowCount,
        ValueDrift,
    )
    from evidently.presets import DataDriftPreset

    names = [spec.name for spec in specs]
    numerical = [s.name for s in specs if not s.categorical] + ([SCORE] if with_score else [])
    definition = DataDefinition(
        numerical_columns=numerical, categorical_columns=[s.name for s in specs if s.categorical]
    )
    columns = names + ([SCORE] if with_score else [])
    metrics: list[Any] = [
        DataDriftPreset(
            columns=names,
            num_method=thresholds.numerical_method,
            cat_method=thresholds.categorical_method,
            threshold=thresholds.feature_threshold,
            per_column_threshold=dict(thresholds.feature_thresholds) or None,
            drift_share=thresholds.max_drift_share,
        ),
        # Data quality. Not DataSummaryPreset: its per-column statistics each render a plotly
        # distribution (~150 figures, over half of the run's time) for numbers nobody alerts on.
        RowCount(),
        DuplicatedRowCount(),
        *(MissingValueCount(column=name) for name in columns),
    ]
    for spec in specs:  # the contract, as Evidently metrics in the report
        if spec.codes is not None:
            metrics.append(OutListValueCount(column=spec.name, values=sorted(spec.codes)))
        elif spec.minimum is not None and spec.maximum is not None:
            metrics.append(
                OutRangeValueCount(column=spec.name, left=spec.minimum, right=spec.maximum)
            )
    if with_score:
        metrics.append(ValueDrift(column=SCORE, method="psi", threshold=thresholds.max_score_psi))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas deprecations inside Evidently
            snapshot = Report(metrics).run(
                Dataset.from_pandas(_typed(current, specs, columns), data_definition=definition),
                Dataset.from_pandas(_typed(reference, specs, columns), data_definition=definition),
            )
    except Exception as exc:  # unexpected data must end in one line, not a traceback
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(
            f"Evidently could not compare the data ({type(exc).__name__}: {first}); "
            "rerun with `mlops --traceback` for details"
        ) from exc
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(report))
    scores: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            scores[config["column"]] = float(metric["value"])
    missing = [c for c in columns if c not in scores]
    if missing:  # a changed result layout must fail loudly, never read as "no drift"
        raise RuntimeError(f"Evidently returned no drift score for {missing}")
    return scores


def _approval(
    current: pd.DataFrame, reference: pd.DataFrame, threshold: float
) -> dict[str, float] | None:
    """Approval rates: served decisions (or scores below threshold) vs the reference's scores."""
    if SCORE not in reference.columns or not (
        APPROVED in current.columns or SCORE in current.columns
    ):
        return None
    if APPROVED in current.columns:
        now = float(current[APPROVED].mean())
    else:
        now = float((current[SCORE] < threshold).mean())
    then = float((reference[SCORE] < threshold).mean())
    return {"current": now, "reference": then, "shift": now - then}


def score_psi(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
) -> float:
    """PSI of `current` scores against `reference` scores: the figure `compare` reports as the
    score's PSI, for anyone comparing two score columns without a whole report (the canary gate).

    One implementation: `compare` gets the score's PSI from Evidently's `ValueDrift(method="psi")`,
    which drops non-finite values and runs Evidently's registered "psi" stat test on the two
    columns; this runs that same stat test on the same cleaned columns, so the two cannot disagree
    (tests/unit/monitoring/test_engine.py checks they are equal).

    Raises:
        DataError: a side has no finite score.
    """
    import numpy as np
    import pandas as pd

    sides = []
    for side, values in (("reference", reference), ("current", current)):
        column = np.asarray(values, dtype=np.float64)
        column = column[np.isfinite(column)]
        if column.size == 0:
            raise DataError(f"no finite {side} score to compute a PSI from")
        sides.append(pd.Series(column, name=SCORE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas deprecations inside Evidently
        from evidently.legacy.calculations.stattests import psi_stat_test
        from evidently.legacy.core import ColumnType

        result = psi_stat_test(sides[0], sides[1], ColumnType.Numerical, None)
    return float(result.drift_score)


def compare(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    thresholds: Thresholds,
    config: MonitoringConfig,
    report: Path | None = None,
    kind: str = "drift",
) -> Comparison:
    """Compare `current` with `reference` on the contract's features (and `score` if both have it).

    Raises:
        DataError: a side lacks contract features, or has fewer than `thresholds.min_rows` rows.
    """
    started = time.perf_counter()
    specs = feature_specs()
    names = [spec.name for spec in specs]
    for side, frame in (("current", current), ("reference", reference)):
        absent = [n for n in names if n not in frame.columns]
        if absent:
            raise DataError(
                f"{side} data lacks contract features {', '.join(absent)}: pass data with the "
                f"{len(names)} model features"
            )
    if len(current) < thresholds.min_rows:
        raise DataError(
            f"only {len(current)} current rows; a verdict needs at least {thresholds.min_rows}: "
            f"widen the window, or lower {kind}.min_rows in config/monitoring.yaml"
        )
    if len(reference) < thresholds.min_rows:
        raise DataError(f"only {len(reference)} reference rows; need {thresholds.min_rows}")
    with_score = SCORE in current.columns and SCORE in reference.columns

    quality = _quality(current, specs)
    approval = _approval(current, reference, config.approval_threshold)
    sampling = config.sampling
    cur_sample = _sample(current, sampling.max_rows, sampling.seed)
    ref_sample = _sample(reference, sampling.max_rows, sampling.seed)
    scores = _evidently(cur_sample, ref_sample, specs, thresholds, with_score, report)

    features = {}
    for spec in specs:
        limit = thresholds.threshold_for(spec.name)
        features[spec.name] = {
            "score": scores[spec.name],
            "method": thresholds.categorical_method
            if spec.categorical
            else thresholds.numerical_method,
            "threshold": limit,
            "drifted": scores[spec.name] >= limit,
        }
    drifted = tuple(name for name, f in features.items() if f["drifted"])
    share = len(drifted) / len(specs)

    breaches: list[Breach] = []
    if share > thresholds.max_drift_share:
        breaches.append(Breach("drift_share", share, thresholds.max_drift_share, drifted))
    psi = scores.get(SCORE)
    if psi is not None and psi > thresholds.max_score_psi:
        breaches.append(Breach("score_psi", psi, thresholds.max_score_psi))
    if approval is not None and abs(approval["shift"]) > thresholds.max_approval_shift:
        breaches.append(
            Breach("approval_shift", abs(approval["shift"]), thresholds.max_approval_shift)
        )
    for check, key, limit in (
        ("missing_share", "missing_share", thresholds.max_missing_share),
        ("out_of_range_share", "out_of_range_share", thresholds.max_out_of_range_share),
    ):
        over = {n: q[key] for n, q in quality.items() if q[key] > limit}
        if over:
            breaches.append(Breach(check, max(over.values()), limit, tuple(over)))

    summary: dict[str, Any] = {
        "schema": SUMMARY_SCHEMA,
        "kind": kind,
        "status": "breach" if breaches else "ok",
        "breaches": [b.as_dict() for b in breaches],
        "rows": {
            "current": len(current),
            "reference": len(reference),
            "current_sampled": len(cur_sample),
            "reference_sampled": len(ref_sample),
        },
        "drift": {
            "share": share,
            "max_share": thresholds.max_drift_share,
            "drifted": list(drifted),
            "features": features,
        },
        "score": None
        if psi is None
        else {
            "psi": psi,
            "max_psi": thresholds.max_score_psi,
            "mean": float(current[SCORE].mean()),
            "reference_mean": float(reference[SCORE].mean()),
        },
        "approval_rate": None
        if approval is None
        else {**approval, "max_shift": thresholds.max_approval_shift},
        "quality": quality,
        "report": str(report) if report is not None else None,
        "seconds": round(time.perf_counter() - started, 3),
        "evidently": _evidently_version(),
    }
    return Comparison(summary, tuple(breaches))


def _evidently_version() -> str:
    from importlib.metadata import version

    return version("evidently")
