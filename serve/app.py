"""The app factory: lifespan starts the watcher, errors map to HTTP status once, every response
names the model version, and the OpenAPI body of /predict is the loaded model's signature."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from serve.errors import InvalidInputError, ServeError
from serve.logging import PredictionLog
from serve.metrics import Metrics
from serve.model_store import ModelStore
from serve.routes import health, metadata, metrics, predict
from serve.scoring import Scorer
from serve.settings import ServeSettings
from serve.watcher import Watcher

log = logging.getLogger("serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KNOWN_ROUTES = frozenset(
    {"/predict", "/health", "/ready", "/metadata", "/metrics", "/docs", "/openapi.json"}
)


# Label values come from this fixed set, so a client cannot create new series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ModelVersionMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware cost): adds X-Model-Version, counts and times requests."""

    def __init__(self, app: ASGIApp, store: ModelStore, metrics: Metrics) -> None:
        self.app = app
        self.store = store
        self.metrics = metrics
        # (route, method, status) → its bound counter and histogram; `labels()` costs a lock.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.metrics.requests.labels(route, method, str(status)),
                self.metrics.latency.labels(route),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        path = scope.get("path", "")
        route = path if path in KNOWN_ROUTES else "other"

        async def wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-model-version" for k, _ in headers):
                    model = self.store.current
                    version = model.version if model else "none"
                    headers.append((b"x-model-version", version.encode()))
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            method = scope.get("method", "")
            self._observe(
                route,
                method if method in KNOWN_METHODS else "other",
                status,
                time.perf_counter() - started,
            )


def _error(status: int, code: str, detail: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(_: Request, exc: ServeError) -> JSONResponse:
        detail: Any = exc.detail if isinstance(exc, InvalidInputError) else str(exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = _error(exc.status, exc.code, detail)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]),
                "loc": list(e["loc"]),
                "msg": e["msg"],
            }
            for e in exc.errors()
        ]
        return _error(422, "validation_error", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, "http_error", exc.detail)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        return _error(400, "client_disconnected", "the client closed the connection mid-body")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _error(500, "internal_error", "unexpected server error; see the logs")


def _install_openapi(app: FastAPI, store: ModelStore, settings: ServeSettings) -> None:
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        model = store.current
        key = model.version if model else None
        if cache.get("key", object()) == key and "schema" in cache:
            schema: dict[str, Any] = cache["schema"]
            return schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        post = schema["paths"]["/predict"]["post"]
        if model is not None:
            body = model.parser.request_model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components.update(body.pop("$defs", {}))
            components["PredictRequest"] = body
            post["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
                },
            }
            post["description"] = (
                f"{post.get('description', '')}\n\nSchema of {model.name} version "
                f"{model.version} ({len(model.columns)} features, from its MLflow signature)."
            )
        if settings.api_token is not None:
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            post["security"] = [{"bearer": []}]
        cache.update(key=key, schema=schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: ServeSettings | None = None, *, start_watcher: bool = True) -> FastAPI:
    """Build the service. `start_watcher=False` leaves loading to the caller (tests)."""
    settings = settings or ServeSettings()
    store = ModelStore()
    metrics_ = Metrics()
    watcher = Watcher(settings, store, metrics_)
    scorer = Scorer(settings.scoring_thread_count())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_watcher:
            watcher.start()
        try:
            yield
        finally:
            watcher.stop()
            scorer.close()

    app = FastAPI(
        title="credit-risk scoring",
        version="1",
        description=(
            "Probability of default for credit-card clients. POST /predict with "
            '`{"records": [{...}, ...]}`; every response carries X-Model-Version.'
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics_
    app.state.watcher = watcher
    app.state.scorer = scorer
    app.state.started_at = time.time()
    app.state.prediction_log = PredictionLog(enabled=settings.log_predictions)
    for router in (predict.router, health.router, metadata.router, metrics.router):
        app.include_router(router)
    _install_error_handlers(app)
    _install_openapi(app, store, settings)
    app.add_middleware(ModelVersionMiddleware, store=store, metrics=metrics_)
    return app


def factory() -> FastAPI:
    """uvicorn entry point (`serve.app:factory`, factory=True): settings from the environment."""
    return create_app(ServeSettings())
