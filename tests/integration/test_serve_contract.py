"""Out-of-contract and malformed bodies against a real uvicorn process: each is a 422 naming the
field (and the record, in a batch), never a 500, the answer stays small, and the server is still
healthy and scoring afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest_serve import record, save_tiny_model_dir, serve_process

from ml.contract import CONTRACT_FILE
from ml.features import CONTRACT

pytestmark = pytest.mark.timeout(300)

MAX_BATCH = 100
GOOD = record(3)


def one(**changes: Any) -> dict[str, Any]:
    """A body of one valid record with some fields changed."""
    return {"records": [{**GOOD, **changes}]}


def batch(size: int, changes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """`size` valid records; record i gets changes[i]."""
    return {"records": [{**GOOD, **changes.get(i, {})} for i in range(size)]}


def without(name: str) -> dict[str, Any]:
    return {"records": [{k: v for k, v in GOOD.items() if k != name}]}


NESTED_ARRAYS = b'{"records": ' + b"[" * 1000 + b"]" * 1000 + b"}"
NESTED_OBJECTS = b'{"records": [' + b'{"a":' * 600 + b"1" + b"}" * 600 + b"]}"
assert len(NESTED_ARRAYS) > 2000

# (label, body, field of the first error, its type)
CASES: list[tuple[str, Any, str, str]] = [
    # Out of contract: well-typed values the model must never score.
    ("unknown SEX code", one(SEX=3), "records.0.SEX", "contract.code"),
    ("SEX zero", one(SEX=0), "records.0.SEX", "contract.code"),
    ("EDUCATION above its codes", one(EDUCATION=7), "records.0.EDUCATION", "contract.code"),
    ("EDUCATION negative", one(EDUCATION=-1), "records.0.EDUCATION", "contract.code"),
    ("MARRIAGE unknown", one(MARRIAGE=4), "records.0.MARRIAGE", "contract.code"),
    ("PAY_0 past the scale", one(PAY_0=10), "records.0.PAY_0", "contract.code"),
    ("PAY_2 below the scale", one(PAY_2=-3), "records.0.PAY_2", "contract.code"),
    ("PAY_6 absurd", one(PAY_6=99), "records.0.PAY_6", "contract.code"),
    ("AGE of a child", one(AGE=17), "records.0.AGE", "contract.range"),
    ("AGE absurd", one(AGE=150), "records.0.AGE", "contract.range"),
    ("AGE negative", one(AGE=-5), "records.0.AGE", "contract.range"),
    ("negative credit line", one(LIMIT_BAL=-1.0), "records.0.LIMIT_BAL", "contract.range"),
    ("credit line of a bank", one(LIMIT_BAL=1e9), "records.0.LIMIT_BAL", "contract.range"),
    ("bill far below", one(BILL_AMT1=-2e7), "records.0.BILL_AMT1", "contract.range"),
    ("bill far above", one(BILL_AMT6=5e7), "records.0.BILL_AMT6", "contract.range"),
    ("negative payment", one(PAY_AMT1=-0.5), "records.0.PAY_AMT1", "contract.range"),
    ("payment absurd", one(PAY_AMT6=1e8), "records.0.PAY_AMT6", "contract.range"),
    ("bad AGE in record 3", batch(5, {3: {"AGE": 200}}), "records.3.AGE", "contract.range"),
    (
        "two bad records",
        batch(6, {1: {"SEX": 9}, 4: {"PAY_AMT2": -3.0}}),
        "records.1.SEX",
        "contract.code",
    ),
    # Malformed: wrong types, wrong shapes, not JSON, hostile structure.
    ("AGE as a string", one(AGE="35"), "records.0.AGE", "int_type"),
    ("AGE with a fraction", one(AGE=35.5), "records.0.AGE", "int_type"),
    ("SEX as a boolean", one(SEX=True), "records.0.SEX", "int_type"),
    ("LIMIT_BAL null", one(LIMIT_BAL=None), "records.0.LIMIT_BAL", "float_type"),
    ("LIMIT_BAL beyond float32", one(LIMIT_BAL=1e300), "records.0.LIMIT_BAL", "less_than_equal"),
    ("a missing field", without("PAY_AMT6"), "records.0.PAY_AMT6", "missing"),
    ("an unknown field", one(WHO=1), "records.0.WHO", "extra_forbidden"),
    ("records not a list", {"records": GOOD}, "records", "list_type"),
    ("a record not an object", {"records": [[1, 2, 3]]}, "records.0", "model_type"),
    ("no records", {"records": []}, "records", "too_short"),
    ("no envelope", [GOOD], "body", "model_type"),
    ("too many records", batch(MAX_BATCH + 1, {}), "records", "too_long"),
    ("2 KB of nested arrays", NESTED_ARRAYS, "body", "structure"),
    ("600 nested objects", NESTED_OBJECTS, "body", "structure"),
    ("truncated JSON", json.dumps(one()).encode()[:-5], "body", "json_invalid"),
    ("not JSON", b"hello", "body", "json_invalid"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("contract")
    model = save_tiny_model_dir(root / "model", seed=5)
    (root / "metadata.json").write_text('{"name": "credit-risk", "version": "9"}')
    (root / CONTRACT_FILE).write_text(CONTRACT.to_json())
    env = {"SERVE_MODEL_PATH": str(model), "SERVE_MAX_BATCH": str(MAX_BATCH)}
    with serve_process(env, root / "serve.log") as url:
        yield url


def _post(url: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{url}/predict", content=content, headers={"Content-Type": "application/json"}
    )


def test_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert sum(1 for c in CASES if c[3].startswith("contract.")) >= 15


@pytest.mark.parametrize(("label", "body", "field", "kind"), CASES, ids=[c[0] for c in CASES])
def test_refused_with_a_422_naming_the_field(
    served: str, label: str, body: Any, field: str, kind: str
) -> None:
    response = _post(served, body)

    assert response.status_code == 422, f"{label}: {response.status_code} {response.text[:300]}"
    answer = response.json()
    first = answer["detail"][0]
    assert (first["field"], first["type"]) == (field, kind), label
    assert answer["message"].startswith(f"{field}: ")
    assert answer["count"] >= len(answer["detail"])
    assert len(response.content) < 16_000
    if kind.startswith("contract."):
        name = field.rsplit(".", 1)[1]
        assert first["row"] == int(field.split(".")[1])
        assert first["allowed"] == CONTRACT.feature(name).allowed()
        assert first["reason"] == CONTRACT.feature(name).reason
        assert first["msg"] in answer["message"]


def test_every_violation_in_a_batch_is_counted_and_the_list_is_bounded(served: str) -> None:
    body = batch(MAX_BATCH, {i: {"AGE": 150, "SEX": 7} for i in range(MAX_BATCH)})

    response = _post(served, body)

    assert response.status_code == 422
    answer = response.json()
    assert answer["count"] == 2 * MAX_BATCH
    assert len(answer["detail"]) == 20
    assert [d["row"] for d in answer["detail"][:4]] == [0, 0, 1, 1]
    assert answer["message"].endswith(f"(and {2 * MAX_BATCH - 1} more)")


def test_a_big_invalid_batch_gets_a_small_answer(served: str) -> None:
    junk = {name: "x" * 20 for name in GOOD}
    body = json.dumps({"records": [junk] * MAX_BATCH}).encode()
    assert len(body) > 70_000

    response = _post(served, body)

    assert response.status_code == 422
    assert response.json()["count"] == 23 * MAX_BATCH
    assert len(response.content) < 16_000


def test_still_healthy_and_scoring_after_all_of_it(served: str) -> None:
    for _, body, _, _ in CASES:
        assert _post(served, body).status_code == 422

    health = httpx.get(f"{served}/health").json()
    answer = _post(served, batch(3, {}))

    assert health["status"] == "ok", health
    assert answer.status_code == 200
    assert answer.json()["model"]["version"] == "9"
    assert len(answer.json()["predictions"]) == 3


def test_the_openapi_document_shows_the_contract(served: str) -> None:
    schema = httpx.get(f"{served}/openapi.json").json()
    fields = schema["components"]["schemas"]["Record"]["properties"]

    assert fields["SEX"]["enum"] == [1, 2]
    assert (fields["AGE"]["minimum"], fields["AGE"]["maximum"]) == (18, 100)
    assert "UCI X5" in fields["AGE"]["description"]
    assert (fields["PAY_AMT1"]["minimum"], fields["PAY_AMT1"]["maximum"]) == (0, 10_000_000)
    metadata = httpx.get(f"{served}/metadata").json()["model"]
    assert metadata["contract"]["source"] == "logged"
    assert metadata["contract"]["features"][4]["name"] == "AGE"
