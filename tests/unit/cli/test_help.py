"""Every `mlops` verb and option has help text (a verb without it fails here)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ml.cli import app


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    # Typer vendors its own click, so recognise groups and options by shape, not by class.
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found.extend(_walk(sub, (*path, name)))
    return found


COMMANDS = _walk(typer.main.get_command(app), ())


def test_the_expected_verbs_exist() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {
        "train", "evaluate", "serve", "history", "rollback",
        "promote validate", "promote plan", "promote apply", "promote status",
        "pr open", "pr comment", "pr terraform-plan",
    } <= paths  # fmt: skip


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "mlops" for p, _ in COMMANDS]
)
def test_help(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert (command.help or "").strip(), f"mlops {' '.join(path)} has no help text"
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert (param.help or "").strip(), f"option {param.opts} of {path} has no help"
