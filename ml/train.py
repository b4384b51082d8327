"""Training: ingest, validate, split, fit each candidate, evaluate, log, register the champion.

Validation runs before any MLflow run is created, so bad data leaves nothing behind in the
registry. A failure inside a run marks that run FAILED (MLflow's context manager) and registers
nothing. MLflow is reached through its adapters: `ml.registry.Registry` (explicit URI) for the
registry, `ml.adapters.mlflow_models` for what a run logs (its runs open inside
`Registry.fluent()`, which leaves no global state behind).
`--params` (the retrain workflow's input) is merged over config/train.yaml by `with_params`.

Training and registration are two steps that `train` chains: `train_candidates` logs the runs and
marks the champion (tags `champion`, `candidates`, and `model_uri` on every candidate), and
`register_run` turns a champion run into a version from what the run itself recorded. An
orchestrator (Airflow) runs them as separate tasks with evaluation and the gates in between and
passes the run id explicitly; a laptop and the retrain workflow call `train`, which does the same.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import pandas as pd
import sklearn
import xgboost
from sklearn.pipeline import Pipeline

from ml.adapters import git, mlflow_models
from ml.contract import CONTRACT_FILE
from ml.data import Snapshot
from ml.errors import ConfigError, ContractError, RegistryError
from ml.evaluate import Evaluation, evaluate, model_card, write_plots
from ml.features import CONTRACT, FEATURES, MODEL_KINDS, TARGET, ModelKind, build_pipeline
from ml.governance.config import Governance, load_governance
from ml.governance.training import check_reason_texts
from ml.holdout import Holdout, load_dataset
from ml.lineage import LINEAGE_TAGS, Lineage, lock_tags, log_dataset, of_file
from ml.monitoring.reference import log_reference
from ml.registry import Registry, VersionInfo, registry_errors
from ml.settings import MLSettings
from ml.train_config import TrainConfig, load_train_config

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    """The default `progress`: say nothing."""


MODEL_URI_TAG = "model_uri"
"""Run tag holding the logged model's URI (`models:/m-...`), set on every candidate run."""
BACKEND_TAG = "training_backend"
"""Run tag: where the model was fit, `local` or `spark` (config/train.yaml `backend`)."""


@dataclass(frozen=True)
class CandidateResult:
    """One trained candidate and where MLflow keeps it."""

    kind: ModelKind
    run_id: str
    model_uri: str
    evaluation: Evaluation


@dataclass(frozen=True)
class TrainedRuns:
    """What `train_candidates` logged: every candidate and the champion, nothing registered."""

    candidates: list[CandidateResult]
    champion: CandidateResult
    snapshot: Snapshot


@dataclass(frozen=True)
class TrainResult:
    """What `mlops train` did: the candidates, the champion and its registered version."""

    candidates: list[CandidateResult]
    champion: CandidateResult
    version: VersionInfo
    snapshot: Snapshot


@dataclass(frozen=True)
class Registration:
    """The version a run became; `created` is False when the run was registered before."""

    version: VersionInfo
    created: bool


def _log_model(
    run: mlflow_models.ActiveRun, kind: ModelKind, pipeline: Pipeline, holdout: Holdout
) -> str:
    """Log the candidate's model in `run` with its signature; returns the model's URI."""
    # The signature keeps every contract column, protected ones too (ml/governance/training.py).
    example = holdout.x_train.head(5)
    signature = mlflow_models.infer_signature(example, pipeline.predict_proba(example)[:, 1])
    # Serving and batch scoring enforce the contract on the signature's columns: they must agree.
    mismatches = CONTRACT.signature_mismatches(signature.columns)
    if mismatches:
        raise ContractError(f"signature and contract disagree: {'; '.join(mismatches)}")
    if kind == "xgboost":
        # The pipeline is the classifier alone (see ml.features): log the native booster so
        # serving needs neither scikit-learn nor pickle.
        booster = pipeline.named_steps["model"]
        requirement = f"xgboost-cpu=={xgboost.__version__}"
        return run.log_model(booster, "xgboost", signature, example, [requirement])
    requirement = f"scikit-learn=={sklearn.__version__}"
    return run.log_model(pipeline, "sklearn", signature, example, [requirement])


def _fit(
    kind: ModelKind,
    params: dict[str, object],
    config: TrainConfig,
    inputs: Sequence[str],
    x_train: pd.DataFrame,
    y_train: object,
) -> Pipeline:
    """The fitted pipeline of one candidate, on the configured backend.

    With `backend: spark` the xgboost candidate's booster is fit by SparkXGBClassifier
    (ml/spark/training.py) and comes back in the same one-step pipeline the local fit makes, so
    evaluation, the reference sample and the logged artefact cannot tell the two apart.
    """
    import numpy as np

    pipeline = build_pipeline(kind, params, config.seed, inputs)
    if kind == "xgboost" and config.backend == "spark":
        from ml.spark.training import fit_xgboost

        fitted = fit_xgboost(x_train, np.asarray(y_train), params, config.seed, config.spark)
        return Pipeline([("model", fitted)])
    pipeline.fit(x_train, y_train)
    return pipeline


def _governance_card(
    governance: Governance | None,
    inputs: list[str],
    holdout: Holdout,
    scores: object,
    model_name: str,
) -> str:
    """The model card's governance section (ml/governance/card.py), or nothing without one."""
    if governance is None:
        return ""
    import numpy as np

    from ml.governance.card import card_section, reviewed_bounds
    from ml.promotions.config import PromotionSettings

    bounds = reviewed_bounds(PromotionSettings().gates_file, model_name)
    return card_section(
        governance, inputs, holdout.x_test, holdout.y_test, np.asarray(scores), bounds
    )


def with_params(
    config: TrainConfig, params: Mapping[str, object], kind: ModelKind | None
) -> TrainConfig:
    """`params` over the config: keyed by candidate (`{"xgboost": {...}}`), or flat for `kind`.

    The merged config is validated again, so a bad value is a `ConfigError`, not a crash later.
    """
    if not params:
        return config
    if all(k in MODEL_KINDS for k in params):
        per_kind = dict(params)
    elif kind is None:
        raise ConfigError(
            "flat params need a model type (--model), or key them by candidate: "
            '{"xgboost": {"max_depth": 4}}'
        )
    else:
        per_kind = {kind: dict(params)}
    merged = config.model_dump()
    for name, values in per_kind.items():
        if not isinstance(values, dict):
            raise ConfigError(f"params for {name} must be a JSON object")
        merged["candidates"][name] = {**(merged["candidates"].get(name) or {}), **values}
    try:
        return TrainConfig.model_validate(merged)
    except ValueError as exc:
        raise ConfigError(f"params: {' '.join(str(exc).split())[:200]}") from None


def train_candidate(
    kind: ModelKind,
    config: TrainConfig,
    holdout: Holdout,
    snapshot: Snapshot,
    tags: dict[str, str],
    model_name: str,
    experiment_id: str,
    governance: Governance | None = None,
    lineage: Lineage | None = None,
) -> CandidateResult:
    """Fit, evaluate and log one candidate in its own MLflow run (inside `Registry.fluent()`).

    `governance` (default: none) says which protected columns the model may not use: they stay
    in the data and the signature, and the model is fit blind to them (ml/governance/training.py).
    The training data is the run's MLflow dataset input: the DVC object when `lineage` says DVC
    tracks it (source = its URL in the remote, digest = its md5), else the snapshot's source.
    """
    from ml.governance import training as governed

    params = dict(getattr(config.candidates, kind))
    backend = config.backend if kind == "xgboost" else "local"
    inputs = governance.model_inputs(FEATURES) if governance else FEATURES
    excluded = governance.excluded if governance else ()
    run_name = f"{kind}-{tags['training_session'][:8]}"
    with mlflow_models.start_run(experiment_id, run_name) as run:
        run.set_tags({**tags, "model_type": kind})
        run.log_params({**params, "seed": config.seed, "test_size": config.test_size})
        log_dataset(run, _labelled(holdout), lineage, snapshot.source, TARGET)
        run.set_tags({BACKEND_TAG: backend})
        pipeline = _fit(
            kind,
            params,
            config,
            inputs,
            governed.blind(holdout.x_train, excluded, CONTRACT),
            holdout.y_train,
        )
        scores = pipeline.predict_proba(holdout.x_test)[:, 1]
        evaluation = evaluate(holdout.y_test, scores)
        run.log_metrics(evaluation.as_metrics())
        # At the run root (docs/contracts.md#model-contract-file): serving, batch scoring and the
        # gates read it from there.
        run.log_dict(
            governed.contract_record(CONTRACT, governance) if governance else CONTRACT.to_dict(),
            CONTRACT_FILE,
        )
        if governance:
            run.set_tags({governed.PROTECTED_TAG: governed.protected_tag(governance, inputs)})
        # What this version saw (features + its scores): monitoring compares production with it.
        log_reference(run, holdout.x_train, pipeline.predict_proba(holdout.x_train)[:, 1])
        with tempfile.TemporaryDirectory(prefix="eval-") as tmp:
            out = Path(tmp)
            for plot in write_plots(holdout.y_test, scores, out / "plots"):
                run.log_file(plot, "plots")
            card = out / "model_card.md"
            card.write_text(
                model_card(
                    model_name=model_name,
                    kind=kind,
                    evaluation=evaluation,
                    params=params,
                    data_sha256=snapshot.sha256,
                    data_rows=snapshot.rows,
                    git_sha=tags["git_sha"],
                )
                + (_governance_card(governance, inputs, holdout, scores, model_name))
            )
            run.log_file(card)
            snapshot_file = out / "data_snapshot.json"
            snapshot_file.write_text(snapshot.to_json())
            run.log_file(snapshot_file)
        model_uri = _log_model(run, kind, pipeline, holdout)
        # `register_run` finds the model from the run alone (MLflow 3 logs it as `models:/m-...`).
        run.set_tags({MODEL_URI_TAG: model_uri})
        return CandidateResult(kind, run.run_id, model_uri, evaluation)


class TrainOptions(TypedDict, total=False):
    """What a training call may set besides the settings and the candidates."""

    data_source: str | None  # path, https:// or s3:// (default: the settings' snapshot)
    data_sha256: str | None  # expected sha256 of the uncompressed CSV
    params: Mapping[str, object] | None  # merged over config/train.yaml (`with_params`)
    progress: Progress  # told what is happening (the CLI's spinner)


def _labelled(holdout: Holdout) -> pd.DataFrame:
    """The whole data set again (features and target), as the dataset input logs it."""
    frames = [
        holdout.x_train.assign(**{TARGET: holdout.y_train}),
        holdout.x_test.assign(**{TARGET: holdout.y_test}),
    ]
    return pd.concat(frames).sort_index()


def train_candidates(
    settings: MLSettings, kinds: Sequence[ModelKind], **options: Unpack[TrainOptions]
) -> TrainedRuns:
    """Train the candidates, log each in its own run and mark the best by holdout ROC-AUC.

    Nothing is registered: the champion run carries what `register_run` needs (tags
    `champion`, `candidates` and `model_uri`), so registering can be a later, separate step.
    """
    data_source, data_sha256 = options.get("data_source"), options.get("data_sha256")
    progress = options.get("progress") or _quiet
    config = with_params(
        load_train_config(settings.train_config),
        options.get("params") or {},
        kinds[0] if len(kinds) == 1 else None,
    )
    source = data_source or settings.data_source
    sha = data_sha256 if data_source else (data_sha256 or settings.data_sha256)
    progress(f"ingesting and validating {source}")
    holdout, snapshot = load_dataset(source, sha, config)
    governance = load_governance(settings.governance_config)
    check_reason_texts(governance, governance.model_inputs(FEATURES))

    settings.home.mkdir(parents=True, exist_ok=True)
    registry = Registry(settings.resolved_tracking_uri())
    experiment_id = registry.ensure_experiment(settings.experiment, settings.artifact_location())

    tags = {
        "git_sha": git.sha(),
        "git_dirty": str(git.dirty()).lower(),
        "data_sha256": snapshot.sha256,
        "data_rows": str(snapshot.rows),
        "data_source": snapshot.source,
        "training_session": uuid.uuid4().hex,
    }
    # DVC lineage (ml.lineage): the data's md5, path and remote when DVC tracks the file.
    lineage = of_file(source)
    if lineage is not None:
        tags.update(lineage.tags())
    candidates = []
    with registry.fluent():
        for kind in kinds:
            progress(f"training {kind}")
            candidates.append(
                train_candidate(
                    kind,
                    config,
                    holdout,
                    snapshot,
                    tags,
                    settings.model_name,
                    experiment_id,
                    governance,
                    lineage,
                )
            )
    champion = max(candidates, key=lambda c: c.evaluation.roc_auc)
    scores = {c.kind: round(c.evaluation.roc_auc, 4) for c in candidates}
    with registry_errors(f"tag champion run {champion.run_id}"):
        registry.set_run_tag(champion.run_id, "champion", "true")
        registry.set_run_tag(champion.run_id, "candidates", json.dumps(scores, sort_keys=True))
    return TrainedRuns(candidates, champion, snapshot)


def register_run(registry: Registry, model_name: str, run_id: str) -> Registration:
    """Register a trained run's model as a new version of `model_name`, from the run's records.

    Idempotent: when a version of `model_name` already comes from `run_id`, that version is
    returned (`created=False`) instead of a second one, so a retried register step does not
    leave two versions of one training run. No alias and no stage is set: promotion belongs to
    `promotions.yaml` and the engine.

    Raises:
        RegistryError: the run does not exist, did not finish, or logged no model.
    """
    run = registry.run(run_id)
    if run is None:
        raise RegistryError(
            f"run {run_id} does not exist (hint: pass the run id `mlops train --no-register` "
            "printed)"
        )
    if run.status != "FINISHED":
        raise RegistryError(f"run {run_id} is {run.status}, not FINISHED: nothing to register")
    tags = dict(run.tags)
    model_uri = tags.get(MODEL_URI_TAG)
    if not model_uri:
        raise RegistryError(
            f"run {run_id} has no {MODEL_URI_TAG} tag: it is not a training run of this "
            "project (hint: register a run `mlops train --no-register` made)"
        )
    for existing in registry.versions(model_name):
        if existing.run_id == run_id:
            return Registration(existing, created=False)
    kind = tags.get("model_type", "unknown")
    auc = run.metrics.get("roc_auc")
    data_sha = tags.get("data_sha256", "")
    # The lock is final only now (`dvc repro` writes it stage by stage): its hash goes on the
    # run here, and with the run's other DVC tags on the version.
    dvc_tags = {k: v for k, v in tags.items() if k in LINEAGE_TAGS}
    locked = lock_tags(tags)
    if locked:
        for key, value in locked.items():
            registry.set_run_tag(run_id, key, value)
        dvc_tags.update(locked)
    version = registry.register(
        model_name,
        model_uri,
        run_id,
        tags={
            "git_sha": tags.get("git_sha", "unknown"),
            "data_sha256": data_sha,
            "data_rows": tags.get("data_rows", ""),
            "model_type": kind,
            "candidates": tags.get("candidates", json.dumps({kind: auc})),
            **dvc_tags,
        },
        description=(
            f"{kind} champion, holdout ROC-AUC "
            f"{'n/a' if auc is None else f'{auc:.4f}'} on data {data_sha[:12]}"
        ),
    )
    return Registration(version, created=True)


def train(
    settings: MLSettings, kinds: Sequence[ModelKind], **options: Unpack[TrainOptions]
) -> TrainResult:
    """Train the candidates and register the best by holdout ROC-AUC as a new version.

    The one-call form of `train_candidates` then `register_run` (the retrain workflow and
    `make run` use it). No alias and no stage is set.
    """
    runs = train_candidates(settings, kinds, **options)
    progress = options.get("progress") or _quiet
    progress(f"registering {runs.champion.kind} as a new version of {settings.model_name}")
    registry = Registry(settings.resolved_tracking_uri())
    registration = register_run(registry, settings.model_name, runs.champion.run_id)
    return TrainResult(runs.candidates, runs.champion, registration.version, runs.snapshot)
