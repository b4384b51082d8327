"""`mlops train`, `evaluate`, `gate` and `register`: parse, call, print.

`train` prints and outputs (GITHUB_OUTPUT `version`) the version it registers: the retrain
workflow reads it. `evaluate --report` writes the candidate-versus-production table a reviewer
reads (build/evaluation.md and the job summary).

The same pipeline as separate steps, for an orchestrator (the Airflow DAG) that runs evaluation
and gates between training and registration: `data ingest` (ml/cli/data.py) → `train
--no-register` (the champion run id) → `evaluate --run R` → `gate --run R` (the floors of
config/gates.yaml) → `register --run R` (the version). With `--json` each prints one JSON object
on its last stdout line, which the next step takes its input from.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ml import atomic_output
from ml.cli.base import (
    DataOption,
    JsonOption,
    ShaOption,
    console,
    emit_json,
    mlops_command,
)
from ml.errors import ConfigError, RegistryError

if TYPE_CHECKING:
    from rich.table import Table

    from ml.evaluate import Evaluation
    from ml.registry import Registry
    from ml.settings import MLSettings


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
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Register the champion (default), or only log the runs and print the champion "
            "run id for `mlops register --run`.",
        ),
    ] = True,
    as_json: JsonOption = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            help="Also write the candidates' holdout metrics, rounded, as JSON (a DVC metric).",
        ),
    ] = None,
    run_file: Annotated[
        Path | None,
        typer.Option("--run-file", help="Also write the --json line here (the DVC pipeline)."),
    ] = None,
) -> None:
    """Train the candidates, log them to MLflow and register the champion as a new version."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ml.adapters import actions
    from ml.registry import Registry
    from ml.settings import MLSettings
    from ml.train import register_run, train_candidates

    if data and not data_sha256:
        raise ConfigError("--data needs --data-sha256 (the checksum ingest verifies)")
    overrides = _params(params)
    kinds = ("xgboost", "logreg") if model == Candidate.both else (model.value,)
    settings = MLSettings()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console.unwrap(),
        disable=as_json,  # stdout is the JSON line then
    )
    with progress:
        task = progress.add_task("starting", total=None)
        runs = train_candidates(
            settings,
            kinds,  # type: ignore[arg-type]
            data_source=data,
            data_sha256=data_sha256,
            params=overrides,
            progress=lambda msg: progress.update(task, description=msg),
        )
        version = None
        if register:
            progress.update(task, description=f"registering {runs.champion.kind}")
            registry = Registry(settings.resolved_tracking_uri())
            version = register_run(registry, settings.model_name, runs.champion.run_id).version
    champion = runs.champion
    payload: dict[str, object] = {
        "model": settings.model_name,
        "run_id": champion.run_id,
        "model_type": champion.kind,
        "roc_auc": champion.evaluation.roc_auc,
        "candidates": {c.kind: c.run_id for c in runs.candidates},
        "data_source": runs.snapshot.source,
        "data_sha256": runs.snapshot.sha256,
        "version": version.version if version else None,
    }
    if metrics_file or run_file:
        from ml.pipeline import rounded, write_json

        if metrics_file:
            write_json(
                metrics_file,
                {
                    "champion": champion.kind,
                    **{c.kind: rounded(c.evaluation.as_metrics()) for c in runs.candidates},
                },
            )
        if run_file:
            atomic_output.write_text(run_file, json.dumps(payload, sort_keys=True) + "\n")
    if as_json:
        emit_json(payload)
    else:
        console.print(
            _metrics_table("Holdout metrics", {c.kind: c.evaluation for c in runs.candidates})
        )
        if version is None:
            console.print(
                f"Trained; champion {champion.kind} (ROC-AUC {champion.evaluation.roc_auc:.4f}) "
                f"is run [bold]{champion.run_id}[/], not registered: "
                f"`mlops register --run {champion.run_id}`."
            )
        else:
            console.print(
                f"Registered [bold]{version.name}[/] version [bold]{version.version}[/] "
                f"({champion.kind}, ROC-AUC {champion.evaluation.roc_auc:.4f}, "
                f"run {champion.run_id}). Promote it by editing promotions.yaml."
            )
    if version is not None:
        actions.write_outputs(version=str(version.version))


@mlops_command
def evaluate(
    version: Annotated[
        int | None,
        typer.Option(
            "--version", envvar="MODEL_VERSION", help="Registered version (default: newest)."
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="A training run instead of a version (before registration): scored on its "
            "own data's holdout, and checked to reproduce the metrics it logged.",
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
    if run is not None:
        if version is not None or report:
            raise ConfigError("--run evaluates a run: drop --version and --report")
        _evaluate_run(settings, registry, run, data, data_sha256, as_json)
        return
    versions = registry.versions(settings.model_name)
    if not versions:
        raise RegistryError(f"{settings.model_name} has no registered version; run `mlops train`")
    chosen = version if version is not None else versions[-1].version
    if chosen not in {v.version for v in versions}:
        raise RegistryError(f"{settings.model_name} version {chosen} does not exist")
    if report:
        from ml.adapters import actions
        from ml.promotions.promotion_pr import compare

        text = compare(registry, settings.model_name, chosen).report()
        atomic_output.write_text(output, text)
        actions.append_summary(text)
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


def _evaluate_run(
    settings: MLSettings,
    registry: Registry,
    run_id: str,
    data: str | None,
    data_sha256: str | None,
    as_json: bool,
) -> None:
    """Score a run's logged model on the holdout of the data it was trained on (or --data).

    On its own data the scores must reproduce the metrics the run logged: a model artifact that
    does not is not the model that was evaluated, and that fails the step (exit 5).
    """
    from ml.errors import GateError
    from ml.evaluate import evaluate_model_uri, reproduction_mismatch
    from ml.features import FEATURES, TARGET
    from ml.holdout import load_dataset
    from ml.train import MODEL_URI_TAG
    from ml.train_config import load_train_config

    tags = registry.run_tags(run_id)
    model_uri = tags.get(MODEL_URI_TAG)
    if not model_uri:
        raise RegistryError(f"run {run_id} has no {MODEL_URI_TAG} tag: not a training run")
    if data:
        from ml.data import ingest
        from ml.validation import validate

        frame, _ = ingest(data, data_sha256)
        validate(frame)
        x, y = frame[FEATURES], frame[TARGET].to_numpy()
    else:
        source, sha = tags.get("data_source"), tags.get("data_sha256")
        if not source or not sha:
            raise RegistryError(f"run {run_id} records no data_source/data_sha256: pass --data")
        holdout, _ = load_dataset(source, sha, load_train_config(settings.train_config))
        x, y = holdout.x_test, holdout.y_test
    result = evaluate_model_uri(registry, model_uri, x, y)
    metrics = result.as_metrics()
    # On --data the holdout is another one: nothing to reproduce.
    mismatch = {} if data else reproduction_mismatch(registry.run_metrics(run_id), metrics)
    if as_json:
        emit_json({"run_id": run_id, **metrics, "reproduces_logged": not mismatch})
    else:
        console.print(_metrics_table(f"run {run_id}", {run_id[:8]: result}))
    if mismatch:
        detail = ", ".join(
            f"{k} logged {a:.6f} vs scored {b:.6f}" for k, (a, b) in mismatch.items()
        )
        raise GateError(f"run {run_id}: the logged model does not reproduce its metrics: {detail}")


@mlops_command
def gate(
    run: Annotated[
        str | None, typer.Option("--run", help="Training run to check (before registration).")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Or a registered version's run.")
    ] = None,
    gates_file: Annotated[
        Path | None,
        typer.Option(
            "--gates", help="Gates file (default: ML_PROMOTE_GATES_FILE or config/gates.yaml)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a run's tags and metrics against the floors and ceilings of config/gates.yaml.

    The performance gate before registering: the same gates `promote validate` applies to the
    version later (required tags, floors, ceilings); exit 5 naming each failure.
    """
    from ml.errors import GateError
    from ml.promotions.config import PromotionSettings
    from ml.promotions.gates import load_gates
    from ml.promotions.gates.verdicts import check_run
    from ml.registry import Registry
    from ml.settings import MLSettings

    if (run is None) == (version is None):
        raise ConfigError("pass exactly one of --run R or --version N")
    settings = MLSettings()
    registry = Registry(settings.resolved_tracking_uri())
    gates = load_gates(gates_file or PromotionSettings().gates_file)
    if version is not None:
        info = registry.get_version(settings.model_name, version)
        if info is None or not info.run_id:
            raise RegistryError(f"{settings.model_name} v{version} does not exist or has no run")
        run = info.run_id
    assert run is not None
    verdict = check_run(registry, settings.model_name, run, gates.for_model(settings.model_name))
    if as_json:
        emit_json(
            {
                "model": settings.model_name,
                "run_id": run,
                "passed": verdict.passed,
                "results": [
                    {"gate": r.gate, "passed": r.passed, "detail": r.detail}
                    for r in verdict.results
                ],
            }
        )
    else:
        for r in verdict.results:
            console.print(f"{r.label:<6} {r.gate}: {r.detail}", highlight=False)
    if not verdict.passed:
        failed = "; ".join(f"{r.gate}: {r.detail}" for r in verdict.failures)
        raise GateError(f"run {run} fails the gates of {settings.model_name}: {failed}")


@mlops_command
def register(
    run: Annotated[
        str, typer.Option("--run", help="Champion run to register (`train --no-register`).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Register a trained run as a new version (idempotent: a run registered before is reused)."""
    from ml.adapters import actions
    from ml.registry import Registry
    from ml.settings import MLSettings
    from ml.train import register_run

    settings = MLSettings()
    registry = Registry(settings.resolved_tracking_uri())
    done = register_run(registry, settings.model_name, run)
    number = done.version.version
    if as_json:
        emit_json(
            {
                "model": settings.model_name,
                "run_id": run,
                "version": number,
                "created": done.created,
            }
        )
    else:
        verb = "Registered" if done.created else "Already registered:"
        console.print(
            f"{verb} [bold]{settings.model_name}[/] version [bold]{number}[/] from run {run}. "
            "Promote it by editing promotions.yaml."
        )
    actions.write_outputs(version=str(number))
