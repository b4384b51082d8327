"""`mlops predict`: score a CSV or Parquet file with a registered version (logic: ml.batch)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ml.cli.base import mlops_command
from ml.errors import ConfigError


class Engine(StrEnum):
    """Where `mlops predict` scores."""

    local = "local"
    spark = "spark"


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
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="local: this process, streaming one file. spark: a Spark job (pyspark, the "
            "spark extra) over a file or a directory of part files; OUTPUT and REJECTS become "
            "directories of part files (docs/serving.md).",
        ),
    ] = Engine.local,
    spark_master: Annotated[
        str,
        typer.Option("--spark-master", help="Spark master for --engine spark, e.g. local[4]."),
    ] = "local[2]",
) -> None:
    """Score a file with the version's booster and contract, as serving does; print a summary."""
    from ml.batch import ModelRef
    from ml.registry import Registry
    from ml.settings import MLSettings

    ref = ModelRef.parse(model)
    registry = Registry(MLSettings().resolved_tracking_uri())
    if engine is Engine.spark:
        if reasons:
            raise ConfigError("--reasons runs on the local engine only; drop --engine spark")
        from ml.spark.scoring import predict as score_on_spark
        from ml.spark.session import spark_session

        spark = spark_session(spark_master, app_name="credit-risk-predict")
        summary = score_on_spark(
            spark, registry, ref, input_, str(output), str(rejects) if rejects else None, id_column
        )
    else:
        from ml.batch import predict as score_file

        summary = score_file(
            registry, ref, input_, output, rejects, id_column, threads, reasons=reasons
        )
    typer.echo(summary.to_json())
