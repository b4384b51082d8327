"""The request parser's fast path accepts nothing the signature's pydantic model refuses, and
gives the same matrix as the model for what it accepts."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ml.contract import probe_rows
from ml.features import CONTRACT, FEATURE_COLUMNS
from serve.errors import InvalidInputError
from serve.request_parser import RequestParser
from serve.schemas import INT_LIMIT, Column

COLUMNS = tuple(
    Column(name=c.name, type="long" if c.dtype == "int" else "double") for c in FEATURE_COLUMNS
)
INT_NAME = next(c.name for c in COLUMNS if c.type == "long")
FLOAT_NAME = next(c.name for c in COLUMNS if c.type == "double")
PARSER = RequestParser(COLUMNS, max_batch=5)


def _record(i: int = 0) -> dict[str, Any]:
    return {c.name: (i + 1 if c.type == "long" else 1000.5 * (i + 1)) for c in COLUMNS}


def _body(records: list[Any], **extra: Any) -> bytes:
    return json.dumps({"records": records, **extra}).encode()


def _exact_matrix(body: bytes) -> np.ndarray:
    """The matrix by the pydantic model alone (the definition of valid)."""
    parsed = PARSER.request_model.model_validate_json(body)
    rows = [[getattr(r, c.name) for c in COLUMNS] for r in parsed.records]  # type: ignore[attr-defined]
    return np.array(rows, dtype=np.float32)


def test_a_valid_body_takes_the_fast_path_with_the_models_matrix() -> None:
    body = _body([_record(0), _record(1)])

    fast = PARSER.parse_fast(body)

    assert fast is not None
    assert fast.matrix.dtype == np.float32
    assert fast.matrix.shape == (2, len(COLUMNS))
    np.testing.assert_array_equal(fast.matrix, _exact_matrix(body))
    assert [msgspec.structs.asdict(r) for r in fast.records] == [_record(0), _record(1)]


def test_an_integral_float_counts_as_an_integer() -> None:
    body = _body([{**_record(), INT_NAME: 35.0}])

    fast = PARSER.parse_fast(body)

    assert fast is not None
    assert fast.matrix[0, [c.name for c in COLUMNS].index(INT_NAME)] == 35


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("string in an int column", _body([{**_record(), INT_NAME: "35"}])),
        ("fraction in an int column", _body([{**_record(), INT_NAME: 35.5}])),
        ("boolean in an int column", _body([{**_record(), INT_NAME: True}])),
        ("boolean in a float column", _body([{**_record(), FLOAT_NAME: False}])),
        ("null", _body([{**_record(), FLOAT_NAME: None}])),
        ("nested value", _body([{**_record(), FLOAT_NAME: [1.0]}])),
        ("float beyond float32", _body([{**_record(), FLOAT_NAME: 1e39}])),
        ("int beyond 2**53", _body([{**_record(), INT_NAME: INT_LIMIT + 1}])),
        ("unknown field", _body([{**_record(), "WHO": 1}])),
        (
            "unknown field instead of a known one",
            _body([{**{k: v for k, v in _record().items() if k != INT_NAME}, "WHO": 1}]),
        ),
        ("missing field", _body([{k: v for k, v in _record().items() if k != INT_NAME}])),
        ("record not an object", _body([[1, 2, 3]])),
        ("no records", _body([])),
        ("too many records", _body([_record()] * 6)),
        ("records not a list", json.dumps({"records": _record()}).encode()),
        ("extra top-level key", _body([_record()], debug=True)),
        ("not an object", b"[]"),
        ("NaN literal", _body([_record()]).replace(b"1000.5", b"NaN", 1)),
        ("truncated JSON", _body([_record()])[:-3]),
    ],
)
def test_what_the_model_refuses_the_fast_path_refuses(label: str, body: bytes) -> None:
    assert PARSER.parse_fast(body) is None, label
    with pytest.raises(InvalidInputError):
        PARSER.parse(body)


def test_the_model_decides_at_the_int_limit() -> None:
    body = _body([{**_record(), INT_NAME: INT_LIMIT}])

    assert PARSER.parse_fast(body) is None
    parsed = PARSER.parse(body)

    np.testing.assert_array_equal(parsed.matrix, _exact_matrix(body))


def test_a_boolean_column_always_goes_through_the_model() -> None:
    columns = (Column(name="flag", type="boolean"), Column(name="x", type="double"))
    parser = RequestParser(columns, max_batch=5)
    body = _body([{"flag": True, "x": 1.0}])

    assert parser.parse_fast(body) is None
    assert parser.parse(body).matrix.tolist() == [[1.0, 1.0]]


_values = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 35.0, 35.5, INT_LIMIT, INT_LIMIT - 1, 1e38, -1e38, 3.4e38]),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.sampled_from([c.name for c in COLUMNS]), _values), max_size=2))
def test_fast_path_never_accepts_more_than_the_model(changes: list[dict[str, Any]]) -> None:
    records = [{**_record(i), **change} for i, change in enumerate(changes)] or [_record()]
    body = _body(records)

    fast = PARSER.parse_fast(body)
    try:
        exact = _exact_matrix(body)
    except ValidationError:
        assert fast is None, f"fast path accepted what the model refuses: {records}"
        return
    if fast is not None:
        np.testing.assert_array_equal(fast.matrix, exact)
        assert all(math.isfinite(v) for v in fast.matrix.ravel().tolist())


CONTRACT_PARSER = RequestParser(COLUMNS, max_batch=5, contract=CONTRACT)
_IN_CONTRACT = dict(zip(CONTRACT.names, probe_rows(CONTRACT)[-2].tolist(), strict=True))
_edges = st.sampled_from(
    [-3, -2, -1, 0, 1, 2, 3, 6, 7, 8, 9, 10, 17, 18, 100, 101, 0.5, -0.01, 35.0, 18.5,
     -10_000_000, -10_000_001, 10_000_000, 10_000_000.5, 1e300]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(st.sampled_from([c.name for c in COLUMNS]), st.one_of(_edges, _values)),
        min_size=1,
        max_size=3,
    )
)
def test_fast_path_never_accepts_what_the_contract_refuses(changes: list[dict[str, Any]]) -> None:
    base = {
        c.name: int(v) if c.type == "long" else v
        for c, v in zip(COLUMNS, _IN_CONTRACT.values(), strict=True)
    }
    body = _body([{**base, **change} for change in changes])

    fast = CONTRACT_PARSER.parse_fast(body)

    if fast is not None:
        assert not CONTRACT.check_matrix(fast.matrix), f"fast path accepted {changes}"
    try:
        parsed = CONTRACT_PARSER.parse(body)
    except InvalidInputError as exc:
        refused = exc
    else:
        assert not CONTRACT.check_matrix(parsed.matrix)
        return
    assert refused.detail, "a refusal names at least one field"
    assert refused.count >= len(refused.detail)
