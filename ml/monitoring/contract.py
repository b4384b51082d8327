"""The feature contract as monitoring reads it: names, kinds and allowed values.

One small function (`feature_specs`) is the only place monitoring reads the contract, so it can be
repointed at `ml.contract` (the version's logged `contract.json`) without touching the engine.
Today it reads `ml.features`' column table, the same table training validates against.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: categorical (a closed set of codes) or numerical (an optional range)."""

    name: str
    categorical: bool
    minimum: float | None = None
    maximum: float | None = None
    codes: frozenset[int] | None = None

    def allowed(self) -> str:
        """What the contract allows, for messages ("codes 1, 2" or "range [0, 1e7]")."""
        if self.codes is not None:
            return "codes " + ", ".join(str(c) for c in sorted(self.codes))
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"range [{low}, {high}]"


def feature_specs() -> tuple[FeatureSpec, ...]:
    """The model's input features in contract order."""
    from ml.features import FEATURE_COLUMNS

    return tuple(
        FeatureSpec(
            name=column.name,
            categorical=column.codes is not None,
            minimum=column.minimum,
            maximum=column.maximum,
            codes=frozenset(column.codes) if column.codes is not None else None,
        )
        for column in FEATURE_COLUMNS
    )
