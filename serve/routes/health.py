"""Liveness (/health: degraded but alive when the registry is away) and readiness (/ready)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from serve.deps import StoreDep, WatcherDep
from serve.online_features import OnlineFeatures
from serve.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(request: Request, store: StoreDep, watcher: WatcherDep) -> Health:
    """Always 200 while the process runs; `degraded`, with the reason in one line, whenever the
    version the alias points at is not the one served (registry unreachable, alias unset, a
    version that failed to load), or, with scoring by id on, the feature store does not answer
    (/predict keeps working); it keeps serving the model it has."""
    model = store.current
    state = watcher.health
    reason = state.degraded_reason
    if model is None and reason is None:
        reason = "no model loaded yet"
    features: OnlineFeatures | None = request.app.state.features
    feature_state: Literal["ok", "unavailable"] | None = None
    if features is not None:
        problem = await features.check()
        feature_state = "ok" if problem is None else "unavailable"
        if problem is not None:
            reason = f"{reason}; {problem}" if reason else problem
    return Health(
        status="degraded" if reason else "ok",
        reason=reason,
        model_version=model.version if model else None,
        source=model.source if model else None,
        alias_version=state.alias_version,
        feature_store=feature_state,
        feature_snapshot=(
            features.current.snapshot if features is not None and features.current else None
        ),
    )


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(store: StoreDep) -> JSONResponse:
    """200 once a model is loaded and warmed, 503 before."""
    model = store.current
    body = Ready(ready=model is not None, model_version=model.version if model else None)
    return JSONResponse(body.model_dump(), status_code=200 if model else 503)
