"""What every CLI verb shares: consoles, the `--traceback` switch and the error → exit code map."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ml.errors import MlopsError

# soft_wrap: rich would break a long line at 80 columns when there is no terminal (CI logs),
# splitting a `file:line` reference in two; the terminal wraps for display anyway.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


class _State:
    traceback: bool = False


state = _State()


def mlops_command(func: Callable[P, R]) -> Callable[P, R]:
    """Map every `MlopsError` to its exit code and a one-line message, in one place.

    With `mlops --traceback VERB` the exception propagates instead, for debugging.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MlopsError as exc:
            if state.traceback:
                raise
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(exc.exit_code) from None

    return wrapper
