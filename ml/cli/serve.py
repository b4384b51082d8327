"""`mlops serve`: run the scoring service (imports `serve` lazily; `ml` stays out of serving)."""

from __future__ import annotations

from typing import Annotated

import typer

from ml.cli.base import mlops_command


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
    import os

    from serve.server import run
    from serve.settings import ServeSettings

    # Workers rebuild settings from the environment: pass the flags on through it.
    for key, value in (("SERVE_HOST", host), ("SERVE_PORT", port), ("SERVE_WORKERS", workers)):
        if value is not None:
            os.environ[key] = str(value)
    run(ServeSettings())
