"""The model contract as monitoring reads it: names, kinds and allowed values.

One small function (`feature_specs`) is the only place monitoring reads the contract. It reads
`ml.contract.ModelContract` (the one contract: the built-in credit-risk table that training
validates and logs as every version's `contract.json`, or a version's own contract when the
caller has it), and keeps only what the drift and quality checks need: which features are
categorical and their codes or range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml.contract import ModelContract


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


def feature_specs(contract: ModelContract | None = None) -> tuple[FeatureSpec, ...]:
    """The input features of `contract` (default: the built-in credit-risk contract), in its
    order: a feature with codes is categorical, any other numerical with its range."""
    if contract is None:
        from ml.features import CONTRACT  # the table is data; ml.contract stays generic

        contract = CONTRACT
    return tuple(
        FeatureSpec(
            name=feature.name,
            categorical=feature.codes is not None,
            minimum=feature.minimum,
            maximum=feature.maximum,
            codes=frozenset(feature.codes) if feature.codes is not None else None,
        )
        for feature in contract.features
    )
