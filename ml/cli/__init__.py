"""The `mlops` command line. Verbs only parse and print; the work is in plain functions.

Startup stays fast (`mlops --help` ≤ 0.5 s): this module and the verb modules import typer and
the standard library only; MLflow, pydantic settings, pandas and the like are imported inside the
verbs that need them (tests/unit/cli/test_imports.py fails otherwise).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ml.cli import data as data_verbs
from ml.cli import deploy as deploy_verbs
from ml.cli import features as features_verbs
from ml.cli import images as images_verbs
from ml.cli import migrate as migrate_verbs
from ml.cli import monitor as monitor_verbs
from ml.cli import platform as platform_verbs
from ml.cli import pr as pr_verbs
from ml.cli import predict as predict_verbs
from ml.cli import promote as promote_verbs
from ml.cli import release as release_verbs
from ml.cli import serve as serve_verbs
from ml.cli import spark as spark_verbs
from ml.cli import train as train_verbs
from ml.cli.base import prepare_process, state

app = typer.Typer(
    name="mlops",
    help="GitOps for the credit-risk model: train, promote through promotions.yaml, serve.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich's help renderer costs ~0.3 s per start
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full traceback on errors.")
    ] = False,
) -> None:
    """GitOps for the credit-risk model: train, promote through promotions.yaml, serve."""
    state.traceback = traceback
    prepare_process(ctx.invoked_subcommand)


app.command("train")(train_verbs.train)
app.command("evaluate")(train_verbs.evaluate)
app.command("gate")(train_verbs.gate)
app.command("register")(train_verbs.register)
app.add_typer(promote_verbs.promote_app, name="promote")
app.command("history")(promote_verbs.history)
app.command("rollback")(promote_verbs.rollback)
app.command("versions")(promote_verbs.versions)
app.add_typer(pr_verbs.pr_app, name="pr")
app.command("serve")(serve_verbs.serve)
app.add_typer(images_verbs.images_app, name="images")
app.add_typer(release_verbs.release_app, name="release")
app.command("deploy")(deploy_verbs.deploy)
app.command("smoke")(deploy_verbs.smoke)
app.command("db-upgrade")(migrate_verbs.db_upgrade)
app.add_typer(monitor_verbs.monitor_app, name="monitor")
app.add_typer(data_verbs.data_app, name="data")
app.command("notify")(monitor_verbs.notify)
app.command("preflight")(platform_verbs.preflight)
app.command("bootstrap")(platform_verbs.bootstrap)
app.command("reviewed-plan")(platform_verbs.reviewed_plan)
app.add_typer(platform_verbs.platform_app, name="platform")
app.command("predict")(predict_verbs.predict)
app.add_typer(features_verbs.features_app, name="features")
app.add_typer(spark_verbs.spark_app, name="spark")


def run() -> None:
    """The `mlops` console script: the CLI owns this process (see `ml.cli.base.prepare_process`)."""
    state.own_process = True
    app()
