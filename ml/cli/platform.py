"""`mlops preflight`, `mlops bootstrap` and `mlops platform ...`: the GitHub and AWS side of
adopting the repository.

All read config/platform.yaml (ml/platform/config.py); the work is in ml.platform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ml.cli.base import console, err_console, mlops_command
from ml.errors import ConfigError

PlatformFile = Annotated[
    Path, typer.Option("--file", help="The one list of GitHub configuration names.")
]

platform_app = typer.Typer(
    help="config/platform.yaml: its table in the docs, the workflows' reads, retrain's sources.",
    no_args_is_help=True,
)


@mlops_command
def preflight(
    env: Annotated[
        str,
        typer.Option(
            "--env",
            help="Scope the job runs in: repository, or a GitHub environment (staging, ...).",
        ),
    ],
    workflow: Annotated[
        list[str] | None,
        typer.Option(
            "--workflow", help="Only the names this workflow reads (repeatable; default: all)."
        ),
    ] = None,
    repo: Annotated[
        str | None,
        typer.Option("--repo", help="OWNER/NAME for the protection check (GITHUB_REPOSITORY)."),
    ] = None,
    file: PlatformFile = Path("config/platform.yaml"),
) -> None:
    """Every variable and secret the job needs is set; the environments are protected.

    Variables are read from the job's environment under their own names; secrets as their value
    or as `${{ secrets.X != '' }}` (never printed). With GITHUB_TOKEN (actions: read) it also
    checks each environment's reviewers and main-only deployment branch policy. Exit 2 with
    the full list of what is missing.
    """
    from ml.adapters.github import client_from_env
    from ml.platform.config import load_platform
    from ml.platform.preflight import preflight as check

    config = load_platform(file)
    report = check(config, env, workflow or (), github=client_from_env(repo=repo))
    for req, ok in report.checked:
        mark = "[green]ok     [/]" if ok else "[red]MISSING[/]"
        console.print(f"{mark} {req.kind} {req.name} ({req.scope})", highlight=False)
    if report.protection is None:
        err_console.print(
            "notice: environment protection not checked (no GITHUB_TOKEN / GH_TOKEN)",
            highlight=False,
        )
    else:
        for problem in report.protection:
            console.print(f"[red]UNSAFE [/] {problem}", highlight=False)
    problems = report.problems
    if problems:
        raise ConfigError(
            f"preflight found {len(problems)} problem(s) for {env}; run `mlops bootstrap` or "
            "set them (docs/adopting.md):\n" + "\n".join(f"  - {p}" for p in problems)
        )
    console.print(f"preflight ok: {len(report.checked)} names set in {env}")


@mlops_command
def bootstrap(
    repo: Annotated[str, typer.Option("--repo", help="GitHub repository OWNER/NAME.")],
    account: Annotated[str, typer.Option("--account", help="AWS account id (12 digits).")],
    region: Annotated[str, typer.Option("--region", help="AWS region, e.g. eu-west-1.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print every call; change nothing.")
    ] = False,
    step: Annotated[
        list[str] | None,
        typer.Option(
            "--step",
            help="Run only these steps: state-bucket, codeowners, github, mlflow-users "
            "(repeatable; default: all, in that order).",
        ),
    ] = None,
    outputs_dir: Annotated[
        Path | None,
        typer.Option(
            "--outputs-dir",
            help="Directory of <root>.json files from `terraform output -json` "
            "(default: `make -s tf-output ROOT=<root>`).",
        ),
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option("--bucket", help="State bucket name (default: <name>-tfstate-<account>)."),
    ] = None,
    team: Annotated[
        list[str] | None,
        typer.Option(
            "--team",
            help="KEY=ORG/SLUG or KEY=user:LOGIN for a team of config/platform.yaml "
            "(default: <owner>/<key>).",
        ),
    ] = None,
    file: PlatformFile = Path("config/platform.yaml"),
) -> None:
    """State bucket, CODEOWNERS, GitHub environments/protection/variables/secrets, MLflow users.

    Needs AWS credentials of the account, `gh` logged in as a repository admin, and for the
    MLflow users MLFLOW_ADMIN_PASSWORD. Secret values are never printed.
    """
    from ml.platform.bootstrap.run import STEPS, Options, run
    from ml.platform.config import load_platform
    from ml.settings import MLSettings

    options = Options(
        repo=repo,
        account=account,
        region=region,
        dry_run=dry_run,
        steps=tuple(step) if step else STEPS,
        outputs_dir=outputs_dir,
        bucket=bucket,
        teams=tuple(team or ()),
        experiment=MLSettings().experiment,
    )
    run(
        load_platform(file),
        options,
        lambda line: console.print(line, highlight=False, markup=False),
    )


@mlops_command
def reviewed_plan(
    root: Annotated[str, typer.Option("--root", help="platform, staging or production.")],
    find: Annotated[
        bool,
        typer.Option(
            "--find",
            help="Find the artefact the plan run of the pull request merged as HEAD uploaded "
            "under this name (GITHUB_TOKEN with actions, contents and pull-requests: read; "
            "GITHUB_REPOSITORY).",
        ),
    ] = False,
    repo: Annotated[
        str | None, typer.Option("--repo", help="OWNER/NAME (default: GITHUB_REPOSITORY).")
    ] = None,
) -> None:
    """The artefact name of ROOT's reviewed plan: tfplan-<root>-<git tree of infra/terraform>.

    terraform.yml's plan job uploads the plan under this name; the apply on main computes it
    from the merged commit and, with --find, takes it only from the pull_request run of
    terraform.yml at the head of the pull request merged as HEAD, whose workflow file is
    main's (step outputs name, artifact_id, run_id). Anything else is refused with the reason:
    exit 2, nothing applied.
    """
    from ml.adapters import actions
    from ml.adapters.github import client_from_env
    from ml.reviewed_plan import find_reviewed_plan, main_commit, plan_artifact_name, terraform_tree

    name = plan_artifact_name(root, terraform_tree())
    if not find:
        console.print(name, highlight=False)
        actions.write_outputs(name=name)
        return
    reader = client_from_env(repo=repo)
    if reader is None:
        raise ConfigError(
            "--find reads the GitHub API: set GITHUB_TOKEN (actions, contents, pull-requests: read)"
        )
    plan = find_reviewed_plan(reader, name, main_commit())
    console.print(
        f"reviewed plan {plan.name}: artefact {plan.artifact_id} of pull request "
        f"#{plan.pull_request}'s run {plan.run_url or plan.run_id} "
        f"(head {plan.head_sha[:12]}, {plan.created_at})",
        highlight=False,
    )
    actions.write_outputs(name=name, artifact_id=str(plan.artifact_id), run_id=str(plan.run_id))


@platform_app.command("table")
@mlops_command
def table(
    write: Annotated[
        Path | None,
        typer.Option("--write", help="Rewrite the table between the markers of this document."),
    ] = None,
    file: PlatformFile = Path("config/platform.yaml"),
) -> None:
    """The markdown table of every variable and secret (docs/adopting.md embeds it)."""
    from ml.platform.config import load_platform
    from ml.platform.docs_table import render_table, write_table

    config = load_platform(file)
    if write is None:
        print(render_table(config))
        return
    changed = write_table(config, write)
    console.print(f"{write}: table {'updated' if changed else 'already up to date'}")


@platform_app.command("check")
@mlops_command
def check(
    workflows: Annotated[Path, typer.Option("--workflows", help="The workflows directory.")] = Path(
        ".github/workflows"
    ),
    file: PlatformFile = Path("config/platform.yaml"),
) -> None:
    """Each workflow reads exactly the variables and secrets the list names for it (exit 2)."""
    from ml.platform.config import load_platform
    from ml.platform.workflows import workflow_problems

    problems = workflow_problems(load_platform(file), workflows)
    if problems:
        raise ConfigError(
            f"{len(problems)} difference(s):\n" + "\n".join(f"  - {p}" for p in problems)
        )
    console.print("config/platform.yaml and the workflows agree")


@platform_app.command("data-source")
@mlops_command
def data_source(
    uri: Annotated[
        list[str] | None,
        typer.Option("--uri", help="A retrain data source (repeatable; empty: the snapshot)."),
    ] = None,
    file: PlatformFile = Path("config/platform.yaml"),
) -> None:
    """Refuse retrain data sources the allow-list (retrain_data) does not name (exit 2)."""
    from ml.platform.config import check_data_sources, load_platform

    uris = uri or []
    check_data_sources(load_platform(file), uris)
    console.print(
        f"allowed: {', '.join(repr(u) for u in uris) or 'nothing given'}", highlight=False
    )
