"""/metrics in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serve.deps import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(m: MetricsDep) -> Response:
    """Requests, latency, predictions by decision, model version, reloads and failures."""
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
