"""The model contract: which inputs a model version may be asked to score, and why.

A `ModelContract` lists every input feature with its dtype, whether it is required, and either its
allowed codes or its [minimum, maximum], each bound with its reason. The credit-risk table is
defined once (`ml.features.CONTRACT`); training validates its data with it and logs it with every
version as `contract.json` at the run root (docs/contracts.md#model-contract-file). Serving,
batch scoring and the promotion gates read the contract of the version they handle, so a new
version can change it.

Checks are vectorised over a float matrix (rows by features, contract order): a handful of numpy
operations whatever the number of features, because serving runs them on every request.
This module needs only numpy: the serve image imports it. It is over 500 lines because the
feature, the contract, its JSON form and the vectorised checks are one definition read together;
which contract a version is held to is `ml.version_contract`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ml.errors import ContractError

FORMAT = 1
CONTRACT_FILE = "contract.json"

Dtype = Literal["int", "float"]
DTYPES: tuple[Dtype, ...] = ("int", "float")
# MLflow signature column types that hold each contract dtype.
SIGNATURE_TYPES: dict[Dtype, frozenset[str]] = {
    "int": frozenset({"long", "integer"}),
    "float": frozenset({"double", "float"}),
}
ViolationKind = Literal["missing", "integer", "code", "range"]
_F64_MAX = float(np.finfo(np.float64).max)
_F32_MAX = float(np.finfo(np.float32).max)


def _number(value: float) -> str:
    """12.0 → "12", 1e7 → "10,000,000", 0.5 → "0.5": how a person writes a bound or a value."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "infinity" if value > 0 else "-infinity"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:g}"


@dataclass(frozen=True)
class Feature:
    """One input feature: its dtype, whether it may be missing, its allowed values and why.

    Either `codes` (an integer feature's allowed values, with optional `meanings`) or a range
    (`minimum` and/or `maximum`, inclusive) bounds it; `reason` says where the bound comes from
    (the data's documentation, a physical limit), so a reviewer can judge it.
    """

    name: str
    dtype: Dtype
    reason: str
    minimum: float | None = None
    maximum: float | None = None
    codes: tuple[int, ...] | None = None
    meanings: Mapping[int, str] = field(default_factory=dict)
    required: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not self.name:
            problems.append("a feature has no name")
        if self.dtype not in DTYPES:
            problems.append(f"dtype {self.dtype!r} is not one of {list(DTYPES)}")
        if not self.reason.strip():
            problems.append("no reason given for its bounds")
        if self.codes is not None:
            if self.dtype != "int":
                problems.append("codes need dtype int")
            if not self.codes or any(
                isinstance(c, bool) or not isinstance(c, int) for c in self.codes
            ):
                problems.append(f"codes must be a non-empty list of integers, got {self.codes!r}")
            if self.minimum is not None or self.maximum is not None:
                problems.append("give codes or a range, not both")
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not low <= high:
            problems.append(f"minimum {self.minimum} is above maximum {self.maximum}")
        if problems:
            raise ContractError(f"feature {self.name or '?'}: " + "; ".join(problems))

    @property
    def low(self) -> float:
        """The smallest allowed value (-inf when unbounded)."""
        if self.codes is not None:
            return float(min(self.codes))
        return -math.inf if self.minimum is None else float(self.minimum)

    @property
    def high(self) -> float:
        """The largest allowed value (+inf when unbounded)."""
        if self.codes is not None:
            return float(max(self.codes))
        return math.inf if self.maximum is None else float(self.maximum)

    @property
    def contiguous_codes(self) -> bool:
        """True when the codes are every integer from their minimum to their maximum, so the
        range check and the integer check together are the membership check."""
        return self.codes is not None and len(set(self.codes)) == self.high - self.low + 1

    def allowed(self) -> str:
        """What is allowed, in words: 'one of 1 (male), 2 (female)' or '18 to 100'."""
        kind = "an integer" if self.dtype == "int" else "a number"
        if self.codes is not None:
            # Runs of three or more consecutive codes that mean the same collapse: "1..8 (late)".
            shown: list[str] = []
            ordered = sorted(self.codes)
            i = 0
            while i < len(ordered):
                j = i
                meaning = self.meanings.get(ordered[i])
                while (
                    j + 1 < len(ordered)
                    and ordered[j + 1] == ordered[j] + 1
                    and self.meanings.get(ordered[j + 1]) == meaning
                ):
                    j += 1
                codes = [str(c) for c in ordered[i : j + 1]]
                label = f"{codes[0]}..{codes[-1]}" if len(codes) >= 3 else None
                for text in [label] if label else codes:
                    shown.append(f"{text} ({meaning})" if meaning else text)
                i = j + 1
            return "one of " + ", ".join(shown)
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {_number(self.minimum)} to {_number(self.maximum)}"
        if self.minimum is not None:
            return f"{kind} of at least {_number(self.minimum)}"
        if self.maximum is not None:
            return f"{kind} of at most {_number(self.maximum)}"
        return kind

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see `ModelContract.to_dict`)."""
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "required": self.required}
        if self.codes is not None:
            out["codes"] = sorted(self.codes)
            if self.meanings:
                out["meanings"] = {str(k): v for k, v in sorted(self.meanings.items())}
        else:
            out["range"] = [self.minimum, self.maximum]
        out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Feature:
        """Parse one entry of `features`; raises ContractError naming what is wrong."""
        if not isinstance(data, dict):
            raise ContractError(f"a feature must be an object, got {type(data).__name__}")
        name = data.get("name")
        unknown = set(data) - {"name", "dtype", "required", "codes", "meanings", "range", "reason"}
        if unknown:
            raise ContractError(f"feature {name}: unknown keys {sorted(unknown)}")
        if not isinstance(name, str):
            raise ContractError(f"a feature has no string name: {data!r:.80}")
        required = data.get("required", True)
        if not isinstance(required, bool):
            raise ContractError(f"feature {name}: required must be true or false")
        minimum = maximum = None
        if "range" in data:
            bounds = data["range"]
            if (
                not isinstance(bounds, list)
                or len(bounds) != 2
                or any(b is not None and not _is_number(b) for b in bounds)
            ):
                raise ContractError(f"feature {name}: range must be [min or null, max or null]")
            minimum, maximum = bounds
        codes = data.get("codes")
        meanings = data.get("meanings") or {}
        try:
            parsed_meanings = {int(k): str(v) for k, v in dict(meanings).items()}
        except (TypeError, ValueError) as exc:
            raise ContractError(f"feature {name}: meanings must map codes to text") from exc
        return cls(
            name=name,
            dtype=data.get("dtype"),  # type: ignore[arg-type]  # checked in __post_init__
            reason=str(data.get("reason", "")),
            minimum=minimum,
            maximum=maximum,
            codes=tuple(codes) if isinstance(codes, list) else codes,
            meanings=parsed_meanings,
            required=required,
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Violation:
    """One value that breaks the contract: where it is, what is wrong and what is allowed."""

    row: int
    feature: Feature
    value: float
    kind: ViolationKind

    @property
    def problem(self) -> str:
        """The value's problem in a few words."""
        value = _number(self.value)
        if self.kind == "missing":
            return "missing (required)"
        if not math.isfinite(self.value):
            return f"{value} is not a finite number"
        if self.kind == "integer":
            return f"{value} is not an integer"
        if self.kind == "code":
            return f"{value} is not an allowed code"
        if self.value < self.feature.low:
            return f"{value} is below the minimum {_number(self.feature.low)}"
        return f"{value} is above the maximum {_number(self.feature.high)}"

    def message(self) -> str:
        """'AGE: 150 is above the maximum 100 (allowed: an integer from 18 to 100)'."""
        return f"{self.feature.name}: {self.problem} (allowed: {self.feature.allowed()})"


@dataclass(frozen=True)
class Violations:
    """The result of one check: `bad[i, j]` is True where row i breaks feature j's bound."""

    contract: ModelContract
    matrix: np.ndarray
    bad: np.ndarray | None  # None: every value is in contract (nothing was allocated)

    def __bool__(self) -> bool:
        return self.bad is not None

    @property
    def count(self) -> int:
        """How many values break the contract."""
        return 0 if self.bad is None else int(np.count_nonzero(self.bad))

    @property
    def rows(self) -> np.ndarray:
        """Per row: True when the row breaks the contract anywhere."""
        if self.bad is None:
            return np.zeros(len(self.matrix), dtype=bool)
        return np.asarray(self.bad.any(axis=1))

    def first(self, limit: int) -> list[Violation]:
        """Up to `limit` violations, row by row, in feature order within a row."""
        if self.bad is None:
            return []
        cells = np.argwhere(self.bad)[:limit]
        return [self._violation(int(r), int(c)) for r, c in cells]

    def by_row(self, rows: Sequence[int] | np.ndarray | None = None) -> dict[int, list[Violation]]:
        """Violations grouped by row, for the given rows (default: every bad row)."""
        if self.bad is None:
            return {}
        chosen = np.flatnonzero(self.rows) if rows is None else np.asarray(rows)
        out: dict[int, list[Violation]] = {}
        for r in chosen:
            cols = np.flatnonzero(self.bad[int(r)])
            if cols.size:
                out[int(r)] = [self._violation(int(r), int(c)) for c in cols]
        return out

    def per_feature(self) -> dict[str, dict[ViolationKind, list[float]]]:
        """The offending values by feature and kind (vectorised: a report on a whole training
        file costs a few passes over it)."""
        out: dict[str, dict[ViolationKind, list[float]]] = {}
        if self.bad is None:
            return out
        for col in np.flatnonzero(self.bad.any(axis=0)):
            feature = self.contract.features[int(col)]
            values = self.matrix[self.bad[:, col], col].astype(np.float64)
            missing = np.isnan(values)
            fraction = ~missing & np.isfinite(values) & (values != np.floor(values))
            integer = fraction if feature.dtype == "int" else np.zeros_like(missing)
            rest = ~missing & ~integer
            kinds: dict[ViolationKind, list[float]] = {}
            for kind, mask in (
                ("missing", missing),
                ("integer", integer),
                ("code" if feature.codes is not None else "range", rest),
            ):
                if mask.any():
                    kinds[kind] = values[mask].tolist()  # type: ignore[index]
            out[feature.name] = kinds
        return out

    def _violation(self, row: int, col: int) -> Violation:
        feature = self.contract.features[col]
        value = float(self.matrix[row, col])
        kind: ViolationKind
        if math.isnan(value):
            kind = "missing"
        elif feature.dtype == "int" and math.isfinite(value) and value != math.floor(value):
            kind = "integer"
        elif feature.codes is not None:
            kind = "code"
        else:
            kind = "range"
        return Violation(row=row, feature=feature, value=value, kind=kind)


@dataclass(frozen=True)
class _Bounds:
    """The contract as arrays, built once per contract: what `check_matrix` compares against."""

    low: np.ndarray  # (features,) float64; the largest finite number when unbounded
    high: np.ndarray
    low32: np.ndarray  # the same in float32, for float32 matrices (serving): no upcast
    high32: np.ndarray
    not_int: np.ndarray  # (features,) True for float features: they skip the integer test
    any_int: bool
    optional: np.ndarray | None  # (features,) True where a missing value is allowed
    gaps: tuple[tuple[int, np.ndarray], ...]  # (column, allowed codes) for non-contiguous codes


@dataclass(frozen=True)
class ModelContract:
    """The inputs a model version accepts, in its feature order."""

    features: tuple[Feature, ...]
    description: str = ""

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if not names:
            raise ContractError("a contract needs at least one feature")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ContractError(f"features listed twice: {duplicated}")

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in contract order."""
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        """The feature called `name` (KeyError when there is none)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """The JSON form logged as `contract.json`::

        {"format": 1, "description": "...", "features": [
          {"name": "AGE", "dtype": "int", "required": true, "range": [18, 100], "reason": "..."},
          {"name": "SEX", "dtype": "int", "required": true, "codes": [1, 2],
           "meanings": {"1": "male", "2": "female"}, "reason": "..."}, ...]}
        """
        return {
            "format": FORMAT,
            "description": self.description,
            "features": [f.to_dict() for f in self.features],
        }

    def to_json(self) -> str:
        """Stable, indented JSON of `to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> ModelContract:
        """Parse the JSON form; raises ContractError naming what is wrong."""
        if not isinstance(data, dict):
            raise ContractError("a contract must be a JSON object")
        if data.get("format") != FORMAT:
            raise ContractError(
                f"contract format {data.get('format')!r} is not {FORMAT}; upgrade this tool"
            )
        features = data.get("features")
        if not isinstance(features, list):
            raise ContractError("a contract needs a list of features")
        return cls(
            features=tuple(Feature.from_dict(f) for f in features),
            description=str(data.get("description", "")),
        )

    def replaced(self, *features: Feature) -> ModelContract:
        """The same contract with these features in place of those of the same name (a new
        version's narrower bound, say); KeyError for a name the contract does not have."""
        by_name = {f.name: f for f in features}
        for name in by_name:
            self.feature(name)
        return ModelContract(tuple(by_name.get(f.name, f) for f in self.features), self.description)

    def reordered(self, names: Sequence[str]) -> ModelContract:
        """The same contract in `names` order (a model's signature order); ContractError when
        the names are not exactly the contract's."""
        missing = [n for n in names if n not in self.names]
        extra = [n for n in self.names if n not in names]
        if missing or extra or len(names) != len(self.names):
            parts = []
            if missing:
                parts.append(f"the model takes {missing}, which the contract does not cover")
            if extra:
                parts.append(f"the contract lists {extra}, which the model does not take")
            raise ContractError("; ".join(parts) or "duplicate names in the model's inputs")
        if tuple(names) == self.names:
            return self
        return ModelContract(tuple(self.feature(n) for n in names), self.description)

    def signature_mismatches(self, columns: Mapping[str, str]) -> list[str]:
        """Where a model signature ({name: MLflow type}) disagrees with this contract."""
        problems = []
        for name in columns.keys() - set(self.names):
            problems.append(f"{name} is in the signature but not in the contract")
        for f in self.features:
            mlflow_type = columns.get(f.name)
            if mlflow_type is None:
                problems.append(f"{f.name} is in the contract but not in the signature")
            elif mlflow_type not in SIGNATURE_TYPES[f.dtype]:
                problems.append(
                    f"{f.name} is {f.dtype} in the contract, {mlflow_type} in the model"
                )
        return sorted(problems)

    # ------------------------------------------------------------------ checks
    @cached_property
    def _bounds(self) -> _Bounds:
        # Unbounded sides stop at the largest finite number: infinity is never an input.
        low = np.array([max(f.low, -_F64_MAX) for f in self.features], dtype=np.float64)
        high = np.array([min(f.high, _F64_MAX) for f in self.features], dtype=np.float64)
        not_int = np.array([f.dtype != "int" for f in self.features])
        optional = np.array([not f.required for f in self.features])
        gaps = tuple(
            (i, np.array(sorted(f.codes), dtype=np.float64))
            for i, f in enumerate(self.features)
            if f.codes is not None and not f.contiguous_codes
        )
        return _Bounds(
            low=low,
            high=high,
            low32=np.maximum(low, -_F32_MAX).astype(np.float32),
            high32=np.minimum(high, _F32_MAX).astype(np.float32),
            not_int=not_int,
            any_int=not bool(not_int.all()),
            optional=optional if optional.any() else None,
            gaps=gaps,
        )

    def check_matrix(self, matrix: np.ndarray) -> Violations:
        """Check a (rows, features) float matrix in contract order; NaN means missing.

        About ten numpy operations on the whole matrix, whatever the feature count: the cost of
        a one-record request stays a few microseconds.
        """
        b = self._bounds
        if matrix.ndim != 2 or matrix.shape[1] != len(self.features):
            raise ContractError(
                f"expected a matrix of {len(self.features)} columns, got shape {matrix.shape}"
            )
        if matrix.dtype == np.float32:
            # Compared as the model sees them: float32 rounding is monotonic, so a value within
            # a bound stays within the float32 bound (nothing in contract is refused).
            ok = (matrix >= b.low32) & (matrix <= b.high32)
        else:
            ok = (matrix >= b.low) & (matrix <= b.high)
        if b.any_int:
            ok &= (matrix == np.floor(matrix)) | b.not_int
        for col, codes in b.gaps:
            ok[:, col] &= np.isin(matrix[:, col], codes)
        if b.optional is not None:
            ok |= np.isnan(matrix) & b.optional
        if ok.all():
            return Violations(self, matrix, None)
        return Violations(self, matrix, ~ok)

    def check_frame(self, frame: Mapping[str, Any]) -> Violations:
        """Check named columns (a pandas DataFrame, a dict of arrays); the violations' rows are
        the frame's positions. ContractError naming the columns it lacks."""
        return self.check_matrix(self.matrix_from(frame))

    def matrix_from(self, columns: Mapping[str, Any], dtype: Any = np.float64) -> np.ndarray:
        """A (rows, features) matrix in contract order from named columns; ContractError naming
        the missing ones."""
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ContractError(f"missing columns {missing}")
        arrays = [np.asarray(columns[n], dtype=dtype) for n in self.names]
        return np.column_stack(arrays) if arrays else np.empty((0, 0), dtype=dtype)


def probe_rows(contract: ModelContract) -> np.ndarray:
    """Valid rows at the edges of every bound: for each feature, one row per allowed code, or
    one at its minimum and one at its maximum, the other features at their lowest valid value;
    then a row with every feature at its minimum and one with every feature at its maximum.

    A loadable model must score all of them to finite probabilities (the loadable gate); they
    are all in contract by construction (tests/unit/test_contract.py checks it).
    """

    def lowest(f: Feature) -> float:
        if f.codes is not None:
            return float(min(f.codes))
        if f.minimum is not None:
            return float(f.minimum)
        return 0.0 if f.maximum is None else min(0.0, float(f.maximum))

    def highest(f: Feature) -> float:
        if f.codes is not None:
            return float(max(f.codes))
        if f.maximum is not None:
            return float(f.maximum)
        return lowest(f)

    base = np.array([lowest(f) for f in contract.features], dtype=np.float64)
    rows = []
    for j, f in enumerate(contract.features):
        values = sorted(f.codes) if f.codes is not None else sorted({lowest(f), highest(f)})
        for v in values:
            row = base.copy()
            row[j] = v
            rows.append(row)
    rows.append(base)
    rows.append(np.array([highest(f) for f in contract.features], dtype=np.float64))
    return np.vstack(rows)


def load_contract(path: Path) -> ModelContract:
    """Read a `contract.json` file (or the one inside a directory)."""
    file = path / CONTRACT_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise ContractError(f"cannot read {file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ContractError(f"{file} is not valid JSON: {exc}") from exc
    try:
        return ModelContract.from_dict(data)
    except ContractError as exc:
        raise ContractError(f"{file}: {exc}") from exc
