"""The vectors /predict/by-id scores (serve/routes/predict_by_id.py `_matrix`): in the served
version's column order; checked against its contract when the snapshot was written under another
one (409 naming the row and field), and not checked again when written under the same contract
(materialize refused every row outside it); a snapshot lacking a feature is a 409."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ml.contract import ModelContract
from ml.feature_store.layout import SnapshotInfo, contract_id
from ml.features import CONTRACT
from ml.scoring import ScoringKernel
from serve.errors import FeaturesIncompatibleError
from serve.online_features import Fetched
from serve.routes.predict_by_id import _matrix


def model(contract: ModelContract) -> Any:
    columns = tuple(SimpleNamespace(name=n) for n in contract.names)
    # Only the check runs here: the predictor is never called.
    kernel = ScoringKernel(contract, predictor=lambda matrix: matrix)
    return SimpleNamespace(version="3", columns=columns, contract=contract, kernel=kernel)


def fetched(contract: ModelContract, names: tuple[str, ...], rows: np.ndarray) -> Fetched:
    snapshot = SnapshotInfo(5, names, contract_id(contract), "data-v1", len(rows))
    return Fetched(snapshot, rows.astype(np.float32))


def in_contract_rows() -> np.ndarray:
    low = [float(f.to_dict().get("range", [0, 0])[0]) for f in CONTRACT.features]
    codes = [sorted(f.to_dict().get("codes", [])) for f in CONTRACT.features]
    row = [c[0] if c else v for c, v in zip(codes, low, strict=True)]
    return np.array([row, row])


def narrower_contract(max_age: int) -> ModelContract:
    data = CONTRACT.to_dict()
    for feature in data["features"]:
        if feature["name"] == "AGE":
            feature["range"] = [18, max_age]
    return ModelContract.from_dict(data)


def test_same_contract_takes_the_vectors_as_written_in_the_model_s_order() -> None:
    rows = in_contract_rows()
    names = tuple(CONTRACT.names)
    reversed_names = names[::-1]
    # Given a snapshot stored in another column order under the model's contract
    got = _matrix(model(CONTRACT), fetched(CONTRACT, reversed_names, rows[:, ::-1]))
    # Then the model gets its own order back
    np.testing.assert_array_equal(got, rows.astype(np.float32))


def test_another_contract_is_checked_and_refused_naming_the_field() -> None:
    rows = in_contract_rows()
    age = CONTRACT.names.index("AGE")
    rows[1, age] = 90
    # Given vectors written under the repository's contract (AGE up to 100), served by a version
    # whose contract stops at 80
    served = model(narrower_contract(80))
    with pytest.raises(FeaturesIncompatibleError) as refused:
        _matrix(served, fetched(CONTRACT, tuple(CONTRACT.names), rows))
    # Then the request is refused naming the row and the field
    assert "row 1" in str(refused.value)
    assert "AGE" in str(refused.value)
    # And in-contract vectors pass the same check
    ok = in_contract_rows()
    assert _matrix(served, fetched(CONTRACT, tuple(CONTRACT.names), ok)).shape == ok.shape


def test_a_snapshot_lacking_a_feature_is_refused() -> None:
    names = tuple(CONTRACT.names)[1:]
    with pytest.raises(FeaturesIncompatibleError, match="lacks features"):
        _matrix(model(CONTRACT), fetched(CONTRACT, names, in_contract_rows()[:, 1:]))
