"""ml/tfplan.py and `mlops pr terraform-plan`: the summary first, the plan fenced, folded and cut
to fit."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ml import tfplan
from ml.cli import app

PLAN = """Terraform will perform the following actions:

  # aws_ecr_repository.serve will be created
  + resource "aws_ecr_repository" "serve" {
      + name = "credit-risk-serve"
    }

Plan: 1 to add, 0 to change, 0 to destroy.
"""


def test_summary_environment_and_commit_come_first() -> None:
    markdown = tfplan.render("staging", PLAN, "0123456789abcdef")
    first, _, facts = markdown.splitlines()[:3]
    assert first == "**Plan: 1 to add, 0 to change, 0 to destroy.**"
    assert facts == "environment `staging` · commit `0123456789ab`"
    assert 'resource "aws_ecr_repository" "serve"' in markdown


def test_no_changes_and_output_only_plans_are_named() -> None:
    no_change = "No changes. Your infrastructure matches the configuration.\n"
    assert tfplan.summarize(no_change).startswith("No changes.")
    assert tfplan.summarize("Changes to Outputs:\n  + url = x\n") == ("Only outputs change.")
    assert "No plan summary found" in tfplan.summarize("Error: boom\n")


def test_backticks_in_the_plan_cannot_close_the_fence() -> None:
    plan = PLAN + '  + command = "````sh -c x````"\n'
    lines = tfplan.render("production", plan, None).splitlines()
    fences = [line for line in lines if line.startswith("`")]
    assert fences[0] == "`````text"
    assert fences[-1] == "`````"


def test_an_oversized_plan_keeps_its_end_and_fits_a_comment() -> None:
    plan = "  + padding\n" * 20_000 + "Plan: 9 to add, 0 to change, 0 to destroy.\n"
    markdown = tfplan.render("staging", plan, None)
    assert len(markdown) < 65_000
    assert "characters cut" in markdown
    assert markdown.rstrip().endswith("</details>")
    assert "Plan: 9 to add" in markdown.split("`text", 1)[1]  # the end survived the cut


def test_cli_writes_the_file_and_refuses_a_missing_plan(tmp_path: Path) -> None:
    plan, out = tmp_path / "plan.txt", tmp_path / "plan.md"
    plan.write_text(PLAN)
    args = ["pr", "terraform-plan", "--env", "staging", "--plan-file"]
    result = CliRunner().invoke(app, [*args, str(plan), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("**Plan: 1 to add")
    missing = CliRunner().invoke(app, [*args, str(tmp_path / "no")])
    assert missing.exit_code == 2
    assert "plan file not found" in missing.output
