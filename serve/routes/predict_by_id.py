"""/predict/by-id: applicant ids → their vectors from the online feature store (one Redis round
trip, serve/online_features.py) → the served version's contract check and scorer, exactly as
/predict → the same answer, naming the feature snapshot.

A route of its own rather than an `ids` form of /predict: /predict's body schema stays the served
model's signature (its OpenAPI document, its fast parser), /predict never depends on Redis (a
Redis outage is a 503 here and nothing there), and the two show as separate routes in the
request metrics and logs, which is how an operator tells the two traffic kinds apart.
"""

from __future__ import annotations

import functools
import time
from typing import Annotated, Any

import msgspec
import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ml.contract import ModelContract
from ml.feature_store.layout import ID_PATTERN, SnapshotInfo, contract_id
from serve.deps import check_token, current_model
from serve.errors import FeaturesDisabledError, FeaturesIncompatibleError, InvalidInputError
from serve.logging import PredictionLog, request_id
from serve.metrics import Metrics
from serve.model_store import LoadedModel
from serve.online_features import Fetched, OnlineFeatures
from serve.request_parser import ParsedRequest
from serve.routes.predict import read_body
from serve.schemas import ErrorBody, ModelRef, Prediction
from serve.scoring import Scorer
from serve.settings import ServeSettings

router = APIRouter(tags=["predict"])

ApplicantId = Annotated[str, StringConstraints(pattern=ID_PATTERN.pattern)]


class ByIdRequest(BaseModel):
    """`{"ids": ["1", "42", ...]}`: applicant ids of the current feature snapshot (the OpenAPI
    schema; bodies are decoded by `parse_ids`, in C)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[ApplicantId | int] = Field(
        min_length=1, description="Applicant ids (1..SERVE_MAX_BATCH), as materialised."
    )


class FeatureSnapshotRef(BaseModel):
    """The feature snapshot the vectors came from."""

    feature_set: str
    snapshot: int
    contract_id: str
    data_version: str


class ByIdPrediction(Prediction):
    """The score of one applicant."""

    id: str


class ByIdResponse(BaseModel):
    """Predictions in the order of the ids."""

    model: ModelRef
    threshold: float
    features: FeatureSnapshotRef
    predictions: list[ByIdPrediction]


@functools.lru_cache(maxsize=16)
def _column_order(
    names: tuple[str, ...], stored: tuple[str, ...]
) -> tuple[int, ...] | list[str] | None:
    """Where each of the model's features sits in the snapshot's vectors: None when in the same
    order, the missing names (a list) when the snapshot lacks some. Once per (model, snapshot)
    pair, not per request."""
    missing = [n for n in names if n not in stored]
    if missing:
        return missing
    order = tuple(stored.index(n) for n in names)
    return None if order == tuple(range(len(stored))) else order


# id(contract) -> (the contract, its id): contract_id hashes the contract's JSON, once per model.
_CONTRACT_IDS: dict[int, tuple[ModelContract, str]] = {}


def _checked_at_write(model: LoadedModel, snapshot: SnapshotInfo) -> bool:
    """Whether the snapshot was materialised under the contract this version serves: then every
    vector passed that very check before it was written (refused rows never reach Redis; the
    check compares float32 values as stored), and its header, verified on read, names that
    contract, so the check is not repeated per request (~25-50 us of a one-id request)."""
    contract = model.contract
    known = _CONTRACT_IDS.get(id(contract))
    if known is None or known[0] is not contract:
        known = (contract, contract_id(contract))
        if len(_CONTRACT_IDS) > 8:
            _CONTRACT_IDS.clear()
        _CONTRACT_IDS[id(contract)] = known
    return known[1] == snapshot.contract_id


def _matrix(model: LoadedModel, fetched: Fetched) -> np.ndarray:
    """The vectors in the served version's column order, checked against its contract (the
    same check /predict runs on a parsed body) unless they were checked against it when written;
    409 naming the applicant and field if not."""
    snapshot = fetched.snapshot
    order = _column_order(tuple(c.name for c in model.columns), snapshot.features)
    if isinstance(order, list):
        raise FeaturesIncompatibleError(
            f"snapshot {snapshot.snapshot} lacks features {order[:5]} that model version "
            f"{model.version} takes: materialize with its contract"
        )
    matrix = fetched.matrix[:, order] if order is not None else fetched.matrix
    if _checked_at_write(model, snapshot):
        return matrix
    violations = model.kernel.check(matrix)
    if violations:
        first = violations.first(1)[0]
        raise FeaturesIncompatibleError(
            f"snapshot {snapshot.snapshot}: {violations.count} value(s) outside model version "
            f"{model.version}'s contract, e.g. row {first.row}: {first.message()}"
        )
    return np.ascontiguousarray(matrix)


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str | int]


_DECODER = msgspec.json.Decoder(_Body)


def parse_ids(body: bytes, max_batch: int) -> list[str]:
    """The ids of a body (decoded in C, as /predict's fast path); 422 naming the problem."""

    def invalid(field: str, message: str) -> InvalidInputError:
        return InvalidInputError(f"{field}: {message}", [{"field": field, "msg": message}], 1)

    try:
        ids = _DECODER.decode(body).ids
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise invalid("body", f'expected {{"ids": ["<id>", ...]}}: {str(exc)[:80]}') from None
    if not ids:
        raise invalid("ids", "give at least one id")
    if len(ids) > max_batch:
        raise invalid("ids", f"at most {max_batch} ids per request (SERVE_MAX_BATCH)")
    out = [str(i) for i in ids]
    for n, ident in enumerate(out):
        if not ID_PATTERN.match(ident):
            raise invalid(f"ids.{n}", "an id is 1-64 letters, digits, '_', '.' or '-'")
    return out


@router.post(
    "/predict/by-id",
    response_model=ByIdResponse,
    responses={
        401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
        404: {
            "model": ErrorBody,
            "description": "An id is not in the current snapshot (the answer names the snapshot "
            "and the ids), or by-id is off (SERVE_FEATURES_REDIS_URL unset)",
        },
        409: {"model": ErrorBody, "description": "The snapshot does not fit the served version"},
        422: {"model": ErrorBody, "description": "Malformed body or id"},
        503: {"model": ErrorBody, "description": "No model yet, or the feature store is down"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ByIdRequest.model_json_schema()}},
        }
    },
)
async def predict_by_id(request: Request) -> Response:
    """Score applicants by id with their features from the current snapshot."""
    started = time.perf_counter()
    state = request.app.state
    settings: ServeSettings = state.settings
    check_token(request, settings)
    features: OnlineFeatures | None = state.features
    if features is None:
        raise FeaturesDisabledError(
            "scoring by id is off: set SERVE_FEATURES_REDIS_URL to the feature store's Redis"
        )
    model = current_model(state.store)
    ids = parse_ids(await read_body(request, settings.max_body_bytes), settings.max_batch)
    fetched = await features.fetch(ids)
    matrix = _matrix(model, fetched)
    scorer: Scorer = state.scorer
    scores = await scorer.score(model, matrix)
    probabilities = scores.tolist()
    threshold = settings.threshold
    decisions = ["decline" if p >= threshold else "approve" for p in probabilities]
    metrics: Metrics = state.metrics
    metrics.count_predictions(decisions)
    metrics.observe_scores(model.version, scores, threshold)
    snapshot = fetched.snapshot
    ref = {
        "feature_set": features.keys.namespace,
        "snapshot": snapshot.snapshot,
        "contract_id": snapshot.contract_id,
        "data_version": snapshot.data_version,
    }
    payload: dict[str, Any] = {
        "model": {"name": model.name, "version": model.version},
        "threshold": threshold,
        "features": ref,
        "predictions": [
            {"id": i, "probability": p, "decision": d}
            for i, p, d in zip(ids, probabilities, decisions, strict=True)
        ],
    }
    rid = request_id(request.headers.get("x-request-id"))
    prediction_log: PredictionLog = state.prediction_log
    if prediction_log.enabled:
        names = [c.name for c in model.columns]
        records = [dict(zip(names, row, strict=True)) for row in matrix.tolist()]
        prediction_log.write(
            rid=rid,
            model_name=model.name,
            model_version=model.version,
            request=ParsedRequest(records=records, matrix=matrix),
            probabilities=scores,
            decisions=decisions,
            latency_s=time.perf_counter() - started,
            extra={"ids": ids, "feature_snapshot": ref},
        )
    return Response(
        msgspec.json.encode(payload),
        media_type="application/json",
        headers={
            "X-Request-ID": rid,
            "X-Model-Version": model.version,
            "X-Feature-Snapshot": str(snapshot.snapshot),
        },
    )
