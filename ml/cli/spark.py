"""`mlops spark submit`: run a training or scoring job on EMR Serverless and wait for its end;
`mlops spark bundle`: build (and upload) the code that job runs.

Exit codes: 0 the job succeeded; 21 it failed; 22 it was cancelled; 23 it did not finish in
ML_SPARK_TIMEOUT_MINUTES (it was cancelled); 2 the ML_SPARK_* settings are missing; 4 EMR
Serverless did not answer. `--json` prints one line an orchestrator reads (the Airflow DAG).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ml.cli.base import console, err_console, mlops_command

spark_app = typer.Typer(
    help="Spark jobs on EMR Serverless (training with the Spark backend, batch scoring).",
    no_args_is_help=True,
)


class Job(StrEnum):
    """Which job to run."""

    train = "train"
    score = "score"


@spark_app.command(
    "submit", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
@mlops_command
def submit(
    ctx: typer.Context,
    job: Annotated[
        Job,
        typer.Option(
            "--job",
            help="train: `mlops train` on the Spark backend; score: `mlops predict --engine "
            "spark`. Arguments after `--` go to that verb.",
        ),
    ],
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the job run id and return at once.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON line (run id, state, logs).")
    ] = False,
) -> None:
    """Submit a Spark job to the EMR Serverless application and wait until it ends."""
    from ml.spark.submit import SparkJobSettings
    from ml.spark.submit import submit as submit_job

    settings = SparkJobSettings()

    def progress(state: object) -> None:
        if not as_json:
            err_console.print(f"job {getattr(state, 'run_id', '')}: {getattr(state, 'state', '')}")

    done = submit_job(
        settings, job.value, list(ctx.args), wait_for_end=not no_wait, progress=progress
    )
    state = done.state.state if done.state else "SUBMITTED"
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "application_id": done.application_id,
                    "job": job.value,
                    "job_run_id": done.run_id,
                    "state": state,
                    "logs": done.logs,
                },
                sort_keys=True,
            )
        )
    else:
        console.print(
            f"Spark job [bold]{done.run_id}[/] ({job.value}) on {done.application_id}: {state}. "
            f"Logs: {done.logs}",
            highlight=False,
        )


@spark_app.command("bundle")
@mlops_command
def bundle(
    output: Annotated[
        Path, typer.Option("--output", help="Directory the bundle is written to.")
    ] = Path("dist/spark"),
    upload: Annotated[
        bool,
        typer.Option(
            "--upload", help="Also upload it under ML_SPARK_CODE_URI (the batch bucket's code/)."
        ),
    ] = False,
) -> None:
    """Build the job's code bundle (entry.py, code.zip, project.tar.gz), byte for byte the same
    from the same tree; print each file's sha256."""
    from ml.spark.bundle import build
    from ml.spark.bundle import upload as upload_bundle
    from ml.spark.submit import SparkJobSettings

    built = build(Path.cwd(), output)
    for path in built.paths:
        console.print(f"{built.digests[path.name]}  {path}", highlight=False)
    if upload:
        settings = SparkJobSettings()
        _, _, code = settings.require()
        for uri in upload_bundle(built, code, settings.region):
            console.print(f"uploaded {uri}", highlight=False)
