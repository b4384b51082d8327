"""`mlops train` and `mlops evaluate`: parse, call `ml.train` / `ml.evaluate`, print.

`train` prints and outputs (GITHUB_OUTPUT `version`) the version it registers: the retrain
workflow reads it. `evaluate --report` writes the candidate-versus-production table a reviewer
reads (build/evaluation.md and the job summary).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ml.cli.base import console, mlops_command
from ml.errors import ConfigError, RegistryError

if TYPE_CHECKING:
    from rich.table import Table

    from ml.evaluate import Evaluation

DataOption = Annotated[
    str | None,
    typer.Option("--data", help="CSV path, https:// URL or s3:// URI (default: data/ snapshot)."),
]
ShaOption = Annotated[
    str | None,
    typer.Option("--data-sha256", help="Expected sha256 of the uncompressed CSV."),
]


class Candidate(StrEnum):
    """Which candidate(s) to train."""

    xgboost = "xgboost"
    logreg = "logreg"
    both = "both"


def _metrics_table(title: str, rows: dict[str, Evaluation]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("model")
    for metric in ("roc_auc", "pr_auc", "ks", "brier", "log_loss"):
        table.add_column(metric, justify="right")
    for name, ev in rows.items():
        table.add_row(
            name, *(f"{v:.4f}" for v in (ev.roc_auc, ev.pr_auc, ev.ks, ev.brier, ev.log_loss))
        )
    return table


def _params(raw: str | None) -> dict[str, object]:
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params is not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise ConfigError('--params must be a JSON object, e.g. {"xgboost": {"max_depth": 4}}')
    return value


@mlops_command
def train(
    model: Annotated[
        Candidate,
        typer.Option("--model", help="Train one candidate, or both (the best is registered)."),
    ] = Candidate.both,
    data: DataOption = None,
    data_sha256: ShaOption = None,
    params: Annotated[
        str | None,
        typer.Option(
            "--params",
            help='JSON merged over config/train.yaml: {"xgboost": {...}} or flat for --model.',
        ),
    ] = None,
) -> None:
    """Train the candidates, log them to MLflow and register the champion as a new version."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ml import github
    from ml.settings import MLSettings
    from ml.train import train as run_training

    if data and not data_sha256:
        raise ConfigError("--data needs --data-sha256 (the checksum ingest verifies)")
    overrides = _params(params)
    kinds = ("xgboost", "logreg") if model == Candidate.both else (model.value,)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console.unwrap(),
    ) as progress:
        task = progress.add_task("starting", total=None)
        result = run_training(
            MLSettings(),
            kinds,  # type: ignore[arg-type]
            data_source=data,
            data_sha256=data_sha256,
            params=overrides,
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
    github.write_outputs(version=str(result.version.version))


@mlops_command
def evaluate(
    version: Annotated[
        int | None,
        typer.Option(
            "--version", envvar="MODEL_VERSION", help="Registered version (default: newest)."
        ),
    ] = None,
    data: DataOption = None,
    data_sha256: ShaOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Compare the version's logged metrics with production's (markdown; no scoring).",
        ),
    ] = False,
    output: Annotated[
        Path, typer.Option("--output", help="Where --report writes its markdown.")
    ] = Path("build/evaluation.md"),
) -> None:
    """Score a registered version on the holdout (or --data) and print metrics; or --report."""
    from ml.registry import Registry
    from ml.settings import MLSettings

    settings = MLSettings()
    registry = Registry(settings.resolved_tracking_uri())
    versions = registry.versions(settings.model_name)
    if not versions:
        raise RegistryError(f"{settings.model_name} has no registered version; run `mlops train`")
    chosen = version if version is not None else versions[-1].version
    if chosen not in {v.version for v in versions}:
        raise RegistryError(f"{settings.model_name} version {chosen} does not exist")
    if report:
        from ml import github
        from ml.promotions.promotion_pr import compare

        text = compare(registry, settings.model_name, chosen).report()
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        github.append_summary(text)
        typer.echo(text)
        return

    from ml.evaluate import evaluate_version
    from ml.features import FEATURES, TARGET
    from ml.holdout import load_dataset
    from ml.train_config import load_train_config

    if data:
        from ml.data import ingest
        from ml.validation import validate

        frame, _ = ingest(data, data_sha256)
        validate(frame)
        x, y = frame[FEATURES], frame[TARGET].to_numpy()
    else:
        config = load_train_config(settings.train_config)
        holdout, _ = load_dataset(settings.data_source, settings.data_sha256, config)
        x, y = holdout.x_test, holdout.y_test
    result = evaluate_version(registry, settings.model_name, chosen, x, y)
    if as_json:
        console.print_json(json.dumps({"version": chosen, **result.as_metrics()}))
    else:
        console.print(_metrics_table(f"{settings.model_name} v{chosen}", {f"v{chosen}": result}))
