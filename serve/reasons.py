"""Reason codes on /predict (`?reasons=true`): the route's one call into ml.governance.reasons.

The coder is built once per loaded model (its booster, its signature order, the reviewed texts
logged with the version: `LoadedModel.governance`) and kept beside it; a request without
`reasons` never comes here.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from serve.errors import InvalidInputError, ServeError

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})  # an empty value is no boolean: refused


class ReasonsUnavailableError(ServeError):
    """Reason codes were asked for, but this model or server cannot give them."""

    status = 503
    code = "reasons_unavailable"


_coders: dict[int, tuple[Any, Any]] = {}  # id(model) -> (model, coder); the last few models
_lock = threading.Lock()


def _coder(model: Any) -> Any:
    from ml.errors import ConfigError
    from ml.governance.reasons import coder_for, governance_for

    with _lock:
        found = _coders.get(id(model))
        if found is not None and found[0] is model:
            return found[1]
    try:
        governance = governance_for(model.governance, f"version {model.version}")
        coder = coder_for(model.predictor, model.contract.names, governance)
    except ConfigError as exc:
        raise ReasonsUnavailableError(f"no reason texts: {exc}") from None
    if coder is None:
        raise ReasonsUnavailableError(
            f"version {model.version} is not a native booster: no exact contributions to give "
            "reasons from"
        )
    with _lock:
        while len(_coders) >= 4:  # old versions after hot swaps
            _coders.pop(next(iter(_coders)))
        _coders[id(model)] = (model, coder)
    return coder


def add_reasons(
    flag: str, model: Any, matrix: np.ndarray, predictions: list[dict[str, Any]]
) -> list[list[str] | None] | None:
    """Add `reasons` to each declined prediction when `flag` (the query value) is true (an
    approval gets none: reasons are adverse-action reasons).

    Returns:
        The reason codes (feature names) of each record, None for an approval, for the
        prediction log line; None when reasons were not asked for.
    """
    value = flag.strip().lower()
    if value in _FALSE:
        return None
    if value not in _TRUE:
        detail: list[dict[str, object]] = [
            {
                "field": "reasons",
                "loc": ["query", "reasons"],
                "msg": "must be true or false",
                "type": "bool_parsing",
            }
        ]
        raise InvalidInputError("reasons: must be true or false", detail, 1)
    declined = np.array([p["decision"] == "decline" for p in predictions], dtype=bool)
    explained = _coder(model).explain(matrix, declined)
    codes: list[list[str] | None] = []
    for prediction, reasons in zip(predictions, explained, strict=True):
        if reasons is None:
            codes.append(None)
            continue
        prediction["reasons"] = [r.to_dict() for r in reasons]
        codes.append([r.feature for r in reasons])
    return codes
