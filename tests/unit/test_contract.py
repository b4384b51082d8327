"""The model contract: the credit-risk table, its JSON form, the vectorised check, probe rows and
which contract a version is held to."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.contract import (
    CONTRACT_FILE,
    Feature,
    ModelContract,
    load_contract,
    probe_rows,
)
from ml.errors import ContractError
from ml.features import CONTRACT, FEATURES, TRAINING_COLUMNS
from ml.version_contract import BUILT_IN, LOGGED, contract_for

DATA = Path(__file__).resolve().parents[2] / "data" / "uci_credit_card.csv.gz"
BOTH = {"dtype": "int", "codes": [1], "range": [0, 1], "reason": "r"}
SIGNATURE = {f.name: ("long" if f.dtype == "int" else "double") for f in CONTRACT.features}


def row(**changes: float) -> np.ndarray:
    """One in-contract row (the probe base) with some features changed."""
    base = probe_rows(CONTRACT)[-2].copy()
    for name, value in changes.items():
        base[CONTRACT.names.index(name)] = value
    return base


def test_every_feature_has_a_bound_and_a_reason() -> None:
    assert list(CONTRACT.names) == FEATURES
    for f in CONTRACT.features:
        assert len(f.reason) > 40, f.name
        assert f.codes is not None or (f.minimum is not None and f.maximum is not None), f.name


def test_the_training_data_is_in_contract() -> None:
    frame = pd.read_csv(DATA)

    assert not TRAINING_COLUMNS.check_frame(frame)
    assert not CONTRACT.check_frame(frame)


def test_json_round_trip_and_file(tmp_path: Path) -> None:
    (tmp_path / CONTRACT_FILE).write_text(CONTRACT.to_json())

    assert load_contract(tmp_path) == CONTRACT
    assert load_contract(tmp_path / CONTRACT_FILE) == CONTRACT
    sex = CONTRACT.to_dict()["features"][1]
    assert sex == {
        "name": "SEX",
        "dtype": "int",
        "required": True,
        "codes": [1, 2],
        "meanings": {"1": "male", "2": "female"},
        "reason": sex["reason"],
    }
    assert CONTRACT.to_dict()["features"][0]["range"] == [0, 10_000_000]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": 2}, "format 2"),
        ({"features": "AGE"}, "list of features"),
        ({"features": []}, "at least one feature"),
        (
            {"features": [{"name": "A", "dtype": "int", "range": [1, 2], "reason": "r"}] * 2},
            "listed twice",
        ),
        ({"features": [{"name": "A", "dtype": "text", "range": [1, 2], "reason": "r"}]}, "dtype"),
        ({"features": [{"name": "A", "dtype": "int", "range": [1, 2]}]}, "no reason"),
        ({"features": [{"name": "A", "dtype": "int", "range": [3, 2], "reason": "r"}]}, "above"),
        ({"features": [{"name": "A", "dtype": "int", "range": [1], "reason": "r"}]}, "range must"),
        ({"features": [{"name": "A", "dtype": "float", "codes": [1], "reason": "r"}]}, "dtype int"),
        ({"features": [{"name": "A", "dtype": "int", "codes": [], "reason": "r"}]}, "non-empty"),
        ({"features": [{"name": "A", "dtype": "int", "codes": [1.5], "reason": "r"}]}, "integers"),
        ({"features": [{**BOTH, "name": "A"}]}, "not both"),
        ({"features": [{"name": "A", "dtype": "int", "colour": 1, "reason": "r"}]}, "unknown keys"),
    ],
)
def test_a_malformed_contract_is_refused_naming_the_problem(
    tmp_path: Path, change: dict[str, Any], match: str
) -> None:
    (tmp_path / CONTRACT_FILE).write_text(json.dumps({**CONTRACT.to_dict(), **change}))

    with pytest.raises(ContractError, match=match):
        load_contract(tmp_path)


def test_an_unreadable_file_is_a_contract_error(tmp_path: Path) -> None:
    (tmp_path / CONTRACT_FILE).write_text("{not json")

    with pytest.raises(ContractError, match="not valid JSON"):
        load_contract(tmp_path)
    with pytest.raises(ContractError, match="cannot read"):
        load_contract(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("change", "field", "kind", "problem"),
    [
        ({"SEX": 3}, "SEX", "code", "3 is not an allowed code"),
        ({"SEX": 0}, "SEX", "code", "0 is not an allowed code"),
        ({"EDUCATION": 7}, "EDUCATION", "code", "7 is not an allowed code"),
        ({"MARRIAGE": -1}, "MARRIAGE", "code", "-1 is not an allowed code"),
        ({"PAY_0": 10}, "PAY_0", "code", "10 is not an allowed code"),
        ({"PAY_6": -3}, "PAY_6", "code", "-3 is not an allowed code"),
        ({"AGE": 17}, "AGE", "range", "17 is below the minimum 18"),
        ({"AGE": 101}, "AGE", "range", "101 is above the maximum 100"),
        ({"AGE": 35.5}, "AGE", "integer", "35.5 is not an integer"),
        ({"SEX": 1.5}, "SEX", "integer", "1.5 is not an integer"),
        ({"LIMIT_BAL": -1}, "LIMIT_BAL", "range", "-1 is below the minimum 0"),
        ({"LIMIT_BAL": 2e7}, "LIMIT_BAL", "range", "20,000,000 is above the maximum 10,000,000"),
        ({"PAY_AMT3": -0.01}, "PAY_AMT3", "range", "-0.01 is below the minimum 0"),
        ({"BILL_AMT1": -1e8}, "BILL_AMT1", "range", "below the minimum -10,000,000"),
        ({"BILL_AMT2": math.inf}, "BILL_AMT2", "range", "infinity is not a finite number"),
        ({"LIMIT_BAL": math.nan}, "LIMIT_BAL", "missing", "missing (required)"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_violation_is_found_and_explained(
    change: dict[str, float], field: str, kind: str, problem: str, dtype: type
) -> None:
    matrix = np.vstack([row(), row(**change), row()]).astype(dtype)

    violations = CONTRACT.check_matrix(matrix)

    assert violations.count == 1
    assert violations.rows.tolist() == [False, True, False]
    [v] = violations.first(10)
    assert (v.row, v.feature.name, v.kind) == (1, field, kind)
    assert problem in v.problem
    assert v.message().startswith(f"{field}: ")
    assert "allowed: " in v.message()


def test_violations_by_row_and_feature() -> None:
    matrix = np.vstack([row(AGE=150, SEX=3), row(), row(AGE=10.5)])

    violations = CONTRACT.check_matrix(matrix)

    by_row = violations.by_row()
    assert sorted(by_row) == [0, 2]
    assert [v.feature.name for v in by_row[0]] == ["SEX", "AGE"]
    assert violations.per_feature() == {
        "SEX": {"code": [3.0]},
        "AGE": {"range": [150.0], "integer": [10.5]},
    }
    assert violations.first(1)[0].feature.name == "SEX"


def test_in_contract_rows_report_nothing() -> None:
    violations = CONTRACT.check_matrix(probe_rows(CONTRACT))

    assert not violations
    assert violations.count == 0
    assert violations.first(5) == []
    assert not violations.rows.any()


def test_probe_rows_touch_every_code_and_both_ends_of_every_range() -> None:
    probes = probe_rows(CONTRACT)

    assert not CONTRACT.check_matrix(probes)
    assert not CONTRACT.check_matrix(probes.astype(np.float32))
    for j, f in enumerate(CONTRACT.features):
        seen = set(probes[:, j].tolist())
        if f.codes is not None:
            assert seen == set(f.codes), f.name
        else:
            assert {f.minimum, f.maximum} <= seen, f.name


def test_codes_with_gaps_and_optional_features() -> None:
    contract = ModelContract(
        (
            Feature("grade", "int", codes=(1, 3, 5), reason="odd grades only"),
            Feature("income", "float", minimum=0, required=False, reason="may be unknown"),
        )
    )
    matrix = np.array([[1, 10.0], [3, np.nan], [2, 5.0], [5, -1.0]])

    violations = contract.check_matrix(matrix)

    assert [(v.row, v.feature.name, v.kind) for v in violations.first(10)] == [
        (2, "grade", "code"),
        (3, "income", "range"),
    ]
    assert not contract.check_matrix(probe_rows(contract))
    assert contract.feature("grade").allowed() == "one of 1, 3, 5"


def test_codes_that_mean_the_same_collapse_in_the_message() -> None:
    assert CONTRACT.feature("PAY_0").allowed() == (
        "one of -2 (no consumption), -1 (paid duly), 0 (revolving credit), 1..8 (months late), "
        "9 (nine or more months late)"
    )
    assert CONTRACT.feature("AGE").allowed() == "an integer from 18 to 100"


def test_a_matrix_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ContractError, match="23 columns"):
        CONTRACT.check_matrix(np.zeros((2, 3)))


def test_columns_by_name_and_missing_columns() -> None:
    frame = pd.read_csv(DATA, nrows=50)

    assert not CONTRACT.check_frame(frame)
    with pytest.raises(ContractError, match=r"missing columns \['AGE'\]"):
        CONTRACT.check_frame(frame.drop(columns=["AGE"]))


def test_a_logged_contract_is_used_in_signature_order(tmp_path: Path) -> None:
    narrowed = CONTRACT.replaced(
        Feature("AGE", "int", minimum=21, maximum=70, reason="this version's own bound")
    )
    (tmp_path / CONTRACT_FILE).write_text(narrowed.to_json())
    signature = dict(reversed(list(SIGNATURE.items())))

    contract, source = contract_for(tmp_path / CONTRACT_FILE, signature)

    assert source == LOGGED
    assert contract.names == tuple(signature)
    assert contract.feature("AGE").maximum == 70


def test_replaced_swaps_features_by_name_only() -> None:
    age = Feature("AGE", "int", minimum=30, maximum=40, reason="narrow")

    assert CONTRACT.replaced(age).feature("AGE") == age
    assert CONTRACT.replaced(age).names == CONTRACT.names
    with pytest.raises(KeyError):
        CONTRACT.replaced(Feature("HEIGHT", "float", minimum=0, reason="not a feature"))


def test_a_version_without_a_contract_gets_the_built_in_one_if_its_inputs_are_the_same() -> None:
    contract, source = contract_for(None, SIGNATURE)

    assert (contract, source) == (CONTRACT, BUILT_IN)


@pytest.mark.parametrize(
    ("signature", "match"),
    [
        ({"limit_bal": "double", "age": "long"}, "not the built-in credit-risk contract"),
        ({**SIGNATURE, "AGE": "double"}, "AGE is int in the contract, double in the model"),
        ({**SIGNATURE, "EXTRA": "double"}, "EXTRA is in the signature but not in the contract"),
    ],
)
def test_a_version_with_other_inputs_and_no_contract_is_refused(
    signature: dict[str, str], match: str
) -> None:
    with pytest.raises(ContractError, match=match):
        contract_for(None, signature)


def test_a_logged_contract_that_disagrees_with_the_signature_is_refused(tmp_path: Path) -> None:
    (tmp_path / CONTRACT_FILE).write_text(CONTRACT.to_json())
    signature = {k: v for k, v in SIGNATURE.items() if k != "AGE"}

    with pytest.raises(ContractError, match="AGE is in the contract but not in the signature"):
        contract_for(tmp_path / CONTRACT_FILE, signature)
