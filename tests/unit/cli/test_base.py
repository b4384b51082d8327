"""One map from failures to exit codes and one-line messages (credentials masked), for every
verb: `MlopsError`s, unreachable services, cut-short inputs, interruptions, the unexpected."""

from __future__ import annotations

import zlib

import pytest
import typer
from typer.testing import CliRunner

from ml.cli.base import Terminated, mlops_command, state
from ml.errors import ConfigError, RegistryError


def _run(exc: BaseException) -> tuple[int, str]:
    app = typer.Typer()

    @app.command()
    @mlops_command
    def verb() -> None:
        raise exc

    result = CliRunner().invoke(app, [])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (ConfigError("bad --out"), 2, "bad --out"),
        (RegistryError("read x: http://u:s3cret-pw@h down"), 4, "http://u:***@h down"),
        (
            ConnectionError("HTTPConnectionPool(host='h', port=5): Connection refused"),
            4,
            "refused the connection",
        ),
        (EOFError("Compressed file ended before the end-of-stream marker"), 3, "ends early"),
        (zlib.error("invalid block type"), 3, "corrupt"),
        (Terminated(15), 143, "interrupted by SIGTERM"),
        (KeyboardInterrupt(), 130, "interrupted by SIGINT"),
        (ValueError("http://u:s3cret-pw@h"), 1, "unexpected ValueError: http://u:***@h"),
    ],
)
def test_every_failure_is_one_line_with_its_code(
    exc: BaseException, code: int, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "traceback", False)

    exit_code, stderr = _run(exc)

    assert exit_code == code
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert words in lines[0]
    assert "s3cret-pw" not in stderr


@pytest.mark.parametrize("exc", [typer.Exit(20), SystemExit(20)], ids=["typer.Exit", "SystemExit"])
def test_a_verbs_chosen_exit_code_passes_through_unchanged(exc: BaseException) -> None:
    # typer.Exit is not click's Exit: mapping it as "unexpected" would turn 20 into 1.
    exit_code, stderr = _run(exc)

    assert exit_code == 20
    assert "unexpected" not in stderr
