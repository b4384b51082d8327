"""`mlops predict`: score a CSV or Parquet file with a registered version (logic: ml.batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ml.cli.base import mlops_command


@mlops_command
def predict(
    model: Annotated[
        str,
        typer.Option("--model", help="NAME@ALIAS or NAME/VERSION, e.g. credit-risk@production."),
    ],
    input_: Annotated[
        str, typer.Option("--input", help="CSV or Parquet file: a path or s3://bucket/key.")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", help="Scores (.parquet or .csv): row, ID, probability, model_version."
        ),
    ],
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Rows out of the model's contract, with the reason "
            "(default: OUTPUT's name + .rejects.parquet).",
        ),
    ] = None,
    id_column: Annotated[
        str, typer.Option("--id-column", help="Input column copied to every output row.")
    ] = "ID",
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="XGBoost threads (default: every usable CPU)."),
    ] = None,
    reasons: Annotated[
        bool,
        typer.Option(
            "--reasons",
            help="Add each row's reason codes (reason_1..4 and reason_1_text..) from the "
            "booster's exact contributions, texts from config/governance.yaml.",
        ),
    ] = False,
) -> None:
    """Score a file with the version's booster and contract, as serving does; print a summary."""
    from ml.batch import ModelRef
    from ml.batch import predict as score_file
    from ml.registry import Registry
    from ml.settings import MLSettings

    ref = ModelRef.parse(model)
    registry = Registry(MLSettings().resolved_tracking_uri())
    summary = score_file(
        registry, ref, input_, output, rejects, id_column, threads, reasons=reasons
    )
    typer.echo(summary.to_json())
