"""What every CLI verb shares: consoles, the `--traceback` switch, the error → exit code map, and
the process set-up of every verb (masked output, bounded waits, SIGTERM as an interruption).

Every failure ends in one line on stderr with a documented exit code: an `MlopsError` with its
own; an unreachable service 4; a cut-short input 3; an interruption 130 (SIGINT) or 143
(SIGTERM); anything unexpected 1, naming the exception and where it was raised. With
`mlops --traceback VERB` the exception propagates instead. Whatever is printed goes through
serve.redaction first (the tracking URI's password and the like become `***`).
"""

from __future__ import annotations

import functools
import json
import signal
import zlib
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import click
import typer

from ml.errors import MlopsError

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich `Console` built on first use: importing rich costs ~0.1 s that `--help` skips."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def unwrap(self) -> Console:
        """The real console (for rich objects that take one, e.g. `Progress`)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unwrap(), name)


# soft_wrap: rich would break a long line at 80 columns when there is no terminal (CI logs),
# splitting a `file:line` reference in two; the terminal wraps for display anyway.
console = _LazyConsole(soft_wrap=True)
err_console = _LazyConsole(stderr=True, soft_wrap=True)

# The training data, as `mlops train` and `mlops data ingest` take it.
DataOption = Annotated[
    str | None,
    typer.Option("--data", help="CSV path, https:// URL or s3:// URI (default: data/ snapshot)."),
]
ShaOption = Annotated[
    str | None,
    typer.Option("--data-sha256", help="Expected sha256 of the uncompressed CSV."),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object (one line) instead of tables.")
]


def emit_json(payload: dict[str, object]) -> None:
    """A step's result as one line of JSON on stdout: an orchestrator reads the last line."""
    typer.echo(json.dumps(payload, sort_keys=True))


P = ParamSpec("P")
R = TypeVar("R")


class _State:
    traceback: bool = False
    # True in the `mlops` console script (`ml.cli.run`): the process is the CLI's own, so the
    # process-wide set-up applies (log records, service budgets, SIGTERM). In-process callers
    # (CliRunner in tests, a notebook) get the masked output only.
    own_process: bool = False


state = _State()


class Terminated(BaseException):
    """SIGTERM (how Airflow, ECS and CI cancel a step), raised in the main thread so that every
    `finally` and `except BaseException` runs: temporaries are removed, nothing half-written."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def prepare_process(verb: str | None) -> None:
    """Set up a CLI process before its verb runs: mask credentials in everything it prints and
    logs, bound every wait on a service, and turn SIGTERM into `Terminated`.

    `mlops serve` keeps its own settings (its registry budget, uvicorn's signal handling).
    Only the masking of stdout and stderr applies when the CLI runs inside another process.
    """
    from serve.redaction import redact_standard_streams

    redact_standard_streams(logs=state.own_process)
    if verb == "serve" or not state.own_process:
        return
    from ml.waits import apply_defaults

    apply_defaults()
    signal.signal(signal.SIGTERM, _raise_terminated)


def fail(message: str, code: int) -> typer.Exit:
    """Print `error: MESSAGE` on stderr, credentials masked; the Exit to raise.

    One line, unless the message was written as a list (indented lines: every failed data
    validation check, say); then its layout is kept.
    """
    from rich.markup import escape

    from serve.redaction import redact, scrub

    listed = any(line.startswith("  ") for line in message.splitlines()[1:])
    text = redact(message) if listed else scrub(message, limit=2000)
    err_console.print(
        f"[bold red]error:[/] {escape(text)}",
        highlight=False,
        soft_wrap=True,
    )
    return typer.Exit(code)


def _unexpected(exc: Exception) -> typer.Exit:
    from ml.waits import is_connection_failure, unreachable_message, where

    if is_connection_failure(exc):
        import os

        uri = os.environ.get("ML_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
        service = "the MLflow registry" if "mlflow" in type(exc).__module__ else "a service"
        message = unreachable_message(
            service, where(uri) if uri else "an unknown address", exc, "check it is up, then rerun"
        )
        return fail(message, 4)
    if isinstance(exc, EOFError | zlib.error):
        return fail(f"an input ends early or is corrupt: {exc}; fetch the file again", 3)
    from serve.redaction import one_line

    return fail(
        f"unexpected {one_line(exc)}; rerun as `mlops --traceback …` to see the traceback", 1
    )


def mlops_command(func: Callable[P, R]) -> Callable[P, R]:
    """Map every failure to its exit code and a one-line message, in one place.

    With `mlops --traceback VERB` the exception propagates instead, for debugging.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        # typer.Exit is not click's Exit (typer >= 0.16): both are a verb's chosen exit code.
        except (typer.Exit, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except MlopsError as exc:
            if state.traceback:
                raise
            raise fail(str(exc), exc.exit_code) from None
        except (KeyboardInterrupt, Terminated) as exc:
            signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
            name = signal.Signals(signum).name
            raise fail(
                f"interrupted by {name}: stopped before the end; no half-written output is left",
                128 + signum,
            ) from None
        except Exception as exc:
            if state.traceback:
                raise
            raise _unexpected(exc) from None

    return wrapper
