"""The one scoring kernel: a version's contract check and its booster on a columnar batch.

Every path that scores calls it, so that a version scores identically wherever it runs:
- `mlops predict` (ml/batch.py): `ScoringKernel.score` on each chunk of the file;
- Spark (ml/spark/scoring.py): `ScoringKernel.score` on each Arrow batch of a partition, with
  the same `feature_chunk` conversion, so its probabilities are bitwise the local engine's;
- serving (serve/model_store.py): `ScoringKernel.predict` on the parsed body (the request parser
  has already enforced the contract, on its fast path or through `check`: see
  serve/request_parser.py), and `/predict/by-id` `check` then `predict` on the fetched vectors.

The predictor is the native booster path of serve/predictor.py (XGBoost's C API, a numpy tree
walk for a few records); the kernel owns the two things every path must do the same way: which
rows the contract lets through, and the float32 matrix the booster sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ml.contract import ModelContract, Violations
from ml.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

# A number as text: what a feature column of a text file must hold in every non-empty cell.
_NUMBER = r"^\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|infinity|nan)\s*$"


@dataclass(frozen=True)
class Chunk:
    """One batch's features as a float64 matrix, and its cells that were text but no number."""

    matrix: np.ndarray
    not_numbers: dict[int, list[str | None]]  # feature index → raw text of the whole column

    def text_errors(self) -> np.ndarray:
        """Per row: a feature cell holds text that is not a number."""
        bad = np.zeros(len(self.matrix), dtype=bool)
        for j, raw in self.not_numbers.items():
            bad |= np.isnan(self.matrix[:, j]) & np.array([r is not None for r in raw])
        return bad


def feature_chunk(batch: pa.RecordBatch, names: tuple[str, ...]) -> Chunk:
    """The feature columns as one float64 matrix; text columns (the slow path) are converted
    cell by cell in Arrow, and a cell that is not a number becomes NaN with its text kept.

    Raises:
        DataError: a feature column has a type that cannot be a number.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    not_numbers: dict[int, list[str | None]] = {}
    for j, name in enumerate(names):
        column = batch.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            text = pc.utf8_trim_whitespace(column)
            number = pc.fill_null(pc.match_substring_regex(text, _NUMBER, ignore_case=True), False)
            blank = pc.fill_null(pc.equal(pc.utf8_length(text), 0), True)
            wrong = pc.and_(pc.invert(number), pc.invert(blank))
            if pc.any(wrong).as_py():
                not_numbers[j] = pc.if_else(wrong, text, pa.scalar(None, pa.string())).to_pylist()
            column = pc.cast(pc.if_else(number, text, pa.scalar(None, pa.string())), pa.float64())
        elif not pa.types.is_floating(column.type):
            try:
                column = pc.cast(column, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataError(f"column {name} of type {column.type} is not numeric") from exc
        columns.append(column.to_numpy(zero_copy_only=False))
    return Chunk(np.column_stack(columns).astype(np.float64, copy=False), not_numbers)


@dataclass(frozen=True)
class Scored:
    """A batch through the kernel: which rows were scored, their probabilities, and why the
    others were not."""

    accepted: np.ndarray  # bool per input row
    probabilities: np.ndarray  # float64, one per accepted row, in input order
    violations: Violations  # the contract's findings on the whole batch

    @property
    def rejected(self) -> np.ndarray:
        """Per input row: out of contract, or a cell that is not a number."""
        return ~self.accepted


@dataclass(frozen=True)
class ScoringKernel:
    """A version's contract (in its column order) and its predictor."""

    contract: ModelContract
    predictor: Callable[[np.ndarray], np.ndarray]

    def check(self, matrix: np.ndarray) -> Violations:
        """The contract's vectorised check of a matrix in column order."""
        return self.contract.check_matrix(matrix)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities for rows already in contract: the booster sees them as contiguous
        float32 (a no-op for serving's parsed matrices, which are built so)."""
        return self.predictor(np.ascontiguousarray(matrix, dtype=np.float32))

    def score(self, chunk: Chunk, violations: Violations | None = None) -> Scored:
        """Check a chunk and score the rows in contract.

        Args:
            chunk: the batch's features (`feature_chunk`), in the contract's column order.
            violations: the contract's check of `chunk.matrix` when the caller ran it already
                (ml/batch.py checks the next chunk on a reader thread while this one scores).
        """
        screened = self.screen(chunk, violations)
        good = screened.accepted
        if good.all():
            probabilities = self.predict(chunk.matrix)
        elif good.any():
            probabilities = self.predict(chunk.matrix[good])
        else:
            probabilities = np.empty(0, dtype=np.float64)
        return Scored(good, probabilities, screened.violations)

    def screen(self, chunk: Chunk, violations: Violations | None = None) -> Scored:
        """The contract's verdict on a chunk without scoring it (no probabilities): what
        Spark's rejects pass needs."""
        found = violations if violations is not None else self.check(chunk.matrix)
        bad = found.rows
        if chunk.not_numbers:
            bad = bad | chunk.text_errors()
        return Scored(~bad, np.empty(0, dtype=np.float64), found)
