"""`mlops pr open|comment|terraform-plan`: the pull request side of the workflows.

- `open`: the promotion PR a retrain opens (branch, edit promotions.yaml, push, `gh pr create`).
- `comment`: one sticky PR comment (and the job summary) from a markdown file.
- `terraform-plan`: render `terraform show` output as that comment's markdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ml import atomic_output
from ml.cli.base import console, err_console, mlops_command
from ml.errors import ConfigError

pr_app = typer.Typer(
    name="pr",
    help="Pull requests: open the promotion PR, post sticky comments, render terraform plans.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich's help renderer costs ~0.3 s per start
)


@pr_app.command("open")
@mlops_command
def open_pr(
    version: Annotated[
        int,
        typer.Option("--version", min=1, envvar="MODEL_VERSION", help="Version to promote."),
    ],
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The desired-state file to edit.")
    ] = Path("promotions.yaml"),
    model: Annotated[
        str | None, typer.Option("--model", help="Registered model (default: ML_MODEL_NAME).")
    ] = None,
    clone: Annotated[
        str | None,
        typer.Option(
            "--clone",
            help="Work in a fresh clone of this remote (URL, path or remote name such as "
            "origin) instead of the current checkout, which is left untouched.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON line: model, version, branch, url.")
    ] = False,
    include: Annotated[
        list[Path] | None,
        typer.Option(
            "--include", help="Also commit this path (repeatable): dvc.lock, reports/, pointers."
        ),
    ] = None,
) -> None:
    """Branch, set the version in promotions.yaml, push and open the PR (never merges).

    Checks `gh`, the `origin` remote and a clean checkout first (exit 12, nothing changed); the
    branch, commit and push it makes are reported on stderr, the PR URL on stdout.
    """
    import json

    from ml.adapters import actions
    from ml.promotions.promotion_pr import open_promotion_pr, open_promotion_pr_in_clone
    from ml.registry import Registry
    from ml.settings import MLSettings

    settings = MLSettings()
    registry = Registry(settings.resolved_tracking_uri())
    name = model or settings.model_name
    if clone and include:
        raise ConfigError("--include commits files of this checkout: drop --clone")
    if clone:
        opened = open_promotion_pr_in_clone(registry, name, version, clone, file)
    else:
        opened = open_promotion_pr(registry, name, version, file, include=include or ())
    for step in opened.steps:
        err_console.print(step, markup=False, highlight=False)
    actions.write_outputs(pr_url=opened.url)
    if as_json:
        payload = {
            "model": name,
            "version": version,
            "branch": opened.branch,
            "commit": opened.commit,
            "url": opened.url,
        }
        typer.echo(json.dumps(payload, sort_keys=True))
    else:
        typer.echo(opened.url)


@pr_app.command("comment")
@mlops_command
def comment(
    marker: Annotated[str, typer.Option("--marker", help="Identifies the sticky comment.")],
    body_file: Annotated[Path, typer.Option("--body-file", help="Markdown to post.")],
    title: Annotated[str, typer.Option("--title", help="Heading above the markdown.")] = "",
    if_changed: Annotated[
        list[str] | None,
        typer.Option("--if-changed", help="Post only if the PR touches this path (repeatable)."),
    ] = None,
) -> None:
    """Create or update ONE pull request comment (and the job summary) from a markdown file.

    Environment: GITHUB_TOKEN, GITHUB_REPOSITORY, PR_NUMBER (or a pull_request event).
    """
    from ml import sticky_comment

    if not body_file.is_file():
        raise ConfigError(f"{body_file} not found (hint: did the plan step run?)")
    text = body_file.read_text(encoding="utf-8", errors="replace")
    console.print(sticky_comment.sticky_comment(marker, title, text, if_changed=if_changed or ()))


@pr_app.command("terraform-plan")
@mlops_command
def terraform_plan(
    env: Annotated[str, typer.Option("--env", help="Environment or root the plan is for.")],
    plan_file: Annotated[Path, typer.Option("--plan-file", help="Output of terraform show.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Markdown file (default: stdout).")
    ] = None,
    sha: Annotated[
        str | None, typer.Option("--sha", envvar="PR_HEAD_SHA", help="Commit planned.")
    ] = None,
) -> None:
    """Render a terraform plan as the markdown of its PR comment (summary first, plan folded)."""
    from ml.tfplan import render

    if not plan_file.is_file():
        raise ConfigError(f"plan file not found: {plan_file} (hint: run make tf-plan first)")
    markdown = render(env, plan_file.read_text(encoding="utf-8", errors="replace"), sha)
    if output:
        atomic_output.write_text(output, markdown + "\n")
    else:
        typer.echo(markdown)
