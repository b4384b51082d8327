"""Data validation names every failing check; good data passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.errors import DataValidationError
from ml.features import ALL_COLUMNS
from ml.validation import run_checks, validate


def good_frame(rows: int = 1200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data: dict[str, np.ndarray] = {}
    for column in ALL_COLUMNS:
        if column.name == "ID":
            data[column.name] = np.arange(1, rows + 1)
        elif column.codes is not None:
            data[column.name] = rng.choice(sorted(column.codes), size=rows)
        elif column.dtype == "int":
            data[column.name] = rng.integers(int(column.minimum or 0), 60, size=rows)
        else:
            data[column.name] = rng.uniform(0, 50_000, size=rows).round(0)
    return pd.DataFrame(data)


def failing(frame: pd.DataFrame) -> set[str]:
    return {r.name for r in run_checks(frame) if not r.passed}


def test_good_frame_passes_every_check() -> None:
    assert failing(good_frame()) == set()
    assert validate(good_frame())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda f: f.drop(columns=["AGE"]), "columns.missing"),
        (lambda f: f.assign(EXTRA=1), "columns.unexpected"),
        (lambda f: f.assign(SEX=f["SEX"].astype(str)), "dtype.SEX"),
        (lambda f: f.assign(AGE=f["AGE"] + 0.5), "dtype.AGE"),
        (lambda f: f.assign(MARRIAGE=np.where(f.index == 3, 9, f["MARRIAGE"])), "codes.MARRIAGE"),
        (lambda f: f.assign(AGE=np.where(f.index == 0, 150, f["AGE"])), "range.AGE"),
        (
            lambda f: f.assign(PAY_AMT1=np.where(f.index == 0, -5.0, f["PAY_AMT1"])),
            "range.PAY_AMT1",
        ),
        (
            lambda f: f.assign(LIMIT_BAL=np.where(f.index == 0, np.nan, f["LIMIT_BAL"])),
            "missing_values.LIMIT_BAL",
        ),
        (lambda f: f.assign(ID=1), "duplicates.id"),
        (
            lambda f: pd.concat([f, f.iloc[:100].assign(ID=f["ID"].iloc[:100] + 10_000)]),
            "duplicates.rows",
        ),
        (lambda f: f.iloc[:10], "rows.minimum"),
        (lambda f: f.assign(target=2), "codes.target"),
    ],
)
def test_each_broken_frame_names_its_check(mutate, expected: str) -> None:
    with pytest.raises(DataValidationError) as caught:
        validate(mutate(good_frame()))
    assert any(failure.startswith(expected + ":") for failure in caught.value.failures)
    assert expected in str(caught.value)


def test_all_failures_are_reported_together() -> None:
    frame = good_frame().drop(columns=["AGE"]).assign(SEX=7)
    assert {"columns.missing", "codes.SEX"} <= failing(frame)
