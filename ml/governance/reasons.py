"""Reason codes: why a record was declined, from XGBoost's own per-feature contributions.

`Booster.predict(pred_contribs=True)` gives, per record, one contribution per feature plus the
bias, in log-odds, that sum exactly to the record's margin: per decision path (Saabas,
`approx_contribs=True`, the default: about the cost of one more prediction) or TreeSHAP
(`reasons.method: shap`, consistent but ~100x a prediction; docs/performance.md). A record's
reasons are its `top` largest positive contributions (the features that raised its probability
of default most), each mapped to the reviewed text of `config/governance.yaml`. A protected
attribute is never a reason, even where it is an allowed input (AGE): it is left out before
ranking.

Reasons are adverse-action reasons: given for declines (a score at or above the threshold).
`/predict?reasons=true` and `mlops predict --reasons` both call `ReasonCoder.explain` on the same
float32 matrix, so they give the same reasons for the same record.

The texts a version answers with are the ones logged with it (the `governance` section of its
`contract.json`, written at training): a served version never picks up texts it was not
validated with, and the serve image needs no config/. `governance_for` chooses: the version's
own texts; for a version logged before they travelled with it, the file `ML_GOVERNANCE_CONFIG`
names, only when it is set (an operator's explicit choice); otherwise a clear refusal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.errors import ConfigError
from ml.governance.config import DEFAULT_PATH, Governance, governance_at

GOVERNANCE_ENV = "ML_GOVERNANCE_CONFIG"
"""Environment variable naming the governance file (MLSettings.governance_config for training):
serving and batch scoring read the reason texts from it (default: config/governance.yaml,
relative to the working directory)."""


def configured_governance() -> Governance:
    """The governance file `ML_GOVERNANCE_CONFIG` names (default config/governance.yaml)."""
    return governance_at(Path(os.environ.get(GOVERNANCE_ENV) or DEFAULT_PATH))


def governance_from_record(record: Mapping[str, Any]) -> Governance | None:
    """The governance a version was trained under, from its `contract.json` (parsed), or None
    when it was logged without reason texts.

    Raises:
        ConfigError: the section is there but malformed (names what is wrong).
    """
    from pydantic import ValidationError

    from ml.governance.training import GOVERNANCE_KEY

    section = record.get(GOVERNANCE_KEY)
    if not isinstance(section, Mapping) or "reasons" not in section:
        return None
    try:
        parsed = Governance.model_validate(
            {"protected": section.get("protected") or {}, "reasons": section["reasons"]}
        )
    except ValidationError as exc:
        raise ConfigError(f"the version's logged governance is malformed: {exc}") from None
    parsed._path = Path(f"{section.get('source') or DEFAULT_PATH} (as logged with the version)")
    return parsed


def logged_governance(contract_file: Path | None) -> Governance | None:
    """`governance_from_record` of a version's downloaded `contract.json` (None: no file, or a
    version logged without reason texts).

    Raises:
        ConfigError: the file is not JSON, or its governance section is malformed.
    """
    if contract_file is None:
        return None
    try:
        record = json.loads(contract_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {contract_file.name}: {exc}") from None
    return governance_from_record(record) if isinstance(record, Mapping) else None


def governance_for(logged: Governance | None, label: str) -> Governance:
    """The governance whose texts version `label` answers with: its own (`logged`); for a
    version logged without them, the file `ML_GOVERNANCE_CONFIG` names when it is set.

    Raises:
        ConfigError: neither: names the version and both ways out.
    """
    if logged is not None:
        return logged
    if os.environ.get(GOVERNANCE_ENV):
        return configured_governance()
    raise ConfigError(
        f"{label} was registered without its reviewed reason texts (its contract.json has no "
        "governance.reasons: it was logged before the texts travelled with the version); "
        f"retrain and register it, or set {GOVERNANCE_ENV} to the reviewed governance file "
        "to give its reasons with that file's texts"
    )


@dataclass(frozen=True)
class Reason:
    """One reason: the feature, its reviewed text and its contribution (log-odds)."""

    feature: str
    text: str
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form /predict returns."""
        return {"feature": self.feature, "text": self.text, "contribution": self.contribution}


class ReasonCoder:
    """Explains a booster's scores in the features of its signature order."""

    def __init__(self, booster: Any, names: Sequence[str], governance: Governance) -> None:
        self.booster = booster
        self.names = tuple(names)
        texts = governance.reasons.texts
        self.texts = tuple(texts.get(n, n) for n in self.names)
        # Protected attributes, and features without a reviewed text, are never reasons.
        self.eligible = np.array(
            [n not in governance.protected and n in texts for n in self.names], dtype=bool
        )
        self.top = governance.reasons.top
        self.approx = governance.reasons.method == "saabas"
        self.decline_threshold = governance.reasons.decline_threshold
        self._paths: Any = None  # the numpy walk for a few records, compiled on first use

    SMALL_BATCH = 12
    """Up to this many finite records, per-path contributions come from the numpy walk
    (ml/governance/path_contributions.py): a DMatrix costs more than the walk for one record."""

    def _walk(self) -> Any:
        if self._paths is None:
            from ml.governance.path_contributions import compile_paths

            self._paths = compile_paths(self.booster) or False  # False: XGBoost only
        return self._paths

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """(rows, features + 1) exact contributions in log-odds; the last column is the bias."""
        import xgboost as xgb

        x = np.ascontiguousarray(matrix, dtype=np.float32)
        if self.approx and len(x) <= self.SMALL_BATCH and np.isfinite(x).all():
            walk = self._walk()
            if walk:
                return np.asarray(walk(x))
        # One thread for a few rows: OpenMP's start-up costs more than a small matrix.
        dmatrix = xgb.DMatrix(x, missing=np.nan, nthread=1 if len(x) < 256 else -1)
        out = self.booster.predict(
            dmatrix, pred_contribs=True, approx_contribs=self.approx, validate_features=False
        )
        return np.asarray(out, dtype=np.float64)

    def ranked(self, contributions: np.ndarray) -> np.ndarray:
        """(rows, top) feature indices of the largest positive eligible contributions, -1 where
        a record has fewer positive ones."""
        values = np.where(self.eligible, contributions[:, : len(self.names)], -np.inf)
        k = min(self.top, len(self.names))
        # argpartition then a sort of k columns: cheap for 23 features and any number of rows.
        part = np.argpartition(-values, k - 1, axis=1)[:, :k]
        picked = np.take_along_axis(values, part, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        idx = np.take_along_axis(part, order, axis=1)
        positive = np.take_along_axis(values, idx, axis=1) > 0
        return np.where(positive, idx, -1)

    def explain(self, matrix: np.ndarray, declined: np.ndarray) -> list[list[Reason] | None]:
        """Each declined record's reasons, largest contribution first; None for the others."""
        out: list[list[Reason] | None] = [None] * len(matrix)
        rows = np.flatnonzero(declined)
        if not rows.size:
            return out
        contributions = self.contributions(matrix[rows])
        ranked = self.ranked(contributions).tolist()
        for n, (i, indices) in enumerate(zip(rows.tolist(), ranked, strict=True)):
            out[i] = [
                Reason(self.names[j], self.texts[j], float(contributions[n, j]))
                for j in indices
                if j >= 0
            ]
        return out


def coder_for(predictor: Any, names: Sequence[str], governance: Governance) -> ReasonCoder | None:
    """A coder for a loaded predictor, or None when it has no native booster (no exact
    contributions to explain it with)."""
    booster = getattr(predictor, "booster", None)
    return None if booster is None else ReasonCoder(booster, names, governance)


def reason_columns(
    table: Any, coder: ReasonCoder, matrix: np.ndarray, probabilities: np.ndarray
) -> Any:
    """`table` (a pyarrow table of `matrix`'s scores, row for row) with the reason columns
    `reason_1..top` (feature) and `reason_1_text..`, for the rows scored at or above the decline
    threshold; null for approvals and where a decline has fewer positive contributions."""
    import pyarrow as pa

    ranked = np.full((len(matrix), coder.top), -1, dtype=np.int64)
    declined = np.flatnonzero(probabilities >= coder.decline_threshold)
    if declined.size:
        found = coder.ranked(coder.contributions(matrix[declined]))
        ranked[declined, : found.shape[1]] = found
    names = np.array([*coder.names, None], dtype=object)
    texts = np.array([*coder.texts, None], dtype=object)
    for k in range(coder.top):
        table = table.append_column(f"reason_{k + 1}", pa.array(names[ranked[:, k]], pa.string()))
        table = table.append_column(
            f"reason_{k + 1}_text", pa.array(texts[ranked[:, k]], pa.string())
        )
    return table
