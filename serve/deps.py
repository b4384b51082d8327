"""Request dependencies as `Annotated` aliases; settings come through `get_settings` so tests can
override it with `app.dependency_overrides[get_settings] = ...`.

All `async def`: FastAPI runs a plain `def` dependency in a worker thread, a thread hop each.
None of these block. /predict reads app.state directly (docs/performance.md).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from serve.errors import NotReadyError, UnauthorizedError
from serve.metrics import Metrics
from serve.model_store import LoadedModel, ModelStore
from serve.settings import ServeSettings
from serve.watcher import Watcher


async def get_settings(request: Request) -> ServeSettings:
    """The settings the app was created with."""
    settings: ServeSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[ServeSettings, Depends(get_settings)]


async def get_store(request: Request) -> ModelStore:
    """The model holder."""
    store: ModelStore = request.app.state.store
    return store


StoreDep = Annotated[ModelStore, Depends(get_store)]


def current_model(store: ModelStore) -> LoadedModel:
    """The current model, taken once for the whole request; 503 before the first load."""
    model = store.current
    if model is None:
        raise NotReadyError("no model loaded yet")
    return model


async def get_model(store: StoreDep) -> LoadedModel:
    """`current_model` as a dependency."""
    return current_model(store)


ModelDep = Annotated[LoadedModel, Depends(get_model)]


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus instruments."""
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def get_watcher(request: Request) -> Watcher:
    """The registry watcher (health state, reload counters)."""
    watcher: Watcher = request.app.state.watcher
    return watcher


WatcherDep = Annotated[Watcher, Depends(get_watcher)]


def check_token(request: Request, settings: ServeSettings) -> None:
    """Bearer auth when SERVE_API_TOKEN is set; constant-time comparison."""
    if settings.api_token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings.api_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise UnauthorizedError("missing or invalid bearer token")
