"""Data validation before training: every check has a name, and every failure is reported."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pandas.api import types as ptypes

from ml.errors import DataValidationError
from ml.features import ALL_COLUMNS, ID_COLUMN, Column

# The source data has 35 exact duplicate clients; more than this share means a broken extract.
MAX_DUPLICATE_ROW_FRACTION = 0.01
MIN_ROWS = 1_000


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one named check."""

    name: str
    passed: bool
    detail: str = ""


def _column_checks(frame: pd.DataFrame, column: Column) -> list[CheckResult]:
    series = frame[column.name]
    results = [
        CheckResult(
            f"missing_values.{column.name}",
            not series.isna().any(),
            f"{int(series.isna().sum())} missing values",
        )
    ]
    numeric = ptypes.is_integer_dtype(series) or (
        ptypes.is_float_dtype(series) and column.kind == "float"
    )
    if not ptypes.is_numeric_dtype(series) or ptypes.is_bool_dtype(series):
        results.append(
            CheckResult(
                f"dtype.{column.name}", False, f"expected {column.kind}, got {series.dtype}"
            )
        )
        return results
    if column.kind == "int" and ptypes.is_float_dtype(series):
        present = series.dropna()
        numeric = bool((present == present.round()).all())
    results.append(
        CheckResult(
            f"dtype.{column.name}", numeric, f"expected {column.kind}, got {series.dtype} values"
        )
    )
    present = series.dropna()
    if column.codes is not None:
        unknown = sorted({v.item() for v in present.unique()} - set(column.codes))
        results.append(
            CheckResult(
                f"codes.{column.name}",
                not unknown,
                f"unknown codes {unknown[:10]}; allowed {sorted(column.codes)}",
            )
        )
    if column.minimum is not None or column.maximum is not None:
        low = column.minimum if column.minimum is not None else float("-inf")
        high = column.maximum if column.maximum is not None else float("inf")
        outside = present[(present < low) | (present > high)]
        results.append(
            CheckResult(
                f"range.{column.name}",
                outside.empty,
                f"{len(outside)} values outside [{low}, {high}], e.g. {outside.head(3).tolist()}",
            )
        )
    return results


def run_checks(frame: pd.DataFrame) -> list[CheckResult]:
    """Run every check on a raw training frame and return all results, passed or not."""
    expected = [column.name for column in ALL_COLUMNS]
    missing = [name for name in expected if name not in frame.columns]
    unexpected = [name for name in frame.columns if name not in expected]
    results = [
        CheckResult("columns.missing", not missing, f"missing columns {missing}"),
        CheckResult("columns.unexpected", not unexpected, f"unexpected columns {unexpected}"),
        CheckResult("rows.minimum", len(frame) >= MIN_ROWS, f"{len(frame)} rows < {MIN_ROWS}"),
    ]
    for column in ALL_COLUMNS:
        if column.name in frame.columns:
            results.extend(_column_checks(frame, column))
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
