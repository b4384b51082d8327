"""The app factory: lifespan starts the watcher, errors map to HTTP status once (small bodies,
never a stack trace or a credential), every response names the model version, and the OpenAPI
body of /predict is the loaded model's signature annotated with its contract."""

from __future__ import annotations

import logging
import sys
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
from serve.online_features import OnlineFeatures
from serve.redaction import install_log_redaction, one_line, scrub
from serve.request_parser import MAX_ERRORS
from serve.routes import health, metadata, metrics, predict, predict_by_id
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
    {
        "/predict",
        "/predict/by-id",
        "/health",
        "/ready",
        "/metadata",
        "/metrics",
        "/docs",
        "/openapi.json",
    }
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


def _error(
    status: int, code: str, message: str, detail: Any = None, count: int | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": scrub(message), "detail": detail}
    if count is not None:
        body["count"] = count
    return JSONResponse(body, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(_: Request, exc: ServeError) -> JSONResponse:
        if isinstance(exc, InvalidInputError):
            return _error(exc.status, exc.code, str(exc), exc.detail, exc.count)
        detail = getattr(exc, "detail", None)  # structured where the error carries one
        response = _error(
            exc.status, exc.code, str(exc), detail if detail is not None else scrub(str(exc))
        )
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        detail = [
            {
                "field": scrub(".".join(str(p) for p in e["loc"][1:]), limit=80),
                "loc": [scrub(str(p), limit=80) for p in e["loc"]],
                "msg": scrub(str(e["msg"]), limit=80),
            }
            for e in errors[:MAX_ERRORS]
        ]
        first = f"{detail[0]['field']}: {detail[0]['msg']}" if detail else "invalid request"
        return _error(422, "validation_error", first, detail, len(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, "http_error", str(exc.detail), scrub(str(exc.detail)))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        message = "the client closed the connection mid-body"
        return _error(400, "client_disconnected", message, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # One line in the log (what and where), nothing of it in the answer.
        log.error("unexpected error in %s %s: %s", request.method, request.url.path, one_line(exc))
        message = "unexpected server error; see the logs"
        return _error(500, "internal_error", message, message)


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
                f"{model.version} ({len(model.columns)} features, from its MLflow signature; "
                f"bounds from its {model.contract_source} contract)."
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


def configure_logging() -> None:
    """The service's own log lines (model swaps, load failures) on stderr, one per event."""
    logger = logging.getLogger("serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def create_app(settings: ServeSettings | None = None, *, start_watcher: bool = True) -> FastAPI:
    """Build the service. `start_watcher=False` leaves loading to the caller (tests)."""
    settings = settings or ServeSettings()
    install_log_redaction(settings.secrets())
    store = ModelStore()
    metrics_ = Metrics()
    watcher = Watcher(settings, store, metrics_)
    scorer = Scorer(settings.scoring_thread_count())
    # The online feature store only when configured: redis-py is imported on first use.
    features = OnlineFeatures(settings, metrics_) if settings.features_redis_url else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_watcher:
            watcher.start()
        try:
            yield
        finally:
            watcher.stop()
            scorer.close()
            if features is not None:
                await features.close()

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
    app.state.features = features
    app.state.started_at = time.time()
    app.state.prediction_log = PredictionLog(enabled=settings.log_predictions)
    for router in (
        predict.router,
        predict_by_id.router,
        health.router,
        metadata.router,
        metrics.router,
    ):
        app.include_router(router)
    _install_error_handlers(app)
    _install_openapi(app, store, settings)
    app.add_middleware(ModelVersionMiddleware, store=store, metrics=metrics_)
    return app


def factory() -> FastAPI:
    """uvicorn entry point (`serve.app:factory`, factory=True): settings from the environment."""
    configure_logging()
    return create_app(ServeSettings())
