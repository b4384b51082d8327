"""`mlops train` and `mlops evaluate`: parse, call `ml.train` / `ml.evaluate`, print."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ml.cli.base import console, mlops_command
from ml.features import MODEL_KINDS, ModelKind
from ml.settings import MLSettings

if TYPE_CHECKING:
    from ml.evaluate import Evaluation

DataOption = Annotated[
    str | None,
    typer.Option("--data", help="CSV path, https:// URL or s3:// URI (default: data/ snapshot)."),
]
ShaOption = Annotated[
    str | None,
    typer.Option("--data-sha256", help="Expected sha256 of the uncompressed CSV."),
]


def _metrics_table(title: str, rows: dict[str, Evaluation]) -> Table:
    table = Table(title=title)
    table.add_column("model")
    for metric in ("roc_auc", "pr_auc", "ks", "brier", "log_loss"):
        table.add_column(metric, justify="right")
    for name, ev in rows.items():
        table.add_row(
            name, *(f"{v:.4f}" for v in (ev.roc_auc, ev.pr_auc, ev.ks, ev.brier, ev.log_loss))
        )
    return table


@mlops_command
def train(
    model: Annotated[
        ModelKind | None,
        typer.Option("--model", help="Train only this candidate (default: both, best wins)."),
    ] = None,
    data: DataOption = None,
    data_sha256: ShaOption = None,
) -> None:
    """Train the candidates, log them to MLflow and register the champion as a new version."""
    from ml.train import train as run_training

    settings = MLSettings()
    kinds: tuple[ModelKind, ...] = (model,) if model else MODEL_KINDS
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("starting", total=None)
        result = run_training(
            settings,
            kinds,
            data_source=data,
            data_sha256=data_sha256,
            progress=lambda msg: progress.update(task, description=msg),
        )
    console.print(
        _metrics_table("Holdout metrics", {c.kind: c.evaluation for c in result.candidates})
    )
    console.print(
        f"Registered [bold]{result.version.name}[/] version [bold]{result.version.version}[/] "
        f"({result.champion.kind}, ROC-AUC {result.champion.evaluation.roc_auc:.4f}, "
        f"run {result.champion.run_id}). Promote it by editing promotions.yaml."
    )


@mlops_command
def evaluate(
    version: Annotated[
        int | None, typer.Option("--version", help="Registered version (default: the newest).")
    ] = None,
    data: DataOption = None,
    data_sha256: ShaOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score a registered version on the holdout (or on the whole of --data) and print metrics."""
    from ml.errors import RegistryError
    from ml.evaluate import evaluate_version
    from ml.features import FEATURES, TARGET
    from ml.holdout import load_dataset
    from ml.registry import Registry
    from ml.train_config import load_train_config

    settings = MLSettings()
    registry = Registry(settings.resolved_tracking_uri())
    versions = registry.versions(settings.model_name)
    if not versions:
        raise RegistryError(f"{settings.model_name} has no registered version; run `mlops train`")
    chosen = version if version is not None else versions[-1].version
    if registry.get_version(settings.model_name, chosen) is None:
        raise RegistryError(f"{settings.model_name} version {chosen} does not exist")
    config = load_train_config(settings.train_config)
    if data:
        from ml.data import ingest
        from ml.validation import validate

        frame, _ = ingest(data, data_sha256)
        validate(frame)
        x, y = frame[FEATURES], frame[TARGET].to_numpy()
    else:
        holdout, _ = load_dataset(settings.data_source, settings.data_sha256, config)
        x, y = holdout.x_test, holdout.y_test
    result = evaluate_version(settings.resolved_tracking_uri(), settings.model_name, chosen, x, y)
    if as_json:
        console.print_json(json.dumps({"version": chosen, **result.as_metrics()}))
    else:
        console.print(_metrics_table(f"{settings.model_name} v{chosen}", {f"v{chosen}": result}))
