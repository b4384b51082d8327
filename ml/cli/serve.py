"""`mlops serve`: run the scoring service (imports `serve` lazily; `ml` stays out of serving).

With no registry configured (MLFLOW_TRACKING_URI, SERVE_TRACKING_URI, SERVE_MODEL_PATH all
unset) it serves from the embedded store every other verb uses, so `make run` then `make serve`
serves the production model. The URI reaches serve (and its uvicorn workers) through the
environment; serve/ itself is not changed.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ml.cli.base import err_console, mlops_command


def embedded_registry_env(env: dict[str, str] | os._Environ[str]) -> str | None:
    """Export the embedded store's URI as MLFLOW_TRACKING_URI when nothing else says where to
    serve from; return the URI exported (None when the environment already decides)."""
    if any(env.get(k) for k in ("MLFLOW_TRACKING_URI", "SERVE_TRACKING_URI", "SERVE_MODEL_PATH")):
        return None
    from ml.settings import MLSettings

    uri = MLSettings().resolved_tracking_uri()
    env["MLFLOW_TRACKING_URI"] = uri
    return uri


@mlops_command
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address (default: SERVE_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Bind port (default: SERVE_PORT, 8000).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="uvicorn worker processes (default: SERVE_WORKERS)."),
    ] = None,
) -> None:
    """Serve models:/<SERVE_MODEL_NAME>@<SERVE_MODEL_ALIAS>, following alias changes."""
    # Workers rebuild settings from the environment: pass the flags on through it.
    for key, value in (("SERVE_HOST", host), ("SERVE_PORT", port), ("SERVE_WORKERS", workers)):
        if value is not None:
            os.environ[key] = str(value)
    uri = embedded_registry_env(os.environ)
    if uri is not None:
        err_console.print(f"serving from the embedded registry {uri}", highlight=False)

    from serve.server import run
    from serve.settings import ServeSettings

    run(ServeSettings())
