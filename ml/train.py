"""Training: ingest, validate, split, fit each candidate, evaluate, log, register the champion.

Validation runs before any MLflow run is created, so bad data leaves nothing behind in the
registry. A failure inside a run marks that run FAILED (MLflow's context manager) and registers
nothing. MLflow is reached through `ml.registry.Registry` with an explicit URI: the fluent calls
(`start_run`, `log_model`) run inside `Registry.fluent()`, which leaves no global state behind.
`--params` (the retrain workflow's input) is merged over config/train.yaml by `with_params`.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import sklearn
import xgboost
from mlflow.models import infer_signature
from sklearn.pipeline import Pipeline

from ml.contract import CONTRACT_FILE
from ml.data import Snapshot
from ml.errors import ConfigError, ContractError
from ml.evaluate import Evaluation, evaluate, model_card, write_plots
from ml.features import CONTRACT, MODEL_KINDS, ModelKind, build_pipeline
from ml.github import git_dirty, git_sha
from ml.holdout import Holdout, load_dataset
from ml.monitoring.reference import log_reference
from ml.registry import Registry, VersionInfo
from ml.settings import MLSettings
from ml.train_config import TrainConfig, load_train_config

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CandidateResult:
    """One trained candidate and where MLflow keeps it."""

    kind: ModelKind
    run_id: str
    model_uri: str
    evaluation: Evaluation


@dataclass(frozen=True)
class TrainResult:
    """What `mlops train` did: the candidates, the champion and its registered version."""

    candidates: list[CandidateResult]
    champion: CandidateResult
    version: VersionInfo
    snapshot: Snapshot


def _log_model(
    kind: ModelKind, pipeline: Pipeline, holdout: Holdout
) -> mlflow.models.model.ModelInfo:
    example = holdout.x_train.head(5)
    signature = infer_signature(example, pipeline.predict_proba(example)[:, 1])
    # Serving and batch scoring enforce the contract on the signature's columns: they must agree.
    columns = {c["name"]: c["type"] for c in signature.inputs.to_dict()}
    mismatches = CONTRACT.signature_mismatches(columns)
    if mismatches:
        raise ContractError(f"signature and contract disagree: {'; '.join(mismatches)}")
    if kind == "xgboost":
        # The pipeline is the classifier alone (see ml.features): log the native booster so
        # serving needs neither scikit-learn nor pickle.
        return mlflow.xgboost.log_model(
            pipeline.named_steps["model"],
            name="model",
            signature=signature,
            input_example=example,
            model_format="ubj",
            pip_requirements=[f"xgboost-cpu=={xgboost.__version__}"],
        )
    return mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature,
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
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
) -> CandidateResult:
    """Fit, evaluate and log one candidate in its own MLflow run (inside `Registry.fluent()`)."""
    params = dict(getattr(config.candidates, kind))
    run_name = f"{kind}-{tags['training_session'][:8]}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags({**tags, "model_type": kind})
        mlflow.log_params({**params, "seed": config.seed, "test_size": config.test_size})
        pipeline = build_pipeline(kind, params, config.seed)
        pipeline.fit(holdout.x_train, holdout.y_train)
        scores = pipeline.predict_proba(holdout.x_test)[:, 1]
        evaluation = evaluate(holdout.y_test, scores)
        mlflow.log_metrics(evaluation.as_metrics())
        # At the run root (CONTRACTS.md): serving, batch scoring and the gates read it from there.
        mlflow.log_dict(CONTRACT.to_dict(), CONTRACT_FILE)
        # What this version saw (features + its scores): monitoring compares production with it.
        log_reference(holdout.x_train, pipeline.predict_proba(holdout.x_train)[:, 1])
        with tempfile.TemporaryDirectory(prefix="eval-") as tmp:
            out = Path(tmp)
            for plot in write_plots(holdout.y_test, scores, out / "plots"):
                mlflow.log_artifact(str(plot), artifact_path="plots")
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
            )
            mlflow.log_artifact(str(card))
            snapshot_file = out / "data_snapshot.json"
            snapshot_file.write_text(snapshot.to_json())
            mlflow.log_artifact(str(snapshot_file))
        info = _log_model(kind, pipeline, holdout)
        return CandidateResult(kind, run.info.run_id, info.model_uri, evaluation)


def train(
    settings: MLSettings,
    kinds: Sequence[ModelKind],
    *,
    data_source: str | None = None,
    data_sha256: str | None = None,
    params: Mapping[str, object] | None = None,
    progress: Progress = lambda _msg: None,
) -> TrainResult:
    """Train the candidates and register the best by holdout ROC-AUC as a new version.

    No alias and no stage is set: promotion belongs to `promotions.yaml` and the engine.
    """
    config = with_params(
        load_train_config(settings.train_config),
        params or {},
        kinds[0] if len(kinds) == 1 else None,
    )
    source = data_source or settings.data_source
    sha = data_sha256 if data_source else (data_sha256 or settings.data_sha256)
    progress(f"ingesting and validating {source}")
    holdout, snapshot = load_dataset(source, sha, config)

    tracking_uri = settings.resolved_tracking_uri()
    settings.home.mkdir(parents=True, exist_ok=True)
    registry = Registry(tracking_uri)
    experiment_id = registry.ensure_experiment(settings.experiment, settings.artifact_location())

    tags = {
        "git_sha": git_sha(),
        "git_dirty": str(git_dirty()).lower(),
        "data_sha256": snapshot.sha256,
        "data_rows": str(snapshot.rows),
        "data_source": snapshot.source,
        "training_session": uuid.uuid4().hex,
    }
    candidates = []
    with registry.fluent():
        for kind in kinds:
            progress(f"training {kind}")
            candidates.append(
                train_candidate(
                    kind, config, holdout, snapshot, tags, settings.model_name, experiment_id
                )
            )
    champion = max(candidates, key=lambda c: c.evaluation.roc_auc)
    progress(f"registering {champion.kind} as a new version of {settings.model_name}")
    registry.client.set_tag(champion.run_id, "champion", "true")
    version = registry.register(
        settings.model_name,
        champion.model_uri,
        champion.run_id,
        tags={
            "git_sha": tags["git_sha"],
            "data_sha256": snapshot.sha256,
            "data_rows": str(snapshot.rows),
            "model_type": champion.kind,
            "candidates": json.dumps(
                {c.kind: round(c.evaluation.roc_auc, 4) for c in candidates}, sort_keys=True
            ),
        },
        description=(
            f"{champion.kind} champion, holdout ROC-AUC {champion.evaluation.roc_auc:.4f} "
            f"on data {snapshot.sha256[:12]}"
        ),
    )
    return TrainResult(candidates, champion, version, snapshot)
