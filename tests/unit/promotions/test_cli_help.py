"""Every promotion verb and option has help text (gto's test_commands_help)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from ml.cli import app

VERBS = [
    ["promote", "validate"],
    ["promote", "plan"],
    ["promote", "apply"],
    ["promote", "status"],
    ["history"],
    ["rollback"],
]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v))
def test_every_verb_and_option_has_help(verb: list[str]) -> None:
    command = typer.main.get_command(app)
    for part in verb:
        command = command.commands[part]  # type: ignore[attr-defined]
    assert command.help, verb
    for param in command.params:
        assert getattr(param, "help", None), f"{verb} {param.name} has no help"
    result = CliRunner().invoke(app, [*verb, "--help"])
    assert result.exit_code == 0
    assert "--file" in result.output
