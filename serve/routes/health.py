"""Liveness (/health: degraded but alive when the registry is away) and readiness (/ready)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serve.deps import StoreDep, WatcherDep
from serve.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(store: StoreDep, watcher: WatcherDep) -> Health:
    """Always 200 while the process runs; `degraded`, with the reason in one line, whenever the
    version the alias points at is not the one served (registry unreachable, alias unset, a
    version that failed to load); it keeps serving the model it has."""
    model = store.current
    state = watcher.health
    reason = state.degraded_reason
    if model is None and reason is None:
        reason = "no model loaded yet"
    return Health(
        status="degraded" if reason else "ok",
        reason=reason,
        model_version=model.version if model else None,
        source=model.source if model else None,
        alias_version=state.alias_version,
    )


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(store: StoreDep) -> JSONResponse:
    """200 once a model is loaded and warmed, 503 before."""
    model = store.current
    body = Ready(ready=model is not None, model_version=model.version if model else None)
    return JSONResponse(body.model_dump(), status_code=200 if model else 503)
