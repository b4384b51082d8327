"""`mlops data ...`: every verb about training data. `ingest` (fetch, verify the checksum,
stage a copy) and `check` (the data gate: quality, contract ranges, drift against a reference)
come first; `add|validate|evaluate|register|status|diff|pull|repro|push` are the DVC
pipeline's verbs.

`dvc.yaml` runs `data ingest` → `data validate` → `train` → `data evaluate`; the retrain
workflow then runs `data register` (the champion becomes a version, with the final lock's hash);
PR CI runs `data status` (fails on a stale `dvc.lock`, naming the stage) and `data diff`
(metrics and params against the base branch, for the plan comment). `data add FILE` brings new
data in: validated first, then `dvc add`, `dvc push` and a commit for a pull request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

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
from ml.cli.monitor import (
    ConfigOption,
    NotifyOption,
    OutOption,
    finish_outputs,
    report_comparison,
)
from ml.errors import ConfigError

ReportOption = Annotated[
    Path, typer.Option("--report", help="Where the validation report (a DVC metric) goes.")
]
data_app = typer.Typer(
    help="Training data: ingest, check, and the DVC pipeline.", no_args_is_help=True
)
RunFileOption = Annotated[
    Path, typer.Option("--run-file", help="The train stage's JSON line with the champion run id.")
]


@data_app.command("ingest")
@mlops_command
def ingest(
    data: DataOption = None,
    data_sha256: ShaOption = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the verified copy (the data gate reads it).")
    ] = Path("build/data"),
    name: Annotated[
        str | None,
        typer.Option("--name", help="File name of the copy (default: data-<sha256 prefix>.csv)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch a training data set, verify its sha256 and stage a verified copy for later steps."""
    from ml.data import stage
    from ml.settings import MLSettings

    settings = MLSettings()
    if data and not data_sha256:
        raise ConfigError("--data needs --data-sha256 (the checksum ingest verifies)")
    source = data or settings.data_source
    sha = data_sha256 if data else settings.data_sha256
    path, snapshot = stage(source, sha, out)
    if name:  # a fixed name: the DVC pipeline's ingest output (dvc.yaml)
        path = path.replace(out / name)
    if as_json:
        emit_json(
            {
                "source": snapshot.source,
                "sha256": snapshot.sha256,
                "rows": snapshot.rows,
                "columns": snapshot.columns,
                "path": str(path.resolve()),
            }
        )
    else:
        console.print(
            f"{snapshot.source}: sha256 {snapshot.sha256} verified, {snapshot.rows} rows, "
            f"{snapshot.columns} columns; staged at {path}"
        )


@data_app.command("check")
@mlops_command
def check(
    current: Annotated[
        str, typer.Option("--current", help="New data: CSV/parquet path, https:// or s3:// URI.")
    ],
    reference: Annotated[
        str,
        typer.Option(
            "--reference",
            help="Reference: a file, or a version's reference "
            "(models:/NAME/N, models:/NAME@ALIAS).",
        ),
    ],
    out: OutOption = Path("build/monitoring"),
    config: ConfigOption = Path("config/monitoring.yaml"),
    notify: NotifyOption = False,
) -> None:
    """Gate new training data: quality, contract ranges and drift; exit 15 naming the checks."""
    from ml.atomic_output import AtomicOutputs
    from ml.monitoring.config import load_monitoring_config
    from ml.monitoring.drift import DATA_CHECK_REPORT, DATA_CHECK_SUMMARY, run_data_check
    from ml.settings import MLSettings

    thresholds = load_monitoring_config(config)
    tracking_uri = MLSettings().resolved_tracking_uri()
    targets = [out / DATA_CHECK_REPORT, out / DATA_CHECK_SUMMARY]
    with AtomicOutputs(targets, create_folders=True) as outputs:
        comparison = run_data_check(
            current,
            reference,
            tracking_uri=tracking_uri,
            out_dir=outputs.staging_folder(out),
            config=thresholds,
        )
        finish_outputs(outputs, out, DATA_CHECK_REPORT, DATA_CHECK_SUMMARY, comparison.summary)
    report_comparison(
        comparison,
        out=out,
        summary_name=DATA_CHECK_SUMMARY,
        event="data_check.breach",
        pushgateway=None,
        notify=notify,
    )


@data_app.command("add")
@mlops_command
def add(
    file: Annotated[Path, typer.Argument(help="New training data: CSV, optionally gzipped.")],
    name: Annotated[
        str | None, typer.Option("--name", help="File name under data/ (default: FILE's name).")
    ] = None,
    push: Annotated[
        bool, typer.Option("--push/--no-push", help="Push the data to the DVC remote.")
    ] = True,
    commit: Annotated[
        bool,
        typer.Option("--commit/--no-commit", help="Commit the pointer and params.yaml."),
    ] = True,
) -> None:
    """Validate new data against the contract, `dvc add` it, push it and commit it for a PR.

    Bad data is refused before anything is copied, added, pushed or committed (exit 3, naming
    every failed check).
    """
    from ml.adapters import dvc
    from ml.pipeline import add_data

    added = add_data(dvc.repo_root(), file, name=name, push=push, commit=commit)
    console.print(
        f"{added.path}: {added.rows} rows, sha256 {added.sha256}, DVC md5 {added.md5}; "
        f"{'pushed' if added.pushed else 'not pushed (`dvc push`)'}; "
        + (
            f"committed {added.commit[:12]}: open a pull request, CI checks the pipeline"
            if added.commit
            else f"commit {added.pointer} and params.yaml"
        ),
        highlight=False,
    )


@data_app.command("validate")
@mlops_command
def validate(
    file: Annotated[Path, typer.Argument(help="The ingest stage's verified CSV.")],
    report: ReportOption = Path("reports/validation.json"),
) -> None:
    """Check a data file against the contract and write its validation report (exit 3 if bad)."""
    from ml.data import ingest
    from ml.errors import DataError
    from ml.pipeline import _sha256_of_csv, validation_report, write_json

    if not file.is_file():
        raise DataError(f"{file}: no such file (hint: run the ingest stage, `dvc repro ingest`)")
    frame, snapshot = ingest(str(file), _sha256_of_csv(file))
    write_json(report, validation_report(frame, snapshot.sha256))
    console.print(f"{file}: {snapshot.rows} rows pass the contract; report {report}")


@data_app.command("evaluate")
@mlops_command
def evaluate(
    run_file: RunFileOption = Path("build/pipeline/run.json"),
    metrics: Annotated[Path, typer.Option("--metrics", help="Metrics file (a DVC metric).")] = Path(
        "reports/metrics.json"
    ),
    plots: Annotated[
        Path, typer.Option("--plots", help="Folder for the ROC curve (a DVC plot).")
    ] = Path("reports/plots"),
) -> None:
    """Score the champion run's model on its holdout; fail unless it reproduces its metrics."""
    import tempfile

    from ml.errors import GateError, RegistryError
    from ml.evaluate import _score_model_dir, evaluate
    from ml.holdout import load_dataset
    from ml.pipeline import evaluation_metrics, roc_points, run_id_from, write_json
    from ml.registry import Registry
    from ml.settings import MLSettings
    from ml.train import MODEL_URI_TAG
    from ml.train_config import load_train_config

    settings = MLSettings()
    registry = Registry(settings.resolved_tracking_uri())
    run_id = run_id_from(run_file)
    tags = registry.run_tags(run_id)
    model_uri, source, sha = (tags.get(k) for k in (MODEL_URI_TAG, "data_source", "data_sha256"))
    if not model_uri or not source or not sha:
        raise RegistryError(f"run {run_id} is not a training run of this project")
    holdout, _ = load_dataset(source, sha, load_train_config(settings.train_config))
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        local = registry.download_model(model_uri, Path(tmp))
        scores = _score_model_dir(local, model_uri, holdout.x_test)
    result = evaluate(holdout.y_test, scores)
    logged = registry.run_metrics(run_id)
    if abs(logged.get("roc_auc", result.roc_auc) - result.roc_auc) > 1e-6:
        raise GateError(
            f"run {run_id}: the logged model scores ROC-AUC {result.roc_auc:.6f}, "
            f"the run logged {logged['roc_auc']:.6f}: it is not the model that was evaluated"
        )
    write_json(metrics, evaluation_metrics(result, tags.get("model_type", "unknown")))
    plots.mkdir(parents=True, exist_ok=True)
    (plots / "roc.csv").write_text(roc_points(holdout.y_test, scores), encoding="utf-8")
    console.print(f"run {run_id}: ROC-AUC {result.roc_auc:.6f} reproduced; {metrics}, {plots}")


@data_app.command("register")
@mlops_command
def register(
    run_file: RunFileOption = Path("build/pipeline/run.json"),
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON line: model, version, run_id, changed."),
    ] = False,
) -> None:
    """Register the pipeline's champion run as a new version (with the final dvc.lock's hash).

    When a version already carries this dvc.lock's hash (`dvc repro` ran nothing, or reran to
    the same lock) nothing is registered: it says which version holds the data and exits 0,
    with `changed` false in the JSON and no `version` step output, so no pull request follows.
    """
    from ml.adapters import actions, dvc
    from ml.errors import DataError
    from ml.pipeline import (
        no_run_message,
        nothing_changed_line,
        registered_from_lock,
        run_id_from,
    )
    from ml.registry import Registry
    from ml.settings import MLSettings
    from ml.train import register_run

    settings = MLSettings()
    registry = Registry(settings.resolved_tracking_uri())
    lock_sha = dvc.lock_sha256(dvc.repo_root())
    same = registered_from_lock(registry.versions(settings.model_name), lock_sha)
    if same is not None and lock_sha:
        line = nothing_changed_line(same, lock_sha)
        console.print(line, highlight=False)
        actions.write_outputs(changed="false")
        actions.append_summary(line + "\n")
        if as_json:
            typer.echo(
                json.dumps(_registered(settings.model_name, same.version, same.run_id, False))
            )
        return
    if not run_file.is_file():
        raise DataError(no_run_message(run_file, settings.model_name, lock_sha))
    run_id = run_id_from(run_file)
    done = register_run(registry, settings.model_name, run_id)
    number = done.version.version
    verb = "Registered" if done.created else "Already registered:"
    console.print(
        f"{verb} {settings.model_name} version {number} from run {run_id}.", highlight=False
    )
    actions.write_outputs(version=str(number), changed="true")
    if as_json:  # one line on stdout for the Airflow task's XCom (dags/credit_risk_training.py)
        typer.echo(json.dumps(_registered(settings.model_name, int(number), run_id, True)))


def _registered(model: str, version: int, run_id: str | None, changed: bool) -> dict[str, object]:
    return {"model": model, "version": version, "run_id": run_id, "changed": changed}


@data_app.command("status")
@mlops_command
def status() -> None:
    """Fail (exit 3) when dvc.lock does not match dvc.yaml, the params or the data pointers."""
    from ml.adapters import dvc
    from ml.errors import DataError
    from ml.pipeline import stale_message, stale_stages

    stale = stale_stages(dvc.status(dvc.repo_root()))
    if stale:
        raise DataError(stale_message(stale))
    console.print("dvc.lock is up to date with dvc.yaml, params and data pointers")


@data_app.command("diff")
@mlops_command
def diff(
    base: Annotated[
        str, typer.Option("--base", envvar="BASE_REF", help="Git revision to compare with.")
    ] = "main",
    output: Annotated[Path, typer.Option("--output", help="Markdown for the plan comment.")] = Path(
        "build/pipeline-diff.md"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the path as JSON.")] = False,
) -> None:
    """Render `dvc metrics diff` and `dvc params diff` against BASE as markdown."""
    from ml.adapters import dvc
    from ml.pipeline import diff_markdown

    text = diff_markdown(dvc.repo_root(), base)
    atomic_output.write_text(output, text)
    if as_json:
        typer.echo(json.dumps({"output": str(output)}))
    else:
        typer.echo(text)


def _dvc_verb(*args: str) -> None:
    from ml.adapters import dvc

    out = dvc.run(dvc.repo_root(), *args)
    if out.strip():
        typer.echo(out.rstrip())


@data_app.command("pull")
@mlops_command
def pull() -> None:
    """`dvc pull`: fetch the data dvc.lock and the .dvc pointers name from the remote."""
    _dvc_verb("pull")


@data_app.command("repro")
@mlops_command
def repro(
    force: Annotated[
        bool, typer.Option("--force", help="Run every stage, changed or not.")
    ] = False,
) -> None:
    """`dvc repro`: run the stages whose data, params or command changed; update dvc.lock."""
    _dvc_verb("repro", *(["--force"] if force else []))


@data_app.command("push")
@mlops_command
def push() -> None:
    """`dvc push`: send the pipeline's data to the remote (before a version names it)."""
    _dvc_verb("push")
