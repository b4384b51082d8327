"""/predict: body → float32 matrix in contract (serve.request_parser) → one predictor call
(serve.scoring) → response, metrics, one log line.

The body is read and validated here (not by FastAPI's body parsing) because its model depends
on the loaded model's signature and contract; the OpenAPI document gets the same schema (see
serve.app).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response

from serve.deps import check_token, current_model
from serve.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from serve.logging import PredictionLog, request_id
from serve.metrics import Metrics
from serve.reasons import add_reasons
from serve.schemas import ErrorBody, PredictResponse
from serve.scoring import Scorer
from serve.settings import ServeSettings

router = APIRouter(tags=["predict"])

REASONS_PARAMETER: dict[str, Any] = {
    "name": "reasons",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "Add each declined prediction's reason codes (adverse-action reasons): the "
    "top 4 features by the booster's own per-feature contributions, with reviewed texts; never a "
    "protected attribute. Off by default: a request without it costs what it did.",
}

GENERIC_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    # Read from the query string in the handler (no FastAPI dependency: see `predict`).
    "parameters": [REASONS_PARAMETER],
}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body of {declared} bytes exceeds {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_content_type(request: Request) -> None:
    """Refuse a body declared as anything but JSON (`application/json`, `…+json`); a request
    without a Content-Type is read as JSON."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.partition(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        shown = media[:60] or "(empty)"
        raise UnsupportedMediaTypeError(
            f"Content-Type {shown} is not JSON: send the body as application/json"
        )


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
        413: {"model": ErrorBody, "description": "Body larger than SERVE_MAX_BODY_BYTES"},
        415: {"model": ErrorBody, "description": "Content-Type is not application/json"},
        422: {
            "model": ErrorBody,
            "description": "A field is unknown, missing, given twice, of the wrong type or out of "
            "the model's contract (each error names the record and the field; the first 20 are "
            "listed)",
        },
        503: {"model": ErrorBody, "description": "No model loaded yet"},
    },
    openapi_extra=GENERIC_BODY,
)
async def predict(request: Request) -> Response:
    """Score 1..MAX_BATCH records: `{"records": [{<the 23 features>}, ...]}`; every value must
    be within the served version's contract."""
    started = time.perf_counter()
    # The app state directly, not FastAPI dependencies: resolving five of them costs about as
    # much as scoring a record (docs/performance.md).
    state = request.app.state
    settings: ServeSettings = state.settings
    check_token(request, settings)
    check_content_type(request)
    model = current_model(state.store)
    metrics: Metrics = state.metrics
    prediction_log: PredictionLog = state.prediction_log
    scorer: Scorer = state.scorer
    body = await read_body(request, settings.max_body_bytes)
    parsed = model.parser.parse(body)  # InvalidInputError (422) naming each bad field
    scores = await scorer.score(model, parsed.matrix)
    probabilities = scores.tolist()
    threshold = settings.threshold
    decisions = ["decline" if p >= threshold else "approve" for p in probabilities]
    predictions: list[dict[str, Any]] = [
        {"probability": p, "decision": d} for p, d in zip(probabilities, decisions, strict=True)
    ]
    codes = None
    if "reasons" in request.query_params:  # `?reasons=` too: refused, as FastAPI would
        codes = add_reasons(request.query_params["reasons"], model, parsed.matrix, predictions)
    metrics.count_predictions(decisions)
    metrics.observe_scores(model.version, scores, threshold)
    payload = {
        "model": {"name": model.name, "version": model.version},
        "threshold": threshold,
        "predictions": predictions,
    }
    rid = request_id(request.headers.get("x-request-id"))
    prediction_log.write(
        rid=rid,
        model_name=model.name,
        model_version=model.version,
        request=parsed,
        probabilities=scores,
        decisions=decisions,
        latency_s=time.perf_counter() - started,
        # The codes, never the texts (the version's contract has those): a short line, and
        # never a protected attribute (they are never reasons).
        extra=None if codes is None else {"reasons": codes},
    )
    return Response(
        msgspec.json.encode(payload),
        media_type="application/json",
        headers={"X-Request-ID": rid, "X-Model-Version": model.version},
    )
