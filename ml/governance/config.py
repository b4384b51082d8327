"""`config/governance.yaml`: protected attributes, whether each may be a model input, their
reference groups and the reviewed reason texts, parsed strictly.

Read strictly, as every config file is (`ml.config_file`). `Governance.where` names the line of
a key, so a gate that refuses a version can point the reviewer at the exact setting that
refused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ml.errors import SpecError

DEFAULT_PATH = Path("config/governance.yaml")


class ProtectedAttribute(BaseModel):
    """One protected column: may it be an input (and why), how it is grouped, its reference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: bool = False
    reason: str | None = Field(
        default=None, description="Why the column may be a model input (required with input)."
    )
    bands: tuple[float, ...] | None = Field(
        default=None, description="Ascending band edges for a numeric column (AGE)."
    )
    reference: int | str = Field(description="The group every other group is compared with.")

    @model_validator(mode="after")
    def _consistent(self) -> ProtectedAttribute:
        if self.input and not (self.reason and self.reason.strip()):
            raise ValueError("input: true needs a `reason` a reviewer signed off")
        if self.bands is not None:
            if not self.bands or list(self.bands) != sorted(set(self.bands)):
                raise ValueError("bands must be a non-empty list of ascending edges")
            if str(self.reference) not in band_labels(self.bands):
                raise ValueError(
                    f"reference {self.reference!r} is not a band; bands are "
                    f"{band_labels(self.bands)}"
                )
        elif isinstance(self.reference, str):
            raise ValueError("a coded column's reference is one of its codes (an integer)")
        return self

    def groups(self, values: np.ndarray) -> np.ndarray:
        """Each value's group label (its code as text, or its band)."""
        if self.bands is None:
            return np.asarray(values).astype(np.int64).astype(str)
        labels = np.array(band_labels(self.bands))
        return labels[np.searchsorted(np.asarray(self.bands), np.asarray(values), side="right")]

    @property
    def reference_label(self) -> str:
        """The reference group as `groups` labels it."""
        return str(self.reference)


def band_labels(edges: Sequence[float]) -> list[str]:
    """[25, 35] → ['<25', '25-34', '35+']: integer bands, as ages are written."""

    def show(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    labels = [f"<{show(edges[0])}"]
    for low, high in pairwise(edges):
        top = high - 1 if float(high).is_integer() and float(low).is_integer() else high
        labels.append(f"{show(low)}-{show(top)}")
    labels.append(f"{show(edges[-1])}+")
    return labels


class Reasons(BaseModel):
    """How many reasons a decision carries and the reviewed text of each feature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    top: int = Field(default=4, ge=1, le=10)
    method: Literal["saabas", "shap"] = Field(
        default="saabas",
        description="saabas: XGBoost's per-path contributions (approx_contribs); shap: TreeSHAP.",
    )
    decline_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Batch scoring explains rows scored at or above it."
    )
    texts: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _texts(self) -> Reasons:
        empty = sorted(k for k, v in self.texts.items() if not v or not v.strip())
        if empty:
            raise ValueError(f"empty reason texts for {empty}")
        return self


class Governance(BaseModel):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(1, ge=1, le=1)
    protected: dict[str, ProtectedAttribute] = Field(default_factory=dict)
    reasons: Reasons = Field(default_factory=Reasons)
    _path: Path = PrivateAttr(default=DEFAULT_PATH)
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _no_protected_reason(self) -> Governance:
        named = sorted(set(self.reasons.texts) & set(self.protected))
        if named:
            raise ValueError(f"reasons.texts names protected attributes {named}: never a reason")
        return self

    @property
    def path(self) -> Path:
        """The file it was read from."""
        return self._path

    def where(self, *keys: str) -> str:
        """`config/governance.yaml:14` for a key path such as ("protected", "SEX", "input")."""
        for n in range(len(keys), 0, -1):
            line = self._lines.get(tuple(keys[:n]))
            if line is not None:
                return f"{self._path}:{line}"
        return f"{self._path}:1"

    @property
    def excluded(self) -> tuple[str, ...]:
        """Protected columns that may not be model inputs."""
        return tuple(name for name, p in self.protected.items() if not p.input)

    def model_inputs(self, features: Sequence[str]) -> list[str]:
        """`features` without the protected columns that may not be inputs (order kept)."""
        excluded = set(self.excluded)
        return [f for f in features if f not in excluded]

    def missing_texts(self, inputs: Sequence[str]) -> list[str]:
        """Model inputs that could become a reason but have no reviewed text."""
        return [f for f in inputs if f not in self.protected and f not in self.reasons.texts]

    def to_record(self) -> dict[str, Any]:
        """What a version logs (`governance.json`): the file's content and where it came from."""
        return {"source": str(self._path), **self.model_dump(mode="json")}


def _lines(root: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    from ruamel.yaml.comments import CommentedMap

    out: dict[tuple[str, ...], int] = {}
    if isinstance(root, CommentedMap):
        for key in root:
            path = (*prefix, str(key))
            out[path] = int(root.lc.key(key)[0]) + 1
            out.update(_lines(root[key], path))
    return out


def load_governance(path: Path = DEFAULT_PATH) -> Governance:
    """Parse the governance file; `SpecError` (a `ConfigError`) naming file:line otherwise."""
    from ml.config_file import load_yaml, validate

    root = load_yaml(
        path,
        missing=(
            f"{path}:1: governance file not found (hint: run from the repo root, or name it "
            "with --governance or ML_GOVERNANCE_CONFIG)"
        ),
        error=SpecError,
    )
    parsed = validate(Governance, root or {}, path, hint="see docs/governance.md", error=SpecError)
    parsed._path = path
    parsed._lines = _lines(root)
    return parsed


@cache
def _cached(path: Path, mtime_ns: int) -> Governance:
    return load_governance(path)


def governance_at(path: Path) -> Governance:
    """`load_governance`, read once per file version in a process (the gates ask per version)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return load_governance(path)  # raises naming the file
    return _cached(path, mtime)
