"""/predict: valid input scores, every kind of bad input is a 4xx naming the field."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from serve_test_helpers import make_client

from serve.settings import ServeSettings


def test_one_record_scores_and_names_the_model_version(
    client: TestClient, record: dict[str, Any]
) -> None:
    response = client.post("/predict", json={"records": [record]}, headers={"X-Request-ID": "r-1"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "credit-risk", "version": "7"}
    assert response.headers["X-Model-Version"] == "7"
    assert response.headers["X-Request-ID"] == "r-1"
    [prediction] = body["predictions"]
    assert 0.0 <= prediction["probability"] <= 1.0
    assert prediction["decision"] == ("decline" if prediction["probability"] >= 0.5 else "approve")


def test_a_batch_is_scored_in_order(client: TestClient) -> None:
    import serve_test_helpers as helpers

    records = [helpers.record(i) for i in range(100)]
    response = client.post("/predict", json={"records": records})

    assert response.status_code == 200
    probs = [p["probability"] for p in response.json()["predictions"]]
    assert len(probs) == 100
    singles = [
        client.post("/predict", json={"records": [r]}).json()["predictions"][0]["probability"]
        for r in records[:5]
    ]
    assert probs[:5] == pytest.approx(singles)


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"WHO": 1}, "records.0.WHO", "extra_forbidden"),
        ({"AGE": "35"}, "records.0.AGE", "int_type"),
        ({"AGE": 35.5}, "records.0.AGE", "int_type"),
        ({"SEX": True}, "records.0.SEX", "int_type"),
        ({"LIMIT_BAL": "1000"}, "records.0.LIMIT_BAL", "float_type"),
        ({"LIMIT_BAL": None}, "records.0.LIMIT_BAL", "float_type"),
        ({"LIMIT_BAL": 1e300}, "records.0.LIMIT_BAL", "less_than_equal"),
    ],
)
def test_bad_field_is_422_naming_it(
    client: TestClient, record: dict[str, Any], change: dict[str, Any], field: str, kind: str
) -> None:
    response = client.post("/predict", json={"records": [{**record, **change}]})

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {"field": field, "type": kind} in [
        {"field": d["field"], "type": d["type"]} for d in detail
    ]


def test_missing_field_is_422(client: TestClient, record: dict[str, Any]) -> None:
    del record["PAY_AMT6"]
    response = client.post("/predict", json={"records": [record]})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "records.0.PAY_AMT6"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_422(client: TestClient, record: dict[str, Any], token: str) -> None:
    body = json.dumps({"records": [record]}).replace(
        f'"BILL_AMT3": {json.dumps(record["BILL_AMT3"])}', f'"BILL_AMT3": {token}'
    )
    assert token in body

    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert "records.0.BILL_AMT3" in response.text or "json_invalid" in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"records": []}, "records"),
        ({}, "records"),
        ([], ""),
        ({"records": [1]}, "records.0"),
        ({"records": [{}], "extra": 1}, "extra"),
    ],
)
def test_bad_shapes_are_422(client: TestClient, body: Any, field: str) -> None:
    response = client.post("/predict", json=body)

    assert response.status_code == 422
    assert field in [d["field"] for d in response.json()["detail"]] or field == ""


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"records": [', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_oversized_batch_is_422(model_dir: Path, record: dict[str, Any]) -> None:
    for small in make_client(
        ServeSettings(model_path=model_dir, max_batch=3, log_predictions=False)
    ):
        response = small.post("/predict", json={"records": [record] * 4})

        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == "records"


def test_oversized_body_is_413(model_dir: Path, record: dict[str, Any]) -> None:
    settings = ServeSettings(model_path=model_dir, max_body_bytes=2048, log_predictions=False)
    for small in make_client(settings):
        response = small.post("/predict", json={"records": [record] * 10})

        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"


def test_auth_is_required_when_a_token_is_set(
    auth_client: TestClient, record: dict[str, Any]
) -> None:
    body = {"records": [record]}

    missing = auth_client.post("/predict", json=body)
    wrong = auth_client.post("/predict", json=body, headers={"Authorization": "Bearer nope"})
    right = auth_client.post(
        "/predict", json=body, headers={"Authorization": "Bearer s3cret-token-value"}
    )

    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert auth_client.get("/health").status_code == 200  # probes need no token
    schema = auth_client.get("/openapi.json").json()
    assert schema["paths"]["/predict"]["post"]["security"] == [{"bearer": []}]


def test_openapi_lists_the_signature_fields(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    body_ref = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body_ref["schema"]["$ref"] == "#/components/schemas/PredictRequest"
    record = schema["components"]["schemas"]["Record"]
    assert len(record["properties"]) == 23
    assert set(record["required"]) == set(record["properties"])
    assert record["additionalProperties"] is False
    assert record["properties"]["AGE"]["type"] == "integer"
    assert record["properties"]["LIMIT_BAL"]["type"] == "number"


def _logged_lines(
    model_dir: Path, body: bytes, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The prediction log lines one /predict request writes."""
    for logged in make_client(ServeSettings(model_path=model_dir)):
        sink = io.StringIO()
        logged.app.state.prediction_log.stream = sink  # type: ignore[attr-defined]
        response = logged.post(
            "/predict",
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        assert response.status_code == 200, response.text
        return [json.loads(x) for x in sink.getvalue().splitlines()]
    raise AssertionError("no client")


def test_prediction_log_line(model_dir: Path, record: dict[str, Any]) -> None:
    body = json.dumps({"records": [record]}).encode()

    [line] = _logged_lines(model_dir, body, headers={"X-Request-ID": "abc"})

    assert line["request_id"] == "abc"
    assert line["model_version"] == "7"
    assert line["features"] == [record]
    assert len(line["probability"]) == 1
    assert line["latency_ms"] > 0


def test_a_pretty_printed_body_still_logs_one_line(model_dir: Path, record: dict[str, Any]) -> None:
    body = json.dumps({"records": [record, record]}, indent=2).encode()

    [line] = _logged_lines(model_dir, body)

    assert line["features"] == [record, record]


def test_the_log_keeps_the_numbers_as_sent(model_dir: Path, record: dict[str, Any]) -> None:
    sent = {**record, "AGE": 35.0, "LIMIT_BAL": 20000}

    [line] = _logged_lines(model_dir, json.dumps({"records": [sent]}).encode())

    assert line["features"] == [sent]
    assert isinstance(line["features"][0]["LIMIT_BAL"], int)


def _with_repeat(record: dict[str, Any], key: str, value: Any) -> bytes:
    """A record's JSON with `key` given a second time (json.dumps cannot write that)."""
    text = json.dumps(record)
    return f'{text[:-1]}, "{key}": {json.dumps(value)}}}'.encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (lambda r: b'{"records": [' + _with_repeat(r, "AGE", 40) + b"]}", "records.0.AGE"),
        (  # the second record repeats a key; the value is even the same
            lambda r: (
                b'{"records": ['
                + json.dumps(r).encode()
                + b", "
                + _with_repeat(r, "LIMIT_BAL", r["LIMIT_BAL"])
                + b"]}"
            ),
            "records.1.LIMIT_BAL",
        ),
        (  # the envelope repeats "records": the first would be silently dropped
            lambda r: (
                b'{"records": ['
                + json.dumps(r).encode()
                + b'], "records": ['
                + json.dumps(r).encode()
                + b"]}"
            ),
            "records",
        ),
    ],
)
def test_a_key_given_twice_is_422_naming_it(
    client: TestClient, record: dict[str, Any], body: Any, field: str
) -> None:
    response = client.post(
        "/predict", content=body(record), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == field
    assert error["type"] == "duplicate_key"
    assert "more than once" in error["msg"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_body_not_declared_as_json_is_415(
    client: TestClient, record: dict[str, Any], content_type: str
) -> None:
    response = client.post(
        "/predict",
        content=json.dumps({"records": [record]}).encode(),
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/vnd+json"]
)
def test_json_media_types_are_accepted(
    client: TestClient, record: dict[str, Any], content_type: str
) -> None:
    response = client.post(
        "/predict",
        content=json.dumps({"records": [record]}).encode(),
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 200, response.text
