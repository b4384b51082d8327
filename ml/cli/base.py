"""What every CLI verb shares: consoles, the `--traceback` switch and the error → exit code map."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

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
            from rich.markup import escape

            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(exc.exit_code) from None

    return wrapper
