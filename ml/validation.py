"""Data validation before training: every check has a name, and every failure is reported.

Codes, ranges, integers and missing values are the model contract's own vectorised check
(`ml.features.TRAINING_COLUMNS`: the contract's features plus the row id and the label), so the
data a version is trained on passes exactly the check its serving will apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pandas.api import types as ptypes

from ml.contract import ModelContract, ViolationKind
from ml.errors import DataValidationError
from ml.features import ID_COLUMN, TRAINING_COLUMNS

# The source data has 35 exact duplicate clients; more than this share means a broken extract.
MAX_DUPLICATE_ROW_FRACTION = 0.01
MIN_ROWS = 1_000
_EXAMPLES = 3


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one named check."""

    name: str
    passed: bool
    detail: str = ""


def _contract_checks(frame: pd.DataFrame) -> list[CheckResult]:
    """missing_values / dtype / codes / range checks per column, from one contract check."""
    results: list[CheckResult] = []
    numeric = []
    for feature in TRAINING_COLUMNS.features:
        if feature.name not in frame.columns:
            continue
        series = frame[feature.name]
        if not ptypes.is_numeric_dtype(series) or ptypes.is_bool_dtype(series):
            results.append(
                CheckResult(
                    f"dtype.{feature.name}", False, f"expected {feature.dtype}, got {series.dtype}"
                )
            )
            continue
        numeric.append(feature)
    if not numeric:
        return results
    present = ModelContract(tuple(numeric))
    found = present.check_frame({f.name: frame[f.name] for f in numeric}).per_feature()
    for feature in numeric:
        problems: dict[ViolationKind, list[float]] = found.get(feature.name, {})
        missing = problems.get("missing", [])
        results.append(
            CheckResult(
                f"missing_values.{feature.name}", not missing, f"{len(missing)} missing values"
            )
        )
        fractional = problems.get("integer", [])
        results.append(
            CheckResult(
                f"dtype.{feature.name}",
                not fractional,
                f"expected {feature.dtype}, got {len(fractional)} non-integer values, "
                f"e.g. {fractional[:_EXAMPLES]}",
            )
        )
        if feature.codes is not None:
            unknown = sorted({int(v) if v == int(v) else v for v in problems.get("code", [])})
            results.append(
                CheckResult(
                    f"codes.{feature.name}",
                    not unknown,
                    f"unknown codes {unknown[:10]}; allowed {sorted(feature.codes)}",
                )
            )
        else:
            outside = problems.get("range", [])
            results.append(
                CheckResult(
                    f"range.{feature.name}",
                    not outside,
                    f"{len(outside)} values outside {feature.allowed()}, "
                    f"e.g. {outside[:_EXAMPLES]}",
                )
            )
    return results


def run_checks(frame: pd.DataFrame) -> list[CheckResult]:
    """Run every check on a raw training frame and return all results, passed or not."""
    expected = list(TRAINING_COLUMNS.names)
    missing = [name for name in expected if name not in frame.columns]
    unexpected = [name for name in frame.columns if name not in expected]
    results = [
        CheckResult("columns.missing", not missing, f"missing columns {missing}"),
        CheckResult("columns.unexpected", not unexpected, f"unexpected columns {unexpected}"),
        CheckResult("rows.minimum", len(frame) >= MIN_ROWS, f"{len(frame)} rows < {MIN_ROWS}"),
    ]
    results.extend(_contract_checks(frame))
    if ID_COLUMN in frame.columns:
        duplicated_ids = int(frame[ID_COLUMN].duplicated().sum())
        results.append(
            CheckResult("duplicates.id", duplicated_ids == 0, f"{duplicated_ids} duplicated IDs")
        )
    features = [name for name in expected if name != ID_COLUMN and name in frame.columns]
    duplicated_rows = int(frame.duplicated(subset=features).sum()) if features else 0
    fraction = duplicated_rows / max(len(frame), 1)
    results.append(
        CheckResult(
            "duplicates.rows",
            fraction <= MAX_DUPLICATE_ROW_FRACTION,
            f"{duplicated_rows} duplicated rows "
            f"({fraction:.2%} > {MAX_DUPLICATE_ROW_FRACTION:.0%})",
        )
    )
    return results


def validate(frame: pd.DataFrame) -> list[CheckResult]:
    """Validate a training frame; raise with every failing check by name.

    Raises:
        DataValidationError: at least one check failed.
    """
    results = run_checks(frame)
    failures = [f"{result.name}: {result.detail}" for result in results if not result.passed]
    if failures:
        raise DataValidationError(failures)
    return results
