"""A features file (CSV or Parquet; a path, https:// or s3://) read in chunks: applicant ids,
the contract's features as a float64 matrix, and which rows the contract (or the id) refuses,
with the reason. Shared by `materialize` and the skew check, so both see the same rows.

The reading itself is batch scoring's (ml/batch.py): the same column checks, chunk sizes and
text-cell fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ml.batch import CHUNK_ROWS, feature_chunk, read_batches
from ml.contract import ModelContract, Violations
from ml.errors import DataError
from ml.feature_store.layout import ID_PATTERN

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Chunk:
    """One chunk of the file: positions, ids (None where invalid), features, refusals."""

    first_row: int
    ids: list[str | None]
    matrix: np.ndarray  # float64 (rows, features) in contract order; NaN where missing
    bad: np.ndarray  # bool per row: refused by the contract, the id, or a text cell
    violations: Violations
    not_numbers: dict[int, list[str | None]]
    id_problems: dict[int, str]

    def reasons(self, names: tuple[str, ...]) -> list[str]:
        """Why each refused row was refused, in row order."""
        found = self.violations.by_row(np.flatnonzero(self.violations.rows))
        out = []
        for i in np.flatnonzero(self.bad).tolist():
            parts = []
            if i in self.id_problems:
                parts.append(self.id_problems[i])
            texts = {j: raw[i] for j, raw in self.not_numbers.items() if raw[i] is not None}
            parts += [f"{names[j]}: {str(t)[:40]!r} is not a number" for j, t in texts.items()]
            parts += [
                v.message() for v in found.get(i, []) if names.index(v.feature.name) not in texts
            ]
            out.append("; ".join(parts))
        return out


def _ids(column: pa.Array) -> tuple[list[str | None], dict[int, str]]:
    """Applicant ids as text, and the rows whose id cannot be a key (missing, fractional, too
    long, characters other than letters, digits, '_', '.', '-')."""
    import pyarrow as pa
    import pyarrow.compute as pc

    problems: dict[int, str] = {}
    if pa.types.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False)
        whole = np.isfinite(values) & (values == np.floor(values))
        ids: list[str | None] = [
            str(int(v)) if ok else None for v, ok in zip(values.tolist(), whole, strict=True)
        ]
    elif pa.types.is_integer(column.type):
        ids = [None if v is None else str(v) for v in column.to_pylist()]
    else:
        text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
        ids = list(text.to_pylist())
    for i, value in enumerate(ids):
        if value is None or not ID_PATTERN.match(value):
            problems[i] = (
                "the id is missing or not a whole number"
                if value is None
                else f"id {value[:40]!r} is not 1-64 letters, digits, '_', '.' or '-'"
            )
            ids[i] = None
    return ids, problems


def is_text_cell_error(exc: BaseException) -> bool:
    """True when pyarrow stopped because a CSV feature cell is not a number: read the file again
    with `numeric=False`, so that only the rows with such cells are refused."""
    import pyarrow as pa

    return isinstance(exc, pa.ArrowInvalid) and "conversion error" in str(exc).lower()


def read(
    path: Path,
    contract: ModelContract,
    id_column: str,
    *,
    numeric: bool = True,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Chunk]:
    """The file in checked chunks. CSV feature columns are read as numbers (`numeric`); when a
    cell is not one, pyarrow raises mid-stream (`is_text_cell_error`) and the caller starts
    again with `numeric=False`, a slower pass that reads them as text."""
    names = contract.names
    batches, has_id = read_batches(path, names, id_column, chunk_rows, numeric)
    if not has_id:
        raise DataError(
            f"{path.name} has no {id_column!r} column: the feature store keys every vector by "
            "the applicant's id (name the column with --id-column)"
        )
    row = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        features = feature_chunk(batch, names)
        violations = contract.check_matrix(features.matrix)
        ids, id_problems = _ids(batch.column(id_column))
        bad = violations.rows.copy()
        if features.not_numbers:
            bad |= features.text_errors()
        if id_problems:
            bad[list(id_problems)] = True
        yield Chunk(row, ids, features.matrix, bad, violations, features.not_numbers, id_problems)
        row += batch.num_rows
