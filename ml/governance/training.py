"""How training honours `config/governance.yaml`, and how a version is checked against it.

A protected column that may not be an input stays in the data (fairness is measured on it) and
in the version's signature, so callers and the prediction log keep carrying it for monitoring;
the model is never allowed to use it:

- the logistic baseline's column transformer drops it (`ml.features.build_pipeline(inputs=)`);
- the booster is fit with it held at one constant value (`blind`), so no tree can split on it
  and its exact contribution to every score is 0 whatever a caller sends.

`used_features` reads the splits of a logged booster: the `protected-inputs` gate judges what a
version actually uses, not what a training run claims.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ml.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from ml.contract import ModelContract
    from ml.governance.config import Governance

GOVERNANCE_KEY = "governance"
"""The key of `contract.json` that records the governance a version was trained under."""
PROTECTED_TAG = "protected_inputs"
"""Run tag: the protected columns the model may use (JSON list; `[]` for none)."""


def check_reason_texts(governance: Governance, inputs: Sequence[str]) -> None:
    """Refuse to train a model whose inputs include a feature without a reviewed reason text.

    Raises:
        ConfigError: naming the features and the file.
    """
    missing = governance.missing_texts(inputs)
    if missing:
        raise ConfigError(
            f"{governance.where('reasons', 'texts')}: model inputs {missing} have no reviewed "
            "reason text (hint: add one per feature under reasons.texts)"
        )


def blind(frame: pd.DataFrame, excluded: Sequence[str], contract: ModelContract) -> pd.DataFrame:
    """`frame` with each excluded column held at its lowest allowed value (a valid constant)."""
    present = [name for name in excluded if name in frame.columns]
    if not present:
        return frame
    constants = {name: contract.feature(name).low for name in present}
    return frame.assign(**{n: frame[n].dtype.type(v) for n, v in constants.items()})


def contract_record(contract: ModelContract, governance: Governance) -> dict[str, Any]:
    """`contract.json` with what governance says of each protected column it lists, and the
    reviewed reason texts: they travel with the version, so serving and batch scoring answer
    with the texts it was validated with, wherever they run (the serve image has no config/;
    `ml.governance.reasons.logged_governance` reads them back)."""
    record = contract.to_dict()
    record[GOVERNANCE_KEY] = {
        "source": str(governance.path),
        "protected": {
            name: {
                "input": attr.input,
                "reason": attr.reason,
                "reference": attr.reference,
                "bands": list(attr.bands) if attr.bands is not None else None,
            }
            for name, attr in governance.protected.items()
            if name in contract.names
        },
        "reasons": governance.reasons.model_dump(mode="json"),
    }
    return record


def protected_tag(governance: Governance, inputs: Sequence[str]) -> str:
    """The `protected_inputs` tag value: protected columns among the model's inputs."""
    return json.dumps(sorted(set(inputs) & set(governance.protected)))


def used_features(booster: Any) -> set[str]:
    """Feature names some tree of `booster` splits on (its `weight` importance keys)."""
    return set(booster.get_score(importance_type="weight"))
